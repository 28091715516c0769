"""Mixup of training batches in the `tf.data` pipeline (Zhang et al. 2018).

Each batch `(x, y)` is mixed with a permutation of itself: `x' = lam x + (1 - lam) x[perm]`,
`y' = lam y + (1 - lam) y[perm]`, one `lam ~ Beta(alpha, alpha)` per batch (the multi-hot labels
become soft labels). Only the training input is mixed, so evaluation and exports never see it.

Reproducibility: the mixing weight and permutation of a batch come from stateless random ops
keyed by `seed` and the batch's key, `(epoch, batch index within the epoch)` in
`pipeline.train_dataset`; so a batch is mixed alike whenever it is made, and a resumed run mixes
as an uninterrupted one would (as it draws the same crops). The keys are derived from `seed`
but differ from the crop draws'.

SpecAugment-style masking is a Keras layer instead (`emotion_keras.models.augment`).
"""

from __future__ import annotations

import tensorflow as tf

#: Added to the run's seed for the mixup stream, so that it is not the crop draws' stream.
_SEED_OFFSET = 0x6D69787570  # "mixup"


def mixup_batches(
    dataset: tf.data.Dataset, alpha: float, seed: int = 0, keys: tf.data.Dataset | None = None
) -> tf.data.Dataset:
    """Mixes every `(x, y)` batch of `dataset` with a permutation of itself.

    Args:
        dataset: batches `(x [batch, ...], y [batch, n_tags])`, float32.
        alpha: the Beta distribution's parameter (> 0).
        seed: with the keys, fixes the mixing weights and permutations.
        keys: one int64 `[2]` key per batch, distinct per batch (`train_dataset` gives
            `(epoch, batch index)`); None: the batch's place in `dataset`.

    Returns:
        The mixed batches, same shapes and dtypes.
    """
    if not alpha > 0:
        raise ValueError(f"mixup alpha {alpha!r}: must be positive")
    if keys is None:
        keys = tf.data.Dataset.counter().map(lambda i: tf.stack([tf.constant(0, tf.int64), i]))
    base = tf.constant([seed + _SEED_OFFSET, 0], tf.int64)

    def mix(batch, key):
        x, y = batch
        batch_key = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(base, key[0]), key[1]
        )
        draws = tf.unstack(tf.random.experimental.stateless_split(batch_key, num=3))
        lam = mixing_weight(alpha, draws[0], draws[1])
        perm = tf.argsort(tf.random.stateless_uniform(tf.shape(x)[:1], seed=draws[2]))
        mixed_x = lam * x + (1 - lam) * tf.gather(x, perm)
        mixed_y = lam * y + (1 - lam) * tf.gather(y, perm)
        return mixed_x, mixed_y

    return tf.data.Dataset.zip((dataset, keys)).map(
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
