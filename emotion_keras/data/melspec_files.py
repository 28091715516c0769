"""Reading MTG-Jamendo mel-spectrogram files (`.npy`, `[96, frames]`) a crop at a time.

The real corpus is 68 GB, far more than RAM, and a training step needs only a 1,280-frame crop of
each track. This module reads a file's `.npy` header without its data (`read_header`), checks a
whole subset's headers at start-up so that a missing or malformed file stops a run before its
first epoch (`scan_melspecs`), and reads one crop without reading the rest of the file
(`read_crop`, `MelspecFile`): the official files are stored bands-first, so a crop is 96 runs of
`crop_frames` values, one per band, copied out of a memory map. `relayout_melspecs` writes an
optional frames-major copy of a corpus (the same arrays, Fortran order on disk) in which a crop
is one contiguous run, read with a single system call: about twice the crops per second.

What is refused, always with a `DataFileError` naming the file and the problem: a missing or
unreadable file, a file that is not a `.npy` file, a pickled array (object dtype; NumPy would
have to unpickle it, which can run arbitrary code, so it is never loaded), a shape other than
`[n_bands, frames]`, a non-float dtype, a file shorter than its header says (truncated), and NaN
or infinite values in a crop that is read. float16 and float64 files are cast to float32.
NaN/inf are checked in every crop read, not in whole files: finding them in the whole file would
mean reading all of it, which is what this module exists to avoid.

Padding: a track shorter than the crop is padded at its end with `PAD_VALUE`, -200 dB, the
floor of the dataset's `lin2db` scale (`MTG_JAMENDO.pad_value`: digital silence in the official
extraction), so a padded crop reads as the track followed by silence. Evaluation and the
exported model pad the same way.

This module knows nothing about TensorFlow, labels or crop positions; `emotion_keras.data.crops`
and `emotion_keras.data.pipeline` decide which crops to read.
"""

from __future__ import annotations

import dataclasses
import math
import mmap
import os
import threading
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.data.metadata import MAX_LISTED, Subset
from emotion_keras.errors import ConfigError, DataFileError
from emotion_keras.fileio import atomic_save_npy
from emotion_keras.progress import Progress, every

#: The value of frames past the end of a track (a track shorter than the crop is padded with it).
PAD_VALUE = MTG_JAMENDO.pad_value
N_BANDS = MTG_JAMENDO.n_bands

# Generous for a 2-D array header; NumPy's own default limit is 10,000 characters.
_MAX_HEADER_SIZE = 10_000


@dataclasses.dataclass(frozen=True)
class NpyHeader:
    """What a `.npy` header says about the array that follows it.

    Attributes:
        shape: the array's shape.
        dtype: the stored dtype (byte order included).
        fortran_order: True if the data is stored column-major.
        data_offset: byte offset of the first value in the file.
        file_size: the file's size in bytes when the header was read.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int
    file_size: int

    @property
    def data_bytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize  # math.prod: np.prod costs 5 us

    @property
    def n_frames(self) -> int:
        return int(self.shape[-1])


def read_npy_header(path: str | Path) -> NpyHeader:
    """Reads the header of a `.npy` file without reading its data.

    Raises:
        DataFileError: the file is missing or unreadable, is not a `.npy` file (bad magic string
            or header), uses an unsupported format version, or holds a pickled (object) array.
    """
    try:
        with open(path, "rb") as handle:
            try:
                version = npy_format.read_magic(handle)
                if version == (1, 0):
                    shape, fortran_order, dtype = npy_format.read_array_header_1_0(
                        handle, max_header_size=_MAX_HEADER_SIZE
                    )
                elif version == (2, 0):
                    shape, fortran_order, dtype = npy_format.read_array_header_2_0(
                        handle, max_header_size=_MAX_HEADER_SIZE
                    )
                else:
                    # Version 3.0 exists only for structured dtypes with non-Latin-1 field
                    # names, which a mel-spectrogram never has.
                    raise DataFileError(
                        f"{path}: .npy format version {version[0]}.{version[1]} "
                        f"is not supported (expected 1.0 or 2.0, as np.save "
                        f"writes for float arrays)"
                    )
            except ValueError as error:
                reason = str(error).splitlines()[0] if str(error) else type(error).__name__
                raise DataFileError(f"{path}: not a valid .npy file ({reason})") from None
            data_offset = handle.tell()
            file_size = os.fstat(handle.fileno()).st_size
    except FileNotFoundError:
        raise DataFileError(f"{path}: melspec file not found") from None
    except IsADirectoryError:
        raise DataFileError(f"{path}: is a directory, expected a .npy file") from None
    except OSError as error:
        raise DataFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    if dtype.hasobject:
        raise DataFileError(
            f"{path}: holds a pickled object array; refusing to unpickle it "
            f"(expected float32 values of shape [bands, frames])"
        )
    return NpyHeader(
        tuple(int(n) for n in shape), dtype, bool(fortran_order), data_offset, file_size
    )


def read_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype a `.npy` file holds, read from its header alone.

    Raises:
        DataFileError: as `read_npy_header`.
    """
    header = read_npy_header(path)
    return header.shape, header.dtype


def header_problem(header: NpyHeader, n_bands: int = N_BANDS) -> str | None:
    """What makes a melspec with this header unusable, or None if it is usable."""
    if len(header.shape) != 2:
        return f"expected a 2-D [{n_bands}, frames] array, found shape {list(header.shape)}"
    if header.shape[0] != n_bands:
        return (
            f"expected {n_bands} mel bands (shape [{n_bands}, frames]), found shape "
            f"{list(header.shape)}"
        )
    if header.shape[1] < 1:
        return "holds no frames (shape [bands, 0])"
    if header.dtype.kind != "f":
        return f"dtype {header.dtype} is not a float type (expected float32)"
    expected = header.data_offset + header.data_bytes
    if header.file_size < expected:
        return (
            f"truncated: its header promises {expected:,} bytes, the file has {header.file_size:,}"
        )
    return None


def check_header(path: str | Path, n_bands: int = N_BANDS) -> NpyHeader:
    """Reads and validates one melspec header; raises DataFileError naming the file if unusable."""
    header = read_npy_header(path)
    problem = header_problem(header, n_bands)
    if problem:
        raise DataFileError(f"{path}: {problem}")
    return header


def scan_melspecs(
    data_dir: str | Path, subset: Subset, n_bands: int = N_BANDS, progress: Progress | None = None
) -> np.ndarray:
    """Frame counts of every track of `subset`, from the `.npy` headers alone.

    Run at start-up: it reads a few hundred bytes per file, and reports every missing or
    malformed file at once instead of failing mid-epoch on the first.

    Args:
        data_dir: the melspec root (`00/ ... 99/` of `.npy` files), or a packed corpus
            (`emotion_keras.data.packed`), whose index holds the frame counts.
        subset: the tracks, whose `melspec_paths` are relative to `data_dir`.
        n_bands: the band count every file must have.
        progress: told every 1,000 files (a scan of the real corpus takes seconds to minutes).

    Returns:
        int64 `[len(subset)]`, the frames of each track in subset order.

    Raises:
        DataFileError: one error listing how many files are unusable and the first few with
            their problem (missing, not .npy, pickled, wrong shape, non-float, truncated).
    """
    from emotion_keras.data import packed

    if packed.is_packed(data_dir):  # a packed corpus: the frame counts are in its index
        return packed.open_packed(data_dir).frames_of(subset, n_bands)
    root = check_melspec_root(data_dir)
    frames = np.zeros(len(subset), dtype=np.int64)
    problems = []
    report = every(progress, 1000)
    for i, relative in enumerate(subset.melspec_paths):
        report(i, len(subset), f"{subset.name} headers")
        try:
            header = read_npy_header(root / relative)
        except DataFileError as error:
            # The error names the full path; the list below names paths relative to the root.
            problems.append(f"{relative} ({str(error).split(': ', 1)[1]})")
            continue
        problem = header_problem(header, n_bands)
        if problem:
            problems.append(f"{relative} ({problem})")
        else:
            frames[i] = header.n_frames
    report(len(subset), len(subset), f"{subset.name} headers")
    if problems:
        listed = "; ".join(problems[:MAX_LISTED])
        more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise DataFileError(
            f"{root}: {len(problems)} of {len(subset)} melspec files of "
            f"{subset.name} are unusable: {listed}{more}"
        )
    return frames


def check_melspec_root(data_dir: str | Path) -> Path:
    """`data_dir` as a Path, or a DataFileError if it is not a folder."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataFileError(
            f"data_dir {data_dir}: not a directory (expected the melspec "
            f"root holding 00/ ... 99/ folders of .npy files)",
            arguments=("data_dir",),
        )
    return root


class MelspecFile:
    """One open melspec file from which crops are copied without reading the rest.

    How a crop is read depends on the file's layout:

    - bands-major (C order, `np.save`'s default and the official download): a crop is one run
      of frames per band, 96 runs far apart. The file is memory-mapped and the runs copied
      out; the mapping is released by `close()`, so the pages a crop touched stop counting
      towards the process's memory (keeping maps open would let it grow with the corpus).
    - frames-major (Fortran order, as `relayout_melspecs` writes): a crop is one contiguous run
      of bytes, read with a single `pread` into a per-thread scratch buffer and transposed into
      place: no page-table work, one system call, about twice as fast.

    Args:
        path: the `.npy` file.
        header: its header as `check_header` returned it (trusted: the pipelines open a file
            per crop and check each header once); read and checked here when None.
        n_bands: the band count the file must have.
    """

    def __init__(self, path: str | Path, header: NpyHeader | None = None, n_bands: int = N_BANDS):
        self.path = path
        self.header = header if header is not None else check_header(path, n_bands)
        try:
            self._fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise DataFileError(f"{path}: melspec file not found") from None
        except OSError as error:
            raise DataFileError(f"{path}: cannot be read ({error.strerror or error})") from None
        self._map = None
        if self.header.fortran_order:
            return  # read with pread, which reports a short file itself
        try:
            # Checked again at every open: touching a mapped page past the end of a file that
            # shrank after the scan would kill the process with SIGBUS instead of raising.
            size = os.fstat(self._fd).st_size
            needed = self.header.data_offset + self.header.data_bytes
            if size < needed:
                raise DataFileError(
                    f"{path}: truncated: its header promises {needed:,} bytes, "
                    f"the file has {size:,}"
                )
            self._map = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        except BaseException:
            os.close(self._fd)
            raise

    def __enter__(self) -> MelspecFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
        os.close(self._fd)

    def read_into(self, start: int, out: np.ndarray) -> None:
        """Copies frames `[start, start + out.shape[1])` into `out` (float32 `[bands, frames]`).

        Frames past the end of the track are set to `PAD_VALUE`.

        Raises:
            ValueError: `start` is not a frame of the track (a caller's bug).
            DataFileError: the copied frames hold NaN or infinite values, or the file shrank.
        """
        header = self.header
        n_bands, n_frames = header.shape
        if not 0 <= start < n_frames:
            raise ValueError(
                f"{self.path}: crop start {start} outside the track's {n_frames} frames"
            )
        stop = min(start + out.shape[1], n_frames)
        if header.fortran_order:
            self._read_frames_major(start, stop, out)
        else:
            view = np.ndarray(
                (n_bands, stop - start),
                dtype=header.dtype,
                buffer=self._map,
                offset=header.data_offset + start * header.dtype.itemsize,
                strides=(n_frames * header.dtype.itemsize, header.dtype.itemsize),
            )
            try:
                out[:, : stop - start] = view  # the only read of file data; casts to float32
            finally:
                del view  # a live view would keep the mapping from closing
        if stop - start < out.shape[1]:
            out[:, stop - start :] = PAD_VALUE
        if not np.isfinite(out[:, : stop - start]).all():
            raise DataFileError(
                f"{self.path}: holds NaN or infinite values in frames "
                f"{start}-{stop - 1} (expected finite dB values)"
            )

    def _read_frames_major(self, start: int, stop: int, out: np.ndarray) -> None:
        header = self.header
        n_bands = header.shape[0]
        frames = _scratch((stop - start, n_bands), header.dtype)
        wanted = frames.nbytes
        got = os.preadv(
            self._fd,
            [memoryview(frames).cast("B")],
            header.data_offset + start * n_bands * header.dtype.itemsize,
        )
        if got != wanted:
            raise DataFileError(
                f"{self.path}: truncated while reading: got {got:,} of {wanted:,} bytes"
            )
        out[:, : stop - start] = frames.T


_THREAD_LOCAL = threading.local()


def _scratch(shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """This thread's reusable buffer, as an array of `shape` and `dtype` (contents undefined)."""
    n_bytes = shape[0] * shape[1] * dtype.itemsize
    raw = getattr(_THREAD_LOCAL, "scratch", None)
    if raw is None or raw.nbytes < n_bytes:
        raw = _THREAD_LOCAL.scratch = np.empty(n_bytes, dtype=np.uint8)
    return raw[:n_bytes].view(dtype).reshape(shape)


def read_crop(
    path: str | Path,
    start: int,
    n_frames: int,
    *,
    n_bands: int = N_BANDS,
    header: NpyHeader | None = None,
) -> np.ndarray:
    """Reads one crop of a melspec, touching only the crop's bytes.

    Args:
        path: the `.npy` file, float `[n_bands, frames]`.
        start: the first frame of the crop (0 for a track shorter than the crop).
        n_frames: the crop length; frames past the end of the track are `PAD_VALUE`.
        n_bands: the band count the file must have.
        header: the file's header, to skip reading it again (still checked).

    Returns:
        float32 `[n_bands, n_frames]`.

    Raises:
        DataFileError: the file is missing, not a `.npy` file, pickled, of the wrong shape or
            dtype, truncated, or holds NaN/inf in the crop.
    """
    out = np.empty((n_bands, n_frames), dtype=np.float32)
    if header is not None:
        problem = header_problem(header, n_bands)
        if problem:
            raise DataFileError(f"{path}: {problem}")
    with MelspecFile(path, header, n_bands) as melspec:
        melspec.read_into(start, out)
    return out


def load_melspec(path: str | Path, n_bands: int = N_BANDS) -> np.ndarray:
    """Reads a whole melspec file (a user's track), validated as every crop is.

    Returns:
        float32 `[n_bands, frames]`.

    Raises:
        DataFileError: the file is missing, not a `.npy` file, pickled, of the wrong shape or
            dtype, truncated, or holds NaN/inf.
    """
    header = check_header(path, n_bands)
    with MelspecFile(path, header, n_bands) as melspec:
        out = np.empty(header.shape, dtype=np.float32)
        melspec.read_into(0, out)
    return out


def write_frames_major(source: str | Path, target: str | Path, n_bands: int = N_BANDS) -> None:
    """Writes the melspec `source` again, frames-major (Fortran order), to `target` (atomically).

    The array is the same (`np.load` returns equal arrays of shape `[bands, frames]`); only the
    order of bytes on disk changes, so that every crop is one contiguous run of bytes.
    """
    check_header(source, n_bands)
    array = np.load(source, mmap_mode="r", allow_pickle=False)
    atomic_save_npy(target, np.asfortranarray(array))


def relayout_melspecs(
    source_dir: str | Path,
    target_dir: str | Path,
    *,
    n_bands: int = N_BANDS,
    progress: Progress | None = None,
) -> dict:
    """Writes a frames-major copy of every `.npy` file under `source_dir` into `target_dir`.

    The optional faster layout for training: crops of frames-major files are read with one
    system call instead of 96 page-mapped runs (see `MelspecFile`); the pipeline reads both
    layouts and gives the same crops. Relative paths are kept (`48/948.npy`), so the copy is a
    drop-in `--data-dir`. Files already converted are skipped, so an interrupted run resumes;
    each file is written atomically.

    Returns:
        `{"converted": n, "skipped": n, "bytes": n}` (bytes written).

    Raises:
        DataFileError: `source_dir` holds no `.npy` files, or some files are unusable (listed,
            after converting all the others).
        ConfigError: `target_dir` is `source_dir` or inside it.
    """
    source_dir, target_dir = Path(source_dir), Path(target_dir)
    if not source_dir.is_dir():
        raise DataFileError(
            f"{source_dir}: not a directory (expected the melspec root holding "
            f"00/ ... 99/ folders of .npy files)"
        )
    if (
        target_dir.resolve() == source_dir.resolve()
        or source_dir.resolve() in target_dir.resolve().parents
    ):
        raise ConfigError(
            f"target_dir {target_dir}: must be outside the source folder {source_dir}",
            arguments=("target_dir",),
        )
    files = sorted(source_dir.rglob("*.npy"))
    if not files:
        raise DataFileError(f"{source_dir}: holds no .npy files")
    counts = {"converted": 0, "skipped": 0, "bytes": 0}
    problems = []
    report = every(progress, 100)
    for done, path in enumerate(files, start=1):
        relative = path.relative_to(source_dir)
        target = target_dir / relative
        try:
            header = check_header(path, n_bands)
        except DataFileError as error:
            problems.append(f"{relative} ({str(error).split(': ', 1)[1]})")
            continue
        if target.is_file() and _is_frames_major_copy(target, header):
            counts["skipped"] += 1
        else:
            write_frames_major(path, target, n_bands)
            counts["converted"] += 1
            counts["bytes"] += target.stat().st_size
        report(done, len(files), "files")
    if problems:
        listed = "; ".join(problems[:MAX_LISTED])
        more = f"; and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise DataFileError(
            f"{source_dir}: {len(problems)} of {len(files)} files are unusable "
            f"and were not converted: {listed}{more}"
        )
    return counts


def _is_frames_major_copy(target: Path, header: NpyHeader) -> bool:
    try:
        copy = read_npy_header(target)
    except DataFileError:
        return False
    return (
        copy.shape == header.shape
        and copy.fortran_order
        and header_problem(copy, header.shape[0]) is None
    )
