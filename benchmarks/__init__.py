"""Benchmarks of emotion_keras, kept outside the product package (`python -m benchmarks`).

- `corpus`: the cached stand-in corpus (random melspecs with the real track lengths).
- `pipeline`: crops per second and peak memory of the tf.data pipelines, against a baseline.
- `train`: training samples per second, streaming versus in memory, and GFLOP/s.

They import the product and measure it as it is used; nothing in `emotion_keras` knows they
exist. Figures and the machines they came from: BENCHMARKS.md.
"""
