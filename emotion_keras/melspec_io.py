"""Reading MTG-Jamendo mel-spectrogram `.npy` files: headers, validation, and single crops.

The corpus is 68 GB of `[96 bands, frames]` float32 arrays, far more than memory, so nothing here
loads a whole file: `read_header` parses only the `.npy` header, and `read_crop` memory-maps the
file and copies just the crop's bytes (96 row segments of `crop_frames` values each).

`scan_melspecs` checks every file of a subset from its header before training starts and reports
all problems at once. What a header cannot show (NaN/inf values) is checked on each crop as it is
read. Nothing is ever unpickled: object arrays are refused.

This module knows nothing about TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emotion_keras.errors import DataFileError

#: What a track shorter than one crop is padded with, at its end: digital silence in the
#: dataset's scale (Essentia's lin2db with scale 2 floors at -200 dB).
SILENCE_DB = -200.0
#: How many problems an error message lists before summarising the rest.
MAX_LISTED = 5


def read_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """Parses a `.npy` header without reading the data.

    Returns:
        (shape, dtype, fortran_order, data offset in bytes).

    Raises:
        DataFileError: missing file, not a `.npy` file, a pickled (object) array, or a file
            shorter than its header says (truncated).
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            try:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            except ValueError as error:
                raise DataFileError(f"{path}: not a valid .npy file ({error})") from None
            offset = handle.tell()
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataFileError(f"{path}: is a directory, expected a .npy file") from None
    if dtype.hasobject:
        raise DataFileError(f"{path}: holds a pickled object array; only numeric arrays are "
                            f"read (never unpickled)")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size < expected:
        raise DataFileError(f"{path}: truncated ({size} bytes, its header needs {expected})")
    return tuple(shape), dtype, fortran, offset


def check_melspec_header(path: str | Path, n_bands: int = 96) -> int:
    """Validates a melspec file from its header; returns its frame count."""
    shape, dtype, _, _ = read_header(path)
    if len(shape) != 2 or shape[0] != n_bands:
        raise DataFileError(f"{path}: shape {shape}, expected [{n_bands}, frames] "
                            f"(bands first, as the dataset stores them)")
    if dtype.kind != "f":
        raise DataFileError(f"{path}: dtype {dtype}, expected float32 (float16/float64 are "
                            f"cast)")
    if shape[1] < 1:
        raise DataFileError(f"{path}: has no frames")
    return int(shape[1])


def scan_melspecs(data_dir: str | Path, subset, n_bands: int = 96) -> np.ndarray:
    """Frame counts of every melspec of `subset`, checked from their headers.

    Args:
        data_dir: the melspec root.
        subset: an `emotion_keras.metadata.Subset`.
        n_bands: the band count every file must have.

    Returns:
        int64 `[n_tracks]` frame counts, in subset order.

    Raises:
        DataFileError: one error listing every bad file (count and the first few problems).
    """
    root = Path(data_dir)
    frames = np.zeros(len(subset), dtype=np.int64)
    problems = []
    for i, relative in enumerate(subset.melspec_paths):
        try:
            frames[i] = check_melspec_header(root / relative, n_bands)
        except DataFileError as error:
            problems.append(str(error))
    if problems:
        listed = "; ".join(problems[:MAX_LISTED])
        more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise DataFileError(f"{len(problems)} of {len(subset)} melspec files of {subset.name} "
                            f"are unusable: {listed}{more}")
    return frames


def open_melspec(path: str | Path) -> np.ndarray:
    """A read-only memory map of a melspec (no data is read until sliced)."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataFileError(f"{path}: cannot be read as a .npy array ({error})") from None


def read_crop(path: str | Path, start: int, n_frames: int) -> np.ndarray:
    """Reads frames `[start, start + n_frames)` of a melspec as float32 `[bands, n_frames]`.

    Only the crop's bytes are read. A track shorter than the crop is padded at its end with
    `SILENCE_DB` (the start is then 0). float16/float64 files are cast to float32.

    Raises:
        DataFileError: unreadable file, or NaN/inf inside the crop.
    """
    array = open_melspec(path)
    crop = np.asarray(array[:, start:start + n_frames], dtype=np.float32)
    if crop.shape[1] < n_frames:
        crop = np.pad(crop, ((0, 0), (0, n_frames - crop.shape[1])), constant_values=SILENCE_DB)
    if not np.isfinite(crop).all():
        raise DataFileError(f"{path}: holds NaN or infinite values in frames {start}-"
                            f"{start + n_frames}")
    return crop
