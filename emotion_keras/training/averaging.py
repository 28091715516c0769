"""Weight averaging (`Config.weight_averaging`): SWA or an EMA of the weights, evaluated and saved.

- `swa`: stochastic weight averaging (Izmailov et al. 2018): the equal-weight mean of the
  trainable weights at the end of each of the last `swa_fraction` of the epochs; before the
  averaged weights are validated, the BatchNormalization statistics are recomputed for them by a
  forward pass over the training data (PyTorch's `update_bn`: moving statistics reset, then the
  cumulative mean over the pass's batches), one pass per validated epoch.
- `ema`: the optimiser's exponential moving average of the trainable weights (Keras's `use_ema`,
  `ema_momentum`, updated every step); BatchNorm keeps its running statistics.

How the averaged weights become the ones used: at the end of every epoch in which an average
exists, `swap_in` (placed before the validation callback) puts the averaged weights into the
model, so validation scores them and the epoch checkpoint saves them, and `best.keras` (a copy
of a checkpoint), evaluation and export use them with no change of their own. `swap_out` (the
last callback) puts the training weights back to go on training.

Resuming: the training ("raw") weights are not in the epoch checkpoint, so `swap_in` writes them,
with the SWA average and its count, to `RunDir.averaging_state(epoch)` *before* the checkpoint's
commit (atomically, named by epoch); the commit in `state.json` therefore names an epoch whose
averaging state is complete. `restore` (after `trainer.restore_last`) loads the committed epoch's
state back; `swap_out` removes the states of other epochs once the commit is done. The EMA itself
is optimiser state, saved and restored with the checkpoint.
"""

from __future__ import annotations

import keras
import numpy as np

from emotion_keras.config import Config
from emotion_keras.fileio import atomic_path
from emotion_keras.progress import log
from emotion_keras.rundir import RunDir


def swa_start(config: Config) -> int:
    """The first (0-based) epoch whose weights SWA averages: the last `swa_fraction` of the
    epochs, at least one."""
    return config.epochs - max(1, round(config.swa_fraction * config.epochs))


def refresh_batch_norm(model: keras.Model, batches) -> int:
    """Recomputes every BatchNormalization's moving statistics as the mean over `batches`.

    The moving mean and variance are reset and each batch `k` (from 1) enters with weight 1/k
    (momentum `(k - 1) / k`), so they end as the mean of the batches' statistics. The forward
    passes run in training mode (the model's trainable weights are not changed).

    Args:
        model: a built model; SpecAugment is left out of the passes.
        batches: an iterable of input batches, or of `(x, y)` pairs.

    Returns:
        The number of batches seen.
    """
    from emotion_keras.models.augment import without_spec_augment

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers:
        return 0
    net = without_spec_augment(model)
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, "float32"))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, "float32"))
    seen = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, tuple) else batch
            seen += 1
            for layer in layers:
                layer.momentum = (seen - 1) / seen
            net(x, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return seen


class WeightAveraging:
    """The averaging state of a run and its two callbacks (`swap_in`, `swap_out`).

    Args:
        config: the run's configuration (`weight_averaging` `swa` or `ema`).
        run: the run directory.
        refresh_input: for SWA, a function returning the batches of one BatchNorm refresh pass.
        write: this process writes the run directory (the chief).
    """

    def __init__(self, config: Config, run: RunDir, refresh_input=None, write: bool = True):
        self.mode = config.weight_averaging
        self.start = swa_start(config) if self.mode == "swa" else 0
        self.every = config.validate_every
        self.run = run
        self.refresh_input = refresh_input
        self.write = write
        self.average: list[np.ndarray] | None = None  # SWA: mean of the trainable weights
        self.count = 0  # SWA: epochs in the average
        self.raw: list[np.ndarray] | None = None  # the training weights while swapped out
        self.swap_in = _Hook(self._swap_in)
        self.swap_out = _Hook(self._swap_out)

    # At the end of an epoch: average, save the state, evaluate the averaged weights.
    def _swap_in(self, model: keras.Model, epoch: int, last_epoch: int | None) -> None:
        if self.mode == "swa":
            if epoch < self.start:
                return
            current = [np.asarray(v) for v in model.trainable_weights]
            if self.average is None:
                self.average = current
            else:
                self.average = [
                    (a * self.count + w) / (self.count + 1) for a, w in zip(self.average, current)
                ]
            self.count += 1
        self.raw = model.get_weights()
        if self.write:
            self._save_state(epoch + 1)
        if self.mode == "swa":
            for variable, value in zip(model.trainable_weights, self.average):
                variable.assign(value)
            # Refreshed when the epoch is validated (as `ValidationAUC` decides): only then can
            # it become the best checkpoint; other epochs' files are only resumed from.
            due = (epoch + 1) % self.every == 0 or epoch + 1 == last_epoch
            if self.refresh_input is not None and due:
                seen = refresh_batch_norm(model, self.refresh_input())
                log.debug(
                    "SWA: %d epochs averaged, BatchNorm refreshed on %d batches", self.count, seen
                )
        else:
            model.optimizer.finalize_variable_values(model.trainable_weights)

    def _swap_out(self, model: keras.Model, epoch: int, last_epoch: int | None) -> None:
        if self.raw is None:
            return
        model.set_weights(self.raw)
        self.raw = None
        if self.write:
            committed = self.run.read_state().get("epoch")
            for path in self.run.averaging_states():
                if path != self.run.averaging_state(committed or 0):
                    path.unlink(missing_ok=True)

    def _save_state(self, epoch: int) -> None:
        arrays = {f"raw_{i}": value for i, value in enumerate(self.raw)}
        arrays.update({f"average_{i}": value for i, value in enumerate(self.average or [])})
        arrays["count"] = np.asarray(self.count)
        path = self.run.averaging_state(epoch)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    def restore(self, model: keras.Model) -> bool:
        """After `restore_last`: the committed epoch's training weights back into `model` and
        the SWA average back here. Returns whether there was a state to restore."""
        epoch = self.run.read_state().get("epoch")
        path = self.run.averaging_state(epoch or 0)
        if not epoch or not path.is_file():
            return False
        with np.load(path, allow_pickle=False) as state:
            raw = [state[f"raw_{i}"] for i in range(len(model.weights))]
            n_average = sum(name.startswith("average_") for name in state.files)
            self.average = [state[f"average_{i}"] for i in range(n_average)] or None
            self.count = int(state["count"])
        model.set_weights(raw)
        return True


class _Hook(keras.callbacks.Callback):
    """A callback that calls `action(model, epoch, last_epoch)` at the end of each epoch."""

    def __init__(self, action):
        super().__init__()
        self.action = action

    def on_epoch_end(self, epoch, logs=None):
        self.action(self.model, epoch, (self.params or {}).get("epochs"))
