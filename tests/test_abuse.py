"""The bad-input matrix, end to end through the command line, as a hostile new user would try it.

Every case runs `emotion-keras ...` (the CLI's `main`, in this process for speed) on tiny data and
asserts what the user sees: a non-zero exit status and one line naming the file or the flag at
fault, never a traceback. The unit tests of each check live beside the code they test; this module
is the scripted tour that keeps the whole matrix honest. Cases that need a trained run share one
tiny run and are marked slow.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile

from emotion_keras.cli import main
from emotion_keras.data import demo

SPLIT_DIR = Path("splits") / "split-0"
TRAIN_TSV = SPLIT_DIR / "autotagging_moodtheme-train.tsv"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    # 56 test tracks: every tag has a positive, as the official figures `evaluate` gives need.
    root = tmp_path_factory.mktemp("abuse-demo")
    demo.write_demo_dataset(root / "demo", n_train=6, n_validation=4, n_test=56)
    data_dir, meta_dir = demo.demo_paths(root / "demo")
    return data_dir, meta_dir


def cli(capsys, *argv) -> tuple[int, str]:
    status = main([str(arg) for arg in argv])
    return status, capsys.readouterr().err


def assert_refused(status: int, err: str, command: str, *named: str, status_is: int = 2) -> None:
    """Refused with status `status_is`, in one `error:` line naming each of `named`."""
    assert status == status_is, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith(f"emotion-keras {command}")]
    assert errors, f"no error line in: {err!r}"
    for name in named:
        assert any(name in line for line in errors), f"{name!r} not named in {errors}"


def copy_meta(meta_dir: Path, tmp_path: Path) -> Path:
    meta = tmp_path / "meta"
    shutil.copytree(meta_dir, meta)
    return meta


def train_args(data_dir, meta_dir, run, *more):
    data = ["--data-dir", data_dir, "--meta-dir", meta_dir, "--run-dir", run]
    small = ["--batch-size", 2, "--val-crops", 1, "--epochs", 1]
    return ["train", "--model", "baseline5", *data, *small, *more]


def tone(path: Path, samples=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    signal = (0.1 * np.sin(np.arange(12000) / 5)).astype(np.float32) if samples is None else samples
    soundfile.write(path, signal, 12000, subtype="FLOAT" if path.suffix == ".wav" else None)
    return path


# --- metadata and configuration: refused before any training ------------------------------------


def test_latin1_tsv_names_the_file_and_line(corpus, tmp_path, capsys):
    data_dir, meta_dir = corpus
    meta = copy_meta(meta_dir, tmp_path)
    tsv = meta / TRAIN_TSV
    tsv.write_bytes(tsv.read_bytes() + "track_9\tCaf\xe9\tb\t01/9.mp3\t30\t\n".encode("latin-1"))
    status, err = cli(capsys, *train_args(data_dir, meta, tmp_path / "run"))
    assert_refused(status, err, "train", f"{TRAIN_TSV.name}:8", "not UTF-8")


def test_a_bom_tsv_is_read_like_any_other(corpus, tmp_path, capsys):
    data_dir, meta_dir = corpus
    meta = copy_meta(meta_dir, tmp_path)
    tsv = meta / TRAIN_TSV
    tsv.write_bytes(b"\xef\xbb\xbf" + tsv.read_bytes())
    (meta / TRAIN_TSV).with_name("autotagging_moodtheme-validation.tsv").unlink()
    status, err = cli(capsys, *train_args(data_dir, meta, tmp_path / "run"))
    # It gets past the training TSV (its header is accepted) to the missing validation one.
    assert_refused(status, err, "train", "autotagging_moodtheme-validation.tsv", "not found")
    assert "header" not in err


@pytest.mark.parametrize(
    "args, named",
    [
        (["--monitor", "val_accuracy"], ["--monitor", "val_accuracy"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--batch-size", "many"], ["--batch-size", "many"]),
        (["--model", "vgg7"], ["--model", "vgg7"]),
        (["--config", "no-such-config"], ["--config", "no-such-config"]),
    ],
)
def test_bad_training_flags_are_refused_naming_the_flag(corpus, tmp_path, capsys, args, named):
    status, err = cli(capsys, *train_args(*corpus, tmp_path / "run", *args))
    assert_refused(status, err, "train", *named)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_missing_meta_dir_is_named(corpus, tmp_path, capsys):
    status, err = cli(capsys, *train_args(corpus[0], tmp_path / "nowhere", tmp_path / "run"))
    assert_refused(status, err, "train", str(tmp_path / "nowhere"))


def test_run_dir_that_is_a_file_or_cannot_be_made_is_named(corpus, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    status, err = cli(capsys, *train_args(*corpus, tmp_path / "file"))
    assert_refused(status, err, "train", "--run-dir", "is a file")
    status, err = cli(capsys, *train_args(*corpus, tmp_path / "file" / "run"))
    assert_refused(status, err, "train", "--run-dir", "cannot be written")


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda path: path.unlink(), "melspec file not found"),
        (lambda path: np.save(path, np.array([{"a": 1}], dtype=object)), "1.npy"),
        (lambda path: np.save(path, np.zeros((40, 2000), np.float32)), "96 mel bands"),
        (lambda path: path.write_bytes(path.read_bytes()[:200]), "truncated"),
        (lambda path: path.write_bytes(b""), "1.npy"),
    ],
    ids=["missing", "pickled-object-array", "wrong-bands", "truncated", "empty"],
)
def test_unusable_melspecs_are_all_named_before_training(corpus, tmp_path, capsys, damage, message):
    data_dir, meta_dir = corpus
    data = tmp_path / "melspecs"
    shutil.copytree(data_dir, data)
    damage(data / "01" / "1.npy")
    status, err = cli(capsys, *train_args(data, meta_dir, tmp_path / "run"))
    assert_refused(status, err, "train", "01/1.npy", message)


# --- audio in, melspecs out ---------------------------------------------------------------------


def test_melspec_refuses_nan_audio_and_an_empty_file_naming_each(tmp_path, capsys):
    samples = (0.1 * np.sin(np.arange(12000) / 5)).astype(np.float32)
    samples[10] = np.nan
    tone(tmp_path / "in" / "nan.wav", samples)
    (tmp_path / "in" / "empty.mp3").write_bytes(b"")
    tone(tmp_path / "in" / "good.wav")
    status, err = cli(capsys, "melspec", tmp_path / "in", "--out", tmp_path / "out")
    assert status == 1 and "Traceback" not in err
    assert "nan.wav: 1 of 12000 audio samples are NaN or infinite" in err
    assert "empty.mp3: the file is empty (0 bytes)" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.npy"]


def test_melspec_refuses_two_inputs_for_one_output(tmp_path, capsys):
    tone(tmp_path / "in" / "a.wav")
    tone(tmp_path / "in" / "a.flac")
    status, err = cli(capsys, "melspec", tmp_path / "in", "--out", tmp_path / "out")
    assert_refused(status, err, "melspec", "a.flac", "a.wav", "would both be written to")
    assert not (tmp_path / "out").exists()


def test_melspec_into_a_folder_that_cannot_be_made(tmp_path, capsys):
    tone(tmp_path / "a.wav")
    (tmp_path / "file").write_text("not a folder")
    status, err = cli(capsys, "melspec", tmp_path / "a.wav", "--out", tmp_path / "file" / "out")
    assert_refused(status, err, "melspec", "--out", "cannot be written")


# --- runs and exports that are not what they claim ----------------------------------------------


def test_commands_given_a_folder_that_is_no_run_say_so(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for command in (["evaluate"], ["export"]):
        status, err = cli(capsys, *command, tmp_path / "empty")
        assert_refused(status, err, command[0], str(tmp_path / "empty"), "not a run directory")
    status, err = cli(capsys, "predict", tmp_path / "empty", tmp_path / "x.npy")
    assert_refused(status, err, "predict", str(tmp_path / "empty"))


def test_predict_on_an_export_without_its_saved_model_names_what_is_missing(tmp_path, capsys):
    export = tmp_path / "export"
    export.mkdir()
    (export / "export.json").write_text("{}")
    (export / "tags.txt").write_text("mood/theme---calm\n")
    np.save(tmp_path / "x.npy", np.zeros((96, 1400), np.float32))
    status, err = cli(capsys, "predict", export, tmp_path / "x.npy")
    assert_refused(status, err, "predict", "saved_model")


# --- with a trained run -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_with_output(corpus, tmp_path_factory) -> tuple[Path, str]:
    """One epoch of `baseline5`, trained with *relative* data folders from another directory;
    the run directory and what the command printed on stderr."""
    data_dir, meta_dir = corpus
    root = tmp_path_factory.mktemp("abuse-run")
    before, err = os.getcwd(), io.StringIO()
    os.chdir(data_dir.parent)
    try:
        with contextlib.redirect_stderr(err):
            status = main(
                [str(arg) for arg in train_args(data_dir.name, meta_dir.name, root / "run")]
                + ["--train-tracks", "4", "--test-crops", "1"]
            )
    finally:
        os.chdir(before)
    assert status == 0, err.getvalue()
    return root / "run", err.getvalue()


@pytest.fixture(scope="module")
def trained(trained_with_output) -> Path:
    return trained_with_output[0]


@pytest.mark.slow
def test_a_run_trained_with_relative_folders_evaluates_from_anywhere(
    trained, corpus, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    config = json.loads((trained / "config.json").read_text())
    assert Path(config["data_dir"]).is_absolute() and Path(config["meta_dir"]).is_absolute()
    status, err = cli(capsys, "evaluate", trained, "--json")
    assert status == 0, err
    # Moved data: refused naming the folder, unless --data-dir / --meta-dir say where it went.
    moved = tmp_path / "moved"
    shutil.copytree(corpus[0].parent, moved)
    saved = config["meta_dir"]
    config["meta_dir"] = str(tmp_path / "gone")
    (trained / "config.json").write_text(json.dumps(config))
    try:
        status, err = cli(capsys, "evaluate", trained)
        assert_refused(status, err, "evaluate", str(tmp_path / "gone"))
        status, err = cli(
            capsys,
            "evaluate",
            trained,
            "--meta-dir",
            moved / "metadata",
            "--data-dir",
            moved / "melspecs",
        )
        assert status == 0, err
    finally:
        config["meta_dir"] = saved
        (trained / "config.json").write_text(json.dumps(config))


@pytest.mark.slow
def test_training_shows_progress_while_validating(trained_with_output):
    _, err = trained_with_output
    assert "train: 2/2 split-0/validation batches" in err  # 4 tracks x 1 crop, batches of 2


@pytest.mark.slow
def test_export_never_replaces_a_run_or_a_foreign_folder(trained, tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    status, err = cli(capsys, "export", trained, "--out", foreign)
    assert_refused(status, err, "export", "--out", str(foreign))
    assert (foreign / "thesis.tex").read_text() == "years of work"
    checkpoints = sorted(p.name for p in (trained / "checkpoints").iterdir())
    status, err = cli(capsys, "export", trained, "--out", trained)
    assert_refused(status, err, "export", "--out")
    assert sorted(p.name for p in (trained / "checkpoints").iterdir()) == checkpoints


@pytest.mark.slow
def test_predict_names_each_bad_file_and_scores_the_rest(trained, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    np.save(inputs / "good.npy", np.random.default_rng(0).normal(size=(96, 1400)).astype("f4"))
    np.save(inputs / "nan.npy", np.full((96, 1400), np.nan, np.float32))
    np.save(inputs / "pickled.npy", np.array([{"a": 1}], dtype=object))
    np.save(inputs / "bands.npy", np.zeros((40, 1400), np.float32))
    (inputs / "empty.mp3").write_bytes(b"")
    samples = (0.1 * np.sin(np.arange(24000) / 5)).astype(np.float32)
    samples[5] = np.inf
    tone(inputs / "inf.wav", samples)
    status, err = cli(capsys, "predict", trained, inputs, "--output", tmp_path / "out.csv")
    assert status == 1 and "Traceback" not in err, err
    for name in ("nan.npy", "pickled.npy", "bands.npy", "empty.mp3", "inf.wav"):
        assert any(name in line for line in err.splitlines()), f"{name} not named in {err}"
    rows = (tmp_path / "out.csv").read_text().splitlines()
    assert len(rows) == 2 and "good.npy" in rows[1]


@pytest.mark.slow
def test_run_outputs_follow_the_umask(trained):
    umask = os.umask(0)
    os.umask(umask)
    for path in [trained / "config.json", trained / "history.csv", trained / "checkpoints"]:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert mode == expected, f"{path}: {oct(mode)}, expected {oct(expected)}"
