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

Decision thresholds are in `thresholds`, the paper's tables in `tables`, evaluating a run in
`evaluate`. This module uses NumPy, scikit-learn and pandas only; it must not import TensorFlow,
load models or predict.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from emotion_keras.errors import DataFileError

#: Official names of the ranking figures, in the order MediaEval's results table lists them.
AUC_NAMES = ("PR-AUC-macro", "ROC-AUC-macro", "PR-AUC-micro", "ROC-AUC-micro")
#: Official names of the decision figures (only with decisions).
DECISION_NAMES = (
    "F-score-macro",
    "precision-macro",
    "recall-macro",
    "F-score-micro",
    "precision-micro",
    "recall-micro",
)

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
        raise DataFileError(
            f"{name}: expected a non-empty 2-D array (tracks x tags), got shape {array.shape}"
        )
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
        raise DataFileError(
            f"{name}: expected bool or 0/1 values, found {bad.flat[0].item()} (dtype {array.dtype})"
        )
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
        raise DataFileError(
            f"{name}: expected float scores, got dtype {array.dtype} (decisions go to --decisions)"
        )
    if not np.isfinite(array).all():
        n_bad = int((~np.isfinite(array)).sum())
        raise DataFileError(f"{name}: {n_bad} values are NaN or inf; expected finite scores")
    return array


def check_same_shape(
    reference: np.ndarray, reference_name: str, array: np.ndarray, name: str
) -> None:
    """Raises DataFileError unless `array` has the shape of `reference` (tracks x tags)."""
    if array.shape != reference.shape:
        raise DataFileError(
            f"{name}: shape {array.shape} does not match {reference_name} shape "
            f"{reference.shape} (tracks x tags, same row and column order)"
        )


def check_tags(tags, n_tags: int) -> tuple[str, ...]:
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
            f"positives and negatives for every tag"
        )
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
                truth, chosen, average=average, zero_division=0
            )
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
    tags = check_tags(tags, n_tags)
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
        if both_classes
        else math.nan,
        "roc_auc_micro": float(roc_auc_score(truth, scores, average="micro"))
        if both_classes
        else math.nan,
    }
    per_tag = pd.DataFrame(
        {
            "tag": list(tags),
            "pr_auc": pr_auc,
            "roc_auc": roc_auc,
            "positives": truth.sum(axis=0).astype(int),
            "excluded": excluded,
        }
    )
    return figures, per_tag


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


def format_scores(scores: dict[str, float]) -> str:
    """`name  value` lines, six decimals (as MediaEval's results table)."""
    width = max(map(len, scores))
    return "\n".join(f"{name:<{width}}  {value:.6f}" for name, value in scores.items())
