"""Tags for users' own music: the Python API, decisions in exports, model cards, timelines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from emotion_keras.cli import main
from emotion_keras.config import Config
from emotion_keras.data import metadata
from emotion_keras.errors import DataFileError, ModelError


def _tracks(run, n):
    config = Config.from_json(run / "config.json")
    test_set = metadata.read_subset(config.meta_dir, 0, "test")
    return [str(Path(config.data_dir) / p) for p in test_set.melspec_paths[:n]]


@pytest.mark.slow
def test_export_serves_decisions_equal_to_probabilities_at_the_validation_thresholds(
    evaluated_export,
):
    import tensorflow as tf

    run, export = evaluated_export
    info = json.loads((export / "export.json").read_text())
    assert info["tags"] == list(metadata.MOODTHEME_TAGS)
    np.testing.assert_array_equal(info["thresholds"], np.load(run / "thresholds.npy"))
    served = tf.saved_model.load(str(export / "saved_model"))
    n_decided = 0
    for path in _tracks(run, 4):
        outputs = served.serve(tf.constant(np.load(path)))
        assert set(outputs) == {"probabilities", "decisions", "tags"}
        probabilities = outputs["probabilities"].numpy()
        expected = probabilities >= np.asarray(info["thresholds"], np.float32)
        np.testing.assert_array_equal(outputs["decisions"].numpy(), expected)
        n_decided += expected.sum()
    assert 0 < n_decided < 4 * 56  # the comparison decided something both ways


@pytest.mark.slow
def test_predict_on_an_export_prints_the_same_decided_tags_as_on_its_run(
    evaluated_export, tmp_path, capsys
):
    run, export = evaluated_export
    tracks = _tracks(run, 3)
    records = {}
    for source in (run, export):
        out = tmp_path / f"{source.name}.json"
        argv = ["predict", str(source), *tracks, "--format", "json", "--output", str(out)]
        assert main(argv) == 0
        records[source.name] = json.loads(out.read_text())
    for from_run, from_export in zip(records["run"], records["export"]):
        assert "decisions" in from_export and from_export["decisions"] == from_run["decisions"]
        got = np.array(list(from_export["probabilities"].values()))
        np.testing.assert_allclose(got, list(from_run["probabilities"].values()), atol=1e-5)


@pytest.mark.slow
def test_tagger_gives_the_same_table_from_a_run_and_its_export(evaluated_export):
    from emotion_keras import Tagger

    run, export = evaluated_export
    tracks = _tracks(run, 3)
    items = [*tracks, np.load(tracks[0])]
    from_run, from_export = Tagger.load(run).tag(items), Tagger.load(export).tag(items)
    assert from_run.shape == (4, 56) and list(from_run.columns) == list(metadata.MOODTHEME_TAGS)
    assert list(from_run.index) == [*tracks, "array 3"]
    np.testing.assert_allclose(from_export.to_numpy(), from_run.to_numpy(), atol=1e-5)
    np.testing.assert_array_equal(from_run.iloc[3], from_run.iloc[0])  # file == its array
    # Crop-averaged as evaluate does: the test predictions of the same tracks.
    evaluated = np.load(run / "predictions.npy")[:3]
    np.testing.assert_allclose(from_run.to_numpy()[:3], evaluated, atol=1e-5)

    top = from_export.top_k(3)
    assert list(top.columns) == ["input", "rank", "tag", "probability"] and len(top) == 12
    first = top[top.input == tracks[0]]
    assert list(first.tag) == list(from_export.iloc[0].sort_values(ascending=False).index[:3])
    decisions = from_export.decisions()
    thresholds = np.load(run / "thresholds.npy").astype(np.float32)
    np.testing.assert_array_equal(decisions.to_numpy(), from_export.to_numpy() >= thresholds)


@pytest.mark.slow
def test_an_unevaluated_run_exports_probabilities_only_and_says_so(
    unevaluated_run, tmp_path, capsys
):
    from emotion_keras import Tagger

    out = tmp_path / "export"
    assert main(["export", str(unevaluated_run), "--out", str(out)]) == 0
    assert "is not evaluated, so the export has no thresholds" in capsys.readouterr().err
    assert json.loads((out / "export.json").read_text())["thresholds"] is None
    assert "the run was not evaluated" in (out / "MODEL_CARD.md").read_text()
    table = Tagger.load(out).tag(np.zeros((96, 1500), np.float32))
    with pytest.raises(ModelError, match="no thresholds"):
        table.decisions()


@pytest.mark.slow
def test_every_export_has_a_model_card_with_what_was_measured(evaluated_export):
    from emotion_keras.models import load_model

    run, export = evaluated_export
    card = (export / "MODEL_CARD.md").read_text()
    for heading in ("Architecture", "Data and split", "Recipe", "Scores", "Thresholds", "Limits"):
        assert heading in card
    assert f"{load_model(export / 'model.keras').count_params():,} parameters" in card
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"| ROC-AUC-macro | {metrics['ROC-AUC-macro']:.4f} |" in card
    assert "SYNTHETIC demo dataset" in card
    first = np.load(run / "thresholds.npy")[0]
    assert f"| mood/theme---action | {first:.4f} |" in card


@pytest.mark.slow
def test_timeline_has_one_window_per_hop_that_fits_and_scores_it_as_a_whole_track(
    evaluated_export,
):
    from emotion_keras import Tagger

    _, export = evaluated_export
    tagger = Tagger.load(export)
    window, hop = 1280, 640  # the run's crop, and the default hop of half a window
    melspec = np.load(_tracks(export.parent / "run", 1)[0])[:, :window]
    track = np.concatenate([melspec] * 4, axis=1)[:, : window + 3 * hop + 5]
    timeline = tagger.timeline(track)
    assert list(timeline.window) == [0, 1, 2, 3]
    np.testing.assert_allclose(timeline.start_s, np.arange(4) * hop / 46.875)
    np.testing.assert_allclose(timeline.end_s - timeline.start_s, window / 46.875)
    # A window is scored as a track of exactly one window is (all its crops are that window).
    whole = tagger.tag(track[:, hop : hop + window]).to_numpy()[0]
    np.testing.assert_allclose(timeline.iloc[1, 3:].to_numpy(float), whole, atol=1e-5)
    assert len(tagger.timeline(track[:, :700])) == 1  # shorter than a window: one, padded
    assert len(tagger.timeline(track, hop_s=window / 46.875)) == 2  # 1 + (3 * 640 + 5) // 1280
    with pytest.raises(DataFileError, match=r"expected \[96, frames\]"):
        tagger.tag(np.zeros((64, 100)))


def test_importing_the_tagger_imports_no_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys\nfrom emotion_keras import Tagger\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == ["False", "False"]
