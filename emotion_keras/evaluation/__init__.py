"""Evaluation: the official MediaEval 2019 scores, thresholds, the paper's tables, evaluating runs.

- `metrics`: the official figures (scikit-learn on the whole tracks x tags matrix), the AUCs
  the training callback uses, and validation of prediction/ground-truth arrays.
- `thresholds`: per-tag decision thresholds chosen on validation.
- `tables`: the paper's Tables 2 and 3 for evaluated runs.
- `evaluate`: evaluating a run's best checkpoint into its run directory; scoring `.npy` files.
- `ensemble`: averaging evaluated runs into a scored ensemble folder.
"""
