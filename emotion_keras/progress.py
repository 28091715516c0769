"""How library code reports on long work without printing.

Two channels, both silent unless a front end listens:

- `log`: the `emotion_keras` logger, for one-off lines ("Training vgg6 on 9,949 tracks ...").
  The command line attaches a handler that prints them to stderr; a Python user sees them only if
  they configure logging.
- `Progress`: a callable that long loops (writing the demo data, scanning headers, relayout,
  predicting a split) call as they advance, `progress(done, total, note)`. Functions take it as
  an optional `progress` argument; the command line passes a terminal progress line.

Library modules must not print (`emotion_keras.cli` is the only place that does).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("emotion_keras")


class Progress(Protocol):
    def __call__(self, done: int, total: int, note: str = "") -> None:
        """`done` of `total` units are finished; `note` says what, briefly (may be empty)."""


def no_progress(done: int, total: int, note: str = "") -> None:
    """A `Progress` that reports nothing (the default of every library function)."""


def every(progress: Progress | None, step: int) -> Progress:
    """`progress` called only every `step` units (and at the end), or `no_progress`."""
    if progress is None:
        return no_progress

    def report(done: int, total: int, note: str = "") -> None:
        if done % step == 0 or done == total:
            progress(done, total, note)

    return report
