"""The `emotion-keras` command line: argument parsing only.

Each command group lives in its own module here with a `register(subparsers)` function that adds
its sub-commands and binds each to a small function calling the library. Library code never reads
`sys.argv`. A user mistake (`EmotionKerasError`) prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from emotion_keras import __version__
from emotion_keras.errors import EmotionKerasError

#: Modules of `emotion_keras.cli` that register sub-commands, in `--help` order.
COMMAND_MODULES = ("data", "models", "train", "runs", "evaluation", "audio", "melspecs", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emotion-keras",
        description="Mood and theme recognition of music from mel-spectrograms (MTG-Jamendo).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter is noise for a command-line user; a user who wants it
    # sets TF_CPP_MIN_LOG_LEVEL themselves.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        status = args.func(args)
    except EmotionKerasError as error:
        print(f"emotion-keras {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emotion-keras {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)
