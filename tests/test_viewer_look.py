"""A newcomer's findings (issue 12), each as the user met it: Ctrl+Q, keys after a menu, a stale
"Loading" note, one way to write sizes and rates, titles, the export folder of a sample, one dark
look, and the on-canvas indicator of what is shown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QObject, QPoint, QRect, Qt
from PySide6.QtGui import QColor, QImage, QRegion
from PySide6.QtWidgets import QApplication
from viewer_fixtures import show_window

from app.viewer import window as window_module
from app.viewer.describe import (
    ReconstructionStatus,
    indicator_text,
    reconstruction_text,
)
from app.viewer.export_worker import default_destination
from app.viewer.metadata import describe_document
from app.viewer.paths import RESOURCES, SAMPLES
from app.viewer.playlist import Playlist
from app.viewer.save_folder import save_folder_for, user_pictures_folder
from app.viewer.theme import apply_theme
from app.viewer.units import bpp_text, exact_size_text, size_text
from app.viewer.window import MainWindow

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_MS = 15000


@pytest.fixture
def open_window(qtbot, monkeypatch, tmp_path):
    from PySide6.QtCore import QSettings

    monkeypatch.setattr(window_module, "weights_status", lambda weights_dir=None: "No trained weights are installed.")

    def opener(*arguments) -> MainWindow:
        settings = QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat)
        window = MainWindow(Playlist.from_arguments(arguments), settings=settings)
        return show_window(qtbot, window)

    return opener


def folder_of_pngs(folder: Path, colours: list[tuple[int, int, int]], size=(64, 48)) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i, colour in enumerate(colours):
        path = folder / f"{i:02d}.png"
        Image.new("RGB", size, colour).save(path)
        paths.append(path)
    return paths


def backing_store(window: MainWindow) -> QImage:
    """What the window's backing store holds now (on the offscreen platform: what was painted,
    stale parts included), unlike ``grab()``, which paints everything afresh."""
    return window.screen().grabWindow(window.winId()).toImage()


def luminance(colour: QColor) -> float:
    return 0.299 * colour.red() + 0.587 * colour.green() + 0.114 * colour.blue()


# --------------------------------------------------------------------------- 1. Ctrl+Q


def test_no_two_actions_share_a_key(open_window):
    """Two actions (or one action twice) with the same key make Qt print 'Ambiguous shortcut
    overload' and do nothing: every key must belong to one action."""
    window = open_window(SAMPLES / "dune.jpg")
    owners: dict[str, str] = {}
    for action in window.findChildren(window_module.QAction):
        keys = [key.toString() for key in action.shortcuts() if not key.isEmpty()]
        assert len(keys) == len(set(keys)), (action.text(), keys)
        for key in keys:
            assert owners.setdefault(key, action.text()) == action.text(), f"{key}: {owners[key]} and {action.text()}"
    assert "Ctrl+Q" in owners


def test_ctrl_q_closes_the_window_and_quits(open_window, qtbot, monkeypatch):
    quits = []
    monkeypatch.setattr(window_module.QApplication, "quit", lambda: quits.append(True))
    window = open_window(SAMPLES / "dune.jpg")
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert not window.isVisible() and quits == [True]


def test_ctrl_q_ends_the_process_within_a_second(tmp_path):
    """The whole viewer (codec service included, pressed while it still starts) is gone in < 1 s."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path), OMP_NUM_THREADS="1")
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "viewer_quit_probe.py"), str(SAMPLES / "dune.jpg"), "1.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    pressed, output = None, []
    for line in process.stdout:
        output.append(line)
        if line.startswith("quit-pressed"):
            pressed = float(line.split()[1])
            break
    assert pressed is not None, "".join(output)
    process.wait(timeout=30)
    took = time.time() - pressed
    rest = process.stdout.read()
    assert process.returncode == 0, "".join(output) + rest
    assert "Ambiguous" not in rest
    assert took < 1.0, f"the viewer took {took:.2f} s to end"


# --------------------------------------------------------------------------- 2. keys after a menu


def test_left_right_step_right_after_a_menu_closed_with_escape(open_window, qtbot, tmp_path):
    folder_of_pngs(tmp_path / "pngs", [(200, 0, 0), (0, 200, 0), (0, 0, 200)])
    window = open_window(tmp_path / "pngs")
    bar = window.menuBar()
    file_action = bar.actions()[0]
    qtbot.mousePress(bar, Qt.MouseButton.LeftButton, pos=bar.actionGeometry(file_action).center())  # File opens
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is not None)
    qtbot.keyClick(QApplication.activePopupWidget(), Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: QApplication.activePopupWidget() is None)
    qtbot.wait(50)
    window.activateWindow()  # the offscreen platform does not give the window back its activation
    qtbot.waitUntil(window.isActiveWindow)
    qtbot.waitUntil(lambda: window.view.hasFocus())  # not the menu bar's keyboard mode
    assert not window.menuBar().hasFocus()
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
    assert window.playlist.index == 1
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Left)
    assert window.playlist.index == 0


# --------------------------------------------------------------------------- 3. a stale "Loading" note


class PaintedRegion(QObject):
    """Collects the regions the viewport repaints once ``when()`` holds (an event filter)."""

    def __init__(self, when):
        super().__init__()
        self.when = when
        self.region = QRegion()

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Paint and self.when():
            self.region = self.region.united(event.region())
        return False


def test_no_loading_note_is_left_on_screen_once_the_image_is_open(open_window, qtbot, tmp_path, monkeypatch):
    """The note over the old image must be painted over where it was, even where the new image
    does not reach (the letterbox): a partial repaint left it there for 30 s."""
    folder_of_pngs(tmp_path / "pngs", [(0, 0, 200), (0, 0, 200)], size=(900, 300))
    window = open_window(tmp_path / "pngs")
    qtbot.waitUntil(window.loader.idle, timeout=TIMEOUT_MS)
    window.loader.cache._entries.clear()  # the next image must be opened by a worker: "Loading ..." first
    real_request = window_module.DocumentLoader.request
    monkeypatch.setattr(window.loader, "request", lambda path, n=(), wait=False: real_request(window.loader, path, []))
    noted = []
    painted = PaintedRegion(lambda: bool(noted) and window.view.notice() == "")  # paints after the note went
    window.view.viewport().installEventFilter(painted)
    window.step(1)
    assert window.view.notice().startswith("Loading")
    noted.append(True)
    qtbot.waitUntil(lambda: window.info_label.text().startswith("PNG"), timeout=TIMEOUT_MS)
    qtbot.wait(100)
    window.view.viewport().removeEventFilter(painted)
    assert window.view.notice() == ""
    height = window.view.viewport().height()
    note_area = QRect(16, height - 40, 200, 24)  # bottom left, where the note was drawn
    assert painted.region.contains(note_area), painted.region.boundingRect()
    shown = backing_store(window)
    fresh = window.view.viewport().grab().toImage()  # painted afresh: no note
    origin = window.view.viewport().mapTo(window, QPoint(0, 0))
    for x in range(20, 160, 10):
        for y in range(height - 40, height - 16, 4):
            assert shown.pixel(origin.x() + x, origin.y() + y) == fresh.pixel(x, y), (x, y)


# --------------------------------------------------------------------------- 5. words, sizes, titles, folders


def test_one_size_and_rate_format_everywhere(open_window):
    assert size_text(850) == "850 bytes" and size_text(17_612) == "17.6 kB" and size_text(4_560_000) == "4.56 MB"
    assert exact_size_text(17_612) == "17.6 kB (17,612 bytes)" and bpp_text(0.0859) == "0.086 bpp"
    window = open_window(SAMPLES / "dune.jpg")
    document = window.loader.cache.get(SAMPLES / "dune.jpg").document
    bpp = bpp_text(document.bits_per_pixel)
    assert window.info_label.text().endswith(bpp)
    panel = describe_document(document)
    assert panel.value("Bits per pixel").startswith(bpp)
    assert panel.value("Size on disk").startswith(size_text(document.file_size))


def test_plain_images_show_their_type_and_size_in_the_title(open_window, tmp_path):
    path = folder_of_pngs(tmp_path / "pngs", [(10, 20, 30)], size=(64, 48))[0]
    window = open_window(path)
    assert window.windowTitle().startswith("00.png \u2014 PNG 64x48 \u2014")


def test_broken_files_are_explained_without_library_names(open_window, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"this is not an image")
    window = open_window(bad)
    assert "cannot read" in window.view.message() and "Pillow" not in window.view.message()


def test_a_sample_exports_to_the_users_pictures_not_into_the_installation(tmp_path, monkeypatch):
    sample = SAMPLES / "dune.jpg"
    destination = default_destination(sample)
    assert RESOURCES not in destination.parents and destination.parent == user_pictures_folder()
    assert destination.name == "dune.hyper.jpg"
    photo = tmp_path / "mine.jpg"
    assert default_destination(photo) == tmp_path / "mine.hyper.jpg"  # the user's own folder: beside the photo
    assert save_folder_for(tmp_path) == tmp_path


# --------------------------------------------------------------------------- one look


@pytest.fixture
def themed_app():
    """The viewer's theme for one test, then the application's own look back (later tests must
    not depend on the order they run in)."""
    app = QApplication.instance()
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    apply_theme(app)
    yield app
    app.setStyle(style)
    app.setPalette(palette)
    app.setStyleSheet(sheet)


def test_every_part_of_the_window_is_dark(themed_app, open_window, qtbot):
    window = open_window(SAMPLES / "dune.jpg")
    window.metadata_dock.show()
    qtbot.wait(50)
    image = window.grab().toImage()
    bar = window.menuBar().geometry()
    status = window.statusBar().geometry()
    strip = window.strip_dock.geometry()
    metadata = window.metadata_dock.geometry()
    places = {
        "menu bar": (bar.right() - 5, bar.center().y()),
        "status bar": (status.center().x(), status.bottom() - 2),
        "dock separator above the strip": (strip.center().x(), strip.top() - 2),
        "dock separator beside the panel": (metadata.left() - 2, metadata.center().y()),
        "metadata panel": (metadata.right() - 30, metadata.bottom() - 30),
    }
    for name, (x, y) in places.items():
        assert luminance(QColor(image.pixel(x, y))) < 80, f"{name} is light: {QColor(image.pixel(x, y)).getRgb()}"


# --------------------------------------------------------------------------- 6. the indicator


def test_indicator_words():
    status = ReconstructionStatus(state="reconstructing", percent=42)
    assert indicator_text(status) == "Reconstructing 42% of the visible area"
    assert reconstruction_text(status)[0].startswith("Reconstructing 42% of the visible area")
    assert indicator_text(ReconstructionStatus(state="preview")) == "Preview"
    assert indicator_text(ReconstructionStatus(state="full")) == "Reconstructed, full size"
    assert (
        reconstruction_text(ReconstructionStatus(state="full", device="cpu"))[0]
        == "Reconstructed, full size \u00b7 cpu"
    )
    # the decoder's pixels are never called the original's: no state claims "full resolution"
    states = ("preview", "reconstructing", "detailing", "full", "unavailable")
    words = [indicator_text(ReconstructionStatus(state=s, shown=shown)) for s in states for shown in (True, False)]
    assert not [w for w in words if "resolution" in w.lower() or "original" in w.lower()]
    assert indicator_text(ReconstructionStatus(state="full", shown=False)) == "Upscaled preview (C)"
    assert indicator_text(ReconstructionStatus(state="plain")) == ""


def test_the_indicator_is_drawn_on_the_canvas_also_in_full_screen(open_window, qtbot):
    window = open_window(SAMPLES / "dune.jpg")
    qtbot.waitUntil(lambda: window.view.indicator() == "Preview", timeout=TIMEOUT_MS)  # a slow CI machine: >5 s
    rect = window.view.indicator_rect()
    assert not rect.isEmpty() and rect.right() <= window.view.viewport().width()
    window.toggle_fullscreen()
    qtbot.waitUntil(lambda: not window.statusBar().isVisible(), timeout=TIMEOUT_MS)
    qtbot.wait(50)
    rect = window.view.indicator_rect().toRect()
    with_it = window.view.viewport().grab().toImage()
    window.view.set_indicator("")
    without = window.view.viewport().grab().toImage()
    changed = sum(
        with_it.pixel(x, y) != without.pixel(x, y)
        for x in range(rect.left(), rect.right(), 2)
        for y in range(rect.top(), rect.bottom(), 2)
    )
    assert changed > 20  # the pill and its words are on screen
    window.toggle_fullscreen()
