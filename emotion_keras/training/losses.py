"""The training loss (`Config.loss`): binary cross-entropy, focal, or positive-weighted BCE.

- `bce`: the paper's binary cross-entropy, mean over tags and batch.
- `focal`: Keras's `BinaryFocalCrossentropy` with class balancing: positives weighted
  `focal_alpha`, negatives `1 - focal_alpha`, each term scaled by `(1 - p_t) ** focal_gamma`
  (Lin et al. 2017; the 2021 winner's alpha 0.25, gamma 2).
- `weighted_bce`: binary cross-entropy whose positive term of tag j is weighted `pos_weight[j]`
  (PyTorch's `BCEWithLogitsLoss(pos_weight=...)`), with `pos_weight = 1 / p_j`, p_j the share of
  the training tracks tagged j (`positive_weights`; the 2021 winner's `wbce`).

The weighted loss is a registered Keras class, so checkpoints that carry it load in safe mode.
This module holds no hyper-parameters: they come from the `Config`.
"""

from __future__ import annotations

import keras
import numpy as np

from emotion_keras.config import Config


def positive_weights(labels: np.ndarray) -> np.ndarray:
    """`1 / p` per tag, p the tag's share of the rows of bool `labels` `[tracks, tags]`.

    A tag with no positive row (only in a cut-down training set) is counted as having one: its
    positive term never occurs in training, so its weight only has to be finite.
    """
    labels = np.asarray(labels, dtype=bool)
    counts = np.maximum(labels.sum(axis=0), 1)
    return (max(len(labels), 1) / counts).astype(np.float32)


@keras.saving.register_keras_serializable(package="emotion_keras")
class PositiveWeightedBCE(keras.losses.Loss):
    """Binary cross-entropy on probabilities with the positive term of each tag weighted.

    `-(w_j y log p + (1 - y) log(1 - p))`, mean over tags (then over the batch, by Keras).
    """

    def __init__(self, pos_weight, name: str = "weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = [float(w) for w in np.asarray(pos_weight).reshape(-1)]

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        epsilon = keras.config.epsilon()
        p = keras.ops.clip(y_pred, epsilon, 1 - epsilon)
        weight = keras.ops.convert_to_tensor(self.pos_weight, dtype=y_pred.dtype)
        terms = weight * y_true * keras.ops.log(p) + (1 - y_true) * keras.ops.log(1 - p)
        return -keras.ops.mean(terms, axis=-1)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


def make_loss(config: Config, pos_weight: np.ndarray | None = None):
    """The Keras loss of `config.loss` (`pos_weight`: `positive_weights` of the training
    labels, needed by `weighted_bce` only)."""
    if config.loss == "bce":
        return "binary_crossentropy"
    if config.loss == "focal":
        return keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=config.focal_alpha, gamma=config.focal_gamma
        )
    if pos_weight is None:
        raise ValueError("loss weighted_bce needs the training split's pos_weight")
    return PositiveWeightedBCE(pos_weight)
