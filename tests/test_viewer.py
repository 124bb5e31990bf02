"""The viewer as a user meets it: opening, stepping, zooming, errors, and the pixels shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image
from PySide6.QtCore import QEventLoop, QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import QApplication
from viewer_fixtures import show_window

from app.viewer import main as viewer_main
from app.viewer.describe import NO_WEIGHTS_SHORT, format_name, zoom_text
from app.viewer.image_view import ZOOM_STEP
from app.viewer.paths import ICON_PNG, ICON_SVG, SAMPLES
from app.viewer.playlist import Playlist
from app.viewer.window import MainWindow

RED, BLUE = (255, 0, 0), (0, 0, 255)


def split_image(width: int, height: int, left=RED, right=BLUE) -> np.ndarray:
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:, : width // 2] = left
    rgb[:, width // 2 :] = right
    return rgb


def save_png(path: Path, rgb: np.ndarray) -> Path:
    Image.fromarray(rgb).save(path)
    return path


@pytest.fixture
def open_window(qtbot, monkeypatch):
    """Open a window on the given arguments, shown, active, with a known weights status."""
    monkeypatch.setattr(
        "app.viewer.window.weights_status", lambda weights_dir=None: "No trained weights are installed."
    )

    def opener(*arguments: str | Path) -> MainWindow:
        window = MainWindow(Playlist.from_arguments(arguments))
        return show_window(qtbot, window)

    return opener


def colour_at(window: MainWindow, x: float, y: float) -> tuple[int, int, int]:
    """The colour the view shows at photo coordinates (x, y)."""
    view = window.view
    image = view.viewport().grab().toImage()
    point = view.mapFromScene(QPointF(x, y))
    colour = QColor(image.pixel(point))
    return colour.red(), colour.green(), colour.blue()


def near(actual: tuple[int, int, int], expected: tuple[int, int, int], tolerance: int = 40) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


# --------------------------------------------------------------------------- opening


def test_opens_a_sample(open_window):
    sample = SAMPLES / "dune.jpg"
    window = open_window(sample)
    assert "dune.jpg" in window.windowTitle() and "HyperThumbnail 1680x1050" in window.windowTitle()
    assert window.view.has_image()
    assert window.view.image_size() == (1680, 1050)  # laid out at the original's geometry
    assert Image.open(sample).size == (420, 263)  # while the file itself is the thumbnail
    assert window.info_label.text().startswith("HyperThumbnail \u2014 full size 1680x1050")
    assert window.view.is_fitted()
    assert len(window.playlist.paths) == len(list(SAMPLES.glob("*.jpg")))


def test_shows_pixels_where_they_are(open_window, tmp_path):
    window = open_window(save_png(tmp_path / "split.png", split_image(400, 200)))
    assert near(colour_at(window, 100, 100), RED)
    assert near(colour_at(window, 300, 100), BLUE)


def test_honours_exif_orientation(open_window, tmp_path):
    """Stored red|blue turned 90 degrees clockwise (orientation 6) shows red on top, blue below."""
    path = tmp_path / "turned.jpg"
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}})
    Image.fromarray(split_image(320, 160)).save(path, quality=95, exif=exif)
    window = open_window(path)
    assert window.view.image_size() == (160, 320)
    assert window.info_label.text() == "JPEG 160x320"
    assert near(colour_at(window, 80, 60), RED)
    assert near(colour_at(window, 80, 260), BLUE)


def test_hyperthumbnail_is_laid_out_at_full_size(open_window, tmp_path):
    from app.codec.files.marker import Marker
    from app.codec.files.writer import write_hyperthumbnail

    width, height = 403, 201  # not multiples of 4: the 4x thumbnail is cropped at the top-left
    marker = Marker(width=width, height=height, scale=4, model_id="test", weights_sha256="0" * 64)
    thumb_w, thumb_h = marker.thumbnail_size
    path = tmp_path / "hyper.jpg"
    flat = np.full(64, 2, dtype=np.int32)
    write_hyperthumbnail(path, split_image(thumb_w, thumb_h), flat, flat, marker)
    window = open_window(path)
    assert f"HyperThumbnail {width}x{height}" in window.windowTitle()
    assert "hyper.jpg" in window.windowTitle()
    bpp = path.stat().st_size * 8 / (width * height)
    assert window.info_label.text() == f"HyperThumbnail \u2014 full size {width}x{height}, {bpp:.3f} bpp"
    assert window.view.image_size() == (width, height)
    window.view.set_zoom(1.0)
    assert near(colour_at(window, 50, 100), RED)
    assert near(colour_at(window, 350, 100), BLUE)


@pytest.mark.parametrize("content", [b"this is not an image", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"])
def test_a_corrupt_file_shows_an_error_in_the_window(open_window, tmp_path, content):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(content)
    window = open_window(bad)
    assert not window.view.has_image()
    assert "Cannot open broken.jpg" in window.view.message()
    assert window.info_label.text().startswith("Cannot open: ")
    assert "broken.jpg" in window.windowTitle()


def test_an_empty_folder_says_so(open_window, tmp_path):
    window = open_window(tmp_path)
    assert "No images" in window.view.message()


# --------------------------------------------------------------------------- stepping


@pytest.fixture
def three_pngs(tmp_path) -> list[Path]:
    """b.png, A.png, c.png (created out of order) plus a file that is not an image."""
    (tmp_path / "notes.txt").write_text("not an image")
    colours = {"b.png": (0, 255, 0), "A.png": RED, "c.png": BLUE}
    for name, colour in colours.items():
        save_png(tmp_path / name, np.full((30, 40, 3), colour, np.uint8))
    return [tmp_path / "A.png", tmp_path / "b.png", tmp_path / "c.png"]


def test_next_and_previous_go_through_the_folder_in_name_order(open_window, qtbot, three_pngs):
    a, b, c = three_pngs
    window = open_window(b)
    assert window.playlist.paths == [a, b, c]
    shown = []
    for key in (
        Qt.Key.Key_PageDown,
        Qt.Key.Key_Space,
        Qt.Key.Key_PageUp,
        Qt.Key.Key_Backspace,
        Qt.Key.Key_Right,
        Qt.Key.Key_Left,
    ):
        qtbot.keyClick(window.view, key)
        shown.append(window.windowTitle().split(" ")[0])
    assert shown == ["c.png", "A.png", "c.png", "b.png", "c.png", "b.png"]
    assert window.position_label.text() == "2/3"


def test_arrows_scroll_instead_of_stepping_when_zoomed_in(open_window, qtbot, three_pngs):
    window = open_window(three_pngs[0])
    window.view.set_zoom(8.0)
    qtbot.keyClick(window.view, Qt.Key.Key_Right)
    assert window.playlist.current == three_pngs[0]


def test_a_folder_argument_opens_its_first_image(three_pngs):
    playlist = Playlist.from_arguments([three_pngs[0].parent])
    assert playlist.current == three_pngs[0]
    assert Playlist.from_arguments(three_pngs[::-1]).paths == three_pngs[::-1]


# --------------------------------------------------------------------------- zoom


@pytest.fixture
def big_window(open_window, tmp_path) -> MainWindow:
    """A 3000x2000 photo: larger than the window, so fitting shrinks it."""
    return open_window(save_png(tmp_path / "big.png", split_image(3000, 2000)))


def test_zoom_keys(big_window, qtbot):
    view = big_window.view
    fit = view.fit_zoom()
    viewport = view.viewport().size()
    assert fit == pytest.approx(min(viewport.width() / 3000, viewport.height() / 2000))
    assert view.zoom() == pytest.approx(fit) and view.is_fitted()
    qtbot.keyClick(view, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom() == pytest.approx(1.0) and not view.is_fitted()
    assert big_window.zoom_label.text() == "100%"
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert view.zoom() == pytest.approx(ZOOM_STEP)
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    qtbot.keyClick(view, Qt.Key.Key_Minus)
    assert view.zoom() == pytest.approx(1 / ZOOM_STEP)
    qtbot.keyClick(view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom() == pytest.approx(fit) and view.is_fitted()
    assert big_window.zoom_label.text().endswith("(fit)")
    qtbot.keyClick(view, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(view, Qt.Key.Key_1)  # a bare digit rates the image; the zoom stays
    assert view.zoom() == pytest.approx(1.0)


def test_fixed_zoom_levels_have_keys_listed_in_the_help(big_window, qtbot):
    from app.viewer.help_overlay import shortcut_rows

    view = big_window.view
    for key, zoom, label in ((Qt.Key.Key_5, 0.5, "50%"), (Qt.Key.Key_2, 2.0, "200%"), (Qt.Key.Key_4, 4.0, "400%")):
        qtbot.keyClick(view, key, Qt.KeyboardModifier.ControlModifier)
        assert view.zoom() == pytest.approx(zoom) and not view.is_fitted()
        assert big_window.zoom_label.text() == label
    qtbot.keyClick(view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert view.is_fitted()
    rows = [(menu, keys, what) for menu, keys, what in shortcut_rows(big_window.menuBar()) if menu == "View"]
    levels = [(keys, what) for _, keys, what in rows if "%" in what or what == "Fit to Window"]
    assert levels == [
        ("Ctrl+0", "Fit to Window"),
        ("Ctrl+5", "Zoom 50%"),
        ("Ctrl+1", "Actual Size (100%)"),
        ("Ctrl+2", "Zoom 200%"),
        ("Ctrl+4", "Zoom 400%"),
    ]
    every_key = [k for _, keys, _ in shortcut_rows(big_window.menuBar()) for k in keys.split(" / ")]
    assert len(every_key) == len(set(every_key))  # no key does two things
    qtbot.keyClick(view, Qt.Key.Key_F1)
    assert "Zoom 400%" in big_window.help.text()


def test_double_click_toggles_fit_and_actual_size(big_window, qtbot):
    view = big_window.view
    centre = view.viewport().rect().center()
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert view.zoom() == pytest.approx(1.0)
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert view.is_fitted() and view.zoom() == pytest.approx(view.fit_zoom())


def test_wheel_zooms_around_the_cursor(big_window):
    view = big_window.view
    # Start where the photo overflows the viewport both ways: a letterboxed side has no room to
    # scroll, so no view can keep the point under the cursor there.
    view.set_zoom(1.5 * max(view.viewport().width() / 3000, view.viewport().height() / 2000))
    cursor = QPoint(view.viewport().width() // 4, view.viewport().height() // 3)
    under_cursor = view.mapToScene(cursor)
    before = view.zoom()
    wheel = QWheelEvent(
        QPointF(cursor),
        QPointF(view.viewport().mapToGlobal(cursor)),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(view.viewport(), wheel)
    assert view.zoom() == pytest.approx(before * ZOOM_STEP**2)
    after = view.mapToScene(cursor)
    assert abs(after.x() - under_cursor.x()) < 2 / view.zoom() + 1
    assert abs(after.y() - under_cursor.y()) < 2 / view.zoom() + 1


def test_resizing_keeps_a_fitted_photo_fitted(big_window, qtbot):
    big_window.resize(700, 500)
    qtbot.waitUntil(lambda: big_window.view.zoom() == pytest.approx(big_window.view.fit_zoom()))


# --------------------------------------------------------------------------- status and start-up


def test_weights_status_in_the_status_bar(open_window, monkeypatch, qtbot):
    """The check runs off the GUI thread (it waits for the codec service); its answer lands in the status bar."""
    import threading

    window = open_window(SAMPLES / "garden.jpg")
    threads = []

    def missing(weights_dir=None):
        threads.append(threading.get_ident())
        return "No trained weights are installed."

    monkeypatch.setattr("app.viewer.window.weights_status", missing)
    window.check_weights()
    qtbot.waitUntil(lambda: window.weights_label.text() == NO_WEIGHTS_SHORT, timeout=3000)
    assert not window.weights_label.isHidden() and threading.get_ident() not in threads
    assert window.weights_label.toolTip() == "No trained weights are installed."
    monkeypatch.setattr("app.viewer.window.weights_status", lambda weights_dir=None: None)
    window.check_weights()
    qtbot.waitUntil(window.weights_label.isHidden, timeout=3000)


def test_texts():
    assert format_name(Path("x.JPG")) == format_name(Path("y.jpeg")) == "JPEG"
    assert format_name(Path("x.tif")) == "TIFF" and format_name(Path("x.png")) == "PNG"
    assert zoom_text(0.5, True) == "50% (fit)" and zoom_text(0.025, False) == "2.5%"


def test_main_opens_the_files_given(qapp, monkeypatch):
    """``main`` runs with the application's event loop swapped for a short local one: quitting
    the real application would stop every later test's event loops (Qt starts none after exit)."""
    monkeypatch.setattr("app.viewer.window.weights_status", lambda weights_dir=None: None)
    titles = []

    def look_and_close() -> int:
        loop = QEventLoop()
        QTimer.singleShot(200, loop.quit)
        loop.exec()
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        titles.extend(w.windowTitle() for w in windows)
        for window in windows:
            window.close()
        return 0

    monkeypatch.setattr(qapp, "exec", look_and_close)
    from app.viewer import codec_bridge

    codec_bridge.service().start()  # as the first decode would
    assert viewer_main.main(["hyperthumb-viewer", str(SAMPLES / "ladybird.jpg")]) == 0
    assert any("ladybird.jpg" in title for title in titles)
    assert not codec_bridge.service().is_running()  # the codec service ends with the viewer


def test_the_bundled_resources_exist():
    assert ICON_SVG.is_file() and ICON_PNG.is_file()
    assert sorted(p.name for p in SAMPLES.glob("*.jpg")) == ["dune.jpg", "garden.jpg", "ladybird.jpg"]


def test_samples_are_hyperthumbnails_of_the_default_weights():
    """The samples must be remade (resources/make_samples.py) whenever the default weights change."""
    from app.codec.engine.weights import find_weights
    from app.codec.files.reader import read_marker

    default = find_weights()
    samples = sorted(SAMPLES.glob("*.jpg"))
    assert sum(p.stat().st_size for p in samples) <= 5 * 1024 * 1024
    for sample in samples:
        marker = read_marker(sample)
        assert marker is not None, f"{sample.name} is not a HyperThumbnail"
        assert marker.weights_sha256 == default.sha256, f"{sample.name}: run resources/make_samples.py"


def test_startup_trace_reports_the_first_preview_paint(open_window, monkeypatch, capsys, qtbot):
    from app.viewer.startup_timing import seconds_since_launch, trace_if_asked

    monkeypatch.setenv("HYPERTHUMB_TRACE_STARTUP", "1")
    window = open_window(SAMPLES / "dune.jpg")
    trace_if_asked(window.view)
    window.view.viewport().update()
    qtbot.waitUntil(lambda: "first preview painted" in capsys.readouterr().err or False, timeout=3000)
    seconds, since = seconds_since_launch()
    assert seconds > 0 and since in ("process start", "viewer import")


def test_slow_start_up_work_waits_for_the_first_paint(qtbot):
    """The weights check imports torch (about a second): it must not delay the preview."""
    from PySide6.QtWidgets import QLabel

    from app.viewer.startup_timing import call_after_first_paint

    label = QLabel("preview")
    qtbot.addWidget(label)
    calls = []
    call_after_first_paint(label, lambda: calls.append("checked"), delay_ms=0)
    qtbot.wait(50)
    assert calls == []  # never shown, never painted
    label.show()
    qtbot.waitUntil(lambda: calls == ["checked"], timeout=3000)
