"""What the viewer tests share: a window shown, exposed and active, as a user would meet it."""

from __future__ import annotations

from app.viewer.window import MainWindow


def show_window(qtbot, window: MainWindow, size: tuple[int, int] | None = None) -> MainWindow:
    """Register ``window`` with qtbot (closed after the test), show it and wait until it is on
    screen and has the keyboard (key tests need both)."""
    qtbot.addWidget(window)
    if size is not None:
        window.resize(*size)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    return window
