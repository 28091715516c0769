"""The tf.data pipeline: random crops for training, regular crops for evaluation.

Training (paper §3.3): every epoch the tracks are shuffled and one random `crop_frames`-frame
crop (T = 1280, 27.3 s) is read from each, with its multi-hot labels, in batches of 64.
Evaluation: K crops per track at regular intervals — crop i starts at `i * (n - T) // (K - 1)`
(K = 10 for validation, 20 for test) — and a track's prediction is the mean of its crops'
sigmoid outputs. Crops of consecutive tracks share batches, so the model always sees full
batches; predictions come back in subset order.

Reading is batched: one `tf.numpy_function` call reads a whole batch of crops through memory
maps (`emotion_keras.melspec_io.read_crop`), several batches are read in parallel, and batches
are prefetched, so reading overlaps compute and memory does not grow with the corpus.

A track shorter than T frames is padded at its end with digital silence (-200 dB) and cropped
from its start; a track of exactly T frames is its own single crop position.

Outputs are channels-last, ready for the models: x `[batch, bands, T, 1]` float32 and
y `[batch, tags]` float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from emotion_keras.melspec_io import read_crop, scan_melspecs


def regular_crop_starts(n_frames: int, crop_frames: int, n_crops: int) -> np.ndarray:
    """Starts of `n_crops` crops spread regularly over a track, first at 0, last at the end.

    Crop i starts at `i * (n_frames - crop_frames) // (n_crops - 1)`; one crop is centred.
    A track shorter than a crop has every crop at 0 (it is padded).
    """
    span = max(int(n_frames) - crop_frames, 0)
    if n_crops == 1:
        return np.array([span // 2], dtype=np.int64)
    return np.arange(n_crops, dtype=np.int64) * span // (n_crops - 1)


def random_crop_starts(n_frames: np.ndarray, crop_frames: int,
                       rng: np.random.Generator) -> np.ndarray:
    """One uniformly random start per track, in `[0, n_frames - crop_frames]`."""
    span = np.maximum(np.asarray(n_frames, dtype=np.int64) - crop_frames, 0)
    return rng.integers(0, span + 1)


def _paths(data_dir, subset) -> np.ndarray:
    root = Path(data_dir)
    return np.array([str(root / p) for p in subset.melspec_paths])


def _batch_reader(paths: np.ndarray, crop_frames: int, n_bands: int):
    def read(indices: np.ndarray, starts: np.ndarray) -> np.ndarray:
        batch = np.empty((len(indices), n_bands, crop_frames, 1), dtype=np.float32)
        for k, (i, start) in enumerate(zip(indices, starts)):
            batch[k, :, :, 0] = read_crop(paths[i], int(start), crop_frames)
        return batch
    return read


def _read_batches(dataset, paths, crop_frames: int, n_bands: int, parallel_reads):
    """Maps `(indices, starts, ...)` batches to `(crops, ...)` via one numpy call per batch."""
    read = _batch_reader(paths, crop_frames, n_bands)

    def load(indices, starts, *rest):
        crops = tf.numpy_function(read, [indices, starts], tf.float32, stateful=False)
        crops = tf.ensure_shape(crops, [None, n_bands, crop_frames, 1])
        return (crops, *rest) if rest else crops

    return dataset.map(load, num_parallel_calls=parallel_reads, deterministic=True)


def train_dataset(data_dir, subset, n_frames=None, *, crop_frames: int = 1280,
                  batch_size: int = 64, n_bands: int = 96, seed: int = 0, shuffle: bool = True,
                  parallel_reads=tf.data.AUTOTUNE, num_shards: int = 1,
                  shard_index: int = 0) -> tf.data.Dataset:
    """One random crop of every track per epoch, shuffled, batched, with labels.

    Args:
        data_dir: the melspec root.
        subset: an `emotion_keras.metadata.Subset` (its labels are the targets).
        n_frames: frame counts from `scan_melspecs` (scanned when None).
        crop_frames, batch_size, n_bands: crop length T, batch size, band count.
        seed: fixes the shuffle order and the crop positions of every epoch.
        shuffle: shuffle the tracks every epoch.
        num_shards, shard_index: read only every `num_shards`-th track, from `shard_index`
            (for multi-worker training: no track is read twice per epoch).

    Returns:
        A dataset of `(x [batch, n_bands, crop_frames, 1], y [batch, n_tags])`; iterating it
        again gives the next epoch (new order, new crops).
    """
    if n_frames is None:
        n_frames = scan_melspecs(data_dir, subset, n_bands)
    paths = _paths(data_dir, subset)
    labels = subset.labels.astype(np.float32)
    spans = np.maximum(np.asarray(n_frames, dtype=np.int64) - crop_frames, 0)
    indices = tf.data.Dataset.range(len(subset)).shard(num_shards, shard_index)
    n_tracks = len(range(shard_index, len(subset), num_shards))
    if shuffle:
        indices = indices.shuffle(n_tracks, seed=seed, reshuffle_each_iteration=True)
    # A reproducible stream of random numbers, different every epoch, one per track.
    randoms = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
    spans_t, labels_t = tf.constant(spans), tf.constant(labels)

    def pick(index, random):
        start = tf.math.floormod(random, tf.gather(spans_t, index) + 1)
        return index, start, tf.gather(labels_t, index)

    dataset = tf.data.Dataset.zip((indices, randoms)).map(pick).batch(batch_size)
    dataset = _read_batches(dataset, paths, crop_frames, n_bands, parallel_reads)
    options = tf.data.Options()
    # Sharding is ours (by track, above); tf.distribute must not shard a second time.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def eval_dataset(data_dir, subset, n_frames=None, *, n_crops: int = 10,
                 crop_frames: int = 1280, batch_size: int = 64, n_bands: int = 96,
                 parallel_reads=tf.data.AUTOTUNE) -> tf.data.Dataset:
    """The `n_crops` regular crops of every track, in subset order, batched across tracks.

    Returns:
        A dataset of x `[batch, n_bands, crop_frames, 1]`; crop `k` of track `i` is element
        `i * n_crops + k` of the concatenated batches.
    """
    if n_frames is None:
        n_frames = scan_melspecs(data_dir, subset, n_bands)
    starts = np.concatenate([regular_crop_starts(n, crop_frames, n_crops) for n in n_frames])
    indices = np.repeat(np.arange(len(subset), dtype=np.int64), n_crops)
    dataset = tf.data.Dataset.from_tensor_slices((indices, starts)).batch(batch_size)
    dataset = _read_batches(dataset, _paths(data_dir, subset), crop_frames, n_bands,
                            parallel_reads)
    return dataset.prefetch(tf.data.AUTOTUNE)


def predict_tracks(model, data_dir, subset, n_frames=None, *, n_crops: int = 10,
                   crop_frames: int = 1280, batch_size: int = 64,
                   n_bands: int = 96) -> np.ndarray:
    """Crop-averaged probabilities `[n_tracks, n_tags]` of `subset`, in subset order.

    Args:
        model: a Keras model mapping crops to probabilities (a sigmoid output).
        n_crops: regular crops per track (paper: 10 for validation, 20 for test).

    Returns:
        float32 mean of the crops' outputs for each track.
    """
    dataset = eval_dataset(data_dir, subset, n_frames, n_crops=n_crops,
                           crop_frames=crop_frames, batch_size=batch_size, n_bands=n_bands)
    outputs = np.asarray(model.predict(dataset, verbose=0), dtype=np.float32)
    return outputs.reshape(len(subset), n_crops, -1).mean(axis=1)
