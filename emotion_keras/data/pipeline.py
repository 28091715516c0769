"""Streaming `tf.data` pipelines of mel-spectrogram crops: random crops to train, regular crops to
evaluate, and crop-averaged predictions.

Training (Yi et al. 2019, §3.3): every epoch shuffles the tracks and reads one random
`crop_frames`-frame crop (the paper's T = 1280, 27.3 s) from each, with its multi-hot labels, in
batches of 64. Evaluation reads K crops per track at regular intervals, crop i of K starting at
`i * (n_frames - T) // (K - 1)` (K = 10 for validation, 20 for test), batched across tracks, and
a track's prediction is the mean of its crops' sigmoid outputs. For models trained on short
crops (the 2021 winner's 128-224 frames) evaluation can instead slide crop-long windows over the
whole track (`hop_frames`, `sliding_window_starts`) and average those, or read each whole track
as one batch (`whole_track_dataset`) for a model that takes any length.

How it streams: each dataset starts from track *indices* (`Dataset.range`), so shuffling, crop
positions and sharding are decided on small integers before any file is touched; then one
`tf.numpy_function` per batch reads that batch's crops with `emotion_keras.data.crops`, which
touches only each crop's bytes (a memory map for the official bands-major files, one `pread` for
the optional frames-major copy and for a packed corpus), several batches in parallel (a fixed
number, `_parallel_reads`, on a private thread pool: `_options`), prefetched ahead of the model.
Memory is a few batches, whatever the corpus size. One Python call per *batch* rather than per
crop keeps the interpreter's per-call cost (and the GIL) off the critical path, and batches are
handed to TensorFlow without a copy. Figures and what bounds them: BENCHMARKS.md.

Reproducibility: epoch e's shuffling and random crop positions are a pure function of
`(seed, e)` (stateless random ops, before the parallel reads, whose outputs keep their order), so
a run resumed at epoch e reads what an uninterrupted run would have. Sharding for multi-worker
training is by position in each epoch's shuffled order (`shard=(num_workers, index)`), before any
read; this module does not set up distribution itself (`emotion_keras.training.distribute` does).

This module must not decide hyper-parameters (callers pass the `Config` values) or parse files
itself (that is `melspec_files`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from pathlib import Path

import numpy as np
import tensorflow as tf

from emotion_keras.data.augment import mixup_batches
from emotion_keras.data.crops import CropReader, open_reader, random_crop_start
from emotion_keras.data.melspec_files import N_BANDS, PAD_VALUE, scan_melspecs
from emotion_keras.data.metadata import Subset
from emotion_keras.errors import ConfigError, DataFileError
from emotion_keras.progress import Progress, log

#: Batches read ahead of the model, beyond those being read in parallel.
PREFETCH_BATCHES = 2


def _parallel_reads() -> int:
    """Batches read at once: one more than the cores, so that a core is never idle while a read
    waits on the GIL or the disk. Fixed, not `tf.data.AUTOTUNE`: on 2 cores the autotuner
    settled on one or two and stayed there for whole epochs (BENCHMARKS.md: epochs at 7,900
    crops/s next to epochs at 16,000, no other change)."""
    return (os.cpu_count() or 1) + 1


def _options() -> tf.data.Options:
    """The input pipelines' options: no autotuning (parallelism and prefetch depth are fixed,
    see `_parallel_reads`; the autotuner's own thread also takes CPU from the reads), and a
    private thread pool of one thread per core, so that the batches' reads, transpositions and
    casts do not queue behind (or crowd) the model's own kernels. Measured in BENCHMARKS.md."""
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = os.cpu_count() or 1
    return options


__all__ = [
    "PAD_VALUE",
    "CropCache",
    "CropReader",
    "data_errors",
    "eval_dataset",
    "predict_tracks",
    "predict_whole_tracks",
    "random_crop_start",
    "regular_crop_starts",
    "sliding_window_starts",
    "steps_per_epoch",
    "train_dataset",
    "whole_track_dataset",
]


def regular_crop_starts(n_frames, crop_frames: int, n_crops: int) -> np.ndarray:
    """Starts of `n_crops` crops at regular intervals (paper §3.3).

    Crop i of K starts at `i * (n_frames - T) // (K - 1)`, so the first crop starts at the
    track's first frame and the last one ends at its last frame. With K = 1 the single crop is
    centred. A track shorter than T has all crops at 0 (padded).

    Args:
        n_frames: frames of a track, or an array of them.
        crop_frames: the crop length T.
        n_crops: K, at least 1.

    Returns:
        int64 `[..., K]`: the starts for each track.
    """
    if n_crops < 1:
        raise ConfigError(f"n_crops {n_crops}: must be at least 1", arguments=("n_crops",))
    span = np.maximum(np.asarray(n_frames, dtype=np.int64) - crop_frames, 0)[..., None]
    if n_crops == 1:
        return span // 2
    return np.arange(n_crops, dtype=np.int64) * span // (n_crops - 1)


def sliding_window_starts(n_frames: int, crop_frames: int, hop_frames: int) -> np.ndarray:
    """Starts of crop-long windows covering a whole track, `hop_frames` apart.

    Windows start at 0, h, 2h, ... and the last one ends at the track's last frame (it starts
    at `n_frames - T`, closer than h to the one before when the hop does not divide the
    track), so every frame is in some window. A track of at most T frames has one window at 0
    (padded). The export computes the same starts in-graph (`serving.export`).

    Args:
        n_frames: frames of the track.
        crop_frames: the window length T.
        hop_frames: frames between window starts, 1 to T.

    Returns:
        int64 `[1 + ceil(max(n_frames - T, 0) / hop_frames)]`.
    """
    span = max(int(n_frames) - crop_frames, 0)
    count = 1 + -(-span // hop_frames)
    return np.minimum(np.arange(count, dtype=np.int64) * hop_frames, span)


def evaluation_crops(
    n_frames, crop_frames: int, n_crops: int, hop_frames: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The crops evaluation reads, track-major: `(tracks, starts)`, two int64 arrays.

    `hop_frames` None: `n_crops` regular crops per track (`regular_crop_starts`); otherwise
    sliding windows (`sliding_window_starts`), as many per track as its length needs.
    """
    n_frames = np.asarray(n_frames, dtype=np.int64)
    if hop_frames is None:
        tracks = np.repeat(np.arange(len(n_frames), dtype=np.int64), n_crops)
        return tracks, regular_crop_starts(n_frames, crop_frames, n_crops).reshape(-1)
    _check_positive(hop_frames=hop_frames)
    starts = [sliding_window_starts(n, crop_frames, hop_frames) for n in n_frames.tolist()]
    counts = np.array([len(s) for s in starts], dtype=np.int64)
    tracks = np.repeat(np.arange(len(n_frames), dtype=np.int64), counts)
    return tracks, (np.concatenate(starts) if starts else np.zeros(0, np.int64))


_ALIGNMENT = 64


_FLOAT32 = np.dtype(np.float32)


def _aligned_view(
    raw: np.ndarray, shape: tuple[int, ...], dtype: np.dtype = _FLOAT32
) -> np.ndarray:
    """An array of `shape` and `dtype` on the first `_ALIGNMENT`-byte boundary of bytes `raw`."""
    n_bytes = int(np.prod(shape)) * dtype.itemsize
    skip = -raw.ctypes.data % _ALIGNMENT
    return raw[skip : skip + n_bytes].view(dtype).reshape(shape)


class _BatchBuffers:
    """Batch arrays for `tf.numpy_function` results, recycled once TensorFlow lets go of them.

    Two costs are avoided. TensorFlow adopts a NumPy result without copying it only if its data
    is aligned as Eigen requires (64 bytes covers every build; NumPy's own allocations are 16-byte
    aligned), else it copies every batch (31 MB at the paper's sizes). And a fresh 31 MB array
    per batch is fresh memory from the kernel, zeroed page by page on first touch: about 5 ms a
    batch on a 2-core machine, a fifth of the time it takes to read the crops.

    Each buffer is a byte array kept here; a batch is a new float32 view of it. TensorFlow holds
    the view for as long as the tensor lives, so a buffer is free again when its last view is
    gone, which a weak reference tells. Buffers beyond `capacity` are not kept.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._slots: list[list] = []  # [byte buffer, weak reference to its current view]
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: np.dtype = _FLOAT32) -> np.ndarray:
        n_bytes = int(np.prod(shape)) * dtype.itemsize + _ALIGNMENT
        with self._lock:
            for slot in self._slots:
                raw, last_view = slot
                if raw.nbytes >= n_bytes and last_view() is None:
                    view = _aligned_view(raw, shape, dtype)
                    slot[1] = weakref.ref(view)
                    return view
            raw = np.empty(n_bytes, dtype=np.uint8)
            view = _aligned_view(raw, shape, dtype)
            if len(self._slots) < self.capacity:
                self._slots.append([raw, weakref.ref(view)])
            return view


# DataFileErrors raised inside tf.data reach the caller as a TensorFlow OpError that carries the
# message but not the type; `data_errors` finds the original here to re-raise it. Bounded: only
# the most recent errors matter.
_REPORTED: dict[str, DataFileError] = {}
_MAX_REPORTED = 8


def _reporting(read):
    def wrapper(*args):
        try:
            return read(*args)
        except DataFileError as error:
            if len(_REPORTED) >= _MAX_REPORTED:
                _REPORTED.pop(next(iter(_REPORTED)), None)
            _REPORTED[str(error)] = error
            raise

    return wrapper


@contextlib.contextmanager
def data_errors():
    """Re-raises a `DataFileError` met while `tf.data` read a crop as itself.

    Without it the error reaches the caller as a TensorFlow `OpError` whose message holds the
    DataFileError's text among TensorFlow's own. Wrap `model.fit`/`predict` calls in it so that
    the CLI can print the one-line message.
    """
    try:
        yield
    except tf.errors.OpError as error:
        text = str(error.message)
        for message, original in list(_REPORTED.items()):
            if message in text:
                raise original from None
        raise


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ConfigError(f"{name} {value}: must be at least 1", arguments=(name,))


def _track_frames(data_dir, subset: Subset, n_frames, n_bands: int) -> np.ndarray:
    if n_frames is None:
        return scan_melspecs(data_dir, subset, n_bands=n_bands)
    n_frames = np.asarray(n_frames, dtype=np.int64)
    if n_frames.shape != (len(subset),):
        raise ValueError(
            f"n_frames has shape {n_frames.shape}, expected ({len(subset)},): one "
            f"frame count per track of {subset.name} (from scan_melspecs)"
        )
    return n_frames


def bands_major(crops: tf.Tensor) -> tf.Tensor:
    """Frames-major crops `[batch, T, bands]` -> bands-major `[batch, bands, T]`, same values.

    16-bit values are moved as bfloat16, whatever they are (a bitcast, so the bits are kept
    exactly): TensorFlow's CPU transpose moves bfloat16 about three times faster than float16
    (BENCHMARKS.md).
    """
    if crops.dtype.size == 2:
        moved = tf.transpose(tf.bitcast(crops, tf.bfloat16), [0, 2, 1])
        return tf.bitcast(moved, crops.dtype)
    return tf.transpose(crops, [0, 2, 1])


def _model_input(crops: tf.Tensor, reader, dtype: str = "float32") -> tf.Tensor:
    """A batch as the reader returns it -> `[batch, n_bands, T, 1]` in `dtype`.

    A packed corpus's batches are frames-major and in its stored dtype: TensorFlow transposes
    them and casts float16 (3x faster than NumPy's cast), outside Python and the GIL; with
    `dtype="float16"` (a mixed-precision model's compute dtype) they are passed on uncast.
    """
    if reader.frames_major:
        crops = bands_major(crops)
    return _cast(crops, dtype)


def _cast(crops: tf.Tensor, dtype: str) -> tf.Tensor:
    """Bands-major crops `[batch, n_bands, T]` -> `[batch, n_bands, T, 1]` in `dtype`."""
    if crops.dtype != tf.as_dtype(dtype):
        crops = tf.cast(crops, dtype)
    return crops[..., None]


def _read_batches(
    batches: tf.data.Dataset,
    reader: CropReader,
    read,
    batch_size: int | None,
    extra=None,
    dtype: str = "float32",
) -> tf.data.Dataset:
    """Maps batches of (track, value) to crops `[batch, n_bands, T, 1]`, reading in parallel.

    `read(tracks, values, out)` is one of `reader`'s methods.
    """
    # Enough for the batches in flight: parallel reads, prefetched ones and the model's own.
    buffers = _BatchBuffers(capacity=(os.cpu_count() or 1) + PREFETCH_BATCHES + 2)

    def read_into_buffer(tracks, values):
        return read(tracks, values, buffers.take(reader.batch_shape(len(tracks)), reader.dtype))

    def read_crops(tracks, values):
        crops = tf.numpy_function(
            _reporting(read_into_buffer),
            [tracks, values],
            tf.as_dtype(reader.dtype),
            stateful=False,
            name="read_crops",
        )
        # numpy_function outputs have unknown shapes; Keras and XLA want them static.
        crops = _model_input(tf.ensure_shape(crops, reader.batch_shape(batch_size)), reader, dtype)
        return crops if extra is None else (crops, extra(tracks))

    # deterministic=True: parallel reads still come out in order, so a seed reproduces a run.
    # A fixed prefetch depth (not AUTOTUNE, which may grow its buffer towards half the RAM)
    # keeps memory at a few batches of crops whatever the corpus size.
    return (
        batches.map(read_crops, num_parallel_calls=_parallel_reads(), deterministic=True)
        .prefetch(PREFETCH_BATCHES)
        .with_options(_options())
    )


def _epoch_seeds(seed, epoch):
    """Two stateless seeds of epoch `epoch`: one for its shuffle, one for its crop draws."""
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.unstack(tf.random.experimental.stateless_split(key, num=2))


def epoch_order(
    n_tracks: int,
    *,
    seed: int = 0,
    epoch=0,
    shuffle: bool = True,
    shard: tuple[int, int] | None = None,
    global_batch: int | None = None,
    name: str = "subset",
) -> tf.data.Dataset:
    """The `(track index, crop draw)` pairs of training epoch `epoch`, before any file is read.

    A pure function of `(seed, epoch)`: the shuffle and the draws come from stateless random
    ops keyed by both, so an epoch is the same whenever and wherever it is made (a resumed run
    sees the epochs an uninterrupted one would have).

    Args:
        n_tracks: tracks in the subset.
        seed, shuffle, shard, global_batch: as `train_dataset`.
        epoch: the epoch (0-based), an int or a scalar int64 tensor.
        name: the subset's name, for messages.

    Returns:
        A dataset of `(int64 track, int64 draw)`: one epoch.
    """
    if shard is not None and not (len(shard) == 2 and 0 <= shard[1] < shard[0]):
        raise ConfigError(
            f"shard={shard}: expected (num_shards, index) with 0 <= index < num_shards"
        )
    if global_batch is not None and not 0 < global_batch <= n_tracks:
        raise ConfigError(
            f"{name}: {n_tracks} tracks, fewer than one global batch of "
            f"{global_batch}; lower batch_size or use more tracks",
            arguments=("batch_size",),
        )
    shuffle_seed, draw_seed = _epoch_seeds(seed, epoch)
    tracks = tf.range(n_tracks, dtype=tf.int64)
    if shuffle:
        tracks = tf.random.experimental.stateless_shuffle(tracks, seed=shuffle_seed)
    # One random integer per position of the epoch picks that track's crop (`random_crop_start`);
    # drawn before any cut or shard, so a track gets the same crop whatever the replicas.
    draws = tf.random.stateless_uniform(
        [n_tracks], seed=draw_seed, minval=None, maxval=None, dtype=tf.int64
    )
    elements = tf.data.Dataset.from_tensor_slices((tracks, draws))
    if global_batch is not None:
        elements = elements.take(n_tracks - n_tracks % global_batch)
    if shard is not None:
        elements = elements.shard(*shard)
    return elements


def train_dataset(
    data_dir: str | Path,
    subset: Subset,
    n_frames=None,
    *,
    crop_frames: int = 1280,
    batch_size: int = 64,
    n_bands: int = N_BANDS,
    seed: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = False,
    shard: tuple[int, int] | None = None,
    global_batch: int | None = None,
    first_epoch: int = 0,
    n_epochs: int | None = 1,
    mixup_alpha: float = 0.0,
    dtype: str = "float32",
) -> tf.data.Dataset:
    """One random crop per track and epoch, with labels, in shuffled batches.

    One pass over the dataset is `n_epochs` epochs, from epoch `first_epoch` on; each epoch
    shuffles anew and draws new crop positions, and no batch spans two epochs. Epoch e is a
    pure function of `(seed, e)` (`epoch_order`): whether it is read in a run's first pass or
    after a resume, it is the same crops in the same order.

    Args:
        data_dir: the melspec root.
        subset: the tracks and their labels.
        n_frames: frames per track from `scan_melspecs` (scanned here if None).
        crop_frames: the crop length T (paper: 1280).
        batch_size: crops per batch (paper: 64).
        n_bands: mel bands (96).
        seed: fixes shuffling and crop positions.
        shuffle: shuffle the tracks every epoch (off: subset order, for inspection).
        drop_remainder: drop the last partial batch (for a static batch size); by default every
            track is seen every epoch and the last batch may be smaller.
        shard: `(num_shards, index)`: this worker's share of every epoch (multi-worker
            training): the tracks at positions `index, index + num_shards, ...` of the epoch's
            shuffled order. Every worker shuffles alike (same seed), so the shards of an epoch
            are disjoint and together cover it. TensorFlow's own auto-sharding is turned off.
        global_batch: for training with several replicas: each epoch keeps only the first
            `n - n % global_batch` tracks of its shuffled order (a different few left out every
            epoch) and batches drop no remainder, so that every step of every replica and
            worker is a full share of a full global batch (`batch_size` is then the
            per-replica batch). None: every track every epoch.
        first_epoch: the first epoch of a pass (0-based; a resumed run starts after its last).
        n_epochs: epochs in one pass; None: epochs without end.
        mixup_alpha: mix every batch with a permutation of itself, weight ~ Beta(a, a)
            (`augment.mixup_batches`, keyed by `seed`, the epoch and the batch's place in it,
            so a resumed run mixes as an uninterrupted one); 0: no mixup (the paper).
        dtype: of the crops: float32, or float16 for a mixed-precision model on a GPU (saves
            the cast of a float16 packed corpus's crops).

    Returns:
        A dataset of `(x, y)`: x `dtype` `[batch, n_bands, crop_frames, 1]`, y float32 multi-hot
        `[batch, n_tags]`.

    Raises:
        DataFileError: at construction, if the scan finds unusable files; while iterating, a file
            that became unreadable (wrap the loop in `data_errors()` to get it as itself).
    """
    _check_positive(crop_frames=crop_frames, batch_size=batch_size, n_bands=n_bands)
    if n_epochs is not None:
        _check_positive(n_epochs=n_epochs)
    n_frames = _track_frames(data_dir, subset, n_frames, n_bands)
    reader = open_reader(data_dir, subset, n_frames, crop_frames=crop_frames, n_bands=n_bands)
    labels = tf.constant(subset.labels, dtype=tf.float32)

    drop_remainder = drop_remainder or global_batch is not None
    settings = dict(
        seed=seed, shuffle=shuffle, shard=shard, global_batch=global_batch, name=subset.name
    )
    epoch_order(len(subset), **settings)  # checks the settings here, not inside tf.data
    epochs = (
        tf.data.Dataset.counter(first_epoch)
        if n_epochs is None
        else tf.data.Dataset.range(first_epoch, first_epoch + n_epochs)
    )
    batches = epochs.flat_map(
        lambda epoch: epoch_order(len(subset), epoch=epoch, **settings).batch(
            batch_size, drop_remainder=drop_remainder
        )
    )
    dataset = _read_batches(
        batches,
        reader,
        reader.read_random,
        batch_size if drop_remainder else None,
        extra=lambda t: tf.gather(labels, t),
        dtype="float32" if mixup_alpha else dtype,
    )
    if mixup_alpha:
        # (epoch, batch of the epoch): the same batches, counted without reading a file.
        keys = epochs.flat_map(
            lambda epoch: (
                epoch_order(len(subset), epoch=epoch, **settings)
                .batch(batch_size, drop_remainder=drop_remainder)
                .enumerate()
                .map(lambda index, _: tf.stack([tf.cast(epoch, tf.int64), index]))
            )
        )
        dataset = mixup_batches(dataset, mixup_alpha, seed, keys=keys)
        if dtype != "float32":  # mixup mixes in float32
            dataset = dataset.map(lambda x, y: (tf.cast(x, dtype), y))
    if shard is not None:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dataset = dataset.with_options(options)
    return dataset


def steps_per_epoch(
    n_tracks: int, batch_size: int, *, drop_remainder: bool = False, global_batch: int | None = None
) -> int:
    """Batches of one `train_dataset` epoch (of every shard, with `global_batch`)."""
    if global_batch is not None:
        return n_tracks // global_batch
    return n_tracks // batch_size if drop_remainder else -(-n_tracks // batch_size)


class CropCache:
    """The regular crops of an evaluation, kept after its first pass: in RAM when they fit, else
    in a temporary file on disk.

    Regular crops do not change between epochs, so every validation after the first can take
    them from the cache instead of reading them again (10 crops of 3,802 validation tracks are
    most of the validation set's 16 GB, read every epoch). The first pass fills the cache as it
    reads (no extra pass); a later `eval_dataset` of the same crops serves them from it. Crops are
    kept bands-major in the reader's dtype: float16 from a float16 packed corpus (half the
    memory), so a later pass neither transposes nor reads scattered crops.

    Crops larger than `max_bytes` go, when `spill_dir` is given and its disk has room for them,
    to a file written once in the crops' order (sequential on later passes, and cached by the
    kernel as memory allows): a temporary file, unlinked as soon as it is made, so nothing is
    left behind however the process ends, and fully allocated before the first crop is written,
    so a disk that fills up later cannot take the process down (a write into a memory map past
    the disk's space would kill it with SIGBUS).

    Args:
        max_bytes: the most RAM the crops may take.
        spill_dir: where crops that do not fit in RAM may be kept instead (the run directory);
            None: such crops are read from the files every time (said once in the log).
    """

    #: Free space the disk keeps beyond the spilled crops.
    SPILL_MARGIN_BYTES = 2**30

    def __init__(self, max_bytes: int, spill_dir: str | Path | None = None):
        self.max_bytes = max_bytes
        self.spill_dir = None if spill_dir is None else Path(spill_dir)
        self._key = None
        self._crops: np.ndarray | None = None
        self._filled: np.ndarray | None = None
        self._lock = threading.Lock()
        self._refused: set = set()  # keys of crops that fit nowhere (said once each)

    @property
    def nbytes(self) -> int:
        return 0 if self._crops is None else self._crops.nbytes

    @property
    def on_disk(self) -> bool:
        """Whether the cached crops are in the temporary file rather than in RAM."""
        return isinstance(self._crops, np.memmap)

    @property
    def complete(self) -> bool:
        return self._filled is not None and bool(self._filled.all())

    def _prepare(self, key, n_batches: int, batch_shape: tuple[int, ...], dtype: np.dtype) -> bool:
        """Whether these crops can be cached; (re)allocates the cache for them if they are new."""
        if key == self._key:
            return True
        if key in self._refused:
            return False
        n_bytes = n_batches * int(np.prod(batch_shape)) * dtype.itemsize
        shape = (n_batches, *batch_shape)
        self._crops = self._filled = self._key = None  # let the old crops go first
        if n_bytes <= self.max_bytes:
            raw = np.empty(n_bytes + _ALIGNMENT, dtype=np.uint8)
            self._crops = _aligned_view(raw, shape, dtype)
        else:
            self._crops = self._spill(n_bytes, shape, dtype)
            if self._crops is None:
                self._refused.add(key)
                return False
        self._filled = np.zeros(n_batches, dtype=bool)
        self._key = key
        return True

    def _spill(self, n_bytes: int, shape: tuple[int, ...], dtype: np.dtype):
        """A zeroed `np.memmap` of `shape` in a new temporary file, or None (logged) if the crops
        may not or cannot go to disk."""
        import shutil
        import tempfile

        size = f"{n_bytes / 2**20:,.0f} MB"
        if self.spill_dir is None:
            log.info(
                "Evaluation crops (%s) exceed the crop cache (%.0f MB in RAM): read from the "
                "files every time",
                size,
                self.max_bytes / 2**20,
            )
            return None
        try:
            free = shutil.disk_usage(self.spill_dir).free
            if free < n_bytes + self.SPILL_MARGIN_BYTES:
                raise OSError(f"{free / 2**20:,.0f} MB free")
            handle = tempfile.TemporaryFile(dir=self.spill_dir, prefix="eval-crops-")
            try:
                os.posix_fallocate(handle.fileno(), 0, n_bytes)
                crops = np.memmap(handle, dtype=dtype, mode="r+", shape=shape)
            finally:
                handle.close()  # the mapping keeps the (already unlinked) file alive
        except OSError as error:
            log.info(
                "Evaluation crops (%s) exceed the crop cache (%.0f MB in RAM) and cannot be "
                "kept in %s (%s): read from the files every time",
                size,
                self.max_bytes / 2**20,
                self.spill_dir,
                error.strerror or error,
            )
            return None
        log.info(
            "Evaluation crops (%s) exceed the crop cache (%.0f MB in RAM): kept in a temporary "
            "file in %s after their first read (removed when the process ends)",
            size,
            self.max_bytes / 2**20,
            self.spill_dir,
        )
        return crops

    def _store(self, batch: int) -> np.ndarray:
        return self._crops[batch]

    def _stored(self, batch: int) -> np.ndarray:
        with self._lock:
            self._filled[batch] = True
        return self._crops[batch]


def _cached_batches(
    cache: CropCache, reader, tracks: np.ndarray, starts: np.ndarray, batch_size: int, dtype: str
) -> tf.data.Dataset:
    """Evaluation batches read into `cache` (first pass) or taken from it (later passes).

    The cache holds the crops bands-major in the stored dtype, as the model takes them but for
    the cast: a frames-major reader's batches are transposed once, before they are stored.
    """
    n_batches = len(tracks) // batch_size
    shape = _cache_batch_shape(reader, batch_size)
    stored = tf.as_dtype(reader.dtype)
    if cache.complete:

        def cached(batch):
            return cache._crops[batch]

        # No Python control flow to convert (and AutoGraph cannot read these closures' source).
        @tf.autograph.experimental.do_not_convert
        def take(batch):
            crops = tf.numpy_function(cached, [batch], stored, stateful=False, name="cached_crops")
            return _cast(tf.ensure_shape(crops, shape), dtype)

        return (
            tf.data.Dataset.range(n_batches)
            .map(take, num_parallel_calls=_parallel_reads(), deterministic=True)
            .prefetch(PREFETCH_BATCHES)
            .with_options(_options())
        )

    if reader.frames_major:
        buffers = _BatchBuffers(capacity=(os.cpu_count() or 1) + PREFETCH_BATCHES + 2)

        def read_batch(batch, batch_tracks, batch_starts):
            out = buffers.take(reader.batch_shape(len(batch_tracks)), reader.dtype)
            return reader.read(batch_tracks, batch_starts, out)

        def store(batch, crops):
            np.copyto(cache._store(batch), crops)
            return cache._stored(batch)

        @tf.autograph.experimental.do_not_convert
        def read(batch, elements):
            batch_tracks, batch_starts = elements
            crops = tf.numpy_function(
                _reporting(read_batch),
                [batch, batch_tracks, batch_starts],
                stored,
                stateful=False,
                name="read_crops",
            )
            crops = bands_major(tf.ensure_shape(crops, reader.batch_shape(batch_size)))
            crops = tf.numpy_function(
                store, [batch, crops], stored, stateful=False, name="cache_crops"
            )
            return _cast(tf.ensure_shape(crops, shape), dtype)

    else:

        def read_into_cache(batch, batch_tracks, batch_starts):
            reader.read(batch_tracks, batch_starts, cache._store(batch))
            return cache._stored(batch)

        @tf.autograph.experimental.do_not_convert
        def read(batch, elements):
            batch_tracks, batch_starts = elements
            crops = tf.numpy_function(
                _reporting(read_into_cache),
                [batch, batch_tracks, batch_starts],
                stored,
                stateful=False,
                name="read_crops_into_cache",
            )
            return _cast(tf.ensure_shape(crops, shape), dtype)

    batches = tf.data.Dataset.zip(
        (
            tf.data.Dataset.range(n_batches),
            tf.data.Dataset.from_tensor_slices((tracks, starts)).batch(batch_size),
        )
    )
    return (
        batches.map(read, num_parallel_calls=_parallel_reads(), deterministic=True)
        .prefetch(PREFETCH_BATCHES)
        .with_options(_options())
    )


def _cache_batch_shape(reader, batch_size: int) -> tuple[int, int, int]:
    """A cached batch's shape: bands-major, whatever the reader's layout."""
    return (batch_size, reader.n_bands, reader.crop_frames)


def eval_dataset(
    data_dir: str | Path,
    subset: Subset,
    n_frames=None,
    *,
    n_crops: int = 10,
    crop_frames: int = 1280,
    batch_size: int = 64,
    n_bands: int = N_BANDS,
    hop_frames: int | None = None,
    cache: CropCache | None = None,
    dtype: str = "float32",
) -> tf.data.Dataset:
    """K regular crops (or sliding windows) of every track, batched across tracks, batches full.

    Crops come in track-major order (track 0's K crops, then track 1's, ...), so the first
    `len(subset) * n_crops` outputs of a model belong, K by K, to the tracks in subset order
    (with `hop_frames`, track i has `len(sliding_window_starts(n_frames[i], ...))` of them).
    The last batch is filled up by repeating the last crop, so that the model always sees
    `batch_size` crops (one compiled shape); drop those outputs (`predict_tracks` does).

    Args:
        data_dir, subset, n_frames, crop_frames, batch_size, n_bands: as `train_dataset`.
        n_crops: K crops per track (paper: 10 for validation, 20 for test).
        hop_frames: None for regular crops; else sliding windows over the whole track this
            many frames apart (`sliding_window_starts`), and `n_crops` is not used.
        cache: keep the crops in memory for the next `eval_dataset` of the same crops (when
            they fit in it); None reads them from the files on every pass.
        dtype: as `train_dataset`.

    Returns:
        A dataset of x float32 `[batch_size, n_bands, crop_frames, 1]` (no labels).
    """
    _check_positive(
        n_crops=n_crops, crop_frames=crop_frames, batch_size=batch_size, n_bands=n_bands
    )
    n_frames = _track_frames(data_dir, subset, n_frames, n_bands)
    reader = open_reader(data_dir, subset, n_frames, crop_frames=crop_frames, n_bands=n_bands)
    tracks, starts = evaluation_crops(n_frames, crop_frames, n_crops, hop_frames)
    fill = -len(tracks) % batch_size
    if fill:
        tracks = np.concatenate([tracks, np.full(fill, tracks[-1])])
        starts = np.concatenate([starts, np.full(fill, starts[-1])])
    if cache is not None:
        key = (
            str(data_dir),
            hash(tuple(subset.melspec_paths.tolist())),
            n_crops,
            crop_frames,
            batch_size,
            n_bands,
            hop_frames,
        )
        if cache._prepare(
            key, len(tracks) // batch_size, _cache_batch_shape(reader, batch_size), reader.dtype
        ):
            return _cached_batches(cache, reader, tracks, starts, batch_size, dtype)
    batches = tf.data.Dataset.from_tensor_slices((tracks, starts)).batch(batch_size)
    return _read_batches(batches, reader, reader.read, batch_size, dtype=dtype)


def predict_tracks(
    model,
    data_dir: str | Path,
    subset: Subset,
    n_frames=None,
    *,
    n_crops: int = 10,
    crop_frames: int = 1280,
    batch_size: int = 64,
    n_bands: int = N_BANDS,
    hop_frames: int | None = None,
    progress: Progress | None = None,
    cache: CropCache | None = None,
    dtype: str = "float32",
) -> np.ndarray:
    """Each track's prediction: the mean of the model's outputs over its K regular crops, or
    over its sliding windows (`hop_frames`).

    Usable from a Keras callback during `fit` (it only calls `model.predict`).

    Args:
        model: a Keras model taking `[batch, n_bands, crop_frames, 1]` and returning sigmoid
            probabilities `[batch, n_tags]`.
        data_dir, subset, n_frames, n_crops, crop_frames, batch_size, n_bands, hop_frames,
            cache, dtype: as `eval_dataset`.
            `eval_dataset`.
        progress: told after every batch (`done` and `total` count batches).

    Returns:
        float32 `[len(subset), n_tags]`, rows in subset order.

    Raises:
        DataFileError: an unusable file (at the scan, or met while reading).
    """
    n_frames = _track_frames(data_dir, subset, n_frames, n_bands)
    dataset = eval_dataset(
        data_dir,
        subset,
        n_frames,
        n_crops=n_crops,
        crop_frames=crop_frames,
        batch_size=batch_size,
        n_bands=n_bands,
        hop_frames=hop_frames,
        cache=cache,
        dtype=dtype,
    )
    n_tracks = len(subset)
    if n_tracks == 0:
        return np.zeros((0, subset.labels.shape[1]), dtype=np.float32)
    tracks, _ = evaluation_crops(n_frames, crop_frames, n_crops, hop_frames)
    callbacks = _reporting_batches(progress, -(-len(tracks) // batch_size), subset)
    with data_errors():
        outputs = np.asarray(
            model.predict(dataset, verbose=0, callbacks=callbacks), dtype=np.float64
        )
    per_crop = outputs[: len(tracks)]
    counts = np.bincount(tracks, minlength=n_tracks)
    sums = np.add.reduceat(per_crop, np.concatenate([[0], np.cumsum(counts)[:-1]]), axis=0)
    return (sums / counts[:, None]).astype(np.float32)


def _reporting_batches(progress: Progress | None, n_batches: int, subset: Subset) -> list:
    """Keras callbacks that tell `progress` after every predicted batch."""
    if progress is None:
        return []
    import keras

    class Report(keras.callbacks.Callback):
        def on_predict_batch_end(self, batch, logs=None):
            progress(batch + 1, n_batches, f"{subset.name} batches")

    return [Report()]


def whole_track_dataset(
    data_dir: str | Path, subset: Subset, n_frames=None, *, min_frames: int, n_bands: int = N_BANDS
) -> tf.data.Dataset:
    """Every track whole, one per batch, in subset order.

    A track shorter than `min_frames` (the training crop) is padded at its end to that length,
    as the training pipeline pads it.

    Returns:
        A dataset of x float32 `[1, n_bands, frames, 1]`, frames varying from track to track.
    """
    _check_positive(min_frames=min_frames, n_bands=n_bands)
    n_frames = _track_frames(data_dir, subset, n_frames, n_bands)
    from emotion_keras.data import packed

    if packed.is_packed(data_dir):
        corpus = packed.open_packed(data_dir)
        rows = corpus.rows_of(subset)

        def read(track):
            values = corpus.track(int(rows[int(track)])).T  # [bands, frames], stored dtype
            out = np.full(
                (1, n_bands, max(values.shape[1], min_frames)), PAD_VALUE, dtype=np.float32
            )
            out[0, :, : values.shape[1]] = values
            return out
    else:
        reader = CropReader(data_dir, subset, n_frames, crop_frames=min_frames, n_bands=n_bands)

        def read(track):
            track = int(track)
            out = np.empty((1, n_bands, max(int(n_frames[track]), min_frames)), dtype=np.float32)
            return reader.read(np.array([track]), np.array([0]), out)

    def read_track(track):
        x = tf.numpy_function(
            _reporting(read), [track], tf.float32, stateful=False, name="read_track"
        )
        return tf.ensure_shape(x, [1, n_bands, None])[..., None]

    return (
        tf.data.Dataset.range(len(subset))
        .map(read_track, num_parallel_calls=_parallel_reads(), deterministic=True)
        .prefetch(PREFETCH_BATCHES)
        .with_options(_options())
    )


def predict_whole_tracks(
    model,
    data_dir: str | Path,
    subset: Subset,
    n_frames=None,
    *,
    min_frames: int,
    n_bands: int = N_BANDS,
    progress: Progress | None = None,
) -> np.ndarray:
    """Each track's prediction from one pass of the whole track (`eval_mode` "track").

    Args:
        model: a Keras model taking `[1, n_bands, frames, 1]` of any number of frames and
            returning `[1, n_tags]` (`emotion_keras.models.whole_track_model`).
        data_dir, subset, n_frames, min_frames, n_bands: as `whole_track_dataset`.
        progress: told after every track.

    Returns:
        float32 `[len(subset), n_tags]`, rows in subset order.
    """
    dataset = whole_track_dataset(
        data_dir, subset, n_frames, min_frames=min_frames, n_bands=n_bands
    )
    if len(subset) == 0:
        return np.zeros((0, subset.labels.shape[1]), dtype=np.float32)
    with data_errors():
        outputs = model.predict(
            dataset, verbose=0, callbacks=_reporting_batches(progress, len(subset), subset)
        )
    return np.asarray(outputs, dtype=np.float32)
