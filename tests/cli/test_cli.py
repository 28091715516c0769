"""The command line: one-line errors in its own flag names, help for every argument."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from emotion_keras.cli import build_parser, main, render_error
from emotion_keras.config import Config
from emotion_keras.errors import ConfigError, DataFileError


def test_library_argument_names_become_this_commands_flags():
    error = ConfigError("data_dir and meta_dir go together", arguments=("data_dir", "meta_dir"))
    assert render_error(error) == "--data-dir and --meta-dir go together"
    error = ConfigError("out_dir x: is a file", arguments=("out_dir",))
    assert render_error(error, {"out_dir": "--out"}) == "--out x: is a file"
    # Only whole names, and only the ones the error lists.
    error = DataFileError(
        "split-0/test of meta_dir M: split 3 has no meta_data_dir",
        arguments=("split", "meta_dir", "data_dir"),
    )
    assert render_error(error) == "split-0/test of --meta-dir M: --split 3 has no meta_data_dir"
    assert render_error(DataFileError("batch_size 0")) == "batch_size 0"


def test_a_bad_override_is_one_line_naming_the_flag(capsys):
    assert main(["train", "--split", "7"]) == 2
    err = capsys.readouterr().err
    assert err == "emotion-keras train: error: --split 7: MTG-Jamendo has splits 0 to 4\n"


def test_a_positional_argument_is_named_as_the_usage_shows_it(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run directory" in err


def _actions(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, (*path, name))
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def test_every_argument_of_every_command_has_help_that_says_more_than_override():
    missing = [
        (" ".join(path), action.dest)
        for path, action in _actions(build_parser())
        if not action.help or action.help.strip().lower() in ("override", "enable")
    ]
    assert missing == []


def test_every_configuration_field_is_a_train_flag_with_its_own_help():
    from emotion_keras.cli.train import FIELD_HELP

    assert set(FIELD_HELP) == {field.name for field in dataclasses.fields(Config)}


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["predict", "--help"]])
def test_help_does_not_import_tensorflow(argv):
    import subprocess
    import sys

    code = (
        f"import sys\nfrom emotion_keras.cli import main\ntry:\n    main({argv!r})\n"
        "except SystemExit:\n    pass\nprint('tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "False"
