"""Keras callbacks of a training run: validation AUCs, and checkpoints that survive any crash.

`ValidationAUC` predicts the validation split with multi-crop averaging at the end of an epoch,
scores it with the official definitions (scikit-learn, via `emotion_keras.evaluation`) and puts
the figures into the epoch `logs`, so it must come *before* every callback that reads them
(checkpointing, early stopping, TensorBoard, CSV logging): Keras hands one `logs` dict to the
callbacks in list order.

`ResumableCheckpoint` replaces `keras.callbacks.BackupAndRestore` + `ModelCheckpoint`, which write
their files in place and keep the epoch number in a separate file, so a SIGKILL between two writes
leaves weights and epoch out of step (or a half-written file). Here each epoch's full model (with
optimizer state) is written atomically under its own name, then `state.json` is atomically
switched to it; only then is the previous epoch's file removed. Whatever instant a run dies, the
state file names a complete checkpoint of the epoch it says.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from emotion_keras.fileio import atomic_path, atomic_write_text

STATE_FILE = "state.json"
BEST_FILE = "best.keras"


class ValidationAUC(keras.callbacks.Callback):
    """Scores the validation split every `every` epochs and adds the figures to `logs`.

    Adds `val_roc_auc_macro`, `val_pr_auc_macro`, `val_roc_auc_micro`, `val_pr_auc_micro` to
    the epoch logs, appends per-tag figures to a CSV, and hands them to `on_scores` (the run's
    TensorBoard reports).

    Args:
        predict: `model -> [n_tracks, n_tags]` crop-averaged probabilities in `truth`'s row order.
        truth: bool `[n_tracks, n_tags]` validation labels.
        tags: tag names in column order.
        every: validate every N epochs (and always after the last epoch).
        per_tag_csv: where per-tag figures are appended (long format: one row per epoch and tag).
        on_scores: optional `(epoch, scores, per_tag, predictions)` hook.
    """

    def __init__(self, predict: Callable, truth: np.ndarray, tags, every: int = 1,
                 per_tag_csv: str | Path | None = None, on_scores: Callable | None = None):
        super().__init__()
        self.predict = predict
        self.truth = truth
        self.tags = tuple(tags)
        self.every = every
        self.per_tag_csv = Path(per_tag_csv) if per_tag_csv else None
        self.on_scores = on_scores

    def _due(self, epoch: int) -> bool:
        last = self.params.get("epochs") if self.params else None
        return (epoch + 1) % self.every == 0 or (last is not None and epoch + 1 == last)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not self._due(epoch):
            return
        from emotion_keras.evaluation import auc_scores

        predictions = self.predict(self.model)
        scores, per_tag = auc_scores(self.truth, predictions, self.tags)
        for key, value in scores.items():
            logs[f"val_{key}"] = value
        if self.per_tag_csv is not None:
            frame = per_tag.assign(epoch=epoch + 1)
            header = not self.per_tag_csv.exists()
            with open(self.per_tag_csv, "a", encoding="utf-8") as handle:
                frame.to_csv(handle, header=header, index=False)
        if self.on_scores is not None:
            self.on_scores(epoch, scores, per_tag, predictions)


class ResumableCheckpoint(keras.callbacks.Callback):
    """Atomic per-epoch checkpoints, the best model by a monitored metric, and resume state.

    Files in `directory`:
        `epoch-NNNN.keras`  the last completed epoch's full model, optimizer state included;
        `best.keras`        the model of the best epoch so far by `monitor`;
        `state.json`        `{"epoch": N, "checkpoint": ..., "best": ..., "best_epoch": ...}`.

    Args:
        directory: the run's checkpoint folder.
        monitor: a `logs` key; epochs where it is absent do not change `best.keras`.
        mode: `max` or `min`.
    """

    def __init__(self, directory: str | Path, monitor: str = "val_pr_auc_macro",
                 mode: str = "max"):
        super().__init__()
        self.directory = Path(directory)
        self.monitor = monitor
        self.better = np.greater if mode == "max" else np.less
        state = read_state(self.directory)
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.directory.mkdir(parents=True, exist_ok=True)
        value = logs.get(self.monitor)
        if value is not None and not math.isnan(value) and (
                self.best is None or self.better(value, self.best)):
            self._save(self.directory / BEST_FILE)
            self.best, self.best_epoch = float(value), epoch + 1
        previous = read_state(self.directory).get("checkpoint")
        name = f"epoch-{epoch + 1:04d}.keras"
        self._save(self.directory / name)
        atomic_write_text(self.directory / STATE_FILE, json.dumps({
            "epoch": epoch + 1, "checkpoint": name, "monitor": self.monitor,
            "best": self.best, "best_epoch": self.best_epoch}, indent=2) + "\n")
        if previous and previous != name:
            (self.directory / previous).unlink(missing_ok=True)

    def _save(self, path: Path) -> None:
        from emotion_keras.models import synchronized_batch_norm

        # Saved unsynchronised: synchronisation is how a run trains (distribute.py), and a
        # synchronised BatchNormalization would not load on Keras's other backends.
        with atomic_path(path) as tmp, synchronized_batch_norm(self.model, False):
            self.model.save(tmp)


def read_state(directory: str | Path) -> dict:
    """The checkpoint state of a run (`{}` before its first completed epoch)."""
    path = Path(directory) / STATE_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))
