"""Short-crop models served on full-length tracks: sliding windows averaged in the export's graph
as `evaluate` averages them, and one tiny `convs` demo run from training to a served export.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from emotion_keras import training
from emotion_keras.config import Config
from emotion_keras.data import demo, metadata, pipeline
from emotion_keras.data.melspec_files import scan_melspecs
from emotion_keras.evaluation.evaluate import predict_averaged
from emotion_keras.serving.export import crop_average_fn
from emotion_keras.serving.predict import load_predictor

BANDS, T = 8, 16


def window_model(n_tags=5):
    inputs = keras.Input((BANDS, T, 1), name="melspec")
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(n_tags, activation="sigmoid", name="tags")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.05, (BANDS * T, n_tags)), rng.normal(0, 0.1, n_tags)])
    return model


@pytest.mark.parametrize("frames, hop", [(16, 16), (7, 16), (100, 16), (100, 5), (161, 8)])
def test_the_served_graph_averages_the_sliding_windows_the_pipeline_reads(frames, hop):
    model = window_model()
    serve = crop_average_fn(
        model,
        n_bands=BANDS,
        crop_frames=T,
        n_crops=3,
        tags=list("abcde"),
        pad_value=-200.0,
        hop_frames=hop,
    )
    melspec = np.random.default_rng(frames).normal(-30, 10, (BANDS, frames)).astype("float32")
    padded = np.pad(melspec, [(0, 0), (0, max(T - frames, 0))], constant_values=-200.0)
    starts = pipeline.sliding_window_starts(frames, T, hop)
    windows = np.stack([padded[:, s : s + T] for s in starts])[..., None]
    expected = np.asarray(model(windows, training=False)).mean(axis=0)
    got = serve(melspec)["probabilities"].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    regular = crop_average_fn(
        model, n_bands=BANDS, crop_frames=T, n_crops=3, tags=list("abcde"), pad_value=-200.0
    )
    if frames > T and len(starts) != 3:
        assert not np.allclose(regular(melspec)["probabilities"].numpy(), got)


def test_the_served_graph_passes_a_whole_track_through_a_convs_model_at_once():
    from emotion_keras.models import build_model, whole_track_model

    model = build_model("convs", (32, 64, 1), num_tags=4)
    serve = crop_average_fn(
        model,
        n_bands=32,
        crop_frames=64,
        n_crops=3,
        tags=list("abcd"),
        pad_value=-200.0,
        whole_track=True,
    )
    track = whole_track_model(model)
    rng = np.random.default_rng(0)
    for frames in (300, 64, 20):
        melspec = rng.normal(-30, 10, (32, frames)).astype("float32")
        padded = np.pad(melspec, [(0, 0), (0, max(64 - frames, 0))], constant_values=-200.0)
        expected = np.asarray(track(padded[None, ..., None], training=False))[0]
        np.testing.assert_allclose(serve(melspec)["probabilities"].numpy(), expected, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("eval_mode", ["windows", "track"])
def test_a_convs_demo_run_on_short_crops_trains_and_its_export_serves_whole_tracks(
    eval_mode, tmp_path, capsys
):
    from emotion_keras.cli import main

    demo.write_demo_dataset(tmp_path / "demo", n_train=12, n_validation=6, n_test=4)
    data_dir, meta_dir = demo.demo_paths(tmp_path / "demo")
    config = Config(
        model="convs",
        data_dir=str(data_dir),
        meta_dir=str(meta_dir),
        crop_frames=128,
        eval_mode=eval_mode,
        window_hop_frames=96,
        epochs=1,
        batch_size=6,
        seed=1,
    )
    summary = training.train(config, tmp_path / "run", verbose=0)
    assert summary["epochs"] == 1 and np.isfinite(summary["last_logs"]["loss"])
    assert 0 <= summary["last_logs"]["val_roc_auc_macro"] <= 1

    out = tmp_path / "export"
    assert main(["export", str(tmp_path / "run"), "--out", str(out)]) == 0
    described = json.loads((out / "export.json").read_text())
    assert described["crop_frames"] == 128
    assert (described["hop_frames"], described["whole_track"]) == (
        (96, False) if eval_mode == "windows" else (None, True)
    )
    test_set = metadata.read_subset(meta_dir, 0, "test")
    n_frames = scan_melspecs(data_dir, test_set)
    assert n_frames.min() > 2 * 128  # whole tracks, several windows each
    exported = load_predictor(out)
    served = np.stack([exported(np.load(data_dir / path)) for path in test_set.melspec_paths])
    run_model = keras.saving.load_model(tmp_path / "run" / "checkpoints" / "best.keras")
    evaluated = predict_averaged(run_model, config, test_set, n_frames, n_crops=3)
    np.testing.assert_allclose(served, evaluated, atol=1e-5)
    capsys.readouterr()
