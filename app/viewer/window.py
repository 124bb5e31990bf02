"""The main window: File and View menus, the keys, stepping through a playlist, the status bar.

Reconstruction runs by itself (``reconstruction`` watches the view); the window tells it which
document is shown, forwards key C, and puts what it reports into the status bar. After the first
paint it asks the codec service (started then, in its own process) whether trained weights are
installed, on a thread of its own: the answer arrives as a signal. Browsing: the
loader opens files on a worker and preloads the neighbours, the thumbnail strip (key T) and the
metadata panel (key I) are docks, drops and File > Open Recent go through ``open_paths``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QWidget,
)

from app.viewer.batch_export import start_folder_export
from app.viewer.codec_bridge import CodecError, ServiceStopped, weights_status
from app.viewer.describe import (
    NO_WEIGHTS_SHORT,
    ReconstructionStatus,
    document_summary,
    reconstruction_text,
    window_title,
    zoom_text,
)
from app.viewer.drops import dropped_paths
from app.viewer.export_dialog import open_export_dialog, set_export_available
from app.viewer.image_view import ImageView
from app.viewer.loader import DocumentLoader, LoadResult
from app.viewer.metadata import describe_document, describe_error
from app.viewer.metadata_panel import MetadataPanel
from app.viewer.playlist import IMAGE_SUFFIXES, Playlist
from app.viewer.recent import RecentFiles, RecentMenu, open_settings
from app.viewer.reconstruction import Reconstruction
from app.viewer.startup_timing import call_after_first_paint
from app.viewer.thumbnails import ThumbnailStrip
from app.viewer.tile_grid import TILE_SIZE

OPEN_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)))
UNAVAILABLE = "Reconstruction unavailable: "
RECHECK_MS = 2000  # after the codec service stopped during the weights check, ask again once this late


class WeightsCheck(QObject):
    """Runs ``weights_status`` on a thread of its own (it waits for the codec service and its
    torch import); ``done(status, error)`` arrives on the GUI thread."""

    done = Signal(object, object)  # status (None or a sentence), error (None or a CodecError)

    def start(self, weights_dir) -> None:
        threading.Thread(target=self._run, args=(weights_dir,), daemon=True, name="weights-check").start()

    def _run(self, weights_dir) -> None:
        try:
            status, error = weights_status(weights_dir), None
        except CodecError as exc:
            status, error = None, exc
        try:
            self.done.emit(status, error)
        except RuntimeError:  # the window is gone
            pass


class MainWindow(QMainWindow):
    """Shows one image of a playlist at a time; every failure is a message in the window."""

    def __init__(self, playlist: Playlist | None = None, parent: QWidget | None = None, *,
                 weights_dir=None, tile_size: int = TILE_SIZE, settings: QSettings | None = None):  # fmt: skip
        """``weights_dir``: where the decoder's weights are (default: the codec's); ``tile_size``:
        photo pixels per reconstructed tile side; ``settings``: where the recent files and the
        panels' visibility are kept (default: the user's settings file)."""
        super().__init__(parent)
        self.playlist = playlist or Playlist()
        self.weights_dir = weights_dir  # the export worker's (the decoder's are reconstruction's)
        self.settings = settings if settings is not None else open_settings()
        self.recent = RecentFiles(self.settings, self)
        self.view = ImageView(self)
        self.setCentralWidget(self.view)
        self.setAcceptDrops(True)
        self.view.setAcceptDrops(False)  # drops go to the window, whatever part of it is under the mouse
        self.view.viewport().setAcceptDrops(False)
        self.loader = DocumentLoader(self)
        self.loader.loaded.connect(self._show_result)
        self._make_docks()
        self.reconstruction = Reconstruction(self.view, weights_dir=weights_dir, tile_size=tile_size, parent=self)
        self.reconstruction.statusChanged.connect(self._show_reconstruction)
        self.reconstruction.failed.connect(self._show_reconstruction_failure)
        self._summary = ""
        self.info_label = QLabel()
        self.reconstruction_label = QLabel()
        self.position_label = QLabel()
        self.zoom_label = QLabel()
        self.weights_label = QLabel()
        self.statusBar().addWidget(self.info_label, 1)
        for label in (self.reconstruction_label, self.position_label, self.zoom_label, self.weights_label):
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        self.weights_label.hide()
        self.view.zoomChanged.connect(self._show_zoom)
        self.view.stepRequested.connect(self.step)
        self._make_menus()
        self.resize(1100, 760)
        self.setWindowTitle(window_title(None, None))
        self._weights_check = WeightsCheck(self)
        self._weights_check.done.connect(self._show_weights_status)
        self._rechecked = False
        call_after_first_paint(self.view.viewport(), self.check_weights)  # the service starts after the preview shows
        self.show_current(wait=True)  # the first image is there when the window first shows

    def _make_docks(self) -> None:
        self.strip = ThumbnailStrip(self)
        self.strip.chosen.connect(self.go_to)
        self.strip_dock = QDockWidget("Thumbnails", self, objectName="thumbnails")
        self.strip_dock.setWidget(self.strip)
        self.strip_dock.setTitleBarWidget(QWidget())  # no title bar: the strip is its own label
        self.strip_dock.setAllowedAreas(Qt.DockWidgetArea.TopDockWidgetArea | Qt.DockWidgetArea.BottomDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.strip_dock)
        self.metadata_panel = MetadataPanel(self)
        self.metadata_dock = QDockWidget("Metadata", self, objectName="metadata")
        self.metadata_dock.setWidget(self.metadata_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.metadata_dock)
        self.strip_dock.setVisible(self.settings.value("view/strip", True, bool))
        self.metadata_dock.setVisible(self.settings.value("view/metadata", False, bool))

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open\u2026", [QKeySequence.StandardKey.Open], self.choose_file)
        self._action(file_menu, "Open &Folder\u2026", ["Ctrl+Shift+O"], self.choose_folder)
        self.recent_menu = RecentMenu(self.recent, lambda path: self.open_paths([path]), self)
        file_menu.addMenu(self.recent_menu)
        file_menu.addSeparator()
        self.export_actions = [
            self._action(file_menu, "&Export as HyperThumbnail\u2026", ["Ctrl+E"], self.export_current),
            self._action(file_menu, "Save &As\u2026", ["Ctrl+Shift+S"], self.export_current),
            self._action(file_menu, "Export Fol&der as HyperThumbnails\u2026", [], self.export_folder),
        ]
        file_menu.setToolTipsVisible(True)  # a disabled export says why
        set_export_available(self.export_actions, "Checking for trained weights\u2026")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", [QKeySequence.StandardKey.Quit, "Ctrl+Q"], self.close)
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "Zoom &In", ["+", "=", QKeySequence.StandardKey.ZoomIn], self.view.zoom_in)
        self._action(view_menu, "Zoom &Out", ["-", QKeySequence.StandardKey.ZoomOut], self.view.zoom_out)
        self._action(view_menu, "&Fit to Window", ["0", "Ctrl+0"], self.view.fit)
        self._action(view_menu, "&Actual Size (100%)", ["1"], lambda: self.view.set_zoom(1.0))
        self.reconstruction_action = QAction("Show &Reconstruction", self, checkable=True, checked=True)
        self.reconstruction_action.setShortcut(QKeySequence("C"))
        self.reconstruction_action.toggled.connect(self.reconstruction.set_shown)
        view_menu.addAction(self.reconstruction_action)
        view_menu.addSeparator()
        self._action(view_menu, "&Next Image", ["PgDown", "Space"], lambda: self.step(1))
        self._action(view_menu, "&Previous Image", ["PgUp", "Backspace"], lambda: self.step(-1))
        self._action(view_menu, "Fi&rst Image", ["Home"], lambda: self.go_to(0))
        self._action(view_menu, "&Last Image", ["End"], lambda: self.go_to(len(self.playlist.paths) - 1))
        view_menu.addSeparator()
        for dock, text, key in ((self.strip_dock, "&Thumbnail Strip", "T"), (self.metadata_dock, "&Metadata Panel", "I")):
            action = dock.toggleViewAction()
            action.setText(text)
            action.setShortcut(QKeySequence(key))
            view_menu.addAction(action)
        self.fullscreen_action = self._action(view_menu, "F&ull Screen", ["F11"], self.toggle_fullscreen)
        self.fullscreen_action.setCheckable(True)
        self.leave_fullscreen_action = QAction("Leave Full Screen", self, enabled=False)
        self.leave_fullscreen_action.setShortcut(QKeySequence("Escape"))  # enabled only in full screen
        self.leave_fullscreen_action.triggered.connect(self.toggle_fullscreen)
        self.addAction(self.leave_fullscreen_action)

    def _action(self, menu: QMenu, text: str, keys: list, slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ------------------------------------------------------------------ opening

    def open_paths(self, arguments: list[str | Path], *, remember: bool = True) -> None:
        """Replace the playlist (files, folders, or one file and its folder) and show it;
        ``remember``: put the arguments on File > Open Recent."""
        self.playlist = Playlist.from_arguments(arguments)
        if remember:
            self.recent.add_all([Path(a) for a in arguments])
        self.show_current()

    def choose_folder(self) -> None:
        start = str(self.playlist.current.parent) if self.playlist.current else ""
        folder = QFileDialog.getExistingDirectory(self, "Open Folder", start)
        if folder:
            self.open_paths([folder])

    def choose_file(self) -> None:
        start = str(self.playlist.current.parent) if self.playlist.current else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open Image", start, OPEN_FILTER)
        if path:
            self.open_paths([path])

    def step(self, offset: int) -> None:
        if len(self.playlist.paths) > 1:
            self.playlist.step(offset)
            self.show_current()

    def go_to(self, index: int) -> None:
        """Show the playlist's ``index``-th file (Home, End, a click in the strip)."""
        if self.playlist.paths and index != self.playlist.index:
            self.playlist.go_to(index)
            self.show_current()

    def show_current(self, *, wait: bool = False) -> None:
        """Show the playlist's current file: at once when it is preloaded, else once a worker has
        opened it (``wait``: open it here and now); its neighbours are preloaded either way."""
        path = self.playlist.current
        self.position_label.setText(self.playlist.position_text())
        self.strip.set_paths(self.playlist.paths)
        self.strip.set_current(self.playlist.index if path is not None else -1)
        if path is None:
            self.view.show_message(self.playlist.empty_text())
            self.reconstruction.set_document(None)
            self.metadata_panel.show_metadata(None)
            self.info_label.setText("")
            self.zoom_label.setText("")
            self.setWindowTitle(window_title(None, None))
            return
        if not self.loader.request(path, self.playlist.neighbours(), wait=wait):
            self._show_loading(path)

    def _show_loading(self, path: Path) -> None:
        """Until ``path`` is open: its name in the title, and a note over the image it replaces."""
        self.setWindowTitle(window_title(path, None))
        self.info_label.setText(f"Loading {path.name}\u2026")
        if self.view.has_image():
            self.view.set_notice(f"Loading {path.name}\u2026")
        else:
            self.view.show_message(f"Loading {path.name}\u2026")

    def _show_result(self, result: LoadResult) -> None:
        if result.path != self.playlist.current:
            return  # a late answer for an image the user has already left
        if result.document is None:
            self.view.show_message(f"Cannot open {result.path.name}\n\n{result.error}")
            self.reconstruction.set_document(None)
            self.info_label.setText(f"Cannot open: {result.error}")
            self.zoom_label.setText("")
            self.metadata_panel.show_metadata(describe_error(result.path, result.error or ""))
        else:
            self.view.set_document(result.document)
            self.reconstruction.set_document(result.document)
            self._summary = document_summary(result.document)
            self.info_label.setText(self._summary)
            self.info_label.setToolTip("")
            self.metadata_panel.show_metadata(describe_document(result.document))
        self.setWindowTitle(window_title(result.path, result.document))

    # ------------------------------------------------------------------ status

    def _show_zoom(self, zoom: float, fitted: bool) -> None:
        self.zoom_label.setText(zoom_text(zoom, fitted))

    def _show_reconstruction(self, status: ReconstructionStatus) -> None:
        if status.state in ("reconstructing", "full") and self.view.notice().startswith(UNAVAILABLE):
            self.view.set_notice("")  # working again (the codec service restarted)
            self.info_label.setText(self._summary)
            self.info_label.setToolTip("")
        text, tooltip = reconstruction_text(status)
        self.reconstruction_label.setText(text)
        self.reconstruction_label.setToolTip(tooltip)
        self.reconstruction_label.setVisible(bool(text))

    def _show_reconstruction_failure(self, message: str) -> None:
        """The decoder cannot run for this image: say why over the image and in the status bar."""
        text = f"{UNAVAILABLE}{message}"
        self.view.set_notice(text)
        self.info_label.setText(f"{self._summary} \u2014 {text[0].lower()}{text[1:]}")
        self.info_label.setToolTip(text)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.reconstruction.shutdown()
        self.loader.shutdown()
        self.strip.shutdown()
        self.settings.setValue("view/strip", not self.strip_dock.isHidden())
        self.settings.setValue("view/metadata", not self.metadata_dock.isHidden())
        super().closeEvent(event)

    # ------------------------------------------------------------------ full screen, drops

    def toggle_fullscreen(self) -> None:
        self.setWindowState(self.windowState() ^ Qt.WindowState.WindowFullScreen)

    def changeEvent(self, event: QEvent) -> None:
        """In full screen the menu and status bars hide (their keys keep working) and Escape leaves."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.WindowStateChange:
            full = self.isFullScreen()
            if full:  # a hidden menu bar's actions lose their shortcuts unless the window holds them
                menus = [self.menuBar()]
                while menus:
                    for action in menus.pop().actions():
                        self.addAction(action)
                        if action.menu() is not None:
                            menus.append(action.menu())
            self.fullscreen_action.setChecked(full)
            self.leave_fullscreen_action.setEnabled(full)
            self.menuBar().setVisible(not full)
            self.statusBar().setVisible(not full)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_paths(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        """Dropped files or folders open like command-line arguments (one file: within its folder)."""
        paths = dropped_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_paths(paths)

    def check_weights(self) -> None:
        """Ask (off the GUI thread) whether reconstruction can work; ``_show_weights_status`` says it."""
        self._weights_check.start(self.weights_dir)  # the folder this window decodes and exports with

    def _show_weights_status(self, status: str | None, error: CodecError | None = None) -> None:
        """Say in the status bar when reconstruction cannot work (the full sentence as tooltip)."""
        if error is not None:
            status = str(error)[0].upper() + str(error)[1:] + "."
            if isinstance(error, ServiceStopped) and not self._rechecked:
                self._rechecked = True
                QTimer.singleShot(RECHECK_MS, self.check_weights)
        self.weights_label.setVisible(status is not None)
        short = NO_WEIGHTS_SHORT if error is None else "Reconstruction unavailable: the codec service failed"
        self.weights_label.setText(short if status else "")
        self.weights_label.setToolTip(status or "")
        set_export_available(self.export_actions, status)

    # ------------------------------------------------------------------ export

    def export_current(self) -> None:
        """File > Export as HyperThumbnail (and Save As): the export dialog for the image shown."""
        self.export_dialog = open_export_dialog(self, self.playlist.current, self.weights_dir)

    def export_folder(self) -> None:
        """File > Export Folder as HyperThumbnails: every image in the shown image's folder."""
        current = self.playlist.current
        self.batch_export = start_folder_export(self, current.parent if current else None, self.weights_dir)
