"""Quiet start-up: no line from TensorFlow, absl or oneDNN on stderr unless `--verbose`."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from emotion_keras.cli import build_parser


def _emotion_keras(*argv, cwd):
    # The user's environment as a shell gives it: none of the variables that quiet TensorFlow.
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
    }
    return subprocess.run(
        [sys.executable, "-m", "emotion_keras", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=300,
    )


@pytest.fixture(scope="module")
def untrained_run(tmp_path_factory):
    """A run directory whose best checkpoint is an untrained vgg6: loads like a trained one."""
    from emotion_keras.config import Config
    from emotion_keras.data.metadata import MOODTHEME_TAGS
    from emotion_keras.models import build_model

    run = tmp_path_factory.mktemp("quiet") / "run"
    (run / "checkpoints").mkdir(parents=True)
    Config(model="vgg6").to_json(run / "config.json")
    (run / "tags.txt").write_text("\n".join(MOODTHEME_TAGS) + "\n")
    build_model("vgg6").save(run / "checkpoints" / "best.keras")
    track = run.parent / "track.npy"
    np.save(track, np.random.default_rng(0).normal(size=(96, 1500)).astype(np.float32))
    return run, track


def test_help_prints_nothing_on_stderr(tmp_path):
    result = _emotion_keras("--help", cwd=tmp_path)
    assert result.returncode == 0 and "predict" in result.stdout
    assert result.stderr == ""


def test_predict_prints_only_its_csv_and_verbose_shows_tensorflow(untrained_run, tmp_path):
    run, track = untrained_run
    result = _emotion_keras("predict", str(run), str(track), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 2  # header and one row
    # The lines hidden are really TensorFlow's: --verbose (after the command) brings them back.
    loud = _emotion_keras("predict", str(run), str(track), "--verbose", cwd=tmp_path)
    assert loud.returncode == 0 and loud.stdout.splitlines()[0] == result.stdout.splitlines()[0]
    # The same kernels run either way: the quiet output is the loud one's.
    quiet_row = np.array(result.stdout.splitlines()[1].split(",")[2:], float)
    loud_row = np.array(loud.stdout.splitlines()[1].split(",")[2:], float)
    np.testing.assert_array_equal(loud_row, quiet_row)
    assert "oneDNN" in loud.stderr or "tensorflow" in loud.stderr.lower()


def test_verbose_is_accepted_before_or_after_the_command():
    parser = build_parser()
    assert parser.parse_args(["--verbose", "models"]).verbose is True
    assert parser.parse_args(["models", "--verbose"]).verbose is True
    assert parser.parse_args(["models"]).verbose is False
