"""The run directory: the one place that knows every path in it.

A run directory holds everything needed to understand and reproduce a run:

    RUN/config.json        the resolved configuration (emotion_keras.config.Config)
    RUN/tags.txt           the tag names, in output order
    RUN/history.csv        per-epoch loss and validation AUCs (`epoch` from 0, as Keras counts)
    RUN/val_per_tag.csv    per-tag validation ROC-AUC/PR-AUC of every validated epoch (from 1)
    RUN/checkpoints/       epoch-NNNN.keras (last epoch, optimizer included), best.keras, state.json
    RUN/logs/              TensorBoard: train/, validation/, reports/
    RUN/predictions.npy, decisions.npy, thresholds.npy, metrics.json, per_tag.csv
                           the test evaluation (`emotion-keras evaluate`; metrics.json last)
    RUN/val_predictions.npy
                           the validation predictions the thresholds were chosen on
    RUN/export/            the default export folder

An ensemble directory (`emotion-keras ensemble`) has no config.json; it holds `ensemble.json`
(its members, split and tags), `members.csv` (Table 2 rows of the members and the ensemble) and
the same evaluation files as a run.

Other modules ask `RunDir` for a path instead of spelling a file name. `load_run` loads the best
checkpoint with the configuration and tags, for evaluation, export and prediction.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from emotion_keras.config import Config
from emotion_keras.errors import ModelError

CONFIG_FILE = "config.json"
ENSEMBLE_FILE = "ensemble.json"


@dataclasses.dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (nothing is created or read by constructing one)."""

    path: Path

    def __init__(self, path: str | Path):
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    # What training writes.
    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def tags_file(self) -> Path:
        return self.path / "tags.txt"

    @property
    def history_file(self) -> Path:
        return self.path / "history.csv"

    @property
    def per_tag_history_file(self) -> Path:
        return self.path / "val_per_tag.csv"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def state_file(self) -> Path:
        return self.checkpoints / "state.json"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.keras"

    def epoch_checkpoint(self, epoch: int) -> Path:
        """The checkpoint of (1-based) `epoch`."""
        return self.checkpoints / f"epoch-{epoch:04d}.keras"

    def epoch_checkpoints(self) -> list[Path]:
        """Every epoch checkpoint in the folder (one, but for a crash before the last clean-up)."""
        return sorted(self.checkpoints.glob("epoch-[0-9]*.keras"))

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    # What evaluation writes.
    @property
    def predictions_file(self) -> Path:
        return self.path / "predictions.npy"

    @property
    def decisions_file(self) -> Path:
        return self.path / "decisions.npy"

    @property
    def thresholds_file(self) -> Path:
        return self.path / "thresholds.npy"

    @property
    def val_predictions_file(self) -> Path:
        return self.path / "val_predictions.npy"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def per_tag_file(self) -> Path:
        return self.path / "per_tag.csv"

    @property
    def default_export(self) -> Path:
        return self.path / "export"

    # What `emotion-keras ensemble` writes (besides the evaluation files above).
    @property
    def ensemble_file(self) -> Path:
        return self.path / ENSEMBLE_FILE

    @property
    def members_file(self) -> Path:
        return self.path / "members.csv"

    def evaluation_dir(self, split: int, subset: str) -> RunDir:
        """Where an evaluation on another split or subset than the run's own test set goes."""
        return RunDir(self.path / f"eval-split-{split}-{subset}")

    # Reading.
    def is_run(self) -> bool:
        return self.config_file.is_file()

    def is_ensemble(self) -> bool:
        return self.ensemble_file.is_file()

    def read_config(self) -> Config:
        if not self.is_run():
            raise ModelError(
                f"{self.path}: not a run directory (no {CONFIG_FILE}); give the "
                f"folder that `emotion-keras train` printed"
            )
        return Config.from_json(self.config_file)

    def read_state(self) -> dict:
        """The checkpoint state (`{}` before the first completed epoch)."""
        if not self.state_file.is_file():
            return {}
        return json.loads(self.state_file.read_text(encoding="utf-8"))

    def read_tags(self, config: Config | None = None) -> tuple[str, ...]:
        """The run's tag names in output order (from `tags.txt`, else the metadata folder)."""
        if self.tags_file.is_file():
            return tuple(self.tags_file.read_text(encoding="utf-8").split())
        from emotion_keras.data.metadata import read_tags

        return read_tags((config or self.read_config()).meta_dir)


@dataclasses.dataclass
class TrainedRun:
    """A run directory's configuration, tags and best model."""

    run_dir: RunDir
    config: Config
    tags: tuple[str, ...]
    model: object
    checkpoint: Path


def load_run(run_dir: str | Path | RunDir) -> TrainedRun:
    """Loads the best checkpoint of a run (safe mode) with its configuration and tag names.

    Raises:
        ModelError: not a run directory, or no best checkpoint yet.
    """
    from emotion_keras.models import load_model

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    config = run.read_config()
    if not run.best_checkpoint.is_file():
        raise ModelError(
            f"{run.best_checkpoint}: no best checkpoint yet; train the run until "
            f"it has validated at least once"
        )
    tags = run.read_tags(config)
    return TrainedRun(run, config, tags, load_model(run.best_checkpoint), run.best_checkpoint)
