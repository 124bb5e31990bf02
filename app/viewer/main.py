"""``main(argv)``: start the viewer on the files or folders given, or on the bundled samples."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app.viewer import codec_bridge
from app.viewer.describe import APP_NAME
from app.viewer.paths import ICON_PNG, ICON_SVG, SAMPLES
from app.viewer.playlist import Playlist
from app.viewer.settings import LAST_FOLDER, LAST_IMAGE, open_settings, read
from app.viewer.startup_timing import trace_if_asked
from app.viewer.theme import apply_theme
from app.viewer.window import MainWindow


def app_icon() -> QIcon:
    icon = QIcon()
    for path in (ICON_SVG, ICON_PNG):
        if path.is_file():
            icon.addFile(str(path))
    return icon


def start_folder(settings) -> Path:
    """What opens with no argument: the folder the user was in last time, else the samples."""
    last = read(settings, LAST_FOLDER)
    return Path(last) if last and Path(last).is_dir() else SAMPLES


def start_arguments(settings, arguments: list[str]) -> list[str | Path]:
    """What opens at start-up: the arguments given, else ``start_folder``. When that folder (or
    the one folder given) is the last folder and the image shown at the last close is still in
    it, it opens at that image; any other folder opens at the first image of the sort order."""
    if len(arguments) > 1:
        return list(arguments)
    folder = Path(arguments[0]) if arguments else start_folder(settings)
    last_folder, last_image = read(settings, LAST_FOLDER), read(settings, LAST_IMAGE)
    if not (last_folder and last_image and folder.is_dir()):
        return list(arguments) or [folder]
    image = Path(last_image)
    if (
        folder.resolve() == Path(last_folder).resolve()
        and image.parent.resolve() == folder.resolve()
        and image.is_file()
    ):
        return [image]
    return list(arguments) or [folder]


def main(argv: list[str] | None = None) -> int:
    """Run the viewer until its window closes; returns the exit status. The codec service
    ends with the application (Ctrl+Q, or the last window closed)."""
    argv = list(sys.argv if argv is None else argv)
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv)
        argv = app.arguments()  # without the options Qt itself took (-platform, -style...)
    app.setApplicationName("hyperthumbnail-viewer")
    app.setApplicationDisplayName(APP_NAME)
    app.setDesktopFileName("hyperthumbnail-viewer")
    app.setWindowIcon(app_icon())
    apply_theme(app)
    app.aboutToQuit.connect(codec_bridge.stop_service)  # first, so that workers waiting on it return at once
    try:
        settings = open_settings()
        window = MainWindow(Playlist.from_arguments(start_arguments(settings, argv[1:])), settings=settings)
        trace_if_asked(window.view)
        window.ends_application = True  # its close stops the codec service first: a prompt exit
        window.restore_layout()
        window.recent.add_all(argv[1:])  # files opened from a file manager show up in File > Open Recent
        window.show()
        return app.exec()
    finally:
        codec_bridge.stop_service()
