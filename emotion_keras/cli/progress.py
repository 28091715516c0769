"""A progress line on stderr for the library's `Progress` reports.

On a terminal the line is rewritten in place; elsewhere (a log file, CI) a line is printed at the
end and at most every `interval_s` seconds, so logs stay short.
"""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """A `emotion_keras.progress.Progress` that prints `label: done/total note (elapsed)`.

    Args:
        label: what the work is, e.g. `demo data` or `predict`.
        interval_s: seconds between lines when stderr is not a terminal.
        stream: where to print (default stderr).
    """

    def __init__(self, label: str, interval_s: float = 10.0, stream=None):
        self.label = label
        self.interval_s = interval_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.last_print = -float("inf")

    def __call__(self, done: int, total: int, note: str = "") -> None:
        now = time.monotonic()
        finished = done >= total
        if not self.tty and not finished and now - self.last_print < self.interval_s:
            return
        self.last_print = now
        text = (
            f"{self.label}: {done}/{total}{' ' + note if note else ''} ({now - self.started:.0f} s)"
        )
        if self.tty:
            print(f"\r\033[K{text}", end="\n" if finished else "", file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)
