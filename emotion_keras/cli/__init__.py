"""The `emotion-keras` command line: argument parsing, printing, and nothing else.

Each command lives in the module named after it, with a `register(subparsers)` function that
adds its parser and binds it to a small function calling the library. This package is the only
place that prints and the only one that knows flag names: library errors name arguments by
their Python names (`EmotionKerasError.arguments`) and `render_error` shows them as this
command's flags. A user mistake prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys

from emotion_keras import __version__
from emotion_keras.errors import EmotionKerasError

#: Modules of `emotion_keras.cli` that register a command, in `--help` order.
COMMAND_MODULES = (
    "demo_data",
    "models",
    "train",
    "evaluate",
    "table",
    "ensemble",
    "score",
    "export",
    "predict",
    "melspec",
    "melspecs",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotion-keras",
        description="Mood and theme recognition of music from mel-spectrograms (MTG-Jamendo).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def flag_of(argument: str, flags: dict[str, str]) -> str:
    """How this command's line names a library argument: its own flag, or `--the-name`."""
    return flags.get(argument, "--" + argument.replace("_", "-"))


def render_error(error: EmotionKerasError, flags: dict[str, str] | None = None) -> str:
    """The error's message with the arguments it names shown as command-line flags."""
    text = str(error)
    for argument in error.arguments:
        # Whole names only: `split` in "split-0/test" or "data_dir" in "meta_data_dir" stay.
        flag = flag_of(argument, flags or {})
        text = re.sub(rf"(?<![\w-]){re.escape(argument)}(?![\w-])", lambda _, f=flag: f, text)
    return text


def _print_log_lines() -> logging.Handler:
    """Shows the library's log lines (`emotion_keras.progress.log`) on stderr, as they are."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("emotion_keras")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter is noise for a command-line user; a user who wants it
    # sets TF_CPP_MIN_LOG_LEVEL themselves.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    handler = _print_log_lines()
    try:
        status = args.func(args)
    except EmotionKerasError as error:
        print(
            f"emotion-keras {args.command}: error: {render_error(error, args.flags)}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"emotion-keras {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        logging.getLogger("emotion_keras").removeHandler(handler)
    return int(status or 0)


def add_command(
    subparsers, name: str, func, *, flags: dict[str, str] | None = None, **parser_options
) -> argparse.ArgumentParser:
    """Adds command `name` bound to `func(args)`; `flags` maps library argument names to this
    command's own spelling where it is not `--the-name` (a positional `RUN_DIR`, `--out`)."""
    parser = subparsers.add_parser(name, **parser_options)
    parser.set_defaults(func=func, flags=flags or {})
    return parser
