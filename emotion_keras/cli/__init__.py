"""The `emotion-keras` command line: argument parsing, printing, and nothing else.

Each command lives in the module named after it, with a `register(subparsers)` function that
adds its parser and binds it to a small function calling the library. This package is the only
place that prints and the only one that knows flag names: library errors name arguments by
their Python names (`EmotionKerasError.arguments`) and `render_error` shows them as this
command's flags. A user mistake prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import sys
import tempfile
import warnings

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
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
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


VERBOSE_HELP = (
    "show TensorFlow's own start-up and warning lines (hidden by default; also accepted "
    "after the command)"
)


def quiet_tensorflow() -> None:
    """Hides TensorFlow's, absl's and oneDNN's start-up lines and library warnings.

    Must run before TensorFlow is imported: the C++ side reads its environment once. Values a
    user already set win (`setdefault`). The oneDNN banner and the CPU-feature line are written
    while TensorFlow's libraries load, before `TF_CPP_MIN_LOG_LEVEL` applies, so TensorFlow's
    first import runs with the stderr file descriptor sent to a temporary file
    (`_QuietTensorFlowImport`), whose text is shown if that import fails. oneDNN's kernels stay
    on (turning them off with `TF_ENABLE_ONEDNN_OPTS=0` would silence the banner too, but makes
    training on a CPU 2-3 times slower).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(
        isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path
    ):
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging  # TensorFlow's dependency; cheap to import
    except ImportError:
        pass
    else:
        absl_logging.set_verbosity(absl_logging.ERROR)
    for module in ("tensorflow", "keras", "absl", "tf2onnx", "onnx", "google.protobuf"):
        warnings.filterwarnings("ignore", module=rf"{re.escape(module)}(\.|$)")


@contextlib.contextmanager
def _stderr_descriptor_to_file():
    """Sends file descriptor 2 (C++ logging included) to a temporary file for the block; if the
    block raises, the file's text is written to stderr before the exception goes on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the normal path finder does, and loads it with stderr silenced
    (see `quiet_tensorflow`); removes itself on first use."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec_module(module):
            with _stderr_descriptor_to_file():
                exec_module(module)

        spec.loader.exec_module = quiet_exec_module
        return spec


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Before parsing: `--help` of a command must be quiet too, and TensorFlow must not be
    # imported yet when the environment is set.
    if "--verbose" not in argv:
        quiet_tensorflow()
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
    # Also after the command; SUPPRESS keeps the top-level value when it is not given here.
    parser.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP
    )
    return parser
