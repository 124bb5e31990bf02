"""Start-up order: the preview is painted before anything slow (torch) is imported.

``call_after_first_paint`` defers work until the view has painted once; the opt-in trace
``HYPERTHUMB_TRACE_STARTUP=1 python main.py FILE`` measures launch-to-first-preview.

Prints to stderr how long after the process started (Python start-up and imports included)
the first paint of the view holding an image began. Linux reads the process start time from
/proc; elsewhere the clock starts when this module is imported, which the message says.
"""

from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer

_IMPORTED_AT = time.monotonic()


def seconds_since_launch() -> tuple[float, str]:
    """(seconds, what the clock started at)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK"), "process start"
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED_AT, "viewer import"


class FirstPaintTracer(QObject):
    """Event filter on the view's viewport: reports the first paint once ``has_image()`` is true."""

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        view.viewport().installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint and self.view.has_image():
            seconds, since = seconds_since_launch()
            torch = "loaded" if "torch" in sys.modules else "not loaded yet"
            print(f"hyperthumb-viewer: first preview painted {seconds:.3f} s after {since} (torch {torch})",
                  file=sys.stderr)  # fmt: skip
            self.view.viewport().removeEventFilter(self)
        return False


class _AfterFirstPaint(QObject):
    def __init__(self, widget, callback, delay_ms: int):
        super().__init__(widget)
        self.widget, self.callback, self.delay_ms = widget, callback, delay_ms
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint:
            self.widget.removeEventFilter(self)
            QTimer.singleShot(self.delay_ms, self.callback)
        return False


def call_after_first_paint(widget, callback, delay_ms: int = 50) -> None:
    """Run ``callback`` on the GUI thread shortly after ``widget`` first paints (e.g. the weights
    check, which imports torch: a second of work that must not delay the preview)."""
    _AfterFirstPaint(widget, callback, delay_ms)


def trace_if_asked(view) -> None:
    if os.environ.get("HYPERTHUMB_TRACE_STARTUP"):
        FirstPaintTracer(view)
