"""A terminal progress bar that stays silent for work that finishes within a second, and when
the output is not a terminal (logs, pipes)."""

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, delay: float = 1.0, width: int = 30):
        stream = stream or sys.stderr  # looked up now: sys.stderr may have been replaced since import
        self.label, self.stream, self.delay, self.width = label, stream, delay, width
        self.start = time.monotonic()
        self.shown = False
        self.enabled = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        if elapsed < self.delay and done < total:
            return
        if not self.shown and done >= total and elapsed < self.delay:
            return
        self.shown = True
        filled = self.width * done // max(total, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {100 * done // max(total, 1):3d}% {elapsed:5.1f}s")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()
