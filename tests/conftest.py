"""Shared fixtures: the real reference data in ../shared/data, and small synthetic corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the project root; tests needing it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"reference data not found at {SHARED_DATA} (a plain clone has no "
            f"../shared/data; CI does)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def jamendo_meta(shared_data) -> Path:
    """The real MTG-Jamendo metadata folder (split TSVs and tag files)."""
    return shared_data / "mtg-jamendo"


@pytest.fixture
def melspec_corpus(tmp_path):
    """Writes a tiny melspec corpus in the dataset's layout and returns `(data_dir, subset)`.

    Call it as `melspec_corpus(frames, n_bands=8, values="coded")`: one `.npy` file per entry of
    `frames` under `NN/ID.npy`. With `values="coded"` element `[band, frame]` of track i is
    `i * 100_000 + band * 10_000 + frame` (exact in float32 for the small sizes tests use), so
    a crop tells which track, bands and frames it came from; `values="random"` gives N(0, 1).
    Track i's label row is the binary code of i + 1 over `n_tags` tags, distinct per track.
    """
    import numpy as np

    from emotion_keras.data.metadata import Subset

    def make(
        frames,
        *,
        n_bands: int = 8,
        n_tags: int = 6,
        values: str = "coded",
        dtype=np.float32,
        name: str = "corpus",
        seed: int = 0,
    ):
        root = tmp_path / name
        rng = np.random.default_rng(seed)
        paths = []
        for i, n in enumerate(frames):
            if values == "coded":
                array = i * 100_000 + np.arange(n_bands)[:, None] * 10_000 + np.arange(n)[None, :]
            else:
                array = rng.normal(size=(n_bands, n))
            path = f"{i % 100:02d}/{i}.npy"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            np.save(root / path, array.astype(dtype))
            paths.append(path)
        codes = np.arange(1, len(frames) + 1)[:, None] >> np.arange(n_tags)[None, :]
        subset = Subset(
            name="test/corpus",
            track_ids=np.array([f"track_{i}" for i in range(len(frames))]),
            melspec_paths=np.array(paths),
            durations_s=np.asarray(frames, dtype=float) / 46.875,
            labels=(codes & 1).astype(bool),
            tags=tuple(f"mood/theme---tag{j}" for j in range(n_tags)),
        )
        return root, subset

    return make


@pytest.fixture(scope="session")
def evaluated_demo_runs(tmp_path_factory):
    """Three short demo runs, trained (six epochs on 160 tracks) and evaluated once per session.

    An ensemble's usual mix of seeds, crop lengths and learning rates, on `convs` (the 2021
    winner's model, cheap on short crops). Each has learnt something (ROC-AUC-macro well above
    0.5): an ensemble of members at chance level need not beat its mean member. The test subset
    has 56 tracks so that every tag has a positive, as the official figures need. For the slow
    tests only (about two minutes on 2 cores).
    """
    from emotion_keras import training
    from emotion_keras.config import Config
    from emotion_keras.data import demo
    from emotion_keras.evaluation.evaluate import evaluate_run

    root = tmp_path_factory.mktemp("demo-runs")
    demo.write_demo_dataset(root / "demo", n_train=160, n_validation=8, n_test=56)
    data_dir, meta_dir = demo.demo_paths(root / "demo")
    members = {
        "convs-seed1-crop256": dict(seed=1, crop_frames=256),
        "convs-seed2-crop192": dict(seed=2, crop_frames=192),
        "convs-seed3-crop256-lr2e-3": dict(seed=3, crop_frames=256, learning_rate=0.002),
    }
    runs = []
    for name, fields in members.items():
        config = Config(
            model="convs",
            data_dir=str(data_dir),
            meta_dir=str(meta_dir),
            epochs=6,
            batch_size=16,
            val_crops=2,
            test_crops=3,
            **fields,
        )
        training.train(config, root / name, verbose=0)
        evaluate_run(root / name)
        runs.append(root / name)
    return runs
