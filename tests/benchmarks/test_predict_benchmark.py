"""The predict benchmark: a smoke run on a short song and two tracks, not a timed test."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import predict as predict_bench


@pytest.mark.slow
def test_predict_benchmark_times_each_stage_of_a_real_length_track(tmp_path, monkeypatch):
    pytest.importorskip("soundfile", reason="decoding audio needs soundfile (dev has it)")
    monkeypatch.setattr(predict_bench, "TRACK_SECONDS", 30.0)  # the smoke run: 30 s of audio
    result = predict_bench.run_predict_benchmark(tracks=2, repeats=1, cache_dir=tmp_path)
    audio = result["audio"]
    assert audio["frames"] == int(np.ceil(30 * 12000 / 256)) + 1  # Essentia's frame count
    stages = [audio[k] for k in ("decode_s", "melspec_s", "model_s")]
    assert all(s > 0 for s in stages) and audio["total_s"] == pytest.approx(sum(stages), abs=2e-3)
    assert result["npy"]["tracks"] == 2 and result["npy"]["tracks_per_s"] > 0
    assert result["crops"] == 20
    assert "20 crops" in predict_bench.format_report(result)
