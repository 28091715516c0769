"""Evaluating a trained run as MediaEval scored it, and scoring prediction files.

`evaluate_run` predicts the validation split (to choose per-tag thresholds) and the test split
of a run's best checkpoint with regular-crop averaging (paper §3.3: 10 and 20 crops; or, as the
run's `eval_mode` says, sliding windows over each whole track or one pass of it), and writes
predictions, decisions, thresholds, the official metrics and the per-tag table into the run
directory (`write_evaluation`). `read_metrics` and `read_per_tag` read them back for tables.
`score_files` scores `.npy` files against a ground truth (the `score` command).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from emotion_keras.data import metadata
from emotion_keras.errors import ConfigError, DataFileError, naming_arguments
from emotion_keras.evaluation.metrics import (
    AUC_NAMES,
    as_decisions,
    as_predictions,
    as_truth,
    check_same_shape,
    check_tags,
    load_array,
    official_scores,
    per_tag_table,
    single_class_columns,
)
from emotion_keras.evaluation.thresholds import apply_thresholds, choose_thresholds
from emotion_keras.fileio import atomic_path, atomic_save_npy, atomic_write_text
from emotion_keras.progress import Progress, log
from emotion_keras.rundir import RunDir, TrainedRun, load_run


def predict_averaged(
    model,
    config,
    subset: metadata.Subset,
    n_frames,
    n_crops: int,
    progress: Progress | None = None,
    wrap=None,
    dtype: str = "float32",
    cache=None,
) -> np.ndarray:
    """Probabilities `[tracks, tags]` of `subset` averaged as `config.eval_mode` says.

    `crops`: over `n_crops` regular crops per track; `windows`: over sliding windows
    (`config.eval_hop_frames`); `track`: one pass over each whole track
    (`models.whole_track_model`). `wrap` (e.g. `training.distribute.LocalPredictor`) is applied
    to the model that predicts, if given. `dtype` and `cache` (a `pipeline.CropCache`) are as
    `pipeline.predict_tracks`'s (crops and windows).
    """
    from emotion_keras.data import pipeline

    wrap = wrap or (lambda m: m)
    if config.eval_mode == "track":
        from emotion_keras.models import whole_track_model

        return pipeline.predict_whole_tracks(
            wrap(whole_track_model(model)),
            config.data_dir,
            subset,
            n_frames,
            min_frames=config.crop_frames,
            n_bands=config.n_bands,
            progress=progress,
        )
    return pipeline.predict_tracks(
        wrap(model),
        config.data_dir,
        subset,
        n_frames,
        n_crops=n_crops,
        crop_frames=config.crop_frames,
        batch_size=config.batch_size,
        n_bands=config.n_bands,
        hop_frames=config.eval_hop_frames,
        progress=progress,
        cache=cache,
        dtype=dtype,
    )


def predict_subset(
    run: TrainedRun, subset: metadata.Subset, n_crops: int, progress: Progress | None = None
) -> np.ndarray:
    """Crop-, window- or track-averaged probabilities `[tracks, tags]` of `subset`, in its
    order (`predict_averaged`)."""
    from emotion_keras.data.melspec_files import scan_melspecs

    config = run.config
    n_frames = scan_melspecs(config.data_dir, subset, config.n_bands, progress)
    each = {
        "crops": f"{n_crops} crops each",
        "windows": f"windows {config.eval_hop_frames} frames apart",
        "track": "each whole track in one pass",
    }[config.eval_mode]
    log.info("Predicting %d tracks of %s with %s...", len(subset), subset.name, each)
    return predict_averaged(run.model, config, subset, n_frames, n_crops, progress)


def evaluate_run(
    run_dir: str | Path,
    split: int | None = None,
    subset: str = "test",
    progress: Progress | None = None,
    data_dir: str | Path | None = None,
    meta_dir: str | Path | None = None,
) -> dict:
    """Scores the best checkpoint of a run on `subset` of `split` and writes the results.

    Thresholds are chosen per tag on the validation subset of the same split (maximising each
    tag's F-score). Writes into the run directory (see `write_evaluation`); when the split or
    subset is not the run's own test set, into `RUN/eval-split-N-SUBSET/` instead.

    Args:
        data_dir, meta_dir: where the melspecs and metadata are now, if not where the run's
            configuration says (the run was moved to another machine).

    Returns:
        The official metrics.
    """
    run = load_run(run_dir)
    moved = {
        name: str(value)
        for name, value in (("data_dir", data_dir), ("meta_dir", meta_dir))
        if value is not None
    }
    if moved:
        run.config = run.config.replace(**moved).with_absolute_paths()
    config = run.config
    split = config.split if split is None else split
    test_set = metadata.read_subset(config.meta_dir, split, subset, tags=run.tags)
    val_set = metadata.read_subset(config.meta_dir, split, "validation", tags=run.tags)
    val_predictions = predict_subset(run, val_set, config.val_crops, progress)
    test_predictions = predict_subset(run, test_set, config.test_crops, progress)
    out = run.run_dir
    if (split, subset) != (config.split, "test"):
        out = out.evaluation_dir(split, subset)
    metrics = write_evaluation(
        out, test_set.labels, test_predictions, val_set.labels, val_predictions, run.tags
    )
    write_per_tag_plot(out, f"{config.model}, split {split} {subset}")
    return metrics


def write_per_tag_plot(run_dir: str | Path | RunDir, title: str = "") -> Path | None:
    """`per_tag.png` from `per_tag.csv` when matplotlib is installed (the `plot` extra)."""
    from emotion_keras import plots

    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if not plots.has_matplotlib():
        log.info("No per-tag figure: %s (the plot extra) is not installed.", "matplotlib")
        return None
    return plots.write_per_tag_aucs(run.per_tag_plot, read_per_tag(run), title)


def write_evaluation(
    run_dir: str | Path | RunDir, test_truth, test_predictions, val_truth, val_predictions, tags
) -> dict[str, float]:
    """Thresholds from validation, decisions and official figures on test, all into `run_dir`.

    Writes, each file atomically (`metrics.json` last, so its presence means all are complete):
    `predictions.npy` (float32, tracks x tags, split order), `decisions.npy` (bool),
    `thresholds.npy` (float64, one per tag, chosen on validation by `choose_thresholds`),
    `val_predictions.npy` (float32, the validation predictions they were chosen on, split order:
    what an ensemble of runs averages),
    `metrics.json` (the official names) and `per_tag.csv` (`per_tag_table` of the test set).

    The figures are computed from the float32 predictions that are saved, so scoring the saved
    files again (`emotion-keras score`) gives exactly `metrics.json`.

    Returns:
        The official figures (as in `metrics.json`).
    """
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    test_truth = as_truth(test_truth, "test truth")
    test_scores = as_predictions(test_predictions, "test predictions").astype(np.float32)
    check_same_shape(test_truth, "test truth", test_scores, "test predictions")
    val_truth = as_truth(val_truth, "validation truth")
    val_scores = as_predictions(val_predictions, "validation predictions").astype(np.float32)
    check_same_shape(val_truth, "validation truth", val_scores, "validation predictions")
    if val_truth.shape[1] != test_truth.shape[1]:
        raise DataFileError(
            f"validation truth: {val_truth.shape[1]} tags, test truth {test_truth.shape[1]}"
        )
    tags = check_tags(tags, test_truth.shape[1])

    thresholds = choose_thresholds(val_truth, val_scores)
    decisions = apply_thresholds(test_scores, thresholds)
    metrics = official_scores(test_truth, test_scores, decisions)
    per_tag = per_tag_table(test_truth, test_scores, tags)

    atomic_save_npy(run.predictions_file, test_scores)
    atomic_save_npy(run.decisions_file, decisions)
    atomic_save_npy(run.thresholds_file, thresholds)
    atomic_save_npy(run.val_predictions_file, val_scores)
    with atomic_path(run.per_tag_file) as tmp:
        per_tag.to_csv(tmp, index=False)
    atomic_write_text(run.metrics_file, json.dumps(metrics, indent=2) + "\n")
    return metrics


def read_metrics(run_dir: str | Path | RunDir) -> dict[str, float]:
    """The official figures of an evaluated run directory (`metrics.json`)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    path = run.metrics_file
    if not run.path.is_dir():
        raise DataFileError(f"{run}: not a run directory")
    if not path.is_file():
        raise DataFileError(
            f"{path}: not found; evaluate the run first with `emotion-keras evaluate {run}`"
        )
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFileError(f"{path}: not valid JSON ({error})") from None
    missing = [name for name in AUC_NAMES if not isinstance(metrics.get(name), (int, float))]
    if missing:
        raise DataFileError(
            f"{path}: missing figure(s) {', '.join(missing)}; evaluate the run "
            f"again with `emotion-keras evaluate {run}`"
        )
    return metrics


def read_per_tag(run_dir: str | Path | RunDir) -> pd.DataFrame:
    """The per-tag test table of an evaluated run directory (`per_tag.csv`)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    path = run.per_tag_file
    if not path.is_file():
        raise DataFileError(
            f"{path}: not found; evaluate the run first with `emotion-keras evaluate {run}`"
        )
    try:
        per_tag = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as error:
        raise DataFileError(f"{path}: not a readable CSV ({error})") from None
    missing = {"rank", "tag", "pr_auc", "roc_auc"} - set(per_tag.columns)
    if missing:
        raise DataFileError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return per_tag


def mean_predictions(members) -> np.ndarray:
    """The element-wise mean of same-shaped prediction matrices, in float64 (an ensemble's)."""
    return np.mean(np.stack([np.asarray(m, dtype=np.float64) for m in members]), axis=0)


def score_files(
    predictions_path,
    *,
    groundtruth_path=None,
    decisions_path=None,
    meta_dir=None,
    split: int = 0,
    subset: str = "test",
) -> dict[str, float]:
    """Official figures of a predictions file (and decisions file) against a ground truth.

    `predictions_path` is one file or a list of files; several are scored by their element-wise
    mean (in float64), the way every MediaEval ensemble submission was made. Each must have the
    ground truth's shape.

    The ground truth comes either from a `.npy` file (bool `[tracks, tags]`, e.g. MediaEval's
    `groundtruth.npy`) or from the split TSVs under `meta_dir` (rows in TSV order, columns in
    tag-file order, as `metadata.read_subset` gives them).

    Raises:
        ConfigError: both or neither of `groundtruth_path` and `meta_dir`.
        DataFileError: a file that is missing, unreadable or of the wrong shape or dtype.
    """
    if (groundtruth_path is None) == (meta_dir is None):
        raise ConfigError(
            "give either groundtruth_path or meta_dir (with split)",
            arguments=("groundtruth_path", "meta_dir", "split"),
        )
    with naming_arguments("groundtruth_path", "predictions_path", "decisions_path", "meta_dir"):
        return _score_files(
            predictions_path, groundtruth_path, decisions_path, meta_dir, split, subset
        )


def _score_files(
    predictions_path, groundtruth_path, decisions_path, meta_dir, split: int, subset: str
) -> dict[str, float]:
    if groundtruth_path is not None:
        truth_name = f"groundtruth_path {groundtruth_path}"
        truth = as_truth(load_array(groundtruth_path, "groundtruth_path"), truth_name)
    else:
        labels = metadata.read_subset(meta_dir, split, subset).labels
        truth_name = f"split-{split}/{subset} of meta_dir {meta_dir}"
        truth = as_truth(labels, truth_name)
    paths = (
        [predictions_path] if isinstance(predictions_path, (str, Path)) else list(predictions_path)
    )
    if not paths:
        raise ConfigError("predictions_path: give at least one predictions file")
    members = []
    for path in paths:
        predictions_name = f"predictions_path {path}"
        predictions = as_predictions(load_array(path, "predictions_path"), predictions_name)
        check_same_shape(truth, truth_name, predictions, predictions_name)
        members.append(predictions)
    predictions = members[0] if len(members) == 1 else mean_predictions(members)
    decisions = None
    if decisions_path is not None:
        decisions_name = f"decisions_path {decisions_path}"
        decisions = as_decisions(load_array(decisions_path, "decisions_path"), decisions_name)
        check_same_shape(truth, truth_name, decisions, decisions_name)
    single = single_class_columns(truth)
    if single.size:
        raise DataFileError(
            f"{truth_name}: {single.size} tag column(s) have a single class "
            f"(first: column {single[0]}); the official macro AUCs are undefined"
        )
    return official_scores(truth, predictions, decisions)
