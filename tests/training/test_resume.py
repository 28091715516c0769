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


MOMENTS = {"mid-epoch": 1, "checkpoint-write": 1, "after-commit": 2}  # -> epochs committed


def start(run: Path, data, moment: str = "none", epoch: int = 0) -> subprocess.Popen:
    data_dir, meta_dir = data
    flags = [
        "--model", "baseline5", "--data-dir", data_dir, "--meta-dir", meta_dir,
        "--train-tracks", 8, "--val-tracks", 4, "--batch-size", 4, "--val-crops", 1,
        "--epochs", EPOCHS, "--seed", 5, "--early-stopping-patience", 5, "--run-dir", run,
    ]  # fmt: skip
    command = [sys.executable, "-m", "tests.training.killed_run", moment, str(epoch), "--"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [*command, *map(str, flags)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(processes: dict) -> dict[str, tuple[int, str]]:
    """Waits for every process (bounded), kills any left; `{name: (exit code, stderr)}`."""
    results = {}
    try:
        for name, process in processes.items():
            _, err = process.communicate(timeout=TIMEOUT_S)
            results[name] = (process.returncode, err)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    return results


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume-demo")
    demo.write_demo_dataset(root / "demo", n_train=8, n_validation=4, n_test=2)
    return demo.demo_paths(root / "demo")


@pytest.fixture(scope="module")
def runs(demo_data, tmp_path_factory) -> dict:
    """The uninterrupted run and, per moment, the killed run and its rerun (run concurrently:
    the processes are independent, and most of each is TensorFlow's start-up)."""
    root = tmp_path_factory.mktemp("resume")
    paths = {name: root / name for name in ["uninterrupted", *MOMENTS]}
    first = finish(
        {"uninterrupted": start(paths["uninterrupted"], demo_data)}
        | {moment: start(paths[moment], demo_data, moment, epoch=2) for moment in MOMENTS}
    )
    # What each kill left behind, before the rerun repairs it.
    left = {
        moment: (
            RunDir(paths[moment]).read_state(),
            sorted(p.name for p in RunDir(paths[moment]).checkpoints.iterdir()),
        )
        for moment in MOMENTS
    }
    again = finish({moment: start(paths[moment], demo_data) for moment in MOMENTS})
    return {"paths": paths, "first": first, "left": left, "again": again}


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
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_run_killed_in_epoch_2_resumes_into_the_uninterrupted_run(runs, moment):
    code, err = runs["first"]["uninterrupted"]
    assert code == 0, err[-3000:]
    code, err = runs["first"][moment]
    assert code == -9, err[-3000:]
    state, files = runs["left"][moment]
    assert state["epoch"] == MOMENTS[moment]
    if moment == "checkpoint-write":
        assert any(name.startswith(".epoch-0002.keras.") for name in files), "a half-done write"
    if moment == "after-commit":
        assert "epoch-0001.keras" in files, "killed before the previous checkpoint's removal"

    code, err = runs["again"][moment]
    assert code == 0, err[-3000:]
    assert f"Resuming after epoch {MOMENTS[moment]}" in err
    assert_same_run(runs["paths"][moment], runs["paths"]["uninterrupted"])
    state = json.loads(RunDir(runs["paths"][moment]).state_file.read_text())
    assert len(state["random_state"]) == 1  # baseline5's dropout
