"""Comparing preview and reconstruction at the same place (issue 12): with the split on, the
screen shows the upscaled preview left of the line and the decoder's pixels right of it."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from test_viewer_reconstruction import (  # noqa: F401 -- pytest fixtures, shared
    WIDTH,
    decoded,
    difference,
    photos,
    shown_photo,
    spy,
    upscaled_preview,
    viewer,
    wait_for,
)


def test_the_split_shows_preview_left_and_reconstruction_right(viewer, spy, photos, decoded, qtbot):
    window = viewer(photos["a"])
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    qtbot.keyClick(window.view, Qt.Key.Key_X)
    assert window.compare_action.isChecked() and window.view.split() == 0.5
    origin = window.view.mapFromScene(0, 0).x()
    line = round(window.view.viewport().width() * 0.5) - origin  # photo column under the line
    shown = shown_photo(window)
    preview = upscaled_preview(photos["a"], (WIDTH, shown.shape[0]))
    margin = 12  # the drawn line and its round handle
    assert difference(shown[:, : line - margin], preview[:, : line - margin])[0] < 3
    assert difference(shown[:, line + margin :], decoded["a"][:, line + margin :])[1] <= 2
    assert difference(shown[:, line + margin :], preview[:, line + margin :])[0] > 4


def test_the_line_can_be_dragged_and_follows_the_view(viewer, spy, photos, decoded, qtbot):
    window = viewer(photos["a"])
    window.view.set_zoom(1.0)
    wait_for(qtbot, window, "full")
    window.view.set_split(0.5)
    width = window.view.viewport().width()
    qtbot.mousePress(window.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(width // 2, 40))
    qtbot.mouseMove(window.view.viewport(), QPoint(width // 4, 40))
    qtbot.mouseRelease(window.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(width // 4, 40))
    assert abs(window.view.split() - 0.25) < 0.02
    origin = window.view.mapFromScene(0, 0).x()
    line = width // 4 - origin
    shown = shown_photo(window)
    assert difference(shown[:, line + 12 :], decoded["a"][:, line + 12 :])[1] <= 2
    qtbot.keyClick(window.view, Qt.Key.Key_X)  # on, then off again: reconstruction everywhere
    qtbot.keyClick(window.view, Qt.Key.Key_X)
    assert window.view.split() is None
    assert difference(shown_photo(window), decoded["a"])[1] <= 2
