"""View > Slideshow: the next image every few seconds until stopped (the interval is a setting).

The window runs it full screen with its panels hidden and this module's ``SlideshowBadge`` over
the image; Escape (or F5) stops it and puts the window back as it was (``window``).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QLabel, QWidget

DEFAULT_INTERVAL_S = 4.0
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.5, 3600.0
BADGE_TEXT = "Slideshow \u2014 Esc to stop"
BADGE_MARGIN = 12  # viewport pixels from the top-left corner (the reconstruction indicator is top-right)


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


class SlideshowBadge(QLabel):
    """The small label in the image's top-left corner while a slideshow runs (also in full
    screen: a child of the view); mouse events go through it to the image."""

    def __init__(self, view: QWidget):
        super().__init__(BADGE_TEXT, view)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet(
            "QLabel { background: rgba(0, 0, 0, 120); color: rgba(235, 235, 235, 200);"
            " border-radius: 6px; padding: 4px 8px; }"
        )
        self.adjustSize()
        self.move(BADGE_MARGIN, BADGE_MARGIN)
        self.hide()
