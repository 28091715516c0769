"""The benchmarks' stand-in corpus: random `[96, frames]` `.npy` files with real track lengths.

Written once and cached (default `.cache/bench/corpus-N/` under the working directory). Track
lengths are drawn from the real durations in `../shared/data/mtg-jamendo` (46.875 frames per
second) when that folder exists, else from a built-in log-normal fit of them; the corpus records
which. Content does not matter to the I/O being measured, only size and layout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.data.melspec_files import write_frames_major
from emotion_keras.data.metadata import MOODTHEME_TAGS, Subset, read_subset
from emotion_keras.errors import ConfigError
from emotion_keras.fileio import atomic_directory

#: Where corpora are cached, relative to the working directory (git-ignored in the repository).
DEFAULT_CACHE_DIR = Path(".cache") / "bench"
#: The real durations: ../shared/data/mtg-jamendo beside the repository root.
SHARED_META = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mtg-jamendo"
FRAMES_PER_SECOND = MTG_JAMENDO.frames_per_second
N_BANDS = MTG_JAMENDO.n_bands
MARKER = "corpus.json"
CORPUS_VERSION = 2
#: The frames-major copy (`melspec_files.relayout_melspecs`) of the first quarter of the tracks.
FRAMES_MAJOR = "melspecs-frames-major"
#: The packed float16 copy of every track (`emotion_keras.data.packed`), written on first use.
PACKED = "packed-float16.h5"
# Fallback when the real durations are absent: log-normal fitted to the 18,486 tracks of
# autotagging_moodtheme.tsv (median 9,511 frames; quartiles 6,492 and 12,577 give sigma 0.49),
# clipped to the shortest and longest real tracks.
FALLBACK_MEDIAN_FRAMES = 9_511
FALLBACK_SIGMA = 0.49
MIN_FRAMES, MAX_FRAMES = 1_408, 184_281


def draw_tracks(
    n_tracks: int, rng: np.random.Generator, meta_dir: Path | None = SHARED_META
) -> tuple[np.ndarray, np.ndarray, str]:
    """Frame counts and label rows of `n_tracks` stand-in tracks, and where the lengths came from.

    With the real metadata, tracks of split-0/train are sampled (lengths and their real labels);
    otherwise lengths follow the built-in log-normal fit and labels are random (1-3 tags).
    """
    if meta_dir is not None and (Path(meta_dir) / "splits").is_dir():
        real = read_subset(meta_dir, 0, "train")
        rows = rng.choice(len(real), size=n_tracks, replace=n_tracks > len(real))
        frames = np.maximum(np.round(real.durations_s[rows] * FRAMES_PER_SECOND), MIN_FRAMES)
        source = (
            f"real durations of {real.name} ({len(real)} tracks) in {meta_dir}, "
            f"at {FRAMES_PER_SECOND} frames/s"
        )
        return frames.astype(np.int64), real.labels[rows], source
    frames = rng.lognormal(np.log(FALLBACK_MEDIAN_FRAMES), FALLBACK_SIGMA, size=n_tracks)
    frames = np.clip(np.round(frames), MIN_FRAMES, MAX_FRAMES).astype(np.int64)
    labels = np.zeros((n_tracks, len(MOODTHEME_TAGS)), dtype=bool)
    for row in labels:
        row[rng.choice(len(MOODTHEME_TAGS), size=rng.integers(1, 4), replace=False)] = True
    source = (
        f"built-in log-normal fallback (median {FALLBACK_MEDIAN_FRAMES} frames, sigma "
        f"{FALLBACK_SIGMA}; {meta_dir} not found)"
    )
    return frames, labels, source


def corpus_subset(corpus_dir: Path, info: dict, n_tracks: int | None = None) -> Subset:
    n = info["tracks"] if n_tracks is None else n_tracks
    frames = np.asarray(info["frames"][:n], dtype=np.int64)
    labels = np.zeros((n, len(MOODTHEME_TAGS)), dtype=bool)
    for row, tags in zip(labels, info["labels"][:n]):
        row[tags] = True
    return Subset(
        name=f"bench corpus ({n} tracks)",
        track_ids=np.array([f"track_{i:07d}" for i in range(n)]),
        melspec_paths=np.array([_track_path(i) for i in range(n)]),
        durations_s=frames / FRAMES_PER_SECOND,
        labels=labels,
        tags=MOODTHEME_TAGS,
    )


def _track_path(i: int) -> str:
    return f"{i % 100:02d}/{i}.npy"  # the dataset's layout: folder = track number modulo 100


def ensure_corpus(
    corpus_dir: str | Path,
    n_tracks: int,
    *,
    seed: int = 0,
    meta_dir: Path | None = SHARED_META,
    progress: bool = True,
) -> tuple[dict, bool]:
    """Writes the stand-in corpus unless the same one is already cached there.

    Returns:
        (the corpus description from `corpus.json`, whether it was written now).
    """
    corpus_dir = Path(corpus_dir)
    marker = corpus_dir / MARKER
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        if (info.get("version"), info.get("tracks"), info.get("seed")) == (
            CORPUS_VERSION,
            n_tracks,
            seed,
        ):
            return info, False
    elif corpus_dir.exists() and any(corpus_dir.iterdir()):
        raise ConfigError(
            f"--corpus-dir {corpus_dir}: exists and is not a benchmark corpus (no "
            f"{MARKER}); give a new or empty folder (it would be replaced)"
        )
    rng = np.random.default_rng(seed)
    frames, labels, source = draw_tracks(n_tracks, rng, meta_dir)
    # Content does not matter to the I/O being measured, only size and layout: every track is a
    # window of one random pool of dB-like values (cheap to write, never NaN).
    pool = rng.normal(-40.0, 15.0, size=(N_BANDS, int(frames.max()) + 1)).astype(np.float32)
    started, total_bytes = time.monotonic(), 0
    with atomic_directory(corpus_dir) as tmp:
        for i, n in enumerate(frames):
            path = tmp / "melspecs" / _track_path(i)
            path.parent.mkdir(parents=True, exist_ok=True)
            offset = int(rng.integers(0, pool.shape[1] - n + 1))
            np.save(path, np.ascontiguousarray(pool[:, offset : offset + n]), allow_pickle=False)
            total_bytes += path.stat().st_size
            if progress and ((i + 1) % 100 == 0 or i + 1 == n_tracks):
                print(
                    f"\rbench corpus: {i + 1}/{n_tracks} tracks, {total_bytes / 1e9:.2f} GB "
                    f"({time.monotonic() - started:.0f} s)",
                    end="",
                    file=sys.stderr,
                )
        # The optional faster layout, for the first quarter of the tracks (the small corpus).
        for i in range(n_tracks // 4):
            write_frames_major(
                tmp / "melspecs" / _track_path(i), tmp / FRAMES_MAJOR / _track_path(i), N_BANDS
            )
        info = {
            "version": CORPUS_VERSION,
            "tracks": n_tracks,
            "seed": seed,
            "lengths_source": source,
            "bytes": total_bytes,
            "frames": frames.tolist(),
            "labels": [np.flatnonzero(r).tolist() for r in labels],
        }
        (tmp / MARKER).write_text(json.dumps(info) + "\n", encoding="utf-8")
    if progress:
        print(file=sys.stderr)
    return info, True


def ensure_packed(corpus_dir: Path, info: dict, progress: bool = True) -> Path:
    """The corpus's packed float16 copy, written now (`pack_melspecs`) unless already there."""
    from emotion_keras.data import packed
    from emotion_keras.errors import DataFileError

    path = Path(corpus_dir) / PACKED
    subset = corpus_subset(Path(corpus_dir), info)
    try:
        if packed.open_packed(path).paths.tolist() == subset.melspec_paths.tolist():
            return path
    except DataFileError:
        pass
    if progress:
        print(f"bench corpus: packing {len(subset)} tracks into {path} ...", file=sys.stderr)
    packed.pack_melspecs(Path(corpus_dir) / "melspecs", [subset], path, dtype="float16")
    return path


def drop_page_cache(paths) -> None:
    """Evicts `paths` from the page cache (`posix_fadvise(DONTNEED)`): a cold-cache start."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # dirty pages (a file just written) would stay cached
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def warm_file(path: Path) -> float:
    """Reads one file once (a warm page cache); seconds."""
    started = time.monotonic()
    buffer = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass
    return time.monotonic() - started


def warm_page_cache(data_dir: Path, subset: Subset) -> float:
    """Reads every file of `subset` once (so the measurements see a warm page cache); seconds."""
    started = time.monotonic()
    buffer = bytearray(8 << 20)
    for relative in subset.melspec_paths:
        with open(data_dir / relative, "rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass
    return time.monotonic() - started


def corpus_bytes(data_dir: Path, subset: Subset) -> int:
    return sum((data_dir / p).stat().st_size for p in subset.melspec_paths)


def machine_description() -> dict:
    cpu_model = "unknown"
    ram_gb = float("nan")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": cpu_model, "ram_gb": round(ram_gb, 1)}
