"""Training: `model.fit` in a resumable run directory, and what it needs.

- `trainer`: `train(config, run_dir)`, in small named steps.
- `optimization`: the schedule's phases, their optimisers, the precision policy.
- `callbacks`: validation AUCs, run records, crash-safe checkpoints, the NaN stop.
- `reports`: the TensorBoard review summaries of a run.
- `distribute`: several devices and machines with `tf.distribute`.
- `keras_workarounds`: the one place that patches Keras (keras-team/keras#20585).
- `losses`, `optimizers`, `averaging`: recipe options beyond the paper (focal and weighted
  losses, PyTorch-style SGD weight decay, SWA/EMA weights).

Importing this package is cheap; TensorFlow is imported by the steps that need it.
"""

from emotion_keras.training.trainer import default_run_dir, resolve_data, train

__all__ = ["default_run_dir", "resolve_data", "train"]
