"""The NumPy side of the crop pipelines: crop positions and the crop reader, without TensorFlow.

`pipeline` wraps `CropReader` in `tf.data`; code that must run where TensorFlow is absent (the
training benchmark on Keras's JAX backend) reads crops with it directly. This module must not
import TensorFlow or Keras, and it does not parse files itself (that is `melspec_files`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotion_keras.data.melspec_files import MelspecFile, NpyHeader, check_header
from emotion_keras.data.metadata import Subset
from emotion_keras.errors import DataFileError


def random_crop_start(n_frames, crop_frames: int, random_values) -> np.ndarray:
    """Maps random integers to uniformly distributed crop starts.

    Args:
        n_frames: frames of each track (int or array).
        crop_frames: the crop length T.
        random_values: random integers (any sign), one per track, broadcast against `n_frames`.

    Returns:
        int64 starts in `[0, max(n_frames - T, 0)]` (both ends included); 0 for a track shorter
        than T, which is then padded.
    """
    span = np.maximum(np.asarray(n_frames, dtype=np.int64) - crop_frames, 0)
    # NumPy's % takes the divisor's sign, so negative draws give valid starts too; the bias of a
    # 64-bit draw modulo a span of at most ~10^6 frames is below 10^-12.
    return np.asarray(random_values, dtype=np.int64) % (span + 1)


class CropReader:
    """Reads batches of crops of one subset's tracks: the NumPy side of the pipelines.

    Headers are read (and checked against the start-up scan) on a track's first read and cached;
    each crop opens its file, copies the crop out (`melspec_files.MelspecFile`) and closes it, so
    nothing of the corpus stays in memory. Consecutive crops of the same track (evaluation)
    share one opening. Safe to call from several `tf.data` threads at once.

    Args:
        data_dir: the melspec root.
        subset: the tracks (their `melspec_paths`).
        n_frames: each track's frames, as `scan_melspecs` found them.
        crop_frames: the crop length T.
        n_bands: bands of every file.
    """

    #: Batches are `[n, bands, frames]` float32 (a `PackedCropReader`'s are frames-major:
    #: `bands_major` turns them).
    frames_major = False
    dtype = np.dtype(np.float32)

    def __init__(
        self,
        data_dir: str | Path,
        subset: Subset,
        n_frames: np.ndarray,
        *,
        crop_frames: int,
        n_bands: int,
    ):
        root = Path(data_dir)
        self.paths = [str(root / path) for path in subset.melspec_paths]
        self.n_frames = np.asarray(n_frames, dtype=np.int64)
        self.crop_frames = crop_frames
        self.n_bands = n_bands
        self._headers: dict[int, NpyHeader] = {}

    def header(self, track: int) -> NpyHeader:
        header = self._headers.get(track)
        if header is None:
            header = check_header(self.paths[track], self.n_bands)
            if header.n_frames != self.n_frames[track]:
                raise DataFileError(
                    f"{self.paths[track]}: now has {header.n_frames} frames, "
                    f"the start-up scan found {self.n_frames[track]} (was the "
                    f"file replaced during the run?)"
                )
            self._headers[track] = header
        return header

    def batch_shape(self, n_crops: int) -> tuple[int, int, int]:
        return (n_crops, self.n_bands, self.crop_frames)

    def read(
        self, tracks: np.ndarray, starts: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Crop k of track `tracks[k]` from frame `starts[k]`, for every k.

        Returns:
            `out` (or a new array) filled: float32 `[len(tracks), n_bands, crop_frames]`.
        """
        if out is None:
            out = np.empty(self.batch_shape(len(tracks)), dtype=np.float32)
        melspec, current = None, None
        try:
            for k, (track, start) in enumerate(zip(tracks.tolist(), starts.tolist())):
                if track != current:
                    if melspec is not None:
                        melspec.close()
                        melspec = None
                    melspec = MelspecFile(self.paths[track], self.header(track), self.n_bands)
                    current = track
                melspec.read_into(start, out[k])
        finally:
            if melspec is not None:
                melspec.close()
        return out

    def read_random(
        self, tracks: np.ndarray, draws: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Random crops: `draws` (random integers) pick each crop's start uniformly."""
        return self.read(
            tracks, random_crop_start(self.n_frames[tracks], self.crop_frames, draws), out
        )


def bands_major(batch: np.ndarray) -> np.ndarray:
    """A frames-major batch `[n, frames, bands]` -> a new bands-major `[n, bands, frames]` one.

    For callers without TensorFlow (the pipeline transposes in TensorFlow, `pipeline.bands_major`,
    which is faster). 16-bit values are copied as integers: NumPy copies float16 value by value,
    about three times slower.
    """
    out = np.empty((batch.shape[0], batch.shape[2], batch.shape[1]), dtype=batch.dtype)
    raw = np.dtype(f"u{batch.dtype.itemsize}")
    np.copyto(out.view(raw), batch.view(raw).transpose(0, 2, 1))
    return out


def open_reader(
    data_dir: str | Path, subset: Subset, n_frames: np.ndarray, *, crop_frames: int, n_bands: int
):
    """The crop reader for `data_dir`: a `CropReader` for a melspec folder, a
    `packed.PackedCropReader` for a packed corpus (frames-major batches in its stored dtype)."""
    from emotion_keras.data import packed

    if packed.is_packed(data_dir):
        return packed.PackedCropReader(
            data_dir, subset, n_frames, crop_frames=crop_frames, n_bands=n_bands
        )
    return CropReader(data_dir, subset, n_frames, crop_frames=crop_frames, n_bands=n_bands)
