"""The Edit menu: rotate, save the rotation, copy, open the folder, move to the trash and undo it.

Rotation is a view change first: the window shows the document with a turned orientation
(``rotation``) and remembers the quarter turns per file; only "Save Rotation to File" (asked for
explicitly) writes the EXIF orientation tag into a JPEG, atomically and without
re-encoding a pixel. Moving to the trash asks first (``ask_trash``: tests replace it), uses the
desktop's trash (``QFile.moveToTrash``) and can be undone once, for the last file moved.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFile, QMimeData, QObject, QStandardPaths, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QMessageBox, QWidget

from app.viewer.codec_bridge import CodecError, ImageDocument, write_orientation
from app.viewer.colour import SRGB, display_transform, for_display
from app.viewer.orientation import orientation_transform
from app.viewer.qimage import to_qimage
from app.viewer.rotation import turned_document

ROTATABLE = (".jpg", ".jpeg", ".jpe")  # the files whose orientation tag can be saved
OPENER_WAIT_S = 10.0  # xdg-open failing later than this is a file manager that ran and ended, not a failure


def ask_trash(parent: QWidget, path: Path) -> bool:
    """Whether the user agrees to move ``path`` to the trash."""
    answer = QMessageBox.question(
        parent,
        "Move to Trash?",
        f"Move {path.name} to the trash?\n\nEdit \u203a Undo brings it back.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.Yes,
    )
    return answer == QMessageBox.StandardButton.Yes


def open_url(url: QUrl, failed: Callable[[str], None] | None = None) -> bool:
    """Hand ``url`` to the desktop (the file manager for a folder); tests replace this.

    On Linux this is ``xdg-open`` (what Qt runs too, detached, so that its complaints reach only
    the terminal): run here and watched on a thread, so that when it fails (no program for
    folders, a folder gone) what it said reaches ``failed`` (called on that thread) as a sentence."""
    opener = shutil.which("xdg-open") if sys.platform.startswith("linux") else None
    if opener is None or failed is None:
        return QDesktopServices.openUrl(url)
    said = tempfile.TemporaryFile()  # not a pipe: a file manager run in the foreground never blocks on it
    try:
        process = subprocess.Popen(
            [opener, url.toString()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=said,
            start_new_session=True,  # it outlives the viewer
        )
    except OSError as exc:
        said.close()
        failed(f"xdg-open could not be started: {exc.strerror or exc}")
        return True
    threading.Thread(target=_watch_opener, args=(process, said, failed), daemon=True, name="xdg-open").start()
    return True


def _watch_opener(process: subprocess.Popen, said, failed: Callable[[str], None]) -> None:
    started = time.monotonic()
    code = process.wait()
    if code != 0 and time.monotonic() - started < OPENER_WAIT_S:
        said.seek(0)
        lines = [line.strip() for line in said.read(4096).decode("utf-8", "replace").splitlines() if line.strip()]
        failed(lines[-1] if lines else f"xdg-open ended with exit code {code}")
    said.close()


def show_in_file_manager(path: Path) -> bool:
    """Ask the desktop's file manager to open ``path``'s folder with ``path`` selected, over the
    freedesktop.org ``FileManager1.ShowItems`` D-Bus call (Nautilus, Dolphin, Nemo, Caja, Thunar);
    False where there is no session bus or no file manager answers (tests replace this)."""
    from PySide6.QtDBus import QDBusConnection, QDBusInterface, QDBusMessage

    bus = QDBusConnection.sessionBus()
    if not bus.isConnected():
        return False
    manager = QDBusInterface(
        "org.freedesktop.FileManager1", "/org/freedesktop/FileManager1", "org.freedesktop.FileManager1", bus
    )
    if not manager.isValid():
        return False
    uri = bytes(QUrl.fromLocalFile(str(path)).toEncoded()).decode("ascii")  # a URI: spaces as %20
    reply = manager.call("ShowItems", [uri], "")
    return reply.type() != QDBusMessage.MessageType.ErrorMessage


def ensure_trash_parent() -> None:
    """Create the user's data folder (``~/.local/share``) if missing: Qt creates the trash in
    it, but not the folder itself, and a fresh account may not have one yet."""
    data = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.GenericDataLocation)
    if data:
        Path(data).mkdir(parents=True, exist_ok=True)


def trash_info_file(trashed: Path) -> Path:
    """The freedesktop.org trash's record of where ``trashed`` (in Trash/files) came from."""
    return trashed.parent.parent / "info" / f"{trashed.name}.trashinfo"


class ImageTools(QObject):
    """The Edit menu of ``window`` (a ``MainWindow``): it reads the window's current path and
    document and asks it to show again (``refresh``) or to reopen (``reopen``) after a change."""

    folderFailed = Signal(str)  # why the desktop could not open the folder (from xdg-open's thread)

    def __init__(self, window, say: Callable[[str], None]):
        super().__init__(window)
        self.window = window
        self.say = say  # a short message in the status bar
        self.turns: dict[Path, int] = {}  # quarter turns clockwise shown but not saved, per file
        self.last_trashed: tuple[Path, Path] | None = None  # (where it was, where it is in the trash)
        self.folderFailed.connect(lambda why: self.say(f"The folder could not be opened: {why}"))

    # ------------------------------------------------------------------ menu

    def make_menu(self, bar: QMenuBar) -> QMenu:
        menu = bar.addMenu("&Edit")
        self.undo_action = self._add(menu, "&Undo Move to Trash", ["Ctrl+Z"], self.undo_trash)
        self.undo_action.setEnabled(False)
        menu.addSeparator()
        self._add(menu, "Rotate &Left", ["Ctrl+L"], lambda: self.rotate(-1))
        self._add(menu, "Rotate &Right", ["Ctrl+R"], lambda: self.rotate(1))
        self.save_rotation_action = self._add(menu, "&Save Rotation to File", ["Ctrl+S"], self.save_rotation)
        self.save_rotation_action.setEnabled(False)
        menu.addSeparator()
        self._add(menu, "&Copy Image", ["Ctrl+C"], self.copy_image)
        self._add(menu, "Copy &Path", ["Ctrl+Shift+C"], self.copy_path)
        self._add(menu, "Open Containing &Folder", ["Ctrl+Shift+F"], self.open_folder)
        menu.addSeparator()
        self._add(menu, "Move to &Trash\u2026", ["Delete"], self.move_to_trash)
        return menu

    def _add(self, menu: QMenu, text: str, keys: list[str], slot) -> QAction:
        action = QAction(text, self.window)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ------------------------------------------------------------------ rotation

    def shown(self, document: ImageDocument) -> ImageDocument:
        """``document`` as it is to be shown: turned by the rotations not yet saved."""
        self._update_save_action(document.path)
        return turned_document(document, self.turns.get(document.path, 0))

    def rotate(self, quarter_turns: int) -> None:
        """Turn the image shown a quarter clockwise (1) or anticlockwise (-1), on screen only."""
        path = self._shown_path()
        if path is None:
            return
        self.turns[path] = (self.turns.get(path, 0) + quarter_turns) % 4
        if not self.turns[path]:
            del self.turns[path]
        self.window.refresh()
        if path in self.turns and path.suffix.lower() in ROTATABLE:
            self.say("Rotated on screen; Edit \u203a Save Rotation to File (Ctrl+S) writes it into the file.")

    def save_rotation(self) -> None:
        """Write the rotation shown into the file's EXIF orientation tag (no re-encoding)."""
        path, document = self._shown_path(), self.window.document
        if path is None or path not in self.turns:
            return
        if path.suffix.lower() not in ROTATABLE:
            self.say(f"Only JPEG files can keep a rotation; {path.name} is shown turned until you close it.")
            return
        try:
            write_orientation(path, document.orientation)
        except CodecError as exc:
            self.say(f"The rotation was not saved: {exc}")
            return
        del self.turns[path]
        self._update_save_action(path)
        self.window.strip.refresh_picture(path)  # its cached picture shows the old orientation
        self.window.reopen()  # the file changed: open it again (its tag now says how to turn it)
        self.say(f"Saved the rotation in {path.name} (its orientation tag; no pixel re-encoded).")

    def _shown_path(self) -> Path | None:
        """The playlist's current file when it is the one on screen; None while it is still
        loading (the window then still holds the previous file's document, whose orientation
        must not be written into this one, nor its pixels copied)."""
        path, document = self.window.playlist.current, self.window.document
        if path is None or document is None or Path(document.path) != path:
            return None
        return path

    def _update_save_action(self, path: Path | None) -> None:
        self.save_rotation_action.setEnabled(path in self.turns and path.suffix.lower() in ROTATABLE)

    def forget(self, path: Path) -> None:
        self.turns.pop(path, None)

    # ------------------------------------------------------------------ copy, folder

    def copy_image(self) -> None:
        """The picture shown (the preview of a HyperThumbnail, the image itself otherwise), turned
        and in the colours seen on screen (converted to sRGB from an embedded profile, and tagged
        sRGB), to the clipboard: other programs paste it looking the same."""
        if self._shown_path() is None:
            return
        document = self.window.document
        height, width = document.preview.shape[:2]
        image = for_display(to_qimage(document.preview), display_transform(document.icc_profile))
        image.setColorSpace(SRGB)
        image = image.transformed(orientation_transform(width, height, document.orientation))
        QGuiApplication.clipboard().setImage(image)
        what = "the preview" if document.is_hyperthumbnail else "the image"
        self.say(f"Copied {what} ({image.width()}x{image.height()}) to the clipboard.")

    def copy_path(self) -> None:
        path = self.window.playlist.current
        if path is None:
            return
        data = QMimeData()
        data.setText(str(path.absolute()))
        data.setUrls([QUrl.fromLocalFile(str(path.absolute()))])
        QGuiApplication.clipboard().setMimeData(data)
        self.say(f"Copied {path.absolute()}")

    def open_folder(self) -> None:
        """The file manager, on the folder with the file selected where the desktop can do that."""
        path = self.window.playlist.current
        if path is None or show_in_file_manager(path.absolute()):
            return
        if not open_url(QUrl.fromLocalFile(str(path.absolute().parent)), failed=self._folder_failed):
            self.say(f"No file manager could open {path.parent}.")

    def _folder_failed(self, why: str) -> None:
        try:
            self.folderFailed.emit(why)  # to the GUI thread
        except RuntimeError:  # the window is gone
            pass

    # ------------------------------------------------------------------ trash

    def move_to_trash(self) -> None:
        path = self.window.playlist.current
        if path is None or not path.exists() or not ask_trash(self.window, path):
            return
        ensure_trash_parent()
        trash = QFile(str(path))
        if not trash.moveToTrash():
            self.say(f"{path.name} could not be moved to the trash (there is no trash for that folder).")
            return
        self.last_trashed = (path, Path(trash.fileName()))
        self.undo_action.setEnabled(True)
        self.undo_action.setText(f"&Undo Move to Trash of {path.name.replace('&', '&&')}")
        self.forget(path)
        self.window.remove_from_playlist(path)
        self.say(f"Moved {path.name} to the trash (Ctrl+Z brings it back).")

    def undo_trash(self) -> None:
        """Bring the last file moved to the trash back where it was, and show it."""
        if self.last_trashed is None:
            return
        original, trashed = self.last_trashed
        try:
            os.link(trashed, original)  # fails if a new file took the name meanwhile: nothing is overwritten
        except FileExistsError:
            self.say(f"Not restored: there is a new {original.name} where it was.")
            return
        except OSError as exc:
            self.say(f"{original.name} could not be restored: {exc.strerror or exc}")
            return
        trashed.unlink(missing_ok=True)
        trash_info_file(trashed).unlink(missing_ok=True)
        self.last_trashed = None
        self.undo_action.setEnabled(False)
        self.undo_action.setText("&Undo Move to Trash")
        self.window.open_paths([original], remember=False)
        self.say(f"Restored {original.name}.")
