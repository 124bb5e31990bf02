"""Colour (issue 12): an image with an embedded ICC profile is shown converted to sRGB. The test
profile is a matrix/TRC profile whose red and green primaries are sRGB's green and red: a stored
red pixel means green, so the screen must show red and green exchanged."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

from app.viewer import window as window_module
from app.viewer.colour import display_transform
from app.viewer.playlist import Playlist
from app.viewer.window import MainWindow

D50 = (0.9642, 1.0, 0.8249)
SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(xyz) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(_s15(v) for v in xyz)


def _curve(gamma: float) -> bytes:
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(4 + 4 + 2 + 1 + 67)


def swapped_profile() -> bytes:
    """An ICC v2 display profile: sRGB's primaries with red and green exchanged, gamma 2.2."""
    tags = [(b"desc", _desc("red-green swapped")), (b"wtpt", _xyz(D50)), (b"rXYZ", _xyz(SRGB_GREEN)),
            (b"gXYZ", _xyz(SRGB_RED)), (b"bXYZ", _xyz(SRGB_BLUE)), (b"rTRC", _curve(2.2)),
            (b"gTRC", _curve(2.2)), (b"bTRC", _curve(2.2)), (b"cprt", b"text" + bytes(4) + b"none\0\0\0\0")]  # fmt: skip
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size)
        + bytes(4)
        + bytes([2, 0x10, 0, 0])
        + b"mntr"
        + b"RGB "
        + b"XYZ "
        + bytes(12)
        + b"acsp"
        + bytes(4)
        + bytes(4)
        + bytes(4)
        + bytes(4)
        + bytes(8)
        + bytes(4)
        + b"".join(_s15(v) for v in D50)
        + bytes(4)
        + bytes(16)
        + bytes(28)
    )
    assert len(header) == 128
    return header + table + data


def four_colours(width=96, height=64) -> np.ndarray:
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[: height // 2, : width // 2], rgb[: height // 2, width // 2 :] = (255, 0, 0), (0, 255, 0)
    rgb[height // 2 :, : width // 2], rgb[height // 2 :, width // 2 :] = (0, 0, 255), (255, 255, 255)
    return rgb


@pytest.fixture
def open_window(qtbot, monkeypatch, tmp_path):
    from PySide6.QtCore import QSettings

    monkeypatch.setattr(window_module, "weights_status", lambda weights_dir=None: "No trained weights are installed.")

    def opener(path: Path) -> MainWindow:
        window = MainWindow(
            Playlist.from_arguments([path]), settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
        )
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    return opener


def shown(window: MainWindow, fx: float, fy: float) -> tuple[int, int, int]:
    width, height = window.view.image_size()
    image = window.view.viewport().grab().toImage()
    colour = QColor(image.pixel(window.view.mapFromScene(QPointF(fx * width, fy * height))))
    return colour.red(), colour.green(), colour.blue()


def close(a, b, tolerance=12) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_an_embedded_profile_is_converted_to_srgb(open_window, tmp_path, suffix):
    profile = swapped_profile()
    assert display_transform(profile) is not None
    path = tmp_path / f"swapped{suffix}"
    Image.fromarray(four_colours()).save(path, icc_profile=profile, **({"quality": 100} if suffix == ".jpg" else {}))
    window = open_window(path)
    assert close(shown(window, 0.25, 0.25), (0, 255, 0))  # stored red, shown green
    assert close(shown(window, 0.75, 0.25), (255, 0, 0))  # stored green, shown red
    assert close(shown(window, 0.25, 0.75), (0, 0, 255)) and close(shown(window, 0.75, 0.75), (255, 255, 255))
    stored = window.document.preview  # converted for the screen on a copy: the document keeps its colours
    assert tuple(stored[5, 5]) == (255, 0, 0) or close(tuple(int(v) for v in stored[5, 5]), (255, 0, 0))


def test_without_a_profile_the_pixels_are_shown_as_stored(open_window, tmp_path):
    path = tmp_path / "plain.png"
    Image.fromarray(four_colours()).save(path)
    window = open_window(path)
    assert close(shown(window, 0.25, 0.25), (255, 0, 0)) and close(shown(window, 0.75, 0.25), (0, 255, 0))
    assert display_transform(None) is None


def test_the_thumbnail_strip_converts_the_profile_too(open_window, qtbot, tmp_path):
    path = tmp_path / "swapped.png"
    Image.fromarray(four_colours()).save(path, icc_profile=swapped_profile())
    window = open_window(path)
    model = window.strip.thumbnails
    qtbot.waitUntil(lambda: model.has_picture(path), timeout=10000)
    image = model.picture(path).pixmap.toImage()
    top_left = QColor(image.pixel(image.width() // 4, image.height() // 4))
    assert close((top_left.red(), top_left.green(), top_left.blue()), (0, 255, 0))


def test_copy_image_puts_the_colours_seen_on_the_clipboard(open_window, qtbot, tmp_path):
    from PySide6.QtGui import QGuiApplication

    path = tmp_path / "swapped.png"
    Image.fromarray(four_colours()).save(path, icc_profile=swapped_profile())
    window = open_window(path)
    qtbot.waitUntil(lambda: window.document is not None, timeout=10000)
    window.tools.copy_image()
    image = QGuiApplication.clipboard().image()
    top_left = QColor(image.pixel(image.width() // 4, image.height() // 4))
    assert close((top_left.red(), top_left.green(), top_left.blue()), (0, 255, 0))  # stored red, seen green
    QGuiApplication.clipboard().clear()
