"""A tiny trained and evaluated demo run and its export, shared by the serving tests."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from emotion_keras import training
from emotion_keras.cli import main
from emotion_keras.config import Config
from emotion_keras.data import demo


@pytest.fixture(scope="session")
def trained_demo_run(tmp_path_factory):
    """vgg6 trained one epoch on 12 demo tracks (56 test tracks, so every tag has a positive),
    once per session: tests that change a run take a copy (`copy_run`)."""
    root = tmp_path_factory.mktemp("trained")
    demo.write_demo_dataset(root / "demo", n_train=12, n_validation=8, n_test=56)
    data_dir, meta_dir = demo.demo_paths(root / "demo")
    config = Config(
        model="vgg6",
        data_dir=str(data_dir),
        meta_dir=str(meta_dir),
        epochs=1,
        batch_size=6,
        val_crops=2,
        test_crops=3,
        seed=3,
    )
    training.train(config, root / "run", verbose=0)
    return root / "run"


def copy_run(run, tmp_path_factory, name: str):
    """A copy of run directory `run` (its data paths are absolute, so it works anywhere)."""
    copy = tmp_path_factory.mktemp(name) / "run"
    shutil.copytree(run, copy)
    return copy


@pytest.fixture(scope="session")
def evaluated_export(trained_demo_run, tmp_path_factory):
    """`(run, export)`: a copy of `trained_demo_run`, evaluated and exported with TFLite, plus
    ONNX when its extra is installed."""
    run = copy_run(trained_demo_run, tmp_path_factory, "evaluated")
    root = run.parent
    assert main(["evaluate", str(run)]) == 0
    formats = ["--format", "tflite"]
    if importlib.util.find_spec("tf2onnx") and importlib.util.find_spec("onnxruntime"):
        formats += ["--format", "onnx"]
    assert main(["export", str(run), "--out", str(root / "export"), *formats]) == 0
    return run, root / "export"


@pytest.fixture(scope="session")
def unevaluated_run(evaluated_export, tmp_path_factory):
    """A copy of the run without its evaluation files (no thresholds)."""
    run, _ = evaluated_export
    copy = tmp_path_factory.mktemp("unevaluated") / "run"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export", "*.npy", "metrics.json"))
    return copy
