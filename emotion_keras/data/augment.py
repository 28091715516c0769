"""Mixup of training batches in the `tf.data` pipeline (Zhang et al. 2018).

Each batch `(x, y)` is mixed with a permutation of itself: `x' = lam x + (1 - lam) x[perm]`,
`y' = lam y + (1 - lam) y[perm]`, one `lam ~ Beta(alpha, alpha)` per batch (the multi-hot labels
become soft labels). Only the training input is mixed, so evaluation and exports never see it.

Reproducibility: the mixing weights and permutations come from stateless random ops keyed by a
seeded `Dataset.random` stream (one draw per batch, new draws every epoch), so the same `seed`
mixes the same batches alike, as `pipeline.train_dataset` draws the same crops. The stream's
seed is derived from `seed` but differs from the crop draws'.

SpecAugment-style masking is a Keras layer instead (`emotion_keras.models.augment`).
"""

from __future__ import annotations

import tensorflow as tf

#: Added to the run's seed for the mixup stream, so that it is not the crop draws' stream.
_SEED_OFFSET = 0x6D69787570  # "mixup"


def mixup_batches(dataset: tf.data.Dataset, alpha: float, seed: int = 0) -> tf.data.Dataset:
    """Mixes every `(x, y)` batch of `dataset` with a permutation of itself.

    Args:
        dataset: batches `(x [batch, ...], y [batch, n_tags])`, float32.
        alpha: the Beta distribution's parameter (> 0).
        seed: fixes the mixing weights and permutations of every epoch.

    Returns:
        The mixed batches, same shapes and dtypes.
    """
    if not alpha > 0:
        raise ValueError(f"mixup alpha {alpha!r}: must be positive")
    draws = tf.data.Dataset.random(seed=seed + _SEED_OFFSET, rerandomize_each_iteration=True)

    def mix(batch, draw):
        x, y = batch
        keys = [tf.stack([draw, tf.constant(k, tf.int64)]) for k in range(3)]
        lam = mixing_weight(alpha, keys[0], keys[1])
        perm = tf.argsort(tf.random.stateless_uniform(tf.shape(x)[:1], seed=keys[2]))
        mixed_x = lam * x + (1 - lam) * tf.gather(x, perm)
        mixed_y = lam * y + (1 - lam) * tf.gather(y, perm)
        return mixed_x, mixed_y

    return tf.data.Dataset.zip((dataset, draws)).map(
        mix, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )


def mixing_weight(alpha: float, key_a, key_b) -> tf.Tensor:
    """`lam ~ Beta(alpha, alpha)` as `G_a / (G_a + G_b)` of two stateless Gamma draws.

    With a small alpha both draws can underflow to 0; the weight is then 1 (no mixing).
    """
    a = tf.random.stateless_gamma([], seed=key_a, alpha=alpha)
    b = tf.random.stateless_gamma([], seed=key_b, alpha=alpha)
    total = a + b
    return tf.where(total > 0, a / tf.where(total > 0, total, 1.0), 1.0)
