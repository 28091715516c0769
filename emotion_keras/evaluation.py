"""Scoring as MediaEval 2019 scored it, per-tag decision thresholds, and the paper's Tables 2-3.

The official figures are scikit-learn on the whole test matrix (tracks x tags), exactly as the
task's `evaluate.py` computed them (multimediaeval/2019-Emotion-and-Theme-Recognition-in-Music-Task,
`src/`; see `../shared/data/README.md`):

    PR-AUC-*   average_precision_score(truth, predictions, average=macro|micro)
    ROC-AUC-*  roc_auc_score(truth, predictions, average=macro|micro)
    F-score-*, precision-*, recall-*
               precision_recall_fscore_support(truth, decisions, average=macro|micro)

Every public function validates its arrays at the boundary (shape, dtype, NaN/inf) and raises
`DataFileError` with a one-line message naming the argument or file: all of these are problems
with the contents of a data file (predictions, decisions, ground truth, a run directory's files).
`ConfigError` is kept for flags that contradict each other.

Tags with a single class (no positive or no negative track) are handled in two different ways,
on purpose:
- `official_scores` refuses them: the official macro figures are undefined there (scikit-learn 1.9
  gives `nan` ROC-AUC, older versions raised), and a figure that silently differs from the
  official definition is worse than an error. The official test set has >= 25 positives per tag.
- `auc_scores` (the training callback's scorer, also behind the per-tag tables) leaves them out of
  the macro averages and marks them `excluded` in its per-tag table, so a small validation subset
  still gives usable figures. Micro averages always pool the whole matrix.

This module uses NumPy, scikit-learn and pandas only; it must not import TensorFlow, load models
or predict (that is `emotion-keras evaluate`'s wiring).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (average_precision_score, precision_recall_curve,
                             precision_recall_fscore_support, roc_auc_score)

from emotion_keras.errors import DataFileError
from emotion_keras.fileio import atomic_path, atomic_save_npy, atomic_write_text
from emotion_keras.metadata import short_tag_name

#: Official names of the ranking figures, in the order MediaEval's results table lists them.
AUC_NAMES = ("PR-AUC-macro", "ROC-AUC-macro", "PR-AUC-micro", "ROC-AUC-micro")
#: Official names of the decision figures (only with decisions).
DECISION_NAMES = ("F-score-macro", "precision-macro", "recall-macro",
                  "F-score-micro", "precision-micro", "recall-micro")

#: Files `write_evaluation` puts into a run directory; `metrics.json` is written last, so a run
#: directory holding it holds a complete evaluation.
PREDICTIONS_FILE = "predictions.npy"
DECISIONS_FILE = "decisions.npy"
THRESHOLDS_FILE = "thresholds.npy"
METRICS_FILE = "metrics.json"
PER_TAG_FILE = "per_tag.csv"
CONFIG_FILE = "config.json"

#: The paper's Table 2 (Yi et al. 2019): model -> (conv layers, residual, PR-AUC-macro,
#: ROC-AUC-macro) on the split-0 test set. `baseline5` is the team's own re-run of the organisers'
#: model (the organisers' submission scores 0.107734 / 0.725821). The published figures of res16,
#: res18 and vgg25 could not be found in a source we could read, so they stay empty rather than
#: guessed.
PAPER_TABLE2 = {
    "baseline5": (5, False, 0.1161, 0.7475),
    "vgg6": (6, False, 0.1256, 0.7532),
    "res16": (16, True, None, None),
    "res18": (18, True, None, None),
    "vgg25": (25, False, None, None),
}
TABLE2_COLUMNS = ("run", "model", "split", "conv layers", "residual", "PR-AUC-macro",
                  "ROC-AUC-macro", "paper PR-AUC-macro", "paper ROC-AUC-macro")


# --- Input validation --------------------------------------------------------------------------

def load_array(path: str | Path, name: str | None = None) -> np.ndarray:
    """Loads a user's `.npy` file without unpickling anything.

    Args:
        path: the file.
        name: how messages name it (a flag such as `--predictions`); the path is always added.

    Raises:
        DataFileError: missing, not a file, or not a readable non-object `.npy` array.
    """
    label = f"{name} {path}" if name else str(path)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataFileError(f"{label}: file not found") from None
    except IsADirectoryError:
        raise DataFileError(f"{label}: is a directory, expected a .npy file") from None
    except Exception as error:  # noqa: BLE001 - numpy raises many types for a corrupt header
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataFileError(f"{label}: not a readable .npy array ({reason})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive loads as a mapping
        array.close()
        raise DataFileError(f"{label}: expected a single .npy array, got a .npz archive")
    return array


def _check_matrix(array, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2 or 0 in array.shape:
        raise DataFileError(f"{name}: expected a non-empty 2-D array (tracks x tags), got shape "
                            f"{array.shape}")
    return array


def _check_binary(array, name: str) -> np.ndarray:
    array = _check_matrix(array, name)
    if array.dtype == bool:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise DataFileError(f"{name}: expected bool or 0/1 values, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise DataFileError(f"{name}: contains NaN or inf; expected bool or 0/1 values")
    bad = array[(array != 0) & (array != 1)]
    if bad.size:
        raise DataFileError(f"{name}: expected bool or 0/1 values, found {bad.flat[0].item()} "
                            f"(dtype {array.dtype})")
    return array.astype(bool)


def as_truth(array, name: str = "groundtruth") -> np.ndarray:
    """Validated ground truth: bool `[tracks, tags]` (bool or 0/1 numbers accepted)."""
    return _check_binary(array, name)


def as_decisions(array, name: str = "decisions") -> np.ndarray:
    """Validated decisions: bool `[tracks, tags]` (bool or 0/1 numbers accepted)."""
    return _check_binary(array, name)


def as_predictions(array, name: str = "predictions") -> np.ndarray:
    """Validated predictions: finite floats `[tracks, tags]` (any range; only order matters)."""
    array = _check_matrix(array, name)
    if not np.issubdtype(array.dtype, np.floating):
        raise DataFileError(f"{name}: expected float scores, got dtype {array.dtype} (decisions "
                            f"go to --decisions)")
    if not np.isfinite(array).all():
        n_bad = int((~np.isfinite(array)).sum())
        raise DataFileError(f"{name}: {n_bad} values are NaN or inf; expected finite scores")
    return array


def check_same_shape(reference: np.ndarray, reference_name: str, array: np.ndarray,
                     name: str) -> None:
    """Raises DataFileError unless `array` has the shape of `reference` (tracks x tags)."""
    if array.shape != reference.shape:
        raise DataFileError(f"{name}: shape {array.shape} does not match {reference_name} shape "
                            f"{reference.shape} (tracks x tags, same row and column order)")


def _check_tags(tags, n_tags: int) -> tuple[str, ...]:
    tags = tuple(tags)
    if len(tags) != n_tags:
        raise DataFileError(f"tags: {len(tags)} tag names for {n_tags} label columns")
    return tags


def single_class_columns(truth: np.ndarray) -> np.ndarray:
    """Indices of the tags whose ground truth holds only positives or only negatives."""
    positives = truth.sum(axis=0)
    return np.flatnonzero((positives == 0) | (positives == truth.shape[0]))


# --- Scores --------------------------------------------------------------------------------------

def official_scores(groundtruth, predictions, decisions=None) -> dict[str, float]:
    """The MediaEval 2019 figures under their official names.

    Args:
        groundtruth: bool (or 0/1) `[tracks, tags]`.
        predictions: float scores of the same shape.
        decisions: optional bool (or 0/1) decisions of the same shape; adds the F-score,
            precision and recall figures.

    Returns:
        `PR-AUC-macro`, `ROC-AUC-macro`, `PR-AUC-micro`, `ROC-AUC-micro`, and with decisions
        `F-score-macro`, `precision-macro`, `recall-macro` and the `-micro` ones.

    Raises:
        DataFileError: bad shape, dtype, NaN/inf, or a tag with a single class in the ground
            truth (its macro figures are undefined).
    """
    truth = as_truth(groundtruth)
    scores = as_predictions(predictions)
    check_same_shape(truth, "groundtruth", scores, "predictions")
    single = single_class_columns(truth)
    if single.size:
        raise DataFileError(
            f"groundtruth: {single.size} tag column(s) have a single class (first: column "
            f"{single[0]}), so the official macro AUCs are undefined; the official test set has "
            f"positives and negatives for every tag")
    result = {
        "PR-AUC-macro": average_precision_score(truth, scores, average="macro"),
        "ROC-AUC-macro": roc_auc_score(truth, scores, average="macro"),
        "PR-AUC-micro": average_precision_score(truth, scores, average="micro"),
        "ROC-AUC-micro": roc_auc_score(truth, scores, average="micro"),
    }
    if decisions is not None:
        chosen = as_decisions(decisions)
        check_same_shape(truth, "groundtruth", chosen, "decisions")
        for average in ("macro", "micro"):
            # zero_division=0 is what the official script's default ("warn") yielded, minus
            # the warning: a tag never decided positive has precision 0.
            precision, recall, fscore, _ = precision_recall_fscore_support(
                truth, chosen, average=average, zero_division=0)
            result[f"F-score-{average}"] = fscore
            result[f"precision-{average}"] = precision
            result[f"recall-{average}"] = recall
    names = AUC_NAMES + (DECISION_NAMES if decisions is not None else ())
    return {name: float(result[name]) for name in names}


def auc_scores(truth, predictions, tags=None) -> tuple[dict[str, float], pd.DataFrame]:
    """Macro/micro PR-AUC and ROC-AUC and a per-tag table, tolerant of single-class tags.

    Tags whose ground truth holds a single class (possible in validation subsets) are left out of
    the macro averages and marked `excluded` (their per-tag figures are NaN); when no tag is left
    the macro figures are NaN. Micro figures pool the whole matrix. When every tag has both
    classes the figures equal scikit-learn's (and `official_scores`) exactly.

    Args:
        truth: bool (or 0/1) `[tracks, tags]`.
        predictions: float scores of the same shape.
        tags: tag names in column order (default `tag0`, `tag1`, ...).

    Returns:
        `({"pr_auc_macro", "roc_auc_macro", "pr_auc_micro", "roc_auc_micro"}, per_tag)` where
        `per_tag` has one row per tag in column order: `tag`, `pr_auc`, `roc_auc`, `positives`,
        `excluded`. The number of excluded tags is `per_tag["excluded"].sum()`.
    """
    truth = as_truth(truth, "truth")
    scores = as_predictions(predictions)
    check_same_shape(truth, "truth", scores, "predictions")
    n_tags = truth.shape[1]
    if tags is None:
        tags = tuple(f"tag{j}" for j in range(n_tags))
    tags = _check_tags(tags, n_tags)
    excluded = np.zeros(n_tags, dtype=bool)
    excluded[single_class_columns(truth)] = True
    kept = np.flatnonzero(~excluded)
    pr_auc = np.full(n_tags, np.nan)
    roc_auc = np.full(n_tags, np.nan)
    if kept.size:
        pr_auc[kept] = average_precision_score(truth[:, kept], scores[:, kept], average=None)
        roc_auc[kept] = roc_auc_score(truth[:, kept], scores[:, kept], average=None)
        pr_macro = average_precision_score(truth[:, kept], scores[:, kept], average="macro")
        roc_macro = roc_auc_score(truth[:, kept], scores[:, kept], average="macro")
    else:
        pr_macro = roc_macro = math.nan
    both_classes = 0 < truth.sum() < truth.size
    figures = {
        "pr_auc_macro": float(pr_macro),
        "roc_auc_macro": float(roc_macro),
        "pr_auc_micro": float(average_precision_score(truth, scores, average="micro"))
        if both_classes else math.nan,
        "roc_auc_micro": float(roc_auc_score(truth, scores, average="micro"))
        if both_classes else math.nan,
    }
    per_tag = pd.DataFrame({
        "tag": list(tags),
        "pr_auc": pr_auc,
        "roc_auc": roc_auc,
        "positives": truth.sum(axis=0).astype(int),
        "excluded": excluded,
    })
    return figures, per_tag


# --- Decision thresholds -----------------------------------------------------------------------

def choose_thresholds(truth, predictions) -> np.ndarray:
    """Per tag, the threshold that maximises that tag's F-score on (validation) data.

    A track is decided positive for a tag when its score is >= the tag's threshold (scikit-learn's
    `precision_recall_curve` convention, and `apply_thresholds`). Candidates are the distinct
    scores of the tag; F = 2PR / (P + R).

    - Ties: the lowest threshold among those with the maximal F-score wins (it decides more tracks
      positive, i.e. favours recall), which makes the choice deterministic.
    - A tag with no positive track has F = 0 at every threshold: its threshold is `+inf`, so it is
      never decided positive (the data gave no evidence for it).

    Args:
        truth: bool (or 0/1) `[tracks, tags]` of the data thresholds are chosen on.
        predictions: float scores of the same shape.

    Returns:
        float64 `[tags]` thresholds.
    """
    truth = as_truth(truth, "truth")
    scores = as_predictions(predictions)
    check_same_shape(truth, "truth", scores, "predictions")
    thresholds = np.full(truth.shape[1], np.inf)
    for j in range(truth.shape[1]):
        if not truth[:, j].any():
            continue
        precision, recall, candidates = precision_recall_curve(truth[:, j], scores[:, j])
        # The last (precision 1, recall 0) point has no threshold; candidates ascend.
        precision, recall = precision[:-1], recall[:-1]
        denominator = precision + recall
        fscore = np.divide(2 * precision * recall, denominator,
                           out=np.zeros_like(denominator), where=denominator > 0)
        thresholds[j] = candidates[int(np.argmax(fscore))]  # argmax: first, i.e. lowest, tie
    return thresholds


def apply_thresholds(predictions, thresholds) -> np.ndarray:
    """Bool decisions: `predictions >= thresholds`, per tag (column)."""
    scores = as_predictions(predictions)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (scores.shape[1],):
        raise DataFileError(f"thresholds: shape {thresholds.shape}, expected ({scores.shape[1]},) "
                            f"(one per tag)")
    if np.isnan(thresholds).any():
        raise DataFileError("thresholds: contain NaN; expected numbers (+inf means never)")
    return scores >= thresholds


# --- Per-tag table (the paper's Table 3) --------------------------------------------------------

def per_tag_table(truth, predictions, tags) -> pd.DataFrame:
    """Per-tag PR-AUC and ROC-AUC ranked by PR-AUC, best first (the paper's Table 3).

    Returns:
        Columns `rank` (1 = best), `tag`, `pr_auc`, `roc_auc`, `positives`, `excluded`;
        excluded (single-class) tags come last, unranked (`rank` 0).
    """
    _, per_tag = auc_scores(truth, predictions, tags)
    ranked = per_tag.sort_values("pr_auc", ascending=False, na_position="last", kind="stable")
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", np.where(ranked["excluded"], 0, np.arange(1, len(ranked) + 1)))
    return ranked


def table3_markdown(per_tag: pd.DataFrame, n: int = 5) -> str:
    """The top-`n` and bottom-`n` tags of a `per_tag_table` as Markdown (all, if few)."""
    ranked = per_tag[per_tag["rank"] > 0]
    rows = _table3_rows(ranked.head(n))
    if len(ranked) > 2 * n:
        rows.append(["…", "…", "", ""])
        rows += _table3_rows(ranked.tail(n))
    elif len(ranked) > n:
        rows += _table3_rows(ranked.iloc[n:])
    return markdown_table(["rank", "tag", "PR-AUC", "ROC-AUC"], rows)


def _table3_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [[str(row.rank), short_tag_name(row.tag), _fmt(row.pr_auc), _fmt(row.roc_auc)]
            for row in frame.itertuples()]


# --- Writing a run's evaluation ----------------------------------------------------------------

def write_evaluation(run_dir, test_truth, test_predictions, val_truth, val_predictions,
                     tags) -> dict[str, float]:
    """Thresholds from validation, decisions and official figures on test, all into `run_dir`.

    Writes, each file atomically (`metrics.json` last, so its presence means all are complete):
    `predictions.npy` (float32, tracks x tags, split order), `decisions.npy` (bool),
    `thresholds.npy` (float64, one per tag, chosen on validation by `choose_thresholds`),
    `metrics.json` (the official names) and `per_tag.csv` (`per_tag_table` of the test set).

    The figures are computed from the float32 predictions that are saved, so scoring the saved
    files again (`emotion-keras score`) gives exactly `metrics.json`.

    Returns:
        The official figures (as in `metrics.json`).
    """
    run_dir = Path(run_dir)
    test_truth = as_truth(test_truth, "test truth")
    test_scores = as_predictions(test_predictions, "test predictions").astype(np.float32)
    check_same_shape(test_truth, "test truth", test_scores, "test predictions")
    val_truth = as_truth(val_truth, "validation truth")
    val_scores = as_predictions(val_predictions, "validation predictions").astype(np.float32)
    check_same_shape(val_truth, "validation truth", val_scores, "validation predictions")
    if val_truth.shape[1] != test_truth.shape[1]:
        raise DataFileError(f"validation truth: {val_truth.shape[1]} tags, test truth "
                            f"{test_truth.shape[1]}")
    tags = _check_tags(tags, test_truth.shape[1])

    thresholds = choose_thresholds(val_truth, val_scores)
    decisions = apply_thresholds(test_scores, thresholds)
    metrics = official_scores(test_truth, test_scores, decisions)
    per_tag = per_tag_table(test_truth, test_scores, tags)

    atomic_save_npy(run_dir / PREDICTIONS_FILE, test_scores)
    atomic_save_npy(run_dir / DECISIONS_FILE, decisions)
    atomic_save_npy(run_dir / THRESHOLDS_FILE, thresholds)
    with atomic_path(run_dir / PER_TAG_FILE) as tmp:
        per_tag.to_csv(tmp, index=False)
    atomic_write_text(run_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    return metrics


def read_metrics(run_dir) -> dict[str, float]:
    """The official figures of an evaluated run directory (`metrics.json`)."""
    path = Path(run_dir) / METRICS_FILE
    if not Path(run_dir).is_dir():
        raise DataFileError(f"{run_dir}: not a run directory")
    if not path.is_file():
        raise DataFileError(f"{path}: not found; evaluate the run first with "
                            f"`emotion-keras evaluate {run_dir}`")
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataFileError(f"{path}: not valid JSON ({error})") from None
    missing = [name for name in AUC_NAMES if not isinstance(metrics.get(name), (int, float))]
    if missing:
        raise DataFileError(f"{path}: missing figure(s) {', '.join(missing)}; evaluate the run "
                            f"again with `emotion-keras evaluate {run_dir}`")
    return metrics


def read_per_tag(run_dir) -> pd.DataFrame:
    """The per-tag test table of an evaluated run directory (`per_tag.csv`)."""
    path = Path(run_dir) / PER_TAG_FILE
    if not path.is_file():
        raise DataFileError(f"{path}: not found; evaluate the run first with "
                            f"`emotion-keras evaluate {run_dir}`")
    try:
        per_tag = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as error:
        raise DataFileError(f"{path}: not a readable CSV ({error})") from None
    missing = {"rank", "tag", "pr_auc", "roc_auc"} - set(per_tag.columns)
    if missing:
        raise DataFileError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return per_tag


# --- The paper's Table 2 -------------------------------------------------------------------------

def table2(run_dirs) -> pd.DataFrame:
    """The paper's Table 2 for evaluated run directories, with the published figures beside ours.

    Each run directory holds `config.json` (its `model` names the architecture) and `metrics.json`
    (from `write_evaluation`). Published figures are for the split-0 test set; they are left empty
    for runs of other splits and for models the paper does not have.

    Returns:
        One row per run, columns `TABLE2_COLUMNS`.
    """
    from emotion_keras.config import Config

    rows = []
    for run_dir in map(Path, run_dirs):
        metrics = read_metrics(run_dir)
        config = Config.from_json(run_dir / CONFIG_FILE)
        conv_layers, residual, paper_pr, paper_roc = PAPER_TABLE2.get(
            config.model, (None, None, None, None))
        if config.split != 0:
            paper_pr = paper_roc = None
        rows.append({
            "run": run_dir.name, "model": config.model, "split": config.split,
            "conv layers": conv_layers, "residual": residual,
            "PR-AUC-macro": float(metrics["PR-AUC-macro"]),
            "ROC-AUC-macro": float(metrics["ROC-AUC-macro"]),
            "paper PR-AUC-macro": paper_pr, "paper ROC-AUC-macro": paper_roc,
        })
    frame = pd.DataFrame(rows, columns=list(TABLE2_COLUMNS))
    frame["conv layers"] = frame["conv layers"].astype("Int64")
    frame["residual"] = frame["residual"].astype("boolean")
    for column in ("paper PR-AUC-macro", "paper ROC-AUC-macro"):
        frame[column] = frame[column].astype(float)
    return frame


def table2_markdown(frame: pd.DataFrame) -> str:
    """A `table2` frame as Markdown: figures to 4 decimals, unknown cells empty."""
    rows = []
    for row in frame.itertuples(index=False):
        run, model, split, conv, residual, pr, roc, paper_pr, paper_roc = row
        rows.append([run, model, str(split), "" if pd.isna(conv) else str(conv),
                     "" if pd.isna(residual) else ("yes" if residual else "no"),
                     _fmt(pr), _fmt(roc), _fmt(paper_pr), _fmt(paper_roc)])
    return markdown_table(list(TABLE2_COLUMNS), rows)


def table2_csv(frame: pd.DataFrame) -> str:
    """A `table2` frame as CSV text (full precision, unknown cells empty)."""
    return frame.to_csv(index=False)


# --- Text rendering --------------------------------------------------------------------------

def format_scores(scores: dict[str, float]) -> str:
    """`name  value` lines, six decimals (as MediaEval's results table)."""
    width = max(map(len, scores))
    return "\n".join(f"{name:<{width}}  {value:.6f}" for name, value in scores.items())


def markdown_table(header, rows) -> str:
    """A GitHub-flavoured Markdown table of already formatted cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    return "\n".join(lines)


def _fmt(value, digits: int = 4) -> str:
    return "" if value is None or pd.isna(value) else f"{value:.{digits}f}"


# --- Scoring files (the `score` command) -------------------------------------------------------

def score_files(predictions_path, *, groundtruth_path=None, decisions_path=None, meta_dir=None,
                split: int = 0, subset: str = "test") -> dict[str, float]:
    """Official figures of a predictions file (and decisions file) against a ground truth.

    The ground truth comes either from a `.npy` file (bool `[tracks, tags]`, e.g. MediaEval's
    `groundtruth.npy`) or from the split TSVs under `meta_dir` (rows in TSV order, columns in
    tag-file order, as `emotion_keras.metadata.read_subset` gives them).
    """
    if (groundtruth_path is None) == (meta_dir is None):
        from emotion_keras.errors import ConfigError

        raise ConfigError("give either --groundtruth G.npy or --meta-dir M (with --split N)")
    if groundtruth_path is not None:
        truth_name = f"--groundtruth {groundtruth_path}"
        truth = as_truth(load_array(groundtruth_path, "--groundtruth"), truth_name)
    else:
        from emotion_keras.metadata import read_subset

        labels = read_subset(meta_dir, split, subset).labels
        truth_name = f"split-{split}/{subset} of --meta-dir {meta_dir}"
        truth = as_truth(labels, truth_name)
    predictions_name = f"--predictions {predictions_path}"
    predictions = as_predictions(load_array(predictions_path, "--predictions"), predictions_name)
    check_same_shape(truth, truth_name, predictions, predictions_name)
    decisions = None
    if decisions_path is not None:
        decisions_name = f"--decisions {decisions_path}"
        decisions = as_decisions(load_array(decisions_path, "--decisions"), decisions_name)
        check_same_shape(truth, truth_name, decisions, decisions_name)
    single = single_class_columns(truth)
    if single.size:
        raise DataFileError(f"{truth_name}: {single.size} tag column(s) have a single class "
                            f"(first: column {single[0]}); the official macro AUCs are undefined")
    return official_scores(truth, predictions, decisions)
