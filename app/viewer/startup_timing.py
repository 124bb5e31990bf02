"""Start-up order: the preview is painted before anything slow starts (the codec service).

``call_after_first_paint`` defers work until the view has painted once; the opt-in trace
``HYPERTHUMB_TRACE_STARTUP=1 python main.py FILE`` measures launch-to-first-preview, then
watches the GUI thread for stalls (``GapMonitor``) during the first seconds.

It prints to stderr how long after the process started (Python start-up and imports included)
the first paint of the view holding an image began. Linux reads the process start time from
/proc; elsewhere the clock starts when this module is imported, which the message says. Then,
``TRACE_WATCH_S`` seconds later, the longest gap between the ticks of a 10 ms timer on the GUI
thread since that paint: what a key press could have waited at worst.
"""

from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer

_IMPORTED_AT = time.monotonic()
TRACE_WATCH_S = 6.0  # how long the trace watches the GUI thread after the first paint
HEARTBEAT_MS = 10


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
            print(
                f"hyperthumb-viewer: first preview painted {seconds:.3f} s after {since} (torch {torch})",
                file=sys.stderr,
            )
            self.view.viewport().removeEventFilter(self)
            self.monitor = GapMonitor(self)
            QTimer.singleShot(round(TRACE_WATCH_S * 1000), self._report_gaps)
        return False

    def _report_gaps(self) -> None:
        gap, at = self.monitor.stop()
        torch = "loaded" if "torch" in sys.modules else "not loaded"
        print(
            f"hyperthumb-viewer: longest GUI-thread gap in the {TRACE_WATCH_S:.0f} s after the first paint: "
            f"{gap * 1000:.0f} ms (ending {at:.2f} s after it; timer {HEARTBEAT_MS} ms; torch {torch} in this process)",
            file=sys.stderr,
        )


class GapMonitor(QObject):
    """A ``HEARTBEAT_MS`` timer on the GUI thread that remembers the longest time between two
    of its ticks: a stall of the event loop (a slow slot, a held GIL) shows up as a long gap."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = HEARTBEAT_MS):
        super().__init__(parent)
        self.started = self.last = time.perf_counter()
        self.longest = 0.0
        self.longest_at = 0.0  # seconds after the start when the longest gap ended
        self.ticks = 0
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self._tick)
        self._timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        if now - self.last > self.longest:
            self.longest, self.longest_at = now - self.last, now - self.started
        self.last = now
        self.ticks += 1

    def stop(self) -> tuple[float, float]:
        """(longest gap, when it ended) in seconds, counting the time since the last tick."""
        self._tick()
        self._timer.stop()
        return self.longest, self.longest_at


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
    check, which starts the codec service: a process start that must not delay the preview)."""
    _AfterFirstPaint(widget, callback, delay_ms)


def trace_if_asked(view) -> None:
    if os.environ.get("HYPERTHUMB_TRACE_STARTUP"):
        FirstPaintTracer(view)
