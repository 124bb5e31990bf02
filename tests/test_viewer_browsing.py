"""Browsing as a user meets it: the thumbnail strip, preloaded neighbours, keys, drag and drop,
recent files, full screen, the metadata panel, errors, and rapid stepping.

Images are tiny (tens of pixels), every window gets its own settings file, and the one
HyperThumbnail is made with tiny untrained test weights, so the module runs in seconds.
"""

from __future__ import annotations

import io
import random
import threading
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication
from viewer_fixtures import show_window

from app.codec.api import RATE_PRESETS, Codec
from app.synthetic import photo_like
from app.viewer import codec_bridge
from app.viewer.loader import DocumentCache
from app.viewer.metadata import exposure_text
from app.viewer.playlist import Playlist
from app.viewer.recent import RecentFiles
from app.viewer.thumbnails import BADGE_COLOUR, ErrorRole, HyperRole
from app.viewer.units import exact_size_text
from app.viewer.window import RELIST_MS, MainWindow

TIMEOUT_MS = 10000
COLOURS = [(230, 30, 30), (30, 200, 40), (40, 60, 230), (240, 220, 20), (200, 40, 200), (20, 210, 210),
           (250, 140, 20), (120, 70, 20), (250, 250, 250), (10, 10, 10), (150, 150, 150), (100, 160, 255)]  # fmt: skip


# --------------------------------------------------------------------------- files and helpers


def solid(path: Path, colour, size=(48, 32)) -> Path:
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture
def folder(tmp_path) -> list[Path]:
    """img00.png .. img11.png, each one solid colour (made out of name order), plus a text file."""
    directory = tmp_path / "photos"
    directory.mkdir()
    (directory / "notes.txt").write_text("not an image")
    paths = [directory / f"img{i:02d}.png" for i in range(len(COLOURS))]
    for i in reversed(range(len(paths))):
        solid(paths[i], COLOURS[i])
    return paths


@pytest.fixture(scope="module")
def hyperthumbnail(tmp_path_factory, weights) -> Path:
    """A 384x256 HyperThumbnail made with the test weights."""
    sources = tmp_path_factory.mktemp("sources")
    source = sources / "photo.png"
    Image.fromarray(photo_like(384, 256, seed=2)).save(source)
    return Codec(weights_dir=weights).encode_file(source, tmp_path_factory.mktemp("hyper") / "hyper.jpg").path


@pytest.fixture
def settings_file(tmp_path) -> Path:
    return tmp_path / "settings" / "viewer.ini"


def make_settings(path: Path) -> QSettings:
    return QSettings(str(path), QSettings.Format.IniFormat)


@pytest.fixture
def browse(qtbot, monkeypatch, settings_file, weights):
    """Open a window on the given arguments with its own settings file; shown and active."""
    monkeypatch.setattr("app.viewer.window.weights_status", lambda weights_dir=None: None)

    def opener(*arguments, settings: QSettings | None = None, size=(900, 600)) -> MainWindow:
        window = MainWindow(
            Playlist.from_arguments(arguments), weights_dir=weights, settings=settings or make_settings(settings_file)
        )
        return show_window(qtbot, window, size)

    return opener


class Calls:
    """Wraps a codec_bridge function: which paths it was called with, and on which threads."""

    def __init__(self, function):
        self.function = function
        self.calls: list[tuple[Path, int]] = []
        self.lock = threading.Lock()

    def __call__(self, path, *args, **kwargs):
        with self.lock:
            self.calls.append((Path(path), threading.get_ident()))
        return self.function(path, *args, **kwargs)

    def paths(self, on_gui_thread: bool | None = None) -> list[Path]:
        gui = threading.get_ident()
        with self.lock:
            return [p for p, t in self.calls if on_gui_thread is None or (t == gui) == on_gui_thread]


@pytest.fixture
def opened(monkeypatch) -> Calls:
    spy = Calls(codec_bridge.open_image)
    monkeypatch.setattr(codec_bridge, "open_image", spy)
    return spy


@pytest.fixture
def previews(monkeypatch) -> Calls:
    spy = Calls(codec_bridge.strip_preview)
    monkeypatch.setattr(codec_bridge, "strip_preview", spy)
    return spy


def title_name(window: MainWindow) -> str:
    return window.windowTitle().split(" \u2014 ")[0]


def shown_colour(window: MainWindow) -> tuple[int, int, int]:
    """The colour at the middle of the photo shown."""
    view = window.view
    rect = view.sceneRect()
    point = view.mapFromScene(QPointF(rect.center()))
    colour = QColor(view.viewport().grab().toImage().pixel(point))
    return colour.red(), colour.green(), colour.blue()


def near(actual, expected, tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


def settled(qtbot, window: MainWindow) -> None:
    """Wait until the documents and the strip's pictures asked for are all done."""
    qtbot.waitUntil(lambda: window.loader.idle() and not window.strip.busy(), timeout=TIMEOUT_MS)


def drop(window: MainWindow, *urls: QUrl) -> QDropEvent:
    """Drag ``urls`` onto the middle of the image and let go (Qt delivers a drop only after an
    accepted drag-enter); the view passes both on to the window."""
    mime = QMimeData()
    mime.setUrls(list(urls))
    target = window.view.viewport()
    where = QPointF(target.rect().center())
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(where, Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    event = QDropEvent(where, Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(target, event)
    return event


# --------------------------------------------------------------------------- the strip


def test_the_strip_lists_the_folder_in_name_order_and_makes_pictures_off_the_gui_thread(
    browse, qtbot, folder, previews
):
    window = browse(folder[3])
    strip = window.strip
    assert strip.isVisible()
    assert strip.thumbnails.paths == folder  # name order, without notes.txt
    settled(qtbot, window)
    made = previews.paths()
    assert made and not previews.paths(on_gui_thread=True)
    for row in strip.visible_rows():
        picture = strip.thumbnails.picture(folder[row])
        assert picture is not None and picture.pixmap is not None and picture.error is None
        image = picture.pixmap.toImage()
        assert near(QColor(image.pixel(image.width() // 2, image.height() // 2)).getRgb()[:3], COLOURS[row])


def test_the_strip_makes_pictures_for_what_is_on_screen_first(browse, qtbot, tmp_path, previews):
    many = [solid(tmp_path / f"p{i:03d}.png", COLOURS[i % len(COLOURS)]) for i in range(60)]
    window = browse(many[0], size=(600, 500))
    strip = window.strip
    settled(qtbot, window)
    visible = strip.visible_rows()
    assert visible[0] == 0 and 2 < len(visible) < 15
    made = set(previews.paths())
    assert {many[row] for row in visible} <= made
    assert len(made) <= 2 * len(visible) + 1 < len(many)  # what is on screen and a screenful beyond
    strip.horizontalScrollBar().setValue(strip.horizontalScrollBar().maximum())
    settled(qtbot, window)
    assert many[-1] in previews.paths()
    assert strip.thumbnails.picture(many[-1]).pixmap is not None
    assert len(set(previews.paths())) < len(many)  # the middle was scrolled past, never made


def test_a_hidden_strip_makes_no_pictures(browse, qtbot, folder, previews, settings_file):
    settings = make_settings(settings_file)
    settings.setValue("view/strip", False)
    window = browse(folder[0], settings=settings)
    settled(qtbot, window)
    assert not window.strip.isVisible() and previews.paths() == []
    qtbot.keyClick(window.view, Qt.Key.Key_T)
    assert window.strip.isVisible()
    qtbot.waitUntil(lambda: folder[0] in previews.paths(), timeout=TIMEOUT_MS)
    window.close()
    assert make_settings(settings_file).value("view/strip", False, bool) is True


def test_clicking_an_item_opens_it_and_the_current_image_is_highlighted(browse, qtbot, folder):
    window = browse(folder[0])
    strip = window.strip
    settled(qtbot, window)
    assert strip.selectionModel().isSelected(strip.thumbnails.index(0)) and strip.current_row() == 0
    rect = strip.visualRect(strip.thumbnails.index(2))
    qtbot.mouseClick(strip.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: title_name(window) == folder[2].name and window.view.has_image(), timeout=TIMEOUT_MS)
    assert window.playlist.current == folder[2]
    qtbot.waitUntil(lambda: near(shown_colour(window), COLOURS[2]), timeout=TIMEOUT_MS)
    assert strip.current_row() == 2 and strip.selectedIndexes() == [strip.thumbnails.index(2)]
    assert window.view.hasFocus() or not strip.hasFocus()  # keys stay with the image


def test_the_current_item_is_scrolled_into_view(browse, qtbot, tmp_path):
    many = [solid(tmp_path / f"p{i:03d}.png", COLOURS[i % len(COLOURS)]) for i in range(40)]
    window = browse(many[0], size=(600, 500))
    strip = window.strip
    qtbot.keyClick(window.view, Qt.Key.Key_End)
    assert window.playlist.current == many[-1]
    qtbot.waitUntil(lambda: strip.visualRect(strip.thumbnails.index(39)).intersects(strip.viewport().rect()))
    assert 39 in strip.visible_rows() and 0 not in strip.visible_rows()
    qtbot.keyClick(window.view, Qt.Key.Key_Home)
    assert window.playlist.current == many[0]
    qtbot.waitUntil(lambda: 0 in strip.visible_rows())


def test_hyperthumbnails_get_a_badge_and_unreadable_files_an_error(browse, qtbot, tmp_path, hyperthumbnail):
    target = tmp_path / "b-hyper.jpg"
    target.write_bytes(hyperthumbnail.read_bytes())
    plain = solid(tmp_path / "a-plain.png", (200, 200, 200))
    broken = tmp_path / "c-broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    window = browse(plain)
    strip = window.strip
    settled(qtbot, window)
    model = strip.thumbnails
    assert model.data(model.index(1), HyperRole) and not model.data(model.index(0), HyperRole)
    assert model.picture(target).full_size == (384, 256)
    error = model.data(model.index(2), ErrorRole)
    assert error and "c-broken.jpg" in error
    assert "Cannot open" in model.data(model.index(2), Qt.ItemDataRole.ToolTipRole)
    image = strip.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    rect = strip.visualRect(model.index(1))

    def badge_pixels(rect) -> int:
        return sum(
            near(QColor(image.pixel(x, y)).getRgb()[:3], BADGE_COLOUR.getRgb()[:3], 20)
            for x in range(rect.left(), rect.right())
            for y in range(rect.top(), rect.bottom())
        )

    assert badge_pixels(rect) > 40  # the blue 'HT' badge is drawn on the HyperThumbnail only
    assert badge_pixels(strip.visualRect(model.index(0))) == 0


# --------------------------------------------------------------------------- neighbours and keys


def test_neighbours_are_preloaded_so_stepping_opens_nothing_on_the_gui_thread(browse, qtbot, folder, opened):
    window = browse(folder[5])
    assert opened.paths(on_gui_thread=True) == [folder[5]]  # the first image, before the window shows
    settled(qtbot, window)
    assert {folder[4], folder[6]} <= set(opened.paths(on_gui_thread=False))
    for key, index in (
        (Qt.Key.Key_PageDown, 6),
        (Qt.Key.Key_Space, 7),
        (Qt.Key.Key_Backspace, 6),
        (Qt.Key.Key_PageUp, 5),
        (Qt.Key.Key_Left, 4),
        (Qt.Key.Key_Right, 5),
    ):
        qtbot.keyClick(window.view, key)
        # shown at once: the neighbour was already open
        assert title_name(window) == folder[index].name and window.view.notice() == ""
        assert near(shown_colour(window), COLOURS[index])
        settled(qtbot, window)
    assert opened.paths(on_gui_thread=True) == [folder[5]]
    assert len(opened.paths()) == len(set(opened.paths()))  # and nothing was opened twice


def test_home_and_end_go_to_the_first_and_last_image(browse, qtbot, folder):
    window = browse(folder[4])
    qtbot.keyClick(window.view, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: near(shown_colour(window), COLOURS[-1]), timeout=TIMEOUT_MS)
    assert window.position_label.text() == f"{len(folder)}/{len(folder)}"
    qtbot.keyClick(window.view, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: near(shown_colour(window), COLOURS[0]), timeout=TIMEOUT_MS)
    assert title_name(window) == folder[0].name and window.position_label.text() == f"1/{len(folder)}"


def test_a_file_not_yet_open_says_it_is_loading_then_shows(browse, qtbot, folder, monkeypatch):
    window = browse(folder[0])
    settled(qtbot, window)
    release = threading.Event()
    real = codec_bridge.open_image

    def slow(path):
        release.wait(5)
        return real(path)

    monkeypatch.setattr(codec_bridge, "open_image", slow)
    window.go_to(8)
    assert title_name(window) == folder[8].name
    assert window.info_label.text() == f"Loading {folder[8].name}\u2026"
    assert window.view.notice() == f"Loading {folder[8].name}\u2026"
    assert near(shown_colour(window), COLOURS[0])  # the old image stays until the new one is open
    release.set()
    qtbot.waitUntil(lambda: near(shown_colour(window), COLOURS[8]), timeout=TIMEOUT_MS)
    assert window.view.notice() == "" and window.info_label.text().startswith("PNG ")


def test_the_document_cache_is_small_and_notices_changed_files(tmp_path):
    paths = [solid(tmp_path / f"{i}.png", COLOURS[i]) for i in range(6)]
    cache = DocumentCache(items=4)
    from app.viewer.loader import file_signature, load

    for path in paths:
        cache.put(load(path), file_signature(path))
    assert cache.paths() == paths[2:]  # least recently used dropped first
    assert cache.get(paths[3]) is not None and cache.paths()[-1] == paths[3]
    solid(paths[4], (1, 2, 3), size=(50, 30))  # the file changes: its cached copy is stale
    assert cache.get(paths[4]) is None and paths[4] not in cache


def test_a_late_result_for_a_file_left_behind_never_evicts_a_wanted_one(tmp_path):
    from app.viewer.loader import file_signature, load

    paths = [solid(tmp_path / f"{i}.png", COLOURS[i]) for i in range(4)]
    cache = DocumentCache(items=3)
    for path in paths[:3]:  # the current image and its neighbours
        cache.put(load(path), file_signature(path))
    cache.put(load(paths[3]), file_signature(paths[3]), wanted=False)  # an old request finishing late
    assert cache.paths() == paths[:3]  # the late result went in as the oldest, and is the one dropped


def test_rapid_stepping_ends_on_the_right_image(browse, qtbot, folder, tmp_path):
    broken = tmp_path / "photos" / "img05b.png"
    broken.write_bytes(b"\x89PNG broken")
    paths = sorted([*folder, broken])
    window = browse(folder[0])
    window.loader.cache = DocumentCache(items=3)  # most steps miss: opens race each other on the workers
    rng = random.Random(7)
    keys = [Qt.Key.Key_PageDown, Qt.Key.Key_PageUp, Qt.Key.Key_Space, Qt.Key.Key_Backspace, Qt.Key.Key_Right,
            Qt.Key.Key_Left, Qt.Key.Key_Home, Qt.Key.Key_End]  # fmt: skip
    for i in range(400):
        qtbot.keyClick(window.view, rng.choice(keys))
        if i % 40 == 0:
            qtbot.wait(rng.choice([0, 5, 30]))
    if window.playlist.current == broken:
        qtbot.keyClick(window.view, Qt.Key.Key_PageDown)
    current = window.playlist.current
    assert window.playlist.paths == paths
    settled(qtbot, window)
    assert title_name(window) == current.name
    assert window.view.has_image() and window.view.notice() == ""
    assert near(shown_colour(window), COLOURS[folder.index(current)])
    assert window.strip.current_row() == paths.index(current)
    assert len(window.loader.cache) <= 3


def test_a_bad_file_in_the_folder_shows_an_error_in_the_window(browse, qtbot, folder):
    broken = folder[0].parent / "img00b.png"
    broken.write_bytes(b"\x89PNG truncated")
    window = browse(folder[0])
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: "Cannot open img00b.png" in window.view.message(), timeout=TIMEOUT_MS)
    assert window.info_label.text().startswith("Cannot open: ")
    assert window.metadata_panel.metadata.error
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)  # and the next one shows as usual
    qtbot.waitUntil(lambda: window.view.has_image(), timeout=TIMEOUT_MS)
    assert near(shown_colour(window), COLOURS[1])


# --------------------------------------------------------------------------- drag and drop, recent files


def test_a_truncated_jpeg_shows_its_readable_part_with_a_note(browse, qtbot, tmp_path):
    whole = io.BytesIO()
    Image.new("RGB", (240, 160), (200, 40, 40)).save(whole, "JPEG", quality=95)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.getvalue()[: len(whole.getvalue()) * 2 // 3])
    window = browse(cut)
    qtbot.waitUntil(lambda: window.document is not None, timeout=TIMEOUT_MS)
    assert window.view.has_image() and window.view.message() == ""
    assert window.document.preview.shape == (160, 240, 3)
    assert near(window.document.preview[10, 120], (200, 40, 40))  # the top, as it was
    note = "The file is truncated: only the first part of the image could be read."
    assert window.view.notice() == note
    assert window.info_label.text().endswith("; the file is truncated: only the first part of the image could be read")
    assert "the file is truncated" in window.metadata_panel.text()


def test_dropping_a_folder_opens_its_first_image(browse, qtbot, folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    window = browse(other)
    assert "No images in" in window.view.message()
    event = drop(window, QUrl.fromLocalFile(str(folder[0].parent)))
    assert event.isAccepted()
    qtbot.waitUntil(lambda: window.view.has_image(), timeout=TIMEOUT_MS)
    assert window.playlist.paths == folder and window.playlist.current == folder[0]
    assert near(shown_colour(window), COLOURS[0])
    assert window.recent.paths()[0] == folder[0].parent


def test_dropping_a_file_opens_it_within_its_folder(browse, qtbot, folder, tmp_path):
    window = browse(solid(tmp_path / "elsewhere.png", (0, 0, 0)))
    drop(window, QUrl.fromLocalFile(str(folder[7])))
    qtbot.waitUntil(lambda: near(shown_colour(window), COLOURS[7]), timeout=TIMEOUT_MS)
    assert window.playlist.paths == folder and window.playlist.index == 7
    assert window.strip.thumbnails.paths == folder and window.strip.current_row() == 7


def test_dropping_a_non_image_shows_an_error_and_an_empty_folder_says_so(browse, qtbot, folder, tmp_path):
    window = browse(folder[0])
    drop(window, QUrl.fromLocalFile(str(folder[0].parent / "notes.txt")))
    qtbot.waitUntil(lambda: "Cannot open notes.txt" in window.view.message(), timeout=TIMEOUT_MS)
    empty = tmp_path / "empty"
    empty.mkdir()
    drop(window, QUrl.fromLocalFile(str(empty)))
    assert window.view.message().startswith(f"No images in {empty}.")
    assert window.strip.thumbnails.paths == []


def test_the_folder_follows_the_disk_and_the_image_shown_stays(browse, qtbot, folder, tmp_path):
    """Files added, exported or removed by another program appear and go without reopening; the
    image shown stays by path; when it goes, its neighbour shows and the status bar says so."""
    window = browse(folder[5])
    directory = folder[0].parent
    added = solid(directory / "img00b.png", (1, 2, 3))  # sorts right after img00: the index of img05 moves
    qtbot.waitUntil(lambda: added in window.playlist.paths, timeout=TIMEOUT_MS)
    assert window.playlist.paths == [folder[0], added, *folder[1:]]
    assert window.playlist.current == folder[5] and window.playlist.index == 6
    assert window.strip.thumbnails.paths == window.playlist.paths and window.strip.current_row() == 6
    assert window.position_label.text() == f"7/{len(folder) + 1}"
    folder[5].unlink()  # the image shown is deleted: the next one shows, with a word why
    qtbot.waitUntil(lambda: window.playlist.current == folder[6], timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: near(shown_colour(window), COLOURS[6]), timeout=TIMEOUT_MS)
    assert window.statusBar().currentMessage() == "img05.png is no longer in the folder; showing img06.png."
    assert window.strip.thumbnails.paths == [folder[0], added, *folder[1:5], *folder[6:]]
    other = tmp_path / "other"
    other.mkdir()
    solid(other / "x.png", (0, 0, 0))
    window.open_paths([other])  # another folder: the first one is no longer watched
    assert window.folder_watch.watcher.directories() == [str(other)]
    solid(directory / "img99.png", (9, 9, 9))
    qtbot.wait(2 * RELIST_MS)
    assert window.playlist.paths == [other / "x.png"]


def test_only_local_files_can_be_dragged_in(browse, folder):
    window = browse(folder[0])
    for urls, accepted in (
        ([QUrl("https://example.com/photo.jpg")], False),
        ([], False),
        ([QUrl.fromLocalFile(str(folder[1]))], True),
    ):
        mime = QMimeData()
        mime.setUrls(urls)
        event = QDragEnterEvent(
            QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        )
        QApplication.sendEvent(window, event)
        assert event.isAccepted() == accepted


def test_recent_files_order_pruning_and_persistence(tmp_path, settings_file):
    files = [solid(tmp_path / f"r{i:02d}.png", COLOURS[i % len(COLOURS)]) for i in range(13)]
    recent = RecentFiles(make_settings(settings_file))
    for path in files:
        recent.add(path)
    assert recent.paths() == files[::-1][:10]  # most recent first, ten at most
    recent.add(files[5])
    assert recent.paths()[:3] == [files[5], files[12], files[11]] and len(recent.paths()) == 10
    files[11].unlink()
    assert files[11] not in recent.paths()
    again = RecentFiles(make_settings(settings_file))  # a new session reads the same file
    assert again.paths() == [files[5], files[12], *files[10:5:-1], *files[4:2:-1]]
    again.clear()
    assert RecentFiles(make_settings(settings_file)).paths() == []


def test_the_open_recent_menu(browse, qtbot, folder, tmp_path, settings_file):
    window = browse(folder[0])
    window.open_paths([folder[2]])
    window.open_paths([folder[0].parent])
    menu = window.recent_menu
    menu.rebuild()
    assert menu.entries() == [folder[0].parent, folder[2]]
    labels = [action.text() for action in menu.actions() if action.data()]
    assert labels[1].startswith("&2  img02.png")
    next(action for action in menu.actions() if action.data() == str(folder[2])).trigger()
    qtbot.waitUntil(lambda: near(shown_colour(window), COLOURS[2]), timeout=TIMEOUT_MS)
    assert window.playlist.current == folder[2]
    folder[2].unlink()
    menu.rebuild()
    assert menu.entries() == [folder[0].parent]  # a missing file is pruned
    clear = next(action for action in menu.actions() if action.text() == "&Clear Recent")
    clear.trigger()
    menu.rebuild()
    assert menu.entries() == [] and RecentFiles(make_settings(settings_file)).paths() == []


# --------------------------------------------------------------------------- full screen


def test_f11_toggles_full_screen_and_escape_leaves_it(browse, qtbot, folder):
    window = browse(folder[0])
    assert not window.isFullScreen()
    qtbot.keyClick(window.view, Qt.Key.Key_F11)
    qtbot.waitUntil(window.isFullScreen)
    assert window.fullscreen_action.isChecked() and window.menuBar().isHidden()
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)  # the menu bar is hidden, its keys still work
    assert window.playlist.current == folder[1]
    qtbot.keyClick(window.view, Qt.Key.Key_F11)
    qtbot.waitUntil(lambda: not window.isFullScreen())
    assert not window.menuBar().isHidden()
    qtbot.keyClick(window.view, Qt.Key.Key_F11)
    qtbot.waitUntil(window.isFullScreen)
    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.isFullScreen())
    assert not window.fullscreen_action.isChecked()


# --------------------------------------------------------------------------- metadata panel


def test_the_metadata_panel_shows_a_hyperthumbnails_facts_and_tables(browse, qtbot, hyperthumbnail, weights):
    window = browse(hyperthumbnail)
    assert window.metadata_dock.isHidden()
    qtbot.keyClick(window.view, Qt.Key.Key_I)
    assert window.metadata_panel.isVisible()
    metadata = window.metadata_panel.metadata
    document = codec_bridge.open_image(hyperthumbnail)
    assert metadata.value("Full size") == "384x256"
    assert metadata.value("Image size") == "96x64 (the thumbnail)"
    assert metadata.value("Model") == "test-untrained"
    assert metadata.value("Scale") == "x4"
    assert metadata.value("Weights") == document.marker.weights_sha256[:12]
    assert metadata.value("Rate") == f"{RATE_PRESETS['MEDIUM']:.2f}"
    assert metadata.value("Bits per pixel").startswith(f"{document.bits_per_pixel:.3f} ")
    assert metadata.value("Size on disk").endswith(f"({hyperthumbnail.stat().st_size:,} bytes)")
    (luma_title, luma), (chroma_title, chroma) = metadata.tables
    assert luma_title.startswith("Luma") and chroma_title.startswith("Chroma")
    assert np.array_equal(luma, document.thumbnail.luma_table.reshape(8, 8))
    assert np.array_equal(chroma, document.thumbnail.chroma_table.reshape(8, 8))
    text = window.metadata_panel.text()
    assert "test-untrained" in text and "384x256" in text
    assert " ".join(str(v) for v in luma[0]) in " ".join(text.split())  # the grid's first row, as shown
    qtbot.keyClick(window.view, Qt.Key.Key_I)
    assert window.metadata_dock.isHidden()


def exif_photo(path: Path, gps: bool) -> Path:
    exif = {
        "0th": {piexif.ImageIFD.Make: b"Fujifilm", piexif.ImageIFD.Model: b"X-T4"},
        "Exif": {
            piexif.ExifIFD.DateTimeOriginal: b"2024:05:01 12:34:56",
            piexif.ExifIFD.ExposureTime: (1, 250),
            piexif.ExifIFD.FNumber: (28, 10),
            piexif.ExifIFD.FocalLength: (50, 1),
            piexif.ExifIFD.ISOSpeedRatings: 200,
        },
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((48, 1), (51, 1), (0, 1))}
        if gps
        else {},
    }
    Image.new("RGB", (40, 30), (90, 120, 150)).save(path, quality=90, exif=piexif.dump(exif))
    return path


def test_the_metadata_panel_shows_exif_highlights(browse, qtbot, tmp_path):
    with_gps = exif_photo(tmp_path / "a.jpg", gps=True)
    without = exif_photo(tmp_path / "b.jpg", gps=False)
    solid(tmp_path / "c.png", (0, 0, 0))
    window = browse(with_gps)
    metadata = window.metadata_panel.metadata
    assert metadata.value("Camera") == "Fujifilm X-T4"
    assert metadata.value("Date taken") == "2024-05-01 12:34:56"
    assert metadata.value("Exposure") == "1/250 s"
    assert metadata.value("Aperture") == "f/2.8"
    assert metadata.value("Focal length") == "50 mm"
    assert metadata.value("ISO") == "200"
    assert metadata.value("GPS position") == "yes"
    assert metadata.value("Type") == "JPEG" and metadata.value("Image size") == "40x30"
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: window.metadata_panel.metadata.title == without.name, timeout=TIMEOUT_MS)
    assert window.metadata_panel.metadata.value("GPS position") == "no"
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)
    qtbot.waitUntil(lambda: window.metadata_panel.metadata.title == "c.png", timeout=TIMEOUT_MS)
    assert window.metadata_panel.metadata.exif == [] and "No EXIF data." in window.metadata_panel.text()


def test_texts():
    assert exact_size_text(512) == "512 bytes"
    assert exact_size_text(280128) == "280 kB (280,128 bytes)" and exact_size_text(999) == "999 bytes"
    assert exposure_text((1, 250)) == "1/250 s" and exposure_text((5, 2)) == "2.5 s" and exposure_text((0, 1)) is None
    assert codec_bridge.exif_tags(b"garbage") == {}


# --------------------------------------------------------------------------- strip pictures


def test_strip_pictures_are_small_turned_and_made_from_any_image(tmp_path, hyperthumbnail):
    turned = tmp_path / "turned.jpg"
    rgb = np.zeros((60, 120, 3), np.uint8)
    rgb[:, :60] = (255, 0, 0)
    Image.fromarray(rgb).save(turned, quality=95, exif=piexif.dump({"0th": {piexif.ImageIFD.Orientation: 6}}))
    picture = codec_bridge.strip_preview(turned, 32)
    assert picture.rgb.shape == (32, 16, 3) and picture.full_size == (60, 120) and not picture.hyperthumbnail
    assert picture.rgb[2, 8, 0] > 200 and picture.rgb[-3, 8, 0] < 60  # red on top once turned
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((50, 80), 40000, np.uint16)).save(deep)
    assert codec_bridge.strip_preview(deep, 40).rgb.shape == (25, 40, 3)
    clear = tmp_path / "alpha.png"
    Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(clear)
    assert codec_bridge.strip_preview(clear, 16).rgb.min() == 255  # transparency over white
    hyper = codec_bridge.strip_preview(hyperthumbnail, 64)
    assert hyper.hyperthumbnail and hyper.full_size == (384, 256) and max(hyper.rgb.shape) <= 64
    with pytest.raises(codec_bridge.CodecError):
        codec_bridge.strip_preview(tmp_path / "missing.png", 32)


def test_the_metadata_panel_sums_up_the_capture_in_one_line(browse, tmp_path):
    exif = {
        "0th": {piexif.ImageIFD.Make: b"FUJIFILM", piexif.ImageIFD.Model: b"X-T4"},
        "Exif": {
            piexif.ExifIFD.ExposureTime: (1, 250),
            piexif.ExifIFD.FNumber: (28, 10),
            piexif.ExifIFD.ISOSpeedRatings: 400,
            piexif.ExifIFD.FocalLength: (35, 1),
            piexif.ExifIFD.FocalLengthIn35mmFilm: 53,
            piexif.ExifIFD.LensModel: b"XF35mmF1.4 R",
        },
    }
    path = tmp_path / "capture.jpg"
    Image.new("RGB", (40, 30), (90, 120, 150)).save(path, quality=90, exif=piexif.dump(exif))
    window = browse(path)
    metadata = window.metadata_panel.metadata
    expected = (
        "1/250 s \u00b7 f/2.8 \u00b7 ISO 400 \u00b7 35 mm (53 mm equiv.) \u00b7 FUJIFILM X-T4 \u00b7 XF35mmF1.4 R"
    )
    assert metadata.capture == expected and metadata.value("Capture") == expected
    assert expected in window.metadata_panel.text()


def test_the_metadata_panel_shows_a_histogram_with_clipping(browse, tmp_path):
    rgb = np.full((40, 100, 3), 128, np.uint8)
    rgb[:, :25] = 255  # a quarter blown out
    rgb[:, 25:30, 0] = 255  # and 5% more in red only
    rgb[:, 90:] = 0  # a tenth black
    path = tmp_path / "clipped.png"
    Image.fromarray(rgb).save(path)
    window = browse(path)
    metadata = window.metadata_panel.metadata
    assert metadata.value("Highlights clipped") == "30.0% (R 30.0%, G 25.0%, B 25.0%)"
    assert metadata.value("Shadows clipped") == "10.0% (R 10.0%, G 10.0%, B 10.0%)"
    assert metadata.histogram.counts.shape == (3, 256) and metadata.histogram.counts[1, 128] == 40 * 65
    assert "30.0% (R 30.0%" in window.metadata_panel.text()
    picture = window.metadata_panel.histogram
    assert picture is not None and (picture.width(), picture.height()) == (256, 72)
    assert QColor(picture.pixel(255, 10)) == QColor(255, 80, 80)  # the clipped end is marked
