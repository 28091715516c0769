"""Using a trained run: load it, predict a split, evaluate it as MediaEval scored it.

`load_run` gives the best checkpoint of a run directory with its configuration and tags.
`evaluate_run` predicts the validation split (to choose per-tag thresholds) and the test split
with regular-crop averaging (paper §3.3: 10 and 20 crops), and writes predictions, decisions,
thresholds, the official metrics and the per-tag table into the run directory.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from emotion_keras import metadata
from emotion_keras.config import Config
from emotion_keras.errors import ModelError
# Short tracks are padded as the training pipeline pads them (evaluation, export and predict agree).
from emotion_keras.melspec_io import PAD_VALUE

CHECKPOINT = Path("checkpoints") / "best.keras"
TAGS_FILE = "tags.txt"


@dataclasses.dataclass
class TrainedRun:
    """A run directory's configuration, tags and best model."""

    run_dir: Path
    config: Config
    tags: tuple[str, ...]
    model: object
    checkpoint: Path


def load_run(run_dir: str | Path) -> TrainedRun:
    """Loads the best checkpoint of a run (safe mode) with its configuration and tag names."""
    from emotion_keras.models import load_model

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ModelError(f"{run_dir}: not a run directory (no config.json); give the folder "
                         f"that `emotion-keras train` printed")
    config = Config.from_json(run_dir / "config.json")
    checkpoint = run_dir / CHECKPOINT
    if not checkpoint.is_file():
        raise ModelError(f"{checkpoint}: no best checkpoint yet; train the run until it has "
                         f"validated at least once")
    tags_path = run_dir / TAGS_FILE
    tags = (tuple(tags_path.read_text(encoding="utf-8").split())
            if tags_path.is_file() else metadata.read_tags(config.meta_dir))
    return TrainedRun(run_dir, config, tags, load_model(checkpoint), checkpoint)


def predict_subset(run: TrainedRun, subset: metadata.Subset, n_crops: int) -> np.ndarray:
    """Crop-averaged probabilities `[tracks, tags]` of `subset`, in its order."""
    from emotion_keras import pipeline
    from emotion_keras.melspec_io import scan_melspecs

    config = run.config
    metadata.check_melspecs_exist(config.data_dir, subset)
    n_frames = scan_melspecs(config.data_dir, subset, n_bands=config.n_bands)
    print(f"Predicting {len(subset)} tracks of {subset.name} with {n_crops} crops each...",
          file=sys.stderr)
    with pipeline.data_errors():
        return pipeline.predict_tracks(run.model, config.data_dir, subset, n_frames,
                                       n_crops=n_crops, crop_frames=config.crop_frames,
                                       batch_size=config.batch_size, n_bands=config.n_bands)


def evaluate_run(run_dir: str | Path, split: int | None = None, subset: str = "test") -> dict:
    """Scores the best checkpoint of a run on `subset` of `split` and writes the results.

    Thresholds are chosen per tag on the validation subset of the same split (maximising each
    tag's F-score). Writes into the run directory (see `evaluation.write_evaluation`); when the
    split or subset is not the run's own test set, into `RUN/eval-split-N-SUBSET/` instead.

    Returns:
        The official metrics.
    """
    from emotion_keras import evaluation

    run = load_run(run_dir)
    config = run.config
    split = config.split if split is None else split
    test_set = metadata.read_subset(config.meta_dir, split, subset, tags=run.tags)
    val_set = metadata.read_subset(config.meta_dir, split, "validation", tags=run.tags)
    val_predictions = predict_subset(run, val_set, config.val_crops)
    test_predictions = predict_subset(run, test_set, config.test_crops)
    out_dir = Path(run_dir)
    if (split, subset) != (config.split, "test"):
        out_dir = out_dir / f"eval-split-{split}-{subset}"
    return evaluation.write_evaluation(out_dir, test_set.labels, test_predictions,
                                       val_set.labels, val_predictions, run.tags)
