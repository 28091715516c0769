"""Resuming after `kill -9`: the resumed run is bit for bit the run that was never interrupted.

One small CPU training (3 epochs of `baseline5` on 8 demo tracks, TensorFlow's op determinism
on) is run once without interruption, then once per moment of death (`killed_run`), each rerun
with the same command. Weights, optimizer state, history, per-tag records, the best model and
the commit record must then equal the uninterrupted run's exactly: every epoch's input is a pure
function of (seed, epoch), and the commit holds the random generators' and callbacks' state.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from emotion_keras.data import demo
from emotion_keras.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 400
EPOCHS = 3


def keras_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array a `.keras` file holds (layer weights, optimizer variables), by h5 path."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        weights = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(weights, "r") as h5:
        h5.visititems(
            lambda name, item: (
                arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset) else None
            )
        )
    return arrays


def train(run: Path, data, moment: str = "none", epoch: int = 0) -> subprocess.CompletedProcess:
    data_dir, meta_dir = data
    flags = [
        "--model", "baseline5", "--data-dir", data_dir, "--meta-dir", meta_dir,
        "--train-tracks", 8, "--val-tracks", 4, "--batch-size", 4, "--val-crops", 1,
        "--epochs", EPOCHS, "--seed", 5, "--early-stopping-patience", 5, "--run-dir", run,
    ]  # fmt: skip
    command = [sys.executable, "-m", "tests.training.killed_run", moment, str(epoch), "--"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [*command, *map(str, flags)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume-demo")
    demo.write_demo_dataset(root / "demo", n_train=8, n_validation=4, n_test=2)
    return demo.demo_paths(root / "demo")


@pytest.fixture(scope="module")
def uninterrupted(demo_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = train(run, demo_data)
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def assert_same_run(resumed: Path, reference: Path) -> None:
    run, ref = RunDir(resumed), RunDir(reference)
    assert run.read_state() == ref.read_state()  # epochs, best, random and callback state
    for name in (ref.read_state()["checkpoint"], "best.keras"):
        mine, theirs = keras_arrays(run.checkpoints / name), keras_arrays(ref.checkpoints / name)
        assert mine.keys() == theirs.keys()
        different = [key for key in theirs if not np.array_equal(mine[key], theirs[key])]
        assert not different, f"{name}: {len(different)} arrays differ, e.g. {different[:3]}"
    for record in (ref.history_file, ref.per_tag_history_file):
        pd.testing.assert_frame_equal(
            pd.read_csv(run.path / record.name), pd.read_csv(record), check_exact=True
        )
    assert sorted(p.name for p in run.checkpoints.iterdir()) == sorted(
        p.name for p in ref.checkpoints.iterdir()
    ), "leftover checkpoints or temporary files"


@pytest.mark.slow
@pytest.mark.parametrize(
    "moment, committed",
    [("mid-epoch", 1), ("checkpoint-write", 1), ("after-commit", 2)],
)
def test_a_run_killed_in_epoch_2_resumes_into_the_uninterrupted_run(
    uninterrupted, demo_data, tmp_path, moment, committed
):
    run = tmp_path / "run"
    killed = train(run, demo_data, moment, epoch=2)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert RunDir(run).read_state()["epoch"] == committed
    if moment == "checkpoint-write":
        assert list(RunDir(run).checkpoints.glob(".epoch-0002.keras.*")), "a half-done write"

    resumed = train(run, demo_data)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming after epoch {committed}" in resumed.stderr
    assert_same_run(run, uninterrupted)
    assert len(json.loads(RunDir(run).state_file.read_text())["random_state"]) == 1  # dropout
