"""A small SYNTHETIC dataset in exactly the MTG-Jamendo layout, so training runs anywhere.

The real dataset is 68 GB; a new user's machine and CI have none of it. This module writes

    OUT/README.txt                        says, first line, that everything here is synthetic
    OUT/metadata/tags/moodtheme_split.txt the real 56 tag names
    OUT/metadata/splits/split-0/autotagging_moodtheme-{train,validation,test}.tsv
    OUT/melspecs/NN/ID.npy                float32 [96, frames] log-mel "spectrograms" in dB

in the real formats (CRLF TSVs with the real header, `NN/ID.mp3` paths where NN is the track number
modulo 100, variable-width TAGS column), so that the code paths used on the real download are the
ones exercised here.

The tags are learnable and only learnable by looking: each tag j plants its own pattern, a band
position (one of 14 across the 96 bands) combined with a temporal shape (steady, fast pulses, slow
pulses or a rising sweep), across the whole track, on top of a background with a spectral tilt,
loudness changes, noise and distractor tones. A working model must learn 56 band-by-shape
detectors; a model that ignores its input scores ROC-AUC 0.5.

Track lengths follow a log-normal shape like the real durations but scaled down (median about
45 s instead of 200 s) to keep the demo small; every track holds at least one 1,280-frame crop.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from emotion_keras.data.dataset import MTG_JAMENDO
from emotion_keras.data.metadata import HEADER, MOODTHEME_TAGS
from emotion_keras.errors import ConfigError
from emotion_keras.fileio import atomic_directory
from emotion_keras.progress import Progress, every, log

N_BANDS = MTG_JAMENDO.n_bands
FRAMES_PER_SECOND = MTG_JAMENDO.frames_per_second
BAND_POSITIONS = 14
SHAPES = ("steady", "fast-pulse", "slow-pulse", "sweep")
MARKER = "demo.json"


def tag_pattern(tag_index: int) -> tuple[float, str]:
    """The planted pattern of a tag: (centre band, temporal shape)."""
    position, shape = tag_index % BAND_POSITIONS, tag_index // BAND_POSITIONS
    centre = 4.0 + position * (N_BANDS - 8) / (BAND_POSITIONS - 1)
    return centre, SHAPES[shape]


def _shape_envelope(shape: str, n_frames: int, phase: int) -> np.ndarray:
    """Per-frame gain in [0, 1] and per-frame band offset of a temporal shape."""
    t = np.arange(n_frames) + phase
    offset = np.zeros(n_frames)
    if shape == "steady":
        gain = np.ones(n_frames)
    elif shape == "fast-pulse":
        gain = ((t // 4) % 2 == 0).astype(float)
    elif shape == "slow-pulse":
        gain = ((t // 24) % 2 == 0).astype(float)
    else:  # sweep: rises 6 bands over 32 frames, repeatedly
        gain = np.ones(n_frames)
        offset = (t % 32) / 32 * 6.0 - 3.0
    return gain, offset


def synthesize_melspec(
    tag_indices, n_frames: int, rng: np.random.Generator, pattern_db: float = 20.0
) -> np.ndarray:
    """A float32 [96, n_frames] log-mel spectrogram in dB with the given tags planted."""
    bands = np.arange(N_BANDS)[:, None]
    # Background: spectral tilt, a per-track level, a slow loudness envelope and noise.
    tilt = np.linspace(10.0, -30.0, N_BANDS)[:, None]
    level = rng.uniform(-10, 10)
    knots = rng.normal(0, 4, size=n_frames // 200 + 2)
    loudness = np.interp(np.arange(n_frames) / 200, np.arange(len(knots)), knots)[None, :]
    spec = tilt + level + loudness + rng.normal(0, 3.0, size=(N_BANDS, n_frames))
    # Distractors: tones at random bands for a few seconds, belonging to no tag.
    for _ in range(rng.integers(0, 4)):
        start = rng.integers(0, n_frames - 50)
        stop = min(n_frames, start + rng.integers(50, 400))
        centre = rng.uniform(0, N_BANDS)
        spec[:, start:stop] += 8.0 * np.exp(-0.5 * ((bands - centre) / 1.5) ** 2)
    for tag in tag_indices:
        centre, shape = tag_pattern(tag)
        gain, offset = _shape_envelope(shape, n_frames, phase=int(rng.integers(0, 48)))
        spec += (
            pattern_db
            * gain[None, :]
            * np.exp(-0.5 * ((bands - centre - offset[None, :]) / 1.2) ** 2)
        )
    return spec.astype(np.float32)


def _draw_frames(rng: np.random.Generator, n: int, crop_frames: int) -> np.ndarray:
    # Log-normal like the real durations (median ~9,400 frames), scaled down to ~2,100 frames.
    frames = rng.lognormal(mean=np.log(2100), sigma=0.35, size=n).astype(int)
    return np.clip(frames, crop_frames + 128, 4 * crop_frames)


def _draw_tags(rng: np.random.Generator, n: int) -> list[list[int]]:
    # Every tag is the first tag of every 56th track, so each subset holds every tag; more tags
    # follow (2.5 per track on average, more than the real 1.8, so that each tag has enough
    # positives to learn from in a demo of a few hundred tracks).
    n_tags = len(MOODTHEME_TAGS)
    first = rng.permutation(np.resize(np.arange(n_tags), n))
    tags = []
    for tag in first:
        extra = rng.choice(n_tags, size=min(rng.poisson(1.5), 4), replace=False)
        tags.append(sorted({int(tag), *map(int, extra)}))
    return tags


def write_demo_dataset(
    out_dir: str | Path,
    *,
    n_train: int = 448,
    n_validation: int = 112,
    n_test: int = 112,
    seed: int = 0,
    crop_frames: int = 1280,
    progress: Progress | None = None,
) -> Path:
    """Writes the synthetic dataset to `out_dir` (replacing it atomically) and returns it.

    Args:
        out_dir: where to write; it is created whole or not at all.
        n_train, n_validation, n_test: tracks per subset of split 0.
        seed: the same seed writes the same dataset.
        crop_frames: every track is longer than this.
        progress: told every 50 tracks.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / MARKER).is_file():
        raise ConfigError(
            f"out_dir {out_dir}: exists and is not a demo dataset; give a new or "
            f"empty folder (it would be replaced)",
            arguments=("out_dir",),
        )
    rng = np.random.default_rng(seed)
    sizes = {"train": n_train, "validation": n_validation, "test": n_test}
    total, done = sum(sizes.values()), 0
    report = every(progress, 50)
    with atomic_directory(out_dir) as tmp:
        (tmp / "README.txt").write_text(
            "SYNTHETIC demo dataset written by `emotion-keras demo-data`: NOT MTG-Jamendo audio.\n"
            "The layout and formats are MTG-Jamendo's; every tag plants its own band/shape\n"
            "pattern (emotion_keras/demo.py). Use it to try the software, never to report "
            "results.\n"
        )
        tags_dir = tmp / "metadata" / "tags"
        tags_dir.mkdir(parents=True)
        (tags_dir / "moodtheme_split.txt").write_text("\n".join(MOODTHEME_TAGS) + "\n")
        split_dir = tmp / "metadata" / "splits" / "split-0"
        split_dir.mkdir(parents=True)
        track_number = 1
        for subset, n in sizes.items():
            rows = ["\t".join(HEADER)]
            frames = _draw_frames(rng, n, crop_frames)
            for n_frames, tag_indices in zip(frames, _draw_tags(rng, n)):
                rel = f"{track_number % 100:02d}/{track_number}"
                (tmp / "melspecs" / rel).parent.mkdir(parents=True, exist_ok=True)
                np.save(
                    tmp / "melspecs" / f"{rel}.npy",
                    synthesize_melspec(tag_indices, int(n_frames), rng),
                )
                rows.append(
                    "\t".join(
                        [
                            f"track_{track_number:07d}",
                            "artist_synthetic",
                            "album_synthetic",
                            f"{rel}.mp3",
                            f"{n_frames / FRAMES_PER_SECOND:.1f}",
                            *(MOODTHEME_TAGS[t] for t in tag_indices),
                        ]
                    )
                )
                track_number += 1
                done += 1
                report(done, total, "tracks")
            (split_dir / f"autotagging_moodtheme-{subset}.tsv").write_text(
                "".join(row + "\r\n" for row in rows), newline=""
            )
        (tmp / MARKER).write_text(
            json.dumps({"synthetic": True, "seed": seed, **sizes}, indent=2) + "\n"
        )
    return out_dir


def demo_paths(out_dir: str | Path) -> tuple[Path, Path]:
    """(melspec root, metadata folder) of a demo dataset."""
    return Path(out_dir) / "melspecs", Path(out_dir) / "metadata"


def ensure_demo_dataset(
    out_dir: str | Path, progress: Progress | None = None, **settings
) -> tuple[Path, Path]:
    """Writes the demo dataset unless a complete one with the same settings is already there.

    Returns:
        (melspec root, metadata folder).
    """
    out_dir = Path(out_dir)
    marker = out_dir / MARKER
    wanted = {
        "synthetic": True,
        "seed": settings.get("seed", 0),
        "train": settings.get("n_train", 448),
        "validation": settings.get("n_validation", 112),
        "test": settings.get("n_test", 112),
    }
    if not (marker.is_file() and json.loads(marker.read_text()) == wanted):
        log.info("Writing the synthetic demo dataset to %s (once)...", out_dir)
        write_demo_dataset(out_dir, progress=progress, **settings)
    return demo_paths(out_dir)
