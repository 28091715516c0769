"""The pipeline benchmark: a smoke test on a tiny corpus (seconds), not a timed test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import corpus
from benchmarks import pipeline as bench
from emotion_keras.errors import ConfigError


def test_track_lengths_come_from_the_real_durations(jamendo_meta):
    frames, labels, source = corpus.draw_tracks(500, np.random.default_rng(0), jamendo_meta)
    assert "real durations of split-0/train" in source
    assert frames.min() >= 1406 and frames.max() <= 184_281
    assert 7_000 < np.median(frames) < 12_000  # the real median is about 9,500 frames
    assert labels.shape == (500, 56) and labels.any(axis=1).all()


def test_fallback_lengths_are_used_and_said_so_without_the_metadata(tmp_path):
    frames, labels, source = corpus.draw_tracks(2000, np.random.default_rng(0), tmp_path)
    assert source.startswith("built-in log-normal fallback")
    assert frames.min() >= corpus.MIN_FRAMES and frames.max() <= corpus.MAX_FRAMES
    assert 8_500 < np.median(frames) < 10_500
    assert labels.any(axis=1).all()


def test_corpus_is_written_once_and_reused(tmp_path):
    info, generated = corpus.ensure_corpus(tmp_path / "c", 5, meta_dir=None, progress=False)
    assert generated and info["tracks"] == 5
    first = sorted((tmp_path / "c" / "melspecs").rglob("*.npy"))
    assert len(first) == 5
    copy = tmp_path / "c" / corpus.FRAMES_MAJOR / "00" / "0.npy"  # the first quarter: 1 track
    np.testing.assert_array_equal(np.load(copy), np.load(tmp_path / "c" / "melspecs/00/0.npy"))
    for path, n in zip(sorted(first, key=lambda p: int(p.stem)), info["frames"]):
        array = np.load(path)
        assert array.shape == (96, n) and array.dtype == np.float32
    again, generated = corpus.ensure_corpus(tmp_path / "c", 5, meta_dir=None, progress=False)
    assert not generated and again == info


def test_a_folder_that_is_not_a_corpus_is_never_replaced(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="exists and is not a benchmark corpus"):
        corpus.ensure_corpus(tmp_path, 5, meta_dir=None, progress=False)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_benchmark_reports_every_figure_on_a_tiny_corpus(tmp_path):
    result = bench.run_pipeline_benchmark(
        tmp_path / "corpus", tracks=4, seconds=0.05, isolate=False, meta_dir=None, progress=False
    )
    for key in (
        "train_crops_per_s",
        "eval_crops_per_s",
        "baseline_crops_per_s",
        "speedup_vs_baseline",
        "peak_rss_mb",
        "tracks",
        "corpus_gb",
    ):
        assert key in result
    assert result["tracks"] == 4 and result["small_corpus"]["tracks"] == 1
    assert result["frames_major"]["tracks"] == 1
    assert result["frames_major"]["train_crops_per_s"] > 0
    for key in (
        "train_crops_per_s",
        "eval_crops_per_s",
        "baseline_crops_per_s",
        "peak_rss_mb",
        "corpus_gb",
    ):
        assert result[key] > 0, key
    assert result["speedup_vs_baseline"] == pytest.approx(
        result["train_crops_per_s"] / result["baseline_crops_per_s"]
    )
    assert result["lengths_source"].startswith("built-in log-normal fallback")
    # Both formats in one run, warm and cold.
    packed = result["packed"]
    assert (result["format"], result["dtype"]) == ("npy", "float32")
    assert (packed["format"], packed["dtype"]) == ("packed", "float16")
    for figures in (result, packed):
        for key in (
            "train_crops_per_s",
            "eval_crops_per_s",
            "eval_cached_crops_per_s",
            "reader_1thread_crops_per_s",
            "train_cpu_us_per_crop",
            "cold_train_crops_per_s",
            "cold_eval_crops_per_s",
            "peak_rss_mb",
        ):
            assert figures[key] > 0, key
        # A cold epoch reads from disk; a validation served by the crop cache reads less.
        assert figures["disk_bytes_per_epoch"] > 0
        assert figures["disk_bytes_per_cached_validation"] < figures["disk_bytes_per_validation"]
    assert packed["eval_disk_cached_crops_per_s"] > 0
    assert packed["speedup_vs_baseline"] == pytest.approx(
        packed["train_crops_per_s"] / result["baseline_crops_per_s"]
    )
    assert packed["data_bytes"] < result["data_bytes"]  # float16: about half
    assert "packed train_crops_per_s >= 8000" in result["targets_met"]
    report = bench.format_report(result)
    assert "packed float16 copy" in report and "cold page cache" in report
    assert result["machine"]["nproc"] >= 1
    json.dumps(result)  # the --json output
    assert "training crops/s" in bench.format_report(result)


def test_bench_pipeline_command_parses_its_flags():
    from benchmarks.__main__ import build_parser, run_bench_pipeline

    args = build_parser().parse_args(
        ["pipeline", "--json", "--corpus-dir", "D", "--tracks", "8", "--seconds", "2"]
    )
    assert args.func is run_bench_pipeline
    assert (args.json, args.corpus_dir, args.tracks, args.seconds) == (True, "D", 8, 2.0)


@pytest.mark.slow
def test_bench_pipeline_command_prints_json_measured_in_fresh_processes(
    tmp_path, capsys, monkeypatch
):
    from benchmarks.__main__ import main

    monkeypatch.setattr(bench, "SHARED_META", tmp_path / "absent")
    status = main(
        [
            "pipeline",
            "--json",
            "--corpus-dir",
            str(tmp_path / "c"),
            "--tracks",
            "4",
            "--seconds",
            "0.05",
        ]
    )
    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert result["settings"]["isolated"] and result["tracks"] == 4
    assert result["peak_rss_mb"] >= result["rss_after_import_mb"] > 100  # TensorFlow alone
