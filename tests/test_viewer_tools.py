"""The everyday tools (issue 12): rotate and save the rotation, trash and undo, copy, the folder,
the shortcut help, remembered window and panels, sort orders, the slideshow. Every test has its
own settings file (QSettings in tmp_path) and, for the trash, its own XDG data folder."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import piexif
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QColor, QGuiApplication
from viewer_fixtures import show_window

from app.codec.files.jpeg_orientation import with_orientation, write_orientation
from app.viewer import tools as tools_module
from app.viewer import window as window_module
from app.viewer.help_overlay import shortcut_rows
from app.viewer.playlist import Playlist
from app.viewer.rotation import CLOCKWISE, turned
from app.viewer.sorting import sorted_paths
from app.viewer.window import MainWindow

RED, GREEN, BLUE, WHITE = (230, 20, 20), (20, 230, 20), (20, 20, 230), (240, 240, 240)


def quadrants(width=120, height=80) -> np.ndarray:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[: height // 2, : width // 2], rgb[: height // 2, width // 2 :] = RED, GREEN
    rgb[height // 2 :, : width // 2], rgb[height // 2 :, width // 2 :] = BLUE, WHITE
    return rgb


def save_jpeg(path: Path, rgb: np.ndarray, **options) -> Path:
    Image.fromarray(rgb).save(path, quality=95, **options)
    return path


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings" / "viewer.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def open_window(qtbot, monkeypatch, settings):
    monkeypatch.setattr(window_module, "weights_status", lambda weights_dir=None: "No trained weights are installed.")

    def opener(*arguments, settings=settings) -> MainWindow:
        window = MainWindow(Playlist.from_arguments(arguments), settings=settings)
        return show_window(qtbot, window)

    return opener


def shown_colour(window: MainWindow, fx: float, fy: float) -> tuple[int, int, int]:
    """The colour on screen at a fraction (fx, fy) of the displayed image's width and height."""
    width, height = window.view.image_size()
    point = window.view.mapFromScene(QPointF(fx * width, fy * height))
    colour = QColor(window.view.viewport().grab().toImage().pixel(point))
    return colour.red(), colour.green(), colour.blue()


def near(a, b, tolerance=45) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


# --------------------------------------------------------------------------- rotation


def test_the_clockwise_table_is_a_quarter_turn_of_every_orientation():
    assert [CLOCKWISE[o] for o in (1, 6, 3, 8)] == [6, 3, 8, 1]
    assert all(turned(o, 4) == o and turned(turned(o, 1), -1) == o for o in range(1, 9))


def test_rotating_turns_the_view_at_once_and_leaves_the_file_alone(open_window, qtbot, tmp_path):
    path = save_jpeg(tmp_path / "q.jpg", quadrants())
    before = path.read_bytes()
    window = open_window(path)
    assert window.view.image_size() == (120, 80) and near(shown_colour(window, 0.1, 0.1), RED)
    qtbot.keyClick(window.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)  # right: clockwise
    assert window.view.image_size() == (80, 120)
    assert near(shown_colour(window, 0.1, 0.1), BLUE) and near(shown_colour(window, 0.9, 0.1), RED)
    assert window.tools.save_rotation_action.isEnabled()
    qtbot.keyClick(window.view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.view, Qt.Key.Key_L, Qt.KeyboardModifier.ControlModifier)  # left twice: anticlockwise
    assert near(shown_colour(window, 0.1, 0.1), GREEN) and window.windowTitle().startswith("q.jpg \u2014 JPEG 80x120")
    assert path.read_bytes() == before  # only on request


def test_saving_a_rotation_patches_the_orientation_tag_and_nothing_else(open_window, qtbot, tmp_path):
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 1, piexif.ImageIFD.Make: b"Camera"}})
    path = save_jpeg(tmp_path / "q.jpg", quadrants(), exif=exif)
    before = path.read_bytes()
    window = open_window(path)
    qtbot.keyClick(window.view, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.view, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    after = path.read_bytes()
    assert len(after) == len(before) and sum(a != b for a, b in zip(before, after)) == 1  # one byte of the tag
    with Image.open(path) as im:
        assert im.getexif()[0x0112] == 6 and im.getexif()[0x010F] == "Camera"
    assert not list(tmp_path.glob(".*.part"))  # written through a temporary file, published whole
    qtbot.waitUntil(lambda: window.document is not None and window.document.orientation == 6)
    assert near(shown_colour(window, 0.1, 0.1), BLUE) and not window.tools.save_rotation_action.isEnabled()


def test_save_and_copy_wait_for_the_file_being_opened(open_window, qtbot, tmp_path):
    """While the next file still loads, the window holds the previous one's document: its
    orientation must not be written into the new file, nor its picture copied as the new one's."""
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 1}})
    a, b = (save_jpeg(tmp_path / f"{n}.jpg", quadrants(), exif=exif) for n in "ab")
    window = open_window(a)
    qtbot.waitUntil(lambda: window.document is not None and window.document.path == a)
    window.tools.rotate(1)
    window.tools.rotate(1)  # a: a half turn, not saved
    window.step(1)
    qtbot.waitUntil(lambda: window.document is not None and window.document.path == b)
    window.tools.rotate(1)  # b: a quarter turn shown
    window.playlist.step(-1)  # the state while a opens again: a is current, the document still b's
    assert window.playlist.current == a and window.document.path == b
    QGuiApplication.clipboard().clear()
    window.tools.save_rotation()
    window.tools.copy_image()
    with Image.open(a) as im:
        assert im.getexif()[0x0112] == 1  # untouched: not b's orientation 6
    assert QGuiApplication.clipboard().image().isNull()


def test_a_jpeg_without_exif_gets_a_minimal_block_and_its_scan_is_untouched(tmp_path):
    path = save_jpeg(tmp_path / "plain.jpg", quadrants())
    data = path.read_bytes()
    write_orientation(path, 8)
    turned_data = path.read_bytes()
    scan = data.index(b"\xff\xda")
    assert turned_data.endswith(data[scan:])  # the entropy-coded data, byte for byte
    with Image.open(path) as im:
        assert im.getexif()[0x0112] == 8
        assert np.array_equal(np.asarray(im), np.asarray(Image.open(io.BytesIO(data))))
    assert with_orientation(data, 1) == data


def test_a_hyperthumbnail_keeps_its_marker_when_its_rotation_is_saved(tmp_path):
    from app.viewer.codec_bridge import open_image
    from app.viewer.paths import SAMPLES

    path = tmp_path / "dune.jpg"
    path.write_bytes((SAMPLES / "dune.jpg").read_bytes())
    write_orientation(path, 3)
    document = open_image(path)
    assert document.is_hyperthumbnail and document.orientation == 3 and document.full_size == (1680, 1050)


# --------------------------------------------------------------------------- trash, copy, folder


def test_move_to_trash_asks_then_undo_brings_it_back(open_window, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    folder = tmp_path / "photos"
    folder.mkdir()
    paths = [save_jpeg(folder / f"{name}.jpg", quadrants()) for name in "abc"]
    window = open_window(paths[1])
    monkeypatch.setattr(tools_module, "ask_trash", lambda parent, path: False)
    qtbot.keyClick(window.view, Qt.Key.Key_Delete)
    assert paths[1].exists()  # "No": nothing happens
    monkeypatch.setattr(tools_module, "ask_trash", lambda parent, path: True)
    qtbot.keyClick(window.view, Qt.Key.Key_Delete)
    assert not paths[1].exists() and (tmp_path / "data" / "Trash" / "files" / "b.jpg").exists()
    assert window.playlist.paths == [paths[0], paths[2]] and window.playlist.current == paths[2]
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert paths[1].exists() and not (tmp_path / "data" / "Trash" / "info" / "b.jpg.trashinfo").exists()
    assert window.playlist.paths == paths and window.playlist.current == paths[1]
    assert not window.tools.undo_action.isEnabled()


def test_copy_image_copy_path_and_open_the_folder(open_window, qtbot, tmp_path, monkeypatch):
    path = save_jpeg(tmp_path / "q.jpg", quadrants())
    window = open_window(path)
    window.tools.rotate(1)
    qtbot.keyClick(window.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    image = QGuiApplication.clipboard().image()
    assert (image.width(), image.height()) == (80, 120)  # as shown: turned
    assert near(QColor(image.pixel(5, 5)).getRgb()[:3], BLUE)
    qtbot.keyClick(window.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert QGuiApplication.clipboard().text() == str(path)
    opened: list[QUrl] = []
    shown: list[Path] = []
    monkeypatch.setattr(tools_module, "open_url", lambda url, failed=None: opened.append(url) or True)
    monkeypatch.setattr(tools_module, "show_in_file_manager", lambda p: shown.append(p) or True)
    window.tools.open_folder()  # a file manager that can select the file: nothing else is opened
    assert shown == [path] and opened == []
    monkeypatch.setattr(tools_module, "show_in_file_manager", lambda p: False)
    window.tools.open_folder()  # none: the folder itself
    assert [url.toLocalFile() for url in opened] == [str(tmp_path)]
    QGuiApplication.clipboard().clear()  # no clipboard data left for the application's teardown


def test_a_folder_the_desktop_cannot_open_is_a_message_in_the_window(open_window, qtbot, tmp_path, monkeypatch):
    """xdg-open's complaint (it exits non-zero) reaches the status bar, not only the terminal."""
    path = save_jpeg(tmp_path / "q.jpg", quadrants())
    window = open_window(path)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "xdg-open"
    fake.write_text("#!/bin/sh\necho \"xdg-open: no method available for opening '$1'\" >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(tools_module, "show_in_file_manager", lambda p: False)
    window.tools.open_folder()
    url = QUrl.fromLocalFile(str(tmp_path)).toString()
    expected = f"The folder could not be opened: xdg-open: no method available for opening '{url}'"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == expected, timeout=10000)


def test_without_a_session_bus_no_file_manager_is_asked_to_select(tmp_path):
    import subprocess
    import sys

    code = "from pathlib import Path; from app.viewer.tools import show_in_file_manager; print(show_in_file_manager(Path('x.jpg')))"
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": f"unix:path={tmp_path}/no-bus"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False", result.stderr


SYSTEM_PYTHON = "/usr/bin/python3"


def _can_fake_a_file_manager() -> bool:
    import shutil
    import subprocess

    if not (shutil.which("dbus-run-session") and Path(SYSTEM_PYTHON).is_file()):
        return False
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import dbus, gi"], capture_output=True, timeout=30, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_fake_a_file_manager(), reason="needs dbus-run-session and the system python3-dbus")
def test_the_file_manager_is_asked_to_select_the_file_over_dbus(tmp_path):
    """The real D-Bus call, on a private session bus, to a stand-in file manager."""
    import subprocess
    import sys

    photo = tmp_path / "a photo.jpg"
    script = tmp_path / "session.sh"
    script.write_text(
        f"{SYSTEM_PYTHON} {Path(__file__).parent / 'fake_file_manager.py'} > {tmp_path}/fm.out &\n"
        f"for i in $(seq 100); do grep -q ready {tmp_path}/fm.out && break; sleep 0.1; done\n"
        f'{sys.executable} -c "from pathlib import Path; from app.viewer.tools import show_in_file_manager; '
        f"print(show_in_file_manager(Path('{photo}')))\"\n"
        "wait\n"
    )
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parent.parent,
    )
    assert result.stdout.strip() == "True", result.stderr
    assert (tmp_path / "fm.out").read_text().split("\n")[1] == f"ShowItems file://{tmp_path}/a%20photo.jpg"


# --------------------------------------------------------------------------- help, settings


def test_the_shortcut_help_lists_every_menu_key_and_shows_over_the_image(open_window, qtbot, tmp_path):
    window = open_window(save_jpeg(tmp_path / "q.jpg", quadrants()))
    rows = shortcut_rows(window.menuBar())
    keys = {what: keys for _, keys, what in rows}
    assert keys["Quit"] == "Ctrl+Q" and keys["Rotate Right"] == "Ctrl+R" and keys["Move to Trash"] == "Del"
    qtbot.keyClick(window.view, Qt.Key.Key_F1)
    assert window.help.isVisible() and "Ctrl+Shift+C" in window.help.text()
    assert window.help.geometry().intersects(window.view.viewport().geometry())
    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    assert not window.help.isVisible()


def test_the_shortcut_help_fits_the_view_when_the_panels_take_its_room(open_window, qtbot, tmp_path):
    window = open_window(save_jpeg(tmp_path / "q.jpg", quadrants()))
    window.resize(1100, 640)
    window.metadata_dock.show()
    window.metadata_dock.setMinimumWidth(420)  # a photographer's wide panel: the view is about 670 px wide
    qtbot.waitUntil(lambda: window.view.width() < 700)
    qtbot.keyClick(window.view, Qt.Key.Key_F1)
    view, help_ = window.view.rect(), window.help.geometry()
    assert view.contains(help_) and help_.size() == window.help.sizeHint()  # all of it, nothing cut off
    assert "Ctrl+Shift+C" in window.help.text() and "Double-click" in window.help.text()
    window.metadata_dock.setMinimumWidth(0)
    window.metadata_dock.hide()  # the view grows back (the window did not change): it is laid out again
    qtbot.waitUntil(lambda: window.view.width() > 900)
    assert window.view.rect().contains(window.help.geometry()) and window.help.columns == 2


def test_window_geometry_panels_and_last_folder_are_remembered(open_window, qtbot, tmp_path, settings):
    folder = tmp_path / "photos"
    folder.mkdir()
    path = save_jpeg(folder / "q.jpg", quadrants())
    window = open_window(path)
    window.resize(700, 500)
    window.metadata_dock.show()
    window.strip_dock.hide()
    window.set_sort_order("size")
    window.close()
    assert settings.value("session/last_folder") == str(folder)
    again = open_window(path)
    again.restore_layout()  # as ``main`` does
    assert (again.width(), again.height()) == (700, 500)
    assert again.metadata_dock.isVisible() and not again.strip_dock.isVisible()
    assert again.sort_order == "size" and again.sort_actions["size"].isChecked()


def test_with_no_argument_the_last_folder_opens(settings, tmp_path):
    from app.viewer.main import start_folder
    from app.viewer.paths import SAMPLES

    assert start_folder(settings) == SAMPLES
    settings.setValue("session/last_folder", str(tmp_path))
    assert start_folder(settings) == tmp_path
    settings.setValue("session/last_folder", str(tmp_path / "gone"))
    assert start_folder(settings) == SAMPLES


def test_the_last_image_viewed_reopens_when_its_folder_does(open_window, qtbot, tmp_path, settings):
    folder, other = tmp_path / "photos", tmp_path / "other"
    folder.mkdir(), other.mkdir()
    a, b, c = (save_jpeg(folder / f"{name}.jpg", quadrants()) for name in "abc")
    save_jpeg(other / "z.jpg", quadrants())
    window = open_window(folder)
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)
    assert window.playlist.current == b
    window.close()
    assert settings.value("session/last_image") == str(b.absolute())
    from app.viewer.main import start_arguments

    assert start_arguments(settings, []) == [b.absolute()]  # a bare start: the last folder, at b
    assert start_arguments(settings, [str(folder)]) == [b.absolute()]  # the same folder named
    assert start_arguments(settings, [str(other)]) == [str(other)]  # another folder: its first image
    again = open_window(*start_arguments(settings, []))
    assert again.playlist.current == b.absolute() and [p.name for p in again.playlist.paths] == [
        "a.jpg",
        "b.jpg",
        "c.jpg",
    ]
    assert again.windowTitle().startswith("b.jpg")
    b.unlink()  # gone since: the folder opens at its first image
    assert start_arguments(settings, []) == [folder]
    assert start_arguments(settings, [str(folder)]) == [str(folder)]


def test_the_tests_never_touch_the_users_settings(settings, tmp_path):
    assert Path(settings.fileName()).is_relative_to(tmp_path)
    assert "XDG_CONFIG_HOME" in os.environ and not Path(os.environ["XDG_CONFIG_HOME"]).is_relative_to(
        Path.home() / ".config"
    )


# --------------------------------------------------------------------------- sort, slideshow


def test_sort_by_name_date_taken_and_size(tmp_path):
    noisy = np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    taken = lambda when: piexif.dump({"Exif": {piexif.ExifIFD.DateTimeOriginal: when}})
    a = save_jpeg(tmp_path / "a.jpg", noisy, exif=taken(b"2021:05:01 10:00:00"))  # largest, taken last
    b = save_jpeg(tmp_path / "B.jpg", quadrants(8, 8), exif=taken(b"2019:01:01 09:00:00"))  # smallest, first
    c = save_jpeg(tmp_path / "c.jpg", quadrants(200, 200), exif=taken(b"2020:03:03 12:00:00"))
    assert sorted_paths([c, a, b], "name") == [a, b, c]
    assert sorted_paths([a, b, c], "date") == [b, c, a]
    assert sorted_paths([a, c, b], "size") == [b, c, a]


def test_sorting_keeps_the_image_shown(open_window, tmp_path):
    rng = np.random.default_rng(2)
    for name, size in (("a", 64), ("b", 8), ("c", 200)):
        save_jpeg(tmp_path / f"{name}.jpg", rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
    window = open_window(tmp_path / "a.jpg")
    window.set_sort_order("size")
    assert [p.name for p in window.playlist.paths] == ["b.jpg", "a.jpg", "c.jpg"]
    assert window.playlist.current.name == "a.jpg"


def test_a_big_folder_by_date_opens_at_once_and_is_sorted_on_a_thread(open_window, qtbot, tmp_path, settings):
    """Over INLINE_DATE_SORT_LIMIT files the EXIF dates are read off the GUI thread: the folder
    shows in name order first, then takes the date order with the same image still current."""
    from app.viewer.sorting import INLINE_DATE_SORT_LIMIT

    count = INLINE_DATE_SORT_LIMIT + 20
    small = quadrants(16, 16)
    for i in range(count):  # taken in the reverse of name order
        when = f"2020:01:01 {(count - i) // 60:02d}:{(count - i) % 60:02d}:00".encode()
        save_jpeg(tmp_path / f"{i:03d}.jpg", small, exif=piexif.dump({"Exif": {piexif.ExifIFD.DateTimeOriginal: when}}))
    settings.setValue("view/sort", "date")
    # (open_window is requested for its patched weights check; the window is built here to look before it shows)
    window = MainWindow(Playlist.from_arguments([tmp_path / "005.jpg"]), settings=settings)
    names = [f"{i:03d}.jpg" for i in range(count)]
    assert [p.name for p in window.playlist.paths] == names  # no header read yet
    show_window(qtbot, window)
    qtbot.waitUntil(lambda: [p.name for p in window.playlist.paths] == names[::-1], timeout=5000)
    assert window.playlist.current.name == "005.jpg" and window.strip.thumbnails.rowCount() == count
    assert window.position_label.text() == f"{count - 5}/{count}"
    assert window.strip.currentIndex().row() == count - 6


def dated_folder(folder: Path, count: int, size: int = 16) -> list[Path]:
    """``count`` JPEGs 000.jpg... taken in the reverse of name order (the last name first)."""
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(count):
        when = f"2020:01:01 {(count - i) // 60:02d}:{(count - i) % 60:02d}:00".encode()
        exif = piexif.dump({"Exif": {piexif.ExifIFD.DateTimeOriginal: when}})
        paths.append(save_jpeg(folder / f"{i:03d}.jpg", quadrants(size, size), exif=exif))
    return paths


def test_a_folder_opens_at_the_first_image_of_the_sort_order(open_window, qtbot, tmp_path, settings):
    paths = dated_folder(tmp_path / "photos", 4)
    settings.setValue("view/sort", "date")
    window = open_window(tmp_path / "photos")
    assert [p.name for p in window.playlist.paths] == ["003.jpg", "002.jpg", "001.jpg", "000.jpg"]
    assert window.playlist.current == paths[3] and window.position_label.text() == "1/4"
    assert window.windowTitle().startswith("003.jpg")
    qtbot.keyClick(window.view, Qt.Key.Key_PageDown)
    window.open_paths([tmp_path / "photos"])  # File > Open Folder, a drop: the first by date again
    assert window.playlist.current == paths[3]
    window.open_paths([paths[1]])  # a file named: it, within its folder
    assert window.playlist.current == paths[1] and window.position_label.text() == "3/4"


def test_a_big_folder_by_date_opens_at_its_first_image_once_sorted(open_window, qtbot, tmp_path, settings):
    from app.viewer.sorting import INLINE_DATE_SORT_LIMIT

    count = INLINE_DATE_SORT_LIMIT + 20
    paths = dated_folder(tmp_path / "photos", count)
    settings.setValue("view/sort", "date")
    window = open_window(tmp_path / "photos")
    qtbot.waitUntil(lambda: window.playlist.paths[0] == paths[-1], timeout=5000)
    assert window.playlist.current == paths[-1] and window.position_label.text() == f"1/{count}"
    qtbot.waitUntil(lambda: window.windowTitle().startswith(paths[-1].name), timeout=5000)


def test_an_order_found_earlier_fits_the_playlist_as_it_is_now():
    from app.viewer.sorting import merged_order

    a, b, c, d = (Path(n) for n in "abcd")
    assert merged_order([c, b, a], [a, b, d]) == [b, a, d]  # c removed meanwhile, d added


def test_the_slideshow_steps_at_its_interval_until_stopped(open_window, qtbot, tmp_path):
    for name in "abc":
        save_jpeg(tmp_path / f"{name}.jpg", quadrants())
    window = open_window(tmp_path / "a.jpg")
    window.slideshow.set_interval(0.5)
    qtbot.keyClick(window.view, Qt.Key.Key_F5)
    assert window.slideshow.running() and window.slideshow_action.isChecked()
    qtbot.waitUntil(lambda: window.playlist.index == 1, timeout=3000)
    qtbot.waitUntil(lambda: window.playlist.index == 2, timeout=3000)
    qtbot.keyClick(window.view, Qt.Key.Key_F5)
    assert not window.slideshow.running()
    qtbot.wait(800)
    assert window.playlist.index == 2


def test_the_slideshow_is_full_screen_without_panels_and_escape_puts_the_window_back(
    open_window, qtbot, tmp_path, settings
):
    for name in "abc":
        save_jpeg(tmp_path / f"{name}.jpg", quadrants())
    window = open_window(tmp_path / "a.jpg")
    window.metadata_dock.show()
    window.view.set_zoom(1.0)  # zoomed in before: the slideshow still shows the whole photo
    assert window.strip_dock.isVisible() and not window.isFullScreen()
    qtbot.keyClick(window.view, Qt.Key.Key_F5)
    qtbot.waitUntil(window.isFullScreen)
    assert window.view.is_fitted()
    assert window.slideshow.running() and window.slideshow_action.isChecked()
    assert window.strip_dock.isHidden() and window.metadata_dock.isHidden()
    assert window.menuBar().isHidden() and window.statusBar().isHidden()
    badge = window.slideshow_badge
    assert badge.isVisible() and badge.text() == "Slideshow \u2014 Esc to stop"
    assert window.view.viewport().geometry().contains(badge.geometry())
    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.isFullScreen())
    assert not window.slideshow.running() and not window.slideshow_action.isChecked() and badge.isHidden()
    assert window.strip_dock.isVisible() and window.metadata_dock.isVisible()
    assert window.menuBar().isVisible() and window.statusBar().isVisible()
    shown = window.playlist.index
    qtbot.wait(300)
    assert window.playlist.index == shown

    window.strip_dock.hide()  # full screen already, no strip: Escape stops the show and stays full screen
    window.toggle_fullscreen()
    qtbot.waitUntil(window.isFullScreen)
    qtbot.keyClick(window.view, Qt.Key.Key_F5)
    assert window.slideshow.running() and window.metadata_dock.isHidden()
    qtbot.keyClick(window.view, Qt.Key.Key_Escape)
    assert not window.slideshow.running()
    qtbot.wait(100)
    assert window.isFullScreen() and window.strip_dock.isHidden() and window.metadata_dock.isVisible()

    window.toggle_fullscreen()
    qtbot.waitUntil(lambda: not window.isFullScreen())
    window.strip_dock.show()
    qtbot.keyClick(window.view, Qt.Key.Key_F5)
    qtbot.waitUntil(window.isFullScreen)
    window.close()  # closed during a show: the panels are remembered as the user had them
    assert settings.value("view/strip") in (True, "true") and settings.value("view/metadata") in (True, "true")


def test_saving_a_rotation_refreshes_the_strip_picture(open_window, qtbot, tmp_path):
    exif = piexif.dump({"0th": {piexif.ImageIFD.Orientation: 1}})
    path = save_jpeg(tmp_path / "q.jpg", quadrants(120, 80), exif=exif)
    window = open_window(path)
    window.strip_dock.show()
    qtbot.waitUntil(lambda: window.strip.thumbnails.has_picture(path))
    before = window.strip.thumbnails.picture(path).pixmap.size()
    window.tools.rotate(1)
    window.tools.save_rotation()
    qtbot.waitUntil(
        lambda: (
            window.strip.thumbnails.has_picture(path) and window.strip.thumbnails.picture(path).pixmap.size() != before
        )
    )
    after = window.strip.thumbnails.picture(path).pixmap.size()
    assert (after.width(), after.height()) == (before.height(), before.width())  # turned a quarter


# --------------------------------------------------------------------------- ratings and colour labels

XMP_NS = "{http://ns.adobe.com/xap/1.0/}"
SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"


def xmp_segment(data: bytes) -> tuple[int, int, bytes] | None:
    """(start, end, packet) of a JPEG's standard XMP APP1 segment, walked here by hand."""
    from app.codec.files import jpeg_segments

    ident = b"http://ns.adobe.com/xap/1.0/\x00"
    for segment in jpeg_segments.segments_of(data):
        if segment.marker == 0xE1 and data[segment.start + 4 : segment.start + 4 + len(ident)] == ident:
            return segment.start, segment.end, data[segment.start + 4 + len(ident) : segment.end]
    return None


def xmp_value(packet: bytes, name: str) -> str | None:
    """A property of an XMP packet, read with plain ElementTree (not the viewer's reader, nor exiftool)."""
    import xml.etree.ElementTree as ET

    for description in ET.fromstring(packet).iter("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description"):
        if XMP_NS + name in description.attrib:
            return description.attrib[XMP_NS + name]
        child = description.find(XMP_NS + name)
        if child is not None:
            return child.text
    return None


def test_rating_keys_write_xmp_into_a_hyperthumbnail_in_place(open_window, qtbot, tmp_path):
    from app.codec.files.payload import unpack_records
    from app.codec.files.reader import read_marker, read_thumbnail

    path = tmp_path / "dune.jpg"
    path.write_bytes((SAMPLES / "dune.jpg").read_bytes())
    before = path.read_bytes()
    start, end, packet = xmp_segment(before)
    marker, thumb = read_marker(path), read_thumbnail(path)
    window = open_window(path)
    assert window.labels_label.isHidden()
    qtbot.keyClick(window.view, Qt.Key.Key_4)
    qtbot.keyClick(window.view, Qt.Key.Key_6)  # Red, as in Lightroom
    after = path.read_bytes()
    new_start, new_end, new_packet = xmp_segment(after)
    assert new_start == start and after[:start] == before[:start]  # SOI, JFIF, EXIF, the APP11 payload
    assert after[new_end:] == before[end:]  # the tables, the frame, every scan
    assert xmp_value(new_packet, "Rating") == "4" and xmp_value(new_packet, "Label") == "Red"
    assert b"hyperthumb:PayloadSha256" in new_packet and len(new_packet) < 65504
    assert read_marker(path) == marker  # still a HyperThumbnail, the same one
    again = read_thumbnail(path)
    assert np.array_equal(again.rgb, thumb.rgb) and again.payload == thumb.payload and again.payload_problem is None
    assert unpack_records(again.payload)
    assert not list(tmp_path.glob(".*.part"))
    assert "\u2605\u2605\u2605\u2605\u2606" in window.labels_label.text() and "Red" in window.labels_label.text()
    assert window.metadata_panel.metadata.value("Rating") == "\u2605\u2605\u2605\u2605\u2606"
    assert window.metadata_panel.metadata.value("Colour label") == "Red"
    assert "XMP" in window.statusBar().currentMessage()
    if shutil.which("exiftool"):
        said = subprocess.run(["exiftool", "-s3", "-XMP:Rating", "-XMP:Label", str(path)], capture_output=True)
        assert said.stdout.decode().split() == ["4", "Red"]
    qtbot.keyClick(window.view, Qt.Key.Key_6)  # the same colour again takes it off
    assert xmp_value(xmp_segment(path.read_bytes())[2], "Label") is None
    qtbot.keyClick(window.view, Qt.Key.Key_0)  # no stars: the file is as it was
    assert path.read_bytes() == before
    assert window.labels_label.isHidden() and window.metadata_panel.metadata.value("Rating") == "none"


def test_rating_a_plain_jpeg_keeps_every_other_segment_and_the_photographers_xmp(tmp_path):
    from app.codec.files.ratings import Labels, jpeg_with_labels, read_labels, write_labels

    exif = piexif.dump({"0th": {piexif.ImageIFD.Make: b"Camera"}})
    buffer = io.BytesIO()
    Image.fromarray(quadrants()).save(buffer, "JPEG", quality=90, exif=exif, icc_profile=b"\0" * 200)
    data = buffer.getvalue()
    iptc = b"\xff\xed\x00\x10Photoshop 3.0\x00"  # an APP13 (IPTC) segment after the head
    data = data[:2] + data[2:].replace(b"\xff\xdb", iptc + b"\xff\xdb", 1)
    rated = jpeg_with_labels(data, Labels(5, "Blue"))
    start, end, packet = xmp_segment(rated)
    assert rated[:start] + rated[end:] == data  # a new segment, nothing else moved or changed
    assert xmp_value(packet, "Rating") == "5" and xmp_value(packet, "Label") == "Blue"
    assert jpeg_with_labels(rated, Labels()) == data
    own = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:lr="http://ns.adobe.com/lightroom/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
        b"<xmp:Rating>2</xmp:Rating><lr:hierarchicalSubject>Places|Dune</lr:hierarchicalSubject>"
        b"</rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    segment = b"\xff\xe1" + (len(own) + 31).to_bytes(2, "big") + b"http://ns.adobe.com/xap/1.0/\x00" + own
    path = tmp_path / "own.jpg"
    path.write_bytes(data[:2] + segment + data[2:])
    assert read_labels(path) == Labels(2, None)
    write_labels(path, Labels(3, "Green"))
    packet = xmp_segment(path.read_bytes())[2]
    assert xmp_value(packet, "Rating") == "3" and b"<lr:hierarchicalSubject>Places|Dune<" in packet
    assert read_labels(path) == Labels(3, "Green")


def test_rating_a_png_writes_a_sidecar_and_leaves_the_image_alone(open_window, qtbot, tmp_path):
    from app.codec.files.ratings import Labels, read_labels

    path = tmp_path / "q.png"
    Image.fromarray(quadrants()).save(path)
    before = path.read_bytes()
    window = open_window(path)
    qtbot.keyClick(window.view, Qt.Key.Key_3)
    qtbot.keyClick(window.view, Qt.Key.Key_8)  # Green
    assert path.read_bytes() == before
    sidecar = tmp_path / "q.png.xmp"
    assert xmp_value(sidecar.read_bytes(), "Rating") == "3" and xmp_value(sidecar.read_bytes(), "Label") == "Green"
    assert read_labels(path) == Labels(3, "Green")
    assert "sidecar q.png.xmp" in window.statusBar().currentMessage()
    assert window.metadata_panel.metadata.value("Colour label") == "Green"
    rows = {what: keys for menu, keys, what in shortcut_rows(window.menuBar()) if menu == "Edit"}
    assert rows["Rate 0 (No Stars)"] == "0" and rows["Rate 5 \u2605\u2605\u2605\u2605\u2605"] == "5"
    assert rows["Label Red"] == "6" and rows["Label Purple"] == "9"


def test_the_navigator_maps_the_photo_while_zoomed_in_and_moves_the_view(open_window, qtbot, tmp_path, settings):
    path = save_jpeg(tmp_path / "quadrants.jpg", quadrants(400, 300))
    window = open_window(path)
    navigator = window.view.navigator
    assert navigator.isHidden()  # fitted: the whole photo is in view, no map
    window.view.set_zoom(4.0)
    window.view.centerOn(QPointF(50, 40))  # the red quadrant, top-left
    assert navigator.isVisible() and navigator.width() == 182 and navigator.height() == 137  # 180 x 135 and a border
    viewport = window.view.viewport()
    assert navigator.geometry().right() < viewport.width() and navigator.geometry().bottom() < viewport.height()
    frame, shown = navigator.frame_rect(), window.view.visible_area()
    assert abs(frame.width() - shown.width() * 180 / 400) < 1 and abs(frame.left() - 1 - shown.left() * 180 / 400) < 1
    picture = navigator.grab().toImage()

    def seen(x: float, y: float) -> tuple[int, int, int]:
        colour = QColor(picture.pixel(round(x), round(y)))
        return colour.red(), colour.green(), colour.blue()

    inside = frame.center()
    assert near(seen(inside.x(), inside.y()), RED)  # the part in view, as it is
    for (fx, fy), colour in {(0.75, 0.25): GREEN, (0.25, 0.75): BLUE, (0.75, 0.75): WHITE}.items():
        shaded = seen(fx * navigator.width(), fy * navigator.height())  # out of view: the same colour, darker
        assert near(shaded, tuple(round(c * 0.57) for c in colour), 30), (shaded, colour)
    qtbot.mouseClick(navigator, Qt.MouseButton.LeftButton, pos=QPointF(0.9 * 180, 0.9 * 135).toPoint())
    assert window.view.visible_area().contains(QPointF(380, 280))  # moved to the bottom-right corner
    assert not window.view.visible_area().contains(QPointF(50, 40))
    assert near(shown_colour(window, 0.97, 0.97), WHITE)
    window.navigator_action.trigger()  # N: the user turns it off
    assert navigator.isHidden()
    window.view.set_zoom(2.0)
    assert navigator.isHidden()
    window.navigator_action.trigger()
    assert navigator.isVisible()
    window.view.fit()
    assert navigator.isHidden()
    window.navigator_action.trigger()
    window.close()
    assert settings.value("view/navigator") in (False, "false")  # remembered off


def test_freed_memory_goes_back_after_a_big_image_only(monkeypatch):
    from app.viewer import memory

    calls = []
    monkeypatch.setattr(memory, "_LIBC", type("Libc", (), {"malloc_trim": lambda self, pad: calls.append(pad)})())
    assert not memory.give_back_freed_memory(1_000_000) and calls == []  # a small image: no heap walk
    assert memory.give_back_freed_memory(15000 * 15000) and calls == [0]
