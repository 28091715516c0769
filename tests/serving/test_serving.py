"""Using a trained run end to end: evaluate, table, export to a SavedModel, predict.

One tiny demo run is trained once for the slow tests: 12 training tracks, one epoch.
The test subset has 56 tracks so that every tag has a positive, as the official figures need.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emotion_keras.cli import main
from emotion_keras.config import Config
from emotion_keras.data import metadata
from emotion_keras.evaluation import metrics as evaluation


@pytest.fixture(scope="module")
def trained_run(trained_demo_run, tmp_path_factory):
    """A copy of the session's trained demo run (tests/serving/conftest.py) for this module."""
    copy = tmp_path_factory.mktemp("runs") / "run"
    shutil.copytree(trained_demo_run, copy)
    return copy


@pytest.mark.slow
def test_evaluate_writes_official_metrics_that_score_reproduces(trained_run, capsys):
    assert main(["evaluate", str(trained_run), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(evaluation.AUC_NAMES + evaluation.DECISION_NAMES) <= set(metrics)
    predictions = np.load(trained_run / "predictions.npy")
    decisions = np.load(trained_run / "decisions.npy")
    assert predictions.shape == (56, 56) and predictions.dtype == np.float32
    assert decisions.dtype == bool and np.load(trained_run / "thresholds.npy").shape == (56,)
    config = Config.from_json(trained_run / "config.json")
    truth = metadata.read_subset(config.meta_dir, 0, "test").labels
    assert evaluation.official_scores(truth, predictions, decisions) == metrics
    assert main(["table", str(trained_run)]) == 0
    assert "vgg6" in capsys.readouterr().out


@pytest.mark.slow
def test_export_serves_the_same_probabilities_as_evaluate_without_this_package(
    trained_run, tmp_path
):
    assert main(["evaluate", str(trained_run)]) == 0
    out = tmp_path / "export"
    assert main(["export", str(trained_run), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "MODEL_CARD.md",
        "export.json",
        "model.keras",
        "saved_model",
        "tags.txt",
    ]
    config = Config.from_json(trained_run / "config.json")
    test_set = metadata.read_subset(config.meta_dir, 0, "test")
    paths = [str(Path(config.data_dir) / p) for p in test_set.melspec_paths[:5]]
    consumer = textwrap.dedent(f"""
        import json, sys
        import numpy as np, tensorflow as tf
        assert "emotion_keras" not in sys.modules
        served = tf.saved_model.load({str(out / "saved_model")!r})
        rows = []
        for path in {paths!r}:
            result = served.serve(tf.constant(np.load(path)))
            rows.append(result["probabilities"].numpy().tolist())
        tags = [t.decode() for t in result["tags"].numpy()]
        assert "emotion_keras" not in sys.modules
        print(json.dumps({{"rows": rows, "tags": tags}}))
    """)
    result = subprocess.run(
        [sys.executable, "-c", consumer], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["tags"] == list(metadata.MOODTHEME_TAGS)
    evaluated = np.load(trained_run / "predictions.npy")[:5]
    assert np.abs(np.array(served["rows"]) - evaluated).max() <= 1e-5


@pytest.mark.slow
def test_interrupted_export_leaves_nothing_that_looks_complete(trained_run, tmp_path, monkeypatch):
    from emotion_keras.serving import export, formats

    convert = formats.convert
    written = []

    def convert_then_crash(*args, **kwargs):
        written.append(convert(*args, **kwargs))
        raise KeyboardInterrupt

    # Late in an export: after the SavedModel, the .keras model, the tags and the conversions,
    # before the model card and export.json.
    monkeypatch.setattr(formats, "convert", convert_then_crash)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(trained_run, tmp_path / "export")
    assert "saved_model" in written[0]  # it did get that far
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_predict_reports_bad_files_and_completes_the_others(trained_run, tmp_path, capsys):
    assert main(["evaluate", str(trained_run)]) == 0  # thresholds, for the decisions
    config = Config.from_json(trained_run / "config.json")
    test_set = metadata.read_subset(config.meta_dir, 0, "test")
    good = [Path(config.data_dir) / p for p in test_set.melspec_paths[:2]]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for i, path in enumerate(good):
        (inputs / f"good{i}.npy").write_bytes(path.read_bytes())
    np.save(inputs / "short.npy", np.load(good[0])[:, :300])
    soundfile = pytest.importorskip("soundfile", reason="soundfile is part of the dev extra")
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(44100 * 3) / 44100)
    soundfile.write(inputs / "song.wav", tone.astype(np.float32), 44100)
    (inputs / "corrupt.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(inputs / "wrong_bands.npy", np.zeros((64, 2000), np.float32))
    out = tmp_path / "tags.json"
    status = main(
        [
            "predict",
            str(trained_run),
            str(inputs),
            "--format",
            "json",
            "--top-k",
            "3",
            "--output",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert status == 1
    assert (
        "corrupt.npy" in err
        and "wrong_bands.npy: expected 96 mel bands (shape [96, frames]), found shape [64, 2000]"
        in err
        and "2 of 6 files failed" in err
    )
    records = {Path(r["file"]).name: r for r in json.loads(out.read_text())}
    assert sorted(records) == ["good0.npy", "good1.npy", "short.npy", "song.wav"]
    assert len(records["good0.npy"]["top_tags"]) == 3
    assert len(records["good0.npy"]["probabilities"]) == 56
    assert "decisions" in records["good0.npy"]  # the run was evaluated: thresholds exist
    # The same crop averaging as evaluate (20-crop test predictions of the same tracks).
    evaluate_rows = np.load(trained_run / "predictions.npy")[:2]
    for i in range(2):
        got = np.array(list(records[f"good{i}.npy"]["probabilities"].values()))
        np.testing.assert_allclose(got, evaluate_rows[i], atol=1e-5)


@pytest.mark.slow
def test_predict_csv_from_an_export(trained_run, tmp_path, capsys):
    assert main(["evaluate", str(trained_run)]) == 0  # thresholds travel with the export
    out = tmp_path / "export"
    assert main(["export", str(trained_run), "--out", str(out)]) == 0
    config = Config.from_json(trained_run / "config.json")
    track = (
        Path(config.data_dir) / metadata.read_subset(config.meta_dir, 0, "test").melspec_paths[0]
    )
    capsys.readouterr()
    assert main(["predict", str(out), str(track)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(",")[:4] == ["file", "top_tags", "decisions", "mood/theme---action"]
    assert len(lines) == 2 and len(lines[1].split(",")) == 3 + 56


def test_export_never_replaces_a_run_or_a_folder_that_is_not_an_earlier_export(tmp_path, capsys):
    """Refused before any model is loaded: nothing in these folders is touched."""
    run = tmp_path / "runs" / "run"
    (run / "checkpoints").mkdir(parents=True)
    Config().to_json(run / "config.json")
    (run / "checkpoints" / "best.keras").write_bytes(b"weights")
    other_run = tmp_path / "other-run"
    other_run.mkdir()
    Config().to_json(other_run / "config.json")
    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    cases = {
        str(run): "is the run directory",
        str(tmp_path / "runs"): "is the run directory .* or a folder above it",
        str(other_run): "is a run directory; an export never replaces one",
        str(mine): "exists and is not an export of emotion-keras",
        str(mine / "thesis.tex"): "is a file",
    }
    for out, message in cases.items():
        assert main(["export", str(run), "--out", out, "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert f"--out {out}" in err and len(err.strip().splitlines()) == 1
        assert re.search(message, err), err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_export_replaces_an_earlier_export_only_with_overwrite(tmp_path, capsys):
    from emotion_keras.serving.export import check_export_target

    run = tmp_path / "run"
    earlier = tmp_path / "export"
    earlier.mkdir()
    (earlier / "export.json").write_text("{}")
    assert main(["export", str(run), "--out", str(earlier)]) == 2
    assert "holds an earlier export; give --overwrite" in capsys.readouterr().err
    check_export_target(earlier, run, overwrite=True)  # accepted
    check_export_target(tmp_path / "new", run)  # a new folder
    (tmp_path / "empty").mkdir()
    check_export_target(tmp_path / "empty", run)  # an empty one


@pytest.mark.slow
def test_export_overwrite_replaces_an_earlier_export(trained_run, tmp_path):
    out = tmp_path / "export"
    assert main(["export", str(trained_run), "--out", str(out)]) == 0
    (out / "stale.txt").write_text("from the earlier export")
    assert main(["export", str(trained_run), "--out", str(out), "--overwrite"]) == 0
    assert (out / "export.json").is_file() and not (out / "stale.txt").exists()
