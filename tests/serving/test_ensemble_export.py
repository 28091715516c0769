"""An ensemble of trained demo runs end to end: built, scored, exported as one graph, predicted.

The members (`evaluated_demo_runs`, tests/conftest.py) are trained once per session: three `convs`
runs with different seeds, crop lengths (256 and 192 frames) and learning rates, six short epochs
each, so that each has learnt something.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotion_keras.cli import main
from emotion_keras.config import Config
from emotion_keras.data import metadata
from emotion_keras.evaluation.ensemble import build_ensemble
from emotion_keras.evaluation.evaluate import read_metrics


@pytest.fixture(scope="module")
def demo_ensemble(evaluated_demo_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensemble") / "ens"
    build_ensemble(evaluated_demo_runs, out)
    return out


@pytest.fixture(scope="module")
def full_length_tracks(evaluated_demo_runs):
    """The first 8 test tracks of the demo split, whole (as long as their files are)."""
    config = Config.from_json(evaluated_demo_runs[0] / "config.json")
    test_set = metadata.read_subset(config.meta_dir, 0, "test")
    return [np.load(Path(config.data_dir) / path) for path in test_set.melspec_paths[:8]]


@pytest.mark.slow
def test_ensemble_of_demo_runs_scores_at_least_as_well_as_its_mean_member(
    evaluated_demo_runs, demo_ensemble
):
    ensemble = read_metrics(demo_ensemble)
    members = [read_metrics(run) for run in evaluated_demo_runs]
    for name in ("PR-AUC-macro", "ROC-AUC-macro"):
        assert ensemble[name] >= np.mean([m[name] for m in members]), name
    averaged = np.mean(
        [np.load(run / "predictions.npy").astype(np.float64) for run in evaluated_demo_runs], 0
    )
    np.testing.assert_array_equal(
        np.load(demo_ensemble / "predictions.npy"), averaged.astype(np.float32)
    )


@pytest.mark.slow
def test_exported_ensemble_serves_the_averaged_member_predictions_without_this_package(
    evaluated_demo_runs, demo_ensemble, full_length_tracks, tmp_path, capsys
):
    out = tmp_path / "export"
    assert main(["export", str(demo_ensemble), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "saved_model", "tags.txt"]
    info = json.loads((out / "export.json").read_text())
    assert [m["crop_frames"] for m in info["members"]] == [256, 192, 256]
    assert [m["model"] for m in info["members"]] == ["convs", "convs", "convs"]

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i, track in enumerate(full_length_tracks):
        np.save(inputs / f"track{i}.npy", track)
    np.save(inputs / "short.npy", full_length_tracks[0][:, :300])
    files = [str(inputs / f"track{i}.npy") for i in range(len(full_length_tracks))]
    consumer = textwrap.dedent(f"""
        import json, sys
        import numpy as np, tensorflow as tf
        served = tf.saved_model.load({str(out / "saved_model")!r})
        rows = [served.serve(tf.constant(np.load(f)))["probabilities"].numpy().tolist()
                for f in {files!r}]
        short = served.serve(tf.constant(np.load({str(inputs / "short.npy")!r})))
        tags = [t.decode() for t in short["tags"].numpy()]
        assert "emotion_keras" not in sys.modules
        print(json.dumps({{"rows": rows, "short": short["probabilities"].numpy().tolist(),
                          "tags": tags}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", consumer], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    rows = np.array(served["rows"])
    averaged = np.mean(
        [np.load(run / "predictions.npy")[:8].astype(np.float64) for run in evaluated_demo_runs], 0
    )
    assert np.abs(rows - averaged).max() <= 1e-5
    assert np.abs(rows - np.load(demo_ensemble / "predictions.npy")[:8]).max() <= 1e-5
    assert served["tags"] == list(metadata.MOODTHEME_TAGS)
    short = np.array(served["short"])
    assert short.shape == (56,) and np.isfinite(short).all()

    # `predict` takes the ensemble's export like any export.
    capsys.readouterr()
    assert main(["predict", str(out), files[0], files[1]]) == 0
    predicted = pd.read_csv(StringIO(capsys.readouterr().out))
    assert list(predicted["file"].map(lambda f: Path(f).name)) == ["track0.npy", "track1.npy"]
    np.testing.assert_allclose(
        predicted[list(metadata.MOODTHEME_TAGS)].to_numpy(), rows[:2], atol=1e-6
    )


@pytest.mark.slow
def test_ensemble_export_never_replaces_a_member(evaluated_demo_runs, demo_ensemble, capsys):
    member = evaluated_demo_runs[1]
    before = sorted(p.name for p in member.iterdir())
    assert main(["export", str(demo_ensemble), "--out", str(member), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"--out {member}: is a run directory" in err
    assert sorted(p.name for p in member.iterdir()) == before


@pytest.mark.slow
def test_exported_ensemble_serves_decisions_at_the_ensembles_thresholds(
    demo_ensemble, full_length_tracks, tmp_path
):
    from emotion_keras import Tagger

    out = tmp_path / "export"
    assert main(["export", str(demo_ensemble), "--out", str(out)]) == 0
    info = json.loads((out / "export.json").read_text())
    thresholds = np.load(demo_ensemble / "thresholds.npy")
    np.testing.assert_array_equal(info["thresholds"], thresholds)
    assert info["tags"] == list(metadata.MOODTHEME_TAGS)
    table = Tagger.load(out).tag(full_length_tracks[:3])
    decisions = table.decisions().to_numpy()
    np.testing.assert_array_equal(decisions, table.to_numpy() >= thresholds.astype(np.float32))
    predictor = Tagger.load(out).predictor
    for track, row in zip(full_length_tracks[:3], decisions):
        np.testing.assert_array_equal(predictor.outputs(track)["decisions"], row)


@pytest.mark.slow
def test_predict_on_an_ensemble_folder_uses_its_default_export(
    evaluated_demo_runs, full_length_tracks, tmp_path, capsys
):
    ensemble_dir = tmp_path / "ens"
    build_ensemble(evaluated_demo_runs, ensemble_dir)
    assert main(["export", str(ensemble_dir)]) == 0  # to ENSEMBLE/export
    track = tmp_path / "track.npy"
    np.save(track, full_length_tracks[0])
    capsys.readouterr()
    assert main(["predict", str(ensemble_dir), str(track)]) == 0
    by_folder = pd.read_csv(StringIO(capsys.readouterr().out))
    assert main(["predict", str(ensemble_dir / "export"), str(track)]) == 0
    by_export = pd.read_csv(StringIO(capsys.readouterr().out))
    pd.testing.assert_frame_equal(by_folder, by_export)
