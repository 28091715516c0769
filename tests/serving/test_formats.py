"""TFLite and ONNX exports give the SavedModel's outputs on real-length input."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from emotion_keras.cli import main
from emotion_keras.serving import formats

FOUR_MINUTES = round(240 * 46.875)  # frames of a typical MTG-Jamendo track


def _inputs(export):
    rng = np.random.default_rng(0)
    # A 4-minute track, an odd length, and one shorter than a crop (padded in the graph).
    return [rng.normal(-30, 15, size=(96, n)).astype(np.float32) for n in (FOUR_MINUTES, 5001, 700)]


def _check_against_savedmodel(export, path):
    import tensorflow as tf

    served = tf.saved_model.load(str(export / "saved_model"))
    run = formats.runner(path)
    for melspec in _inputs(export):
        expected = served.serve(tf.constant(melspec))
        got = run(melspec)
        assert {"probabilities", "decisions"} <= set(got)
        assert got["probabilities"].shape == (56,)
        diff = np.abs(got["probabilities"] - expected["probabilities"].numpy()).max()
        assert diff <= 1e-5, f"{path.name}: max abs diff {diff} on {melspec.shape[1]} frames"
        # Decisions may only differ where a probability is within the tolerance of a threshold.
        thresholds = np.asarray(json.loads((export / "export.json").read_text())["thresholds"])
        differ = got["decisions"] != expected["decisions"].numpy()
        assert np.all(np.abs(expected["probabilities"].numpy() - thresholds)[differ] <= 1e-5)


@pytest.mark.slow
def test_tflite_export_matches_the_savedmodel(evaluated_export):
    _, export = evaluated_export
    info = json.loads((export / "export.json").read_text())
    assert info["files"]["model.tflite"] == (export / "model.tflite").stat().st_size > 0
    _check_against_savedmodel(export, export / "model.tflite")


@pytest.mark.slow
@pytest.mark.skipif(
    not (importlib.util.find_spec("tf2onnx") and importlib.util.find_spec("onnxruntime")),
    reason="ONNX export needs the onnx extra: pip install 'emotion_keras[onnx]' (dev has it)",
)
def test_onnx_export_matches_the_savedmodel(evaluated_export):
    _, export = evaluated_export
    assert (export / "model.onnx").stat().st_size > 0
    _check_against_savedmodel(export, export / "model.onnx")


def test_a_format_whose_extra_is_missing_is_refused_before_loading_anything(
    tmp_path, capsys, monkeypatch
):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        formats.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tf2onnx" else real_find_spec(name, *a),
    )
    assert main(["export", str(tmp_path / "no-run"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "emotion-keras export: error: --format onnx: needs tf2onnx; install them with "
        "pip install 'emotion_keras[onnx]'\n"
    )
