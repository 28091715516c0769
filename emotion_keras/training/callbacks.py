"""Keras callbacks of a training run: validation AUCs, run records, checkpoints that survive any
crash.

`ValidationAUC` predicts the validation split with multi-crop averaging at the end of an epoch,
scores it with the official definitions (scikit-learn, via `emotion_keras.evaluation.metrics`) and
puts
the figures into the epoch `logs`, so it must come *before* every callback that reads them
(records, checkpointing, early stopping, TensorBoard): Keras hands one `logs` dict to the
callbacks in list order.

`ResumableCheckpoint` replaces `keras.callbacks.BackupAndRestore` + `ModelCheckpoint`, which write
their files in place and keep the epoch number in a separate file, so a SIGKILL between two writes
leaves weights and epoch out of step (or a half-written file). Here each epoch's full model (with
optimizer state) is written atomically under its own name, then `state.json` is atomically
switched to it (the commit), then the best model is copied to `best.keras` if the epoch is the
best so far, and only then is the previous epoch's file removed.

`state.json` is the one source of truth of a run: the epochs it names are the epochs that
happened. The per-epoch records (`history.csv`, `val_per_tag.csv`) are rewritten atomically with
each epoch's rows *before* the commit, so they always hold every committed epoch; rows of an
epoch that died before its commit are removed on resume (`repair_run_records`), which also
finishes an interrupted copy to `best.keras` and deletes temporary files. `StopOnNaN` stops a
diverged run with an error *before* its epoch is committed, so a resume never starts from NaN
weights.

A resumed run is the run that would have happened: the commit also records what a `.keras` file
does not keep, namely the state of the model's random generators (dropout's
`keras.random.SeedGenerator`s, `random_state`) and of every stateful callback
(`ResumableEarlyStopping`'s patience count and best value, the best-so-far monitor), and the
trainer puts them back before the next epoch; the input of every epoch is a pure function of
`(seed, epoch)` (`data.pipeline`).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from emotion_keras.errors import TrainingError
from emotion_keras.fileio import atomic_path, atomic_write_text
from emotion_keras.rundir import RunDir


def read_records(path: str | Path) -> pd.DataFrame:
    """The rows of a per-epoch CSV record; empty when the file is missing or empty."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def write_epoch_rows(path: str | Path, rows: pd.DataFrame, epoch_column: str, epoch: int) -> None:
    """Rewrites a per-epoch CSV atomically with `rows` as epoch `epoch`'s rows.

    Rows already there for `epoch` or later (an epoch repeated after a crash) are replaced.
    """
    existing = read_records(path)
    if epoch_column in existing:
        existing = existing[existing[epoch_column] < epoch]
    frame = rows if existing.empty else pd.concat([existing, rows], ignore_index=True)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def trim_records(path: str | Path, epoch_column: str, first_dropped: int) -> None:
    """Removes the rows of epochs from `first_dropped` on (not committed by the checkpoint)."""
    path = Path(path)
    if not path.exists():
        return
    existing = read_records(path)
    if epoch_column in existing and (existing[epoch_column] >= first_dropped).any():
        kept = existing[existing[epoch_column] < first_dropped]
        with atomic_path(path) as tmp:
            kept.to_csv(tmp, index=False)
    elif existing.empty and path.stat().st_size == 0:
        path.unlink()  # an empty file left by an earlier version: start the record afresh


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
        per_tag_csv: where per-tag figures are recorded (long format: one row per epoch and tag,
            `epoch` counted from 1), rewritten atomically each validated epoch.
        on_scores: optional `(epoch, scores, per_tag, predictions)` hook.
    """

    def __init__(
        self,
        predict: Callable,
        truth: np.ndarray,
        tags,
        every: int = 1,
        per_tag_csv: str | Path | None = None,
        on_scores: Callable | None = None,
    ):
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
        from emotion_keras.evaluation.metrics import auc_scores

        predictions = self.predict(self.model)
        scores, per_tag = auc_scores(self.truth, predictions, self.tags)
        for key, value in scores.items():
            logs[f"val_{key}"] = value
        if self.per_tag_csv is not None:
            write_epoch_rows(self.per_tag_csv, per_tag.assign(epoch=epoch + 1), "epoch", epoch + 1)
        if self.on_scores is not None:
            self.on_scores(epoch, scores, per_tag, predictions)


class HistoryRecord(keras.callbacks.Callback):
    """`history.csv`: one row per epoch of every `logs` figure, `epoch` counted from 0.

    The columns of `keras.callbacks.CSVLogger`, but the file is rewritten atomically at each
    epoch end, so no crash leaves it empty or with half a row. Place it after `ValidationAUC`
    and before `ResumableCheckpoint`.
    """

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        row = {
            "epoch": epoch,
            **{key: _scalar(value) for key, value in sorted((logs or {}).items())},
        }
        write_epoch_rows(self.path, pd.DataFrame([row]), "epoch", epoch)


def _scalar(value):
    try:
        return float(np.asarray(value))
    except (TypeError, ValueError):
        return value


class StopOnNaN(keras.callbacks.Callback):
    """Stops training with a `TrainingError` as soon as a step's loss is NaN or infinite.

    Raised from the step, before the epoch ends, so the epoch is never committed: the run
    directory keeps the last good epoch. (Keras's `TerminateOnNaN` ends the epoch normally, which
    would checkpoint the NaN weights as the latest epoch.)
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(np.asarray(loss))):
            raise TrainingError(
                f"the training loss became {float(np.asarray(loss))} at epoch {self.epoch + 1}, "
                f"step {batch + 1}: training diverged. The run directory keeps its last "
                f"completed epoch ({self.epoch}); train again in a new --run-dir with a lower "
                f"--learning-rate"
            )


def _seed_states(model) -> list:
    # A `keras.random.SeedGenerator` keeps its state in a variable of this name, which the model
    # lists among its variables but not its weights, so a saved model loses it.
    return [v for v in model.variables if v.path.split("/")[-1] == "seed_generator_state"]


def random_state(model) -> list[list[int]]:
    """The states of `model`'s random generators (dropout masks), in a fixed order."""
    return [np.asarray(v).tolist() for v in _seed_states(model)]


def set_random_state(model, states) -> None:
    """Puts back states from `random_state` (a model built alike: same generators, same order)."""
    variables = _seed_states(model)
    if len(variables) != len(states):
        raise ValueError(
            f"{len(states)} saved random generator states for a model with {len(variables)}"
        )
    for variable, value in zip(variables, states):
        variable.assign(np.asarray(value, dtype=variable.dtype))


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """`keras.callbacks.EarlyStopping` whose patience count and best value survive a resume.

    `ResumableCheckpoint` saves `resume_state()` with each commit; set `resume_from` to the saved
    state before `model.fit` resumes the phase it belongs to (Keras resets the state at the
    start of every `fit`).
    """

    resume_from: dict | None = None

    def resume_state(self) -> dict:
        best = None if self.best is None else float(np.asarray(self.best))
        return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch)}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.resume_from:
            self.wait = int(self.resume_from["wait"])
            self.best = self.resume_from["best"]
            self.best_epoch = int(self.resume_from["best_epoch"])


class ResumableCheckpoint(keras.callbacks.Callback):
    """Atomic per-epoch checkpoints, the best model by a monitored metric, and resume state.

    Files in the run's `checkpoints/` folder (`RunDir`):
        `epoch-NNNN.keras`  the last completed epoch's full model, optimizer state included;
        `best.keras`        the model of the best epoch so far by `monitor` (a copy);
        `state.json`        `{"epoch": N, "checkpoint": ..., "best": ..., "best_epoch": ...,
                            "random_state": ..., "callbacks": ..., "stopped": ...}`, the commit
                            record of the run (see the module docstring).

    Args:
        run: the run directory.
        monitor: a `logs` key; epochs where it is absent do not change `best.keras`.
        mode: `max` or `min`.
        resumables: callbacks with a `resume_state()` to commit, by name (they must run before
            this one, so that their state includes the epoch).
    """

    def __init__(
        self,
        run: RunDir,
        monitor: str = "val_pr_auc_macro",
        mode: str = "max",
        resumables: dict | None = None,
    ):
        super().__init__()
        self.run = run
        self.resumables = dict(resumables or {})
        self.monitor = monitor
        self.better = np.greater if mode == "max" else np.less
        state = run.read_state()
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.run.checkpoints.mkdir(parents=True, exist_ok=True)
        value = logs.get(self.monitor)
        improved = (
            value is not None
            and not math.isnan(value)
            and (self.best is None or self.better(value, self.best))
        )
        if improved:
            self.best, self.best_epoch = float(value), epoch + 1
        previous = self.run.read_state().get("checkpoint")
        checkpoint = self.run.epoch_checkpoint(epoch + 1)
        self._save(checkpoint)
        atomic_write_text(
            self.run.state_file,
            json.dumps(
                {
                    "epoch": epoch + 1,
                    "checkpoint": checkpoint.name,
                    "monitor": self.monitor,
                    "best": self.best,
                    "best_epoch": self.best_epoch,
                    "random_state": random_state(self.model),
                    "callbacks": {
                        name: callback.resume_state() for name, callback in self.resumables.items()
                    },
                    # An early stop ends the run: resuming it would train past the stop.
                    "stopped": bool(self.model.stop_training),
                },
                indent=2,
            )
            + "\n",
        )
        if improved:
            copy_best(self.run, checkpoint.name)
        if previous and previous != checkpoint.name:
            (self.run.checkpoints / previous).unlink(missing_ok=True)

    def _save(self, path: Path) -> None:
        from emotion_keras.models import synchronized_batch_norm

        # Saved unsynchronised: synchronisation is how a run trains (distribute.py), and a
        # synchronised BatchNormalization would not load on Keras's other backends.
        with atomic_path(path) as tmp, synchronized_batch_norm(self.model, False):
            self.model.save(tmp)


def copy_best(run: RunDir, checkpoint: str) -> None:
    """Atomically makes `best.keras` a copy of `checkpoint` (a file in the checkpoints folder)."""
    with atomic_path(run.best_checkpoint) as tmp:
        shutil.copyfile(run.checkpoints / checkpoint, tmp)


def repair_run_records(run: RunDir) -> int:
    """Makes a run directory's records agree with its checkpoint state; returns its epochs.

    After a crash at any instant: rows of epochs after the committed one are removed from
    `history.csv` and `val_per_tag.csv`, a copy to `best.keras` that the crash interrupted is
    finished, and temporary files of interrupted writes and checkpoints other than the
    committed one are deleted.
    """
    state = run.read_state()
    completed = int(state.get("epoch", 0))
    # Temporary names of `fileio.atomic_path`: `.NAME.RANDOM.tmpSUFFIX`.
    leftovers = list(run.checkpoints.glob(".*.tmp*")) if run.checkpoints.is_dir() else []
    for record in (run.history_file, run.per_tag_history_file):
        leftovers += record.parent.glob(f".{record.name}.*.tmp*")
    # A crash between a commit and the removal of the previous epoch's checkpoint leaves it.
    leftovers += [path for path in run.epoch_checkpoints() if path.name != state.get("checkpoint")]
    for leftover in leftovers:
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
    trim_records(run.history_file, "epoch", completed)  # epoch counted from 0
    trim_records(run.per_tag_history_file, "epoch", completed + 1)  # epoch counted from 1
    if completed and state.get("best_epoch") == completed:
        copy_best(run, state["checkpoint"])  # the commit may have preceded the copy
    return completed
