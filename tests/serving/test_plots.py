"""Time-resolved output and figures: `predict --timeline/--plot`, `evaluate`'s per-tag figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emotion_keras import plots
from emotion_keras.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_predict_writes_a_timeline_row_per_window_and_a_png_per_file(
    evaluated_export, tmp_path, capsys
):
    pytest.importorskip("matplotlib", reason="plots need the plot extra (dev has it)")
    _, export = evaluated_export
    rng = np.random.default_rng(1)
    inputs = tmp_path / "inputs"
    (inputs / "a").mkdir(parents=True)
    (inputs / "b").mkdir()
    # 1280-frame windows every 640 frames: 1 + 3 full hops = 4 windows; 700 frames: 1, padded.
    lengths = {"a/long.npy": 1280 + 3 * 640 + 5, "b/long.npy": 700}
    for name, n in lengths.items():
        np.save(inputs / name, rng.normal(-30, 15, size=(96, n)).astype(np.float32))
    csv, pictures = tmp_path / "timeline.csv", tmp_path / "plots"
    argv = ["predict", str(export), str(inputs), "--timeline", str(csv), "--plot", str(pictures)]
    assert main(argv) == 0
    capsys.readouterr()
    table = pd.read_csv(csv)
    assert list(table.columns[:4]) == ["file", "window", "start_s", "end_s"]
    assert len(table.columns) == 4 + 56
    counts = table.groupby("file").size()
    assert counts[str(inputs / "a/long.npy")] == 4 and counts[str(inputs / "b/long.npy")] == 1
    first = table[table.file == str(inputs / "a/long.npy")]
    np.testing.assert_allclose(first.start_s, np.arange(4) * 640 / 46.875, atol=1e-6)
    # Same stem in two folders: two pictures.
    assert sorted(p.name for p in pictures.iterdir()) == ["long.png", "long_.png"]
    assert all(_is_png(p) for p in pictures.iterdir())

    assert main([*argv[:3], "--timeline", str(csv), "--hop", str(1280 / 46.875)]) == 0
    assert pd.read_csv(csv).groupby("file").size().tolist() == [2, 1]


@pytest.mark.slow
def test_evaluate_writes_the_per_tag_auc_figure(evaluated_export):
    pytest.importorskip("matplotlib", reason="plots need the plot extra (dev has it)")
    run, _ = evaluated_export
    assert _is_png(run / "per_tag.png")


def test_plot_without_matplotlib_is_one_line_saying_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plots, "has_matplotlib", lambda: False)
    track = tmp_path / "t.npy"
    np.save(track, np.zeros((96, 10), np.float32))
    assert main(["predict", str(tmp_path / "no-model"), str(track), "--plot", "out"]) == 2
    assert capsys.readouterr().err == (
        "emotion-keras predict: error: --plot: plotting needs matplotlib; install it with "
        "pip install 'emotion_keras[plot]'\n"
    )


def test_a_hop_that_is_not_positive_is_refused(tmp_path, capsys):
    assert main(["predict", str(tmp_path), str(tmp_path), "--hop", "0"]) == 2
    assert capsys.readouterr().err == "emotion-keras predict: error: --hop 0.0: must be positive\n"
