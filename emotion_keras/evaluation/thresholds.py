"""Per-tag decision thresholds: chosen on validation data, applied to test predictions.

MediaEval 2019 scored decisions (F-score, precision, recall) besides the rankings; a run's
decisions are its test predictions thresholded per tag, each threshold chosen on the validation
split to maximise that tag's F-score.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_curve

from emotion_keras.errors import DataFileError
from emotion_keras.evaluation.metrics import as_predictions, as_truth, check_same_shape


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
        fscore = np.divide(
            2 * precision * recall,
            denominator,
            out=np.zeros_like(denominator),
            where=denominator > 0,
        )
        thresholds[j] = candidates[int(np.argmax(fscore))]  # argmax: first, i.e. lowest, tie
    return thresholds


def apply_thresholds(predictions, thresholds) -> np.ndarray:
    """Bool decisions: `predictions >= thresholds`, per tag (column)."""
    scores = as_predictions(predictions)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (scores.shape[1],):
        raise DataFileError(
            f"thresholds: shape {thresholds.shape}, expected ({scores.shape[1]},) (one per tag)"
        )
    if np.isnan(thresholds).any():
        raise DataFileError("thresholds: contain NaN; expected numbers (+inf means never)")
    return scores >= thresholds
