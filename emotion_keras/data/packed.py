"""A packed corpus: every track of a melspec tree in one HDF5 file, frames-major and contiguous.

The official corpus is 18,486 `.npy` files (68 GB, float32, bands-major): a random crop is 96
scattered runs, and an epoch's worth of crops is seconds of page-table work and gigabytes of
scattered reads (BENCHMARKS.md). `pack_melspecs` writes the tracks of chosen subsets into one
file, each track `[frames, bands]` (frames-major, so a crop is one contiguous run of bytes), one
after the other in a single contiguous HDF5 dataset, stored as float16 (half the size: 68 GB
becomes about 34 GB, and the values, dB on a -200 .. +50 scale, keep 3 significant digits) or
float32 (exact). The file's layout:

    /melspecs             [total_frames, n_bands] float16|float32, contiguous (no chunks, no
                          compression), so that a crop is one read at a known file offset
    /index/track_id       the TSV's TRACK_ID of each packed track
    /index/path           its melspec path relative to the source root (`48/948.npy`): the key
    /index/offset         its first row in /melspecs
    /index/frames         its frame count
    /index/crc32          CRC-32 of its stored bytes (checked by `verify_packed`)
    attributes            format, format_version, complete, source, subsets, dtype, n_bands,
                          total_frames, package_version

Writing is atomic and resumable: the file is built under `OUT.partial`, its HDF5 structure
written and closed first, then the tracks' bytes are written into the dataset's reserved space
with `pwrite` and progress is recorded beside it (`OUT.partial.json`, written atomically after
each fsync of the data). A killed pack resumes from its last record; only a finished pack is
marked `complete` and renamed to `OUT`, so no file that looks complete is ever half written.

Reading (`open_packed`, `PackedCropReader`) does not use h5py for crops: h5py reads the
attributes and the index once (and the dataset's file offset); each crop is then one `pread` of
its contiguous bytes into a preallocated `[batch, crop_frames, bands]` buffer in the stored
dtype (the kernel copies without the GIL; the file is read with `POSIX_FADV_RANDOM`, so a cold
crop reads its own pages and no read-ahead), and the pipeline transposes and casts the batch to
float32 in TensorFlow. Nothing is mapped, so the process's resident memory is its batches
whatever the corpus size.

Values are checked when packed (every frame read from the source is checked finite, and a
float16 cast must not overflow), so reading trusts them; a file that is truncated, not a packed
corpus, unfinished, or whose index was altered is refused at open with a `DataFileError` naming
it; altered values are found by `verify_packed` (the stored CRCs).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
import zlib
from pathlib import Path

import numpy as np

from emotion_keras.data.melspec_files import N_BANDS, PAD_VALUE, load_melspec, scan_melspecs
from emotion_keras.data.metadata import MAX_LISTED, SUBSETS, Subset, read_subset, split_tsv_path
from emotion_keras.errors import ConfigError, DataFileError
from emotion_keras.fileio import atomic_write_text
from emotion_keras.progress import Progress, log

FORMAT = "emotion_keras packed melspecs"
FORMAT_VERSION = 1
DATA = "melspecs"
INDEX = "index"
DTYPES = ("float16", "float32")
SUFFIXES = (".h5", ".hdf5")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Bytes of tracks written between two fsyncs and progress records.
_RECORD_BYTES = 256 * 2**20


def is_packed(path: str | Path) -> bool:
    """True if `path` is a file that claims to be a packed corpus (an HDF5 file).

    A melspec folder is not; whether the file really is a usable packed corpus is checked by
    `open_packed`.
    """
    path = Path(path)
    if path.suffix in SUFFIXES:
        return not path.is_dir()
    try:
        with open(path, "rb") as handle:
            return handle.read(8) == _HDF5_SIGNATURE
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Writing


def pack_subsets(meta_dir: str | Path, names: list[str] | None = None) -> list[Subset]:
    """The subsets named `split-N/SUBSET` (all subsets of all five splits when `names` is empty).

    Raises:
        ConfigError: a name not of the form `split-N/SUBSET` (argument `subsets`).
        MetadataError: as `read_subset`.
    """
    if not names:
        # Split 0 must be there; later splits where present (the demo dataset has only split 0).
        return [
            read_subset(meta_dir, split, subset)
            for split in range(5)
            for subset in SUBSETS
            if split == 0 or split_tsv_path(meta_dir, split, subset).is_file()
        ]
    result = []
    for name in names:
        split_name, _, subset = name.partition("/")
        if not (split_name.startswith("split-") and split_name[6:].isdigit() and subset in SUBSETS):
            raise ConfigError(
                f"subsets {name!r}: expected split-N/SUBSET with SUBSET one of "
                f"{', '.join(SUBSETS)}, e.g. split-0/train",
                arguments=("subsets",),
            )
        result.append(read_subset(meta_dir, int(split_name[6:]), subset))
    return result


def _union(subsets: list[Subset]) -> Subset:
    """The tracks of `subsets` in order, each once (keyed by melspec path)."""
    seen, ids, paths = set(), [], []
    for subset in subsets:
        for track_id, path in zip(subset.track_ids.tolist(), subset.melspec_paths.tolist()):
            if path not in seen:
                seen.add(path)
                ids.append(track_id)
                paths.append(path)
    n = len(paths)
    return Subset(
        name=" + ".join(s.name for s in subsets) or "no subsets",
        track_ids=np.array(ids, dtype=str),
        melspec_paths=np.array(paths, dtype=str),
        durations_s=np.zeros(n),
        labels=np.zeros((n, 0), dtype=bool),
        tags=(),
    )


def _partial_paths(out: Path) -> tuple[Path, Path]:
    return out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json")


def pack_melspecs(
    source_dir: str | Path,
    subsets: list[Subset],
    out: str | Path,
    *,
    dtype: str = "float16",
    n_bands: int = N_BANDS,
    progress: Progress | None = None,
) -> dict:
    """Packs the tracks of `subsets` (each once) from `source_dir` into the HDF5 file `out`.

    Args:
        source_dir: the melspec root (`00/ ... 99/` of `.npy` files, either layout).
        subsets: whose tracks to pack, in order (`pack_subsets`).
        out: the packed file to write; an interrupted pack of the same tracks and settings
            resumes (`OUT.partial`), a finished `out` is replaced.
        dtype: `float16` (half the size) or `float32` (exact).
        n_bands: mel bands of every file.
        progress: told as bytes are written: `done`/`total` in MB, the note gives MB/s.

    Returns:
        `{"tracks", "frames", "bytes", "seconds", "mb_per_s", "resumed_tracks"}`.

    Raises:
        ConfigError: an unknown dtype.
        DataFileError: unusable source files (all listed, before anything is written), a
            value that is NaN/inf or overflows float16.
    """
    import h5py

    import emotion_keras

    if dtype not in DTYPES:
        raise ConfigError(
            f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}", arguments=("dtype",)
        )
    source_dir, out = Path(source_dir), Path(out)
    tracks = _union(subsets)
    if not len(tracks):
        raise ConfigError("subsets: no tracks to pack", arguments=("subsets",))
    frames = scan_melspecs(source_dir, tracks, n_bands=n_bands)
    offsets = np.concatenate([[0], np.cumsum(frames)[:-1]]).astype(np.int64)
    total = int(frames.sum())
    itemsize = np.dtype(dtype).itemsize
    attrs = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": str(source_dir.resolve()),
        "subsets": json.dumps([s.name for s in subsets]),
        "dtype": dtype,
        "n_bands": n_bands,
        "total_frames": total,
        "package_version": emotion_keras.__version__,
    }
    digest = hashlib.sha256()
    for path, n in zip(tracks.melspec_paths.tolist(), frames.tolist()):
        digest.update(f"{path}\t{n}\n".encode())
    identity = {**attrs, "tracks": digest.hexdigest()}

    partial, record_path = _partial_paths(out)
    record = _read_record(record_path)
    if record is None or record.get("identity") != identity or not partial.is_file():
        partial.unlink(missing_ok=True)
        record_path.unlink(missing_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(partial, "w") as handle:
            for key, value in attrs.items():
                handle.attrs[key] = value
            handle.attrs["complete"] = False
            index = handle.create_group(INDEX)
            index.create_dataset(
                "track_id", data=tracks.track_ids.astype(object), dtype=h5py.string_dtype()
            )
            index.create_dataset(
                "path", data=tracks.melspec_paths.astype(object), dtype=h5py.string_dtype()
            )
            index.create_dataset("offset", data=offsets)
            index.create_dataset("frames", data=frames)
            index.create_dataset("crc32", shape=(len(tracks),), dtype=np.uint32)
            data_offset = _create_contiguous(handle, DATA, (total, n_bands), np.dtype(dtype))
        record = {"identity": identity, "data_offset": data_offset, "done": 0, "crc32": []}
        _write_record(record_path, record)
    resumed = record["done"]
    if resumed:
        log.info("Resuming the pack of %s after %d of %d tracks", out, resumed, len(tracks))

    total_mb = math.ceil(total * n_bands * itemsize / 1e6)
    done_bytes = int(offsets[resumed] if resumed < len(tracks) else total) * n_bands * itemsize
    started, written_now, since_record = time.monotonic(), 0, 0
    crcs = list(record["crc32"])
    fd = os.open(partial, os.O_RDWR)
    try:
        for i in range(resumed, len(tracks)):
            path = source_dir / tracks.melspec_paths[i]
            stored = _stored(load_melspec(path, n_bands), dtype, path)
            if stored.shape[0] != frames[i]:
                raise DataFileError(
                    f"{path}: has {stored.shape[0]} frames, the scan found "
                    f"{frames[i]} (was it replaced during the pack?)"
                )
            data = stored.tobytes()
            crcs.append(zlib.crc32(data))
            _pwrite_all(fd, data, record["data_offset"] + int(offsets[i]) * n_bands * itemsize)
            written_now += len(data)
            since_record += len(data)
            if since_record >= _RECORD_BYTES or i == len(tracks) - 1:
                os.fsync(fd)
                record.update(done=i + 1, crc32=crcs)
                _write_record(record_path, record)
                since_record = 0
            if progress is not None and i < len(tracks) - 1:
                progress(
                    int((done_bytes + written_now) / 1e6),
                    total_mb,
                    _progress_note(i + 1, len(tracks), written_now, started),
                )
    finally:
        os.close(fd)
    if progress is not None:
        progress(total_mb, total_mb, _progress_note(len(tracks), len(tracks), written_now, started))

    with h5py.File(partial, "r+") as handle:
        handle[INDEX]["crc32"][:] = np.asarray(crcs, dtype=np.uint32)
        handle.attrs["complete"] = True
    with open(partial, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, out)
    record_path.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    result = {
        "tracks": len(tracks),
        "frames": total,
        "bytes": out.stat().st_size,
        "seconds": seconds,
        "mb_per_s": written_now / 1e6 / seconds if seconds > 0 else float("nan"),
        "resumed_tracks": resumed,
    }
    log.info(
        "Packed %d tracks (%.2f GB, %s) into %s", len(tracks), result["bytes"] / 1e9, dtype, out
    )
    return result


def _progress_note(done: int, total: int, written: int, started: float) -> str:
    seconds = time.monotonic() - started
    rate = written / 1e6 / seconds if seconds > 0 else 0.0
    return f"MB ({done}/{total} tracks, {rate:.0f} MB/s)"


def _create_contiguous(handle, name: str, shape: tuple[int, int], dtype: np.dtype) -> int:
    """Creates a contiguous dataset whose space is reserved now; returns its file offset."""
    import h5py

    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)  # the offset is known before any write
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)  # no 34 GB of zeros written first
    dataset = h5py.h5d.create(
        handle.id,
        name.encode(),
        h5py.h5t.py_create(dtype.newbyteorder("<")),
        h5py.h5s.create_simple(shape),
        dcpl=dcpl,
    )
    return int(dataset.get_offset())


def _stored(melspec: np.ndarray, dtype: str, path: Path) -> np.ndarray:
    """`[bands, frames]` float32 -> C-contiguous `[frames, bands]` in `dtype` (little-endian)."""
    stored = np.ascontiguousarray(melspec.T, dtype=np.dtype(dtype).newbyteorder("<"))
    if dtype != "float32" and not np.isfinite(stored).all():
        raise DataFileError(
            f"{path}: values beyond float16's range (±65,504); pack it as float32 (--dtype float32)"
        )
    return stored


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_record(path: Path, record: dict) -> None:
    atomic_write_text(path, json.dumps(record))


# ---------------------------------------------------------------------------------------------
# Reading


@dataclasses.dataclass(frozen=True)
class PackedMelspecs:
    """A checked packed corpus: where its data lies and its index (see `open_packed`)."""

    path: Path
    dtype: np.dtype
    n_bands: int
    data_offset: int
    total_frames: int
    track_ids: np.ndarray
    paths: np.ndarray
    offsets: np.ndarray
    frames: np.ndarray
    crc32: np.ndarray
    attrs: dict

    @property
    def data_bytes(self) -> int:
        return self.total_frames * self.n_bands * self.dtype.itemsize

    def rows_of(self, subset: Subset) -> np.ndarray:
        """The index rows of `subset`'s tracks, in subset order.

        Raises:
            DataFileError: tracks of `subset` that the file does not hold (the first few named).
        """
        row = {path: i for i, path in enumerate(self.paths.tolist())}
        rows = np.array(
            [row.get(path, -1) for path in subset.melspec_paths.tolist()], dtype=np.int64
        )
        missing = np.flatnonzero(rows < 0)
        if len(missing):
            listed = ", ".join(subset.melspec_paths[missing[:MAX_LISTED]].tolist())
            raise DataFileError(
                f"{self.path}: {len(missing)} of {len(subset)} tracks of "
                f"{subset.name} are not in this packed file (e.g. {listed}); "
                f"pack it with those subsets (--subset)"
            )
        return rows

    def frames_of(self, subset: Subset, n_bands: int = N_BANDS) -> np.ndarray:
        """Frame counts of `subset`'s tracks, from the index (the packed `scan_melspecs`)."""
        if n_bands != self.n_bands:
            raise DataFileError(
                f"{self.path}: holds {self.n_bands} mel bands, the run expects {n_bands} (n_bands)"
            )
        return self.frames[self.rows_of(subset)].copy()

    def track(self, row: int) -> np.ndarray:
        """The stored `[frames, bands]` values of index row `row` (read with `pread`)."""
        start = self.data_offset + int(self.offsets[row]) * self.n_bands * self.dtype.itemsize
        out = np.empty((int(self.frames[row]), self.n_bands), dtype=self.dtype)
        with open(self.path, "rb", buffering=0) as handle:
            got = os.preadv(handle.fileno(), [memoryview(out).cast("B")], start)
        if got != out.nbytes:
            raise DataFileError(f"{self.path}: truncated while reading track {self.paths[row]}")
        return out


def open_packed(path: str | Path) -> PackedMelspecs:
    """Opens a packed corpus and checks its structure (cheap: attributes and index only).

    Raises:
        DataFileError (naming the file): missing, not HDF5, not a packed corpus, an unfinished
            pack, an unsupported format version, a dataset that is not contiguous or of the
            wrong dtype/shape, a file shorter than its data (truncated), or an index whose
            offsets, frame counts or paths are inconsistent (altered).
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"data_dir {path}: packed melspec file not found", arguments=("data_dir",)
        )
    try:
        with h5py.File(path, "r") as handle:
            attrs = {key: _plain(value) for key, value in handle.attrs.items()}
            if attrs.get("format") != FORMAT:
                raise DataFileError(
                    f"{path}: an HDF5 file but not a packed melspec corpus (no "
                    f"format attribute {FORMAT!r}); write one with "
                    f"`emotion-keras melspecs pack`"
                )
            if attrs.get("format_version") != FORMAT_VERSION:
                raise DataFileError(
                    f"{path}: packed format version "
                    f"{attrs.get('format_version')} is not supported (expected "
                    f"{FORMAT_VERSION})"
                )
            if attrs.get("complete") is not True:
                raise DataFileError(
                    f"{path}: an unfinished pack (interrupted?); run "
                    f"`emotion-keras melspecs pack` again to finish it"
                )
            dataset = handle[DATA]
            layout = dataset.id.get_create_plist().get_layout()
            data_offset = dataset.id.get_offset()
            shape, dtype = dataset.shape, dataset.dtype
            index = handle[INDEX]
            track_ids = index["track_id"].asstr()[:]
            paths = index["path"].asstr()[:]
            offsets = index["offset"][:].astype(np.int64)
            frames = index["frames"][:].astype(np.int64)
            crc32 = index["crc32"][:].astype(np.uint32)
    except DataFileError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if "truncated file" in reason:  # HDF5 knows the size the file should have
            raise DataFileError(
                f"{path}: truncated: shorter than its HDF5 header says ({reason})"
            ) from None
        raise DataFileError(f"{path}: not a readable packed melspec file ({reason})") from None
    n_bands = int(attrs.get("n_bands", -1))
    problem = None
    if layout != h5py.h5d.CONTIGUOUS or data_offset is None:
        problem = f"/{DATA} is not one contiguous dataset"
    elif dtype.name not in DTYPES or dtype.byteorder == ">" or dtype.name != attrs.get("dtype"):
        problem = f"/{DATA} has dtype {dtype}, its attributes say {attrs.get('dtype')}"
    elif len(shape) != 2 or shape[1] != n_bands or shape[0] != attrs.get("total_frames"):
        problem = (
            f"/{DATA} has shape {list(shape)}, its attributes say "
            f"[{attrs.get('total_frames')}, {n_bands}]"
        )
    if problem is None:
        problem = _index_problem(track_ids, paths, offsets, frames, crc32, shape[0])
    if problem:
        raise DataFileError(f"{path}: damaged packed file: {problem}")
    packed = PackedMelspecs(
        path,
        np.dtype(dtype.name),
        n_bands,
        int(data_offset),
        int(shape[0]),
        track_ids,
        paths,
        offsets,
        frames,
        crc32,
        attrs,
    )
    _check_size(packed)
    return packed


def _plain(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _index_problem(track_ids, paths, offsets, frames, crc32, total: int) -> str | None:
    n = len(paths)
    if not (len(track_ids) == len(offsets) == len(frames) == len(crc32) == n) or n == 0:
        return "the index columns differ in length or are empty"
    if (frames < 1).any():
        return f"track {paths[np.argmax(frames < 1)]} has no frames in the index"
    expected = np.concatenate([[0], np.cumsum(frames)[:-1]])
    if not np.array_equal(offsets, expected) or int(frames.sum()) != total:
        tiled = np.array_equal(offsets, expected)
        bad = n - 1 if tiled else int(np.argmax(offsets != expected))
        return (
            f"index offsets and frame counts do not tile the data (first at track "
            f"{paths[bad]}: offset {offsets[bad]}, expected {expected[bad]})"
        )
    if len(set(paths.tolist())) != n:
        return "the index lists a track path twice"
    return None


def _check_size(packed: PackedMelspecs) -> None:
    size = packed.path.stat().st_size
    needed = packed.data_offset + packed.data_bytes
    if size < needed:
        raise DataFileError(
            f"{packed.path}: truncated: its data ends at byte {needed:,}, the file has {size:,}"
        )


def describe_source(data_dir: str | Path) -> str:
    """`data_dir` in words for logs: a packed corpus (with its dtype) or a melspec folder."""
    if is_packed(data_dir):
        packed = open_packed(data_dir)
        return f"packed {packed.dtype.name} corpus {data_dir} ({len(packed.paths)} tracks)"
    return f"melspec folder {data_dir}"


def verify_packed(
    path: str | Path, source_dir: str | Path | None = None, n_tracks: int = 10, *, seed: int = 0
) -> dict:
    """Checks `n_tracks` random packed tracks against their CRCs and, given `source_dir`, their
    source files: exactly (float32) or equal to the source rounded to float16.

    Returns:
        `{"checked": n, "max_abs_error": e}` (e: largest |packed - source|, 0 when float32).

    Raises:
        DataFileError: naming the packed file and the first track that differs.
    """
    packed = open_packed(path)
    rng = np.random.default_rng(seed)
    n_tracks = min(max(n_tracks, 0), len(packed.paths))
    rows = np.sort(rng.choice(len(packed.paths), size=n_tracks, replace=False))
    worst = 0.0
    for row in rows.tolist():
        stored = packed.track(row)
        name = packed.paths[row]
        if zlib.crc32(stored.tobytes()) != int(packed.crc32[row]):
            raise DataFileError(
                f"{packed.path}: track {name}'s values do not match their "
                f"checksum (the file was altered or damaged)"
            )
        if source_dir is None:
            continue
        source = load_melspec(Path(source_dir) / name, packed.n_bands).T
        if stored.shape != source.shape or not np.array_equal(stored, source.astype(packed.dtype)):
            raise DataFileError(
                f"{packed.path}: track {name} differs from its source {Path(source_dir) / name}"
            )
        worst = max(worst, float(np.abs(stored.astype(np.float32) - source).max()))
    return {"checked": int(n_tracks), "max_abs_error": worst}


class PackedCropReader:
    """Reads batches of crops from a packed corpus; the packed counterpart of `CropReader`.

    Batches are frames-major, `[n, crop_frames, bands]` in the stored dtype (`dtype`), as the
    file holds them: each crop is one `pread` of one contiguous run of bytes into the batch. The
    pipeline turns them bands-major and float32 in TensorFlow (`pipeline.bands_major`); other
    callers use `crops.bands_major`. Crops start where the `.npy` reader's do for the same
    tracks and draws, so the same seed gives the same crops (float32) or the same crops rounded
    to float16. Safe to call from several threads at once.

    Args:
        data_dir: the packed file (or an open `PackedMelspecs`).
        subset: the tracks.
        n_frames: each track's frames, as `scan_melspecs` returned them (checked).
        crop_frames: the crop length T.
        n_bands: bands the run expects.
    """

    frames_major = True

    def __init__(
        self, data_dir, subset: Subset, n_frames: np.ndarray, *, crop_frames: int, n_bands: int
    ):
        self.packed = data_dir if isinstance(data_dir, PackedMelspecs) else open_packed(data_dir)
        frames = self.packed.frames_of(subset, n_bands)
        if not np.array_equal(frames, n_frames):
            raise DataFileError(
                f"{self.packed.path}: frame counts differ from the start-up "
                f"scan (was the file replaced during the run?)"
            )
        self.offsets = self.packed.offsets[self.packed.rows_of(subset)]
        self.n_frames = frames
        self.crop_frames = crop_frames
        self.n_bands = n_bands
        self.dtype = self.packed.dtype
        self._row_bytes = n_bands * self.dtype.itemsize
        self._fd = os.open(self.packed.path, os.O_RDONLY)
        # Reads then fetch exactly the bytes asked for from a cold file: the device's read-ahead
        # (8 MB on this project's VM) would otherwise read about 30 crops' worth for each crop.
        # It also makes cached reads faster (12 vs 22 us a crop, BENCHMARKS.md).
        os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_RANDOM)

    def __del__(self):
        fd = getattr(self, "_fd", None)
        if fd is not None:
            os.close(fd)

    def batch_shape(self, n_crops: int) -> tuple[int, int, int]:
        return (n_crops, self.crop_frames, self.n_bands)

    def read(
        self, tracks: np.ndarray, starts: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Crop k of track `tracks[k]` from frame `starts[k]`, for every k, into `out`.

        One `os.preadv` per crop straight into the batch (the system call copies without the
        GIL; Python only hands it the crop's file position and its place in the batch).

        Returns:
            `out` (or a new array): `[len(tracks), crop_frames, bands]` in the stored dtype,
            frames past a track's end set to `PAD_VALUE`.
        """
        tracks = np.asarray(tracks, dtype=np.int64)
        starts = np.asarray(starts, dtype=np.int64)
        if out is None:
            out = np.empty(self.batch_shape(len(tracks)), dtype=self.dtype)
        n_frames = self.n_frames[tracks]
        if ((starts < 0) | (starts >= n_frames)).any():
            k = int(np.argmax((starts < 0) | (starts >= n_frames)))
            raise ValueError(
                f"{self.packed.path}: crop start {starts[k]} outside track "
                f"{tracks[k]}'s {n_frames[k]} frames"
            )
        valid = np.minimum(self.crop_frames, n_frames - starts)
        positions = self.packed.data_offset + (self.offsets[tracks] + starts) * self._row_bytes
        crops = out.reshape(len(tracks), -1).view(np.uint8)
        for k, (position, frames) in enumerate(zip(positions.tolist(), valid.tolist())):
            wanted = frames * self._row_bytes
            got = os.preadv(self._fd, [crops[k, :wanted]], position)
            if got != wanted:
                self._read_rest(crops[k, got:wanted], position + got)
            if frames < self.crop_frames:  # a track shorter than the crop: pad its end
                out[k, frames:] = PAD_VALUE
        return out

    def _read_rest(self, buffer: np.ndarray, position: int) -> None:
        """Finishes a short read; the file's end before the crop's means it was truncated."""
        while len(buffer):
            got = os.preadv(self._fd, [buffer], position)
            if got == 0:
                _check_size(self.packed)  # names the file and its sizes
                raise DataFileError(f"{self.packed.path}: ended at byte {position:,} mid-crop")
            buffer, position = buffer[got:], position + got

    def read_random(
        self, tracks: np.ndarray, draws: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Random crops: `draws` pick each crop's start as `CropReader.read_random` does."""
        from emotion_keras.data.crops import random_crop_start

        tracks = np.asarray(tracks, dtype=np.int64)
        return self.read(
            tracks, random_crop_start(self.n_frames[tracks], self.crop_frames, draws), out
        )
