"""View > Slideshow: the next image every few seconds until stopped (the interval is a setting)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

DEFAULT_INTERVAL_S = 4.0
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.5, 3600.0


class Slideshow(QObject):
    """Calls ``advance()`` every ``interval`` seconds while running."""

    def __init__(
        self, advance: Callable[[], None], interval: float = DEFAULT_INTERVAL_S, parent: QObject | None = None
    ):
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.timeout.connect(advance)
        self.set_interval(interval)

    def set_interval(self, seconds: float) -> None:
        self.interval = min(max(float(seconds), MIN_INTERVAL_S), MAX_INTERVAL_S)
        self._timer.setInterval(round(self.interval * 1000))

    def running(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
