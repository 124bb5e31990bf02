"""The main window: File and View menus, the keys, stepping through a playlist, the status bar.

Reconstruction runs by itself (``reconstruction`` watches the view); the window tells it which
document is shown, forwards key C, and puts what it reports into the status bar. After the first
paint it asks the codec service (started then, in its own process) whether trained weights are
installed, on a thread of its own: the answer arrives as a signal. Browsing: the
loader opens files on a worker and preloads the neighbours, the thumbnail strip (key T) and the
metadata panel (key I) are docks, drops and File > Open Recent go through ``open_paths``.
The Edit menu is ``tools``'s, with ``rating_menu``'s Rating (keys 0-5) and Colour Label (6-9),
whose stars and colour the status bar shows (so the fixed zoom levels are Ctrl+digits). View adds
the split comparison (X), the slideshow (F5) and the sort order; Help lists every key (``help_overlay``). A slideshow runs full screen with the panels hidden;
Escape stops it and puts the window back as it was. Opening a folder shows the first image of the
sort order. Closing saves the layout, the sort order, the last folder and the image shown;
Ctrl+Q ends the program at once (the codec service is stopped before the workers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QFileSystemWatcher, QObject, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QWidget,
)

from app.codec.files.imageio import TRUNCATED_NOTE
from app.viewer import settings as stored
from app.viewer.batch_export import start_folder_export
from app.viewer.codec_bridge import (
    CodecError,
    Labels,
    ServiceStopped,
    service,
    stop_service,
    weights_status,
)
from app.viewer.describe import (
    NO_WEIGHTS_SHORT,
    ReconstructionStatus,
    document_summary,
    indicator_text,
    reconstruction_text,
    window_title,
    zoom_text,
)
from app.viewer.drops import dropped_paths
from app.viewer.export_dialog import open_export_dialog, set_export_available
from app.viewer.help_overlay import ShortcutHelp
from app.viewer.image_view import ImageView
from app.viewer.loader import DocumentLoader, LoadResult
from app.viewer.memory import give_back_freed_memory
from app.viewer.metadata import describe_document, describe_error
from app.viewer.metadata_panel import MetadataPanel
from app.viewer.original import find_original, open_original
from app.viewer.playlist import IMAGE_SUFFIXES, Playlist, folder_images
from app.viewer.qimage import to_qimage
from app.viewer.rating_menu import RatingTools, labels_html
from app.viewer.recent import RecentFiles, RecentMenu
from app.viewer.reconstruction import Reconstruction
from app.viewer.settings import open_settings
from app.viewer.slideshow import Slideshow, SlideshowBadge
from app.viewer.sorting import INLINE_DATE_SORT_LIMIT, SORT_ORDERS, merged_order, sorted_paths
from app.viewer.startup_timing import call_after_first_paint
from app.viewer.thumbnails import ThumbnailStrip
from app.viewer.tile_grid import TILE_SIZE
from app.viewer.tools import ImageTools

OPEN_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)))
UNAVAILABLE = "Reconstruction unavailable: "
RECHECK_MS = 2000  # after the codec service stopped during the weights check, ask again once this late
SERVICE_RESTARTED = "The codec service had stopped unexpectedly; it has been restarted."
RELIST_MS = 300  # a watched folder is listed again this long after its last change (an export writes several)


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


class BackgroundSort(QObject):
    """Sorts a list of paths on a thread of its own; ``done(token, paths)`` arrives on the GUI thread."""

    done = Signal(object, object)

    def start(self, token, paths: list[Path], order: str) -> None:
        threading.Thread(target=self._run, args=(token, list(paths), order), daemon=True, name="sort").start()

    def _run(self, token, paths: list[Path], order: str) -> None:
        ordered = sorted_paths(paths, order)
        try:
            self.done.emit(token, ordered)
        except RuntimeError:  # the window is gone
            pass


class FolderWatch(QObject):
    """Watches the playlist's folders (``QFileSystemWatcher``); RELIST_MS after the last change
    lists and sorts them again on a thread of its own. ``listed(token, paths)`` arrives on the
    GUI thread; ``watch`` with other folders (another folder opened) makes older answers stale."""

    listed = Signal(object, object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(lambda _folder: self.timer.start())
        self.timer = QTimer(self, singleShot=True, interval=RELIST_MS)
        self.timer.timeout.connect(self.relist)
        self.folders: list[Path] = []
        self.order = "name"
        self.token = object()

    def watch(self, folders: list[Path], order: str) -> None:
        """Watch ``folders`` (none: stop watching), listed in ``order`` when they change."""
        self.order = order
        if folders == self.folders:
            return
        self.timer.stop()
        self.token = object()
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        self.folders = list(folders)
        if self.folders:
            self.watcher.addPaths([str(folder) for folder in self.folders])

    def relist(self) -> None:
        token, folders, order = self.token, list(self.folders), self.order
        if folders:
            threading.Thread(target=self._list, args=(token, folders, order), daemon=True, name="relist").start()

    def _list(self, token, folders: list[Path], order: str) -> None:
        paths = sorted_paths([path for folder in folders for path in folder_images(folder)], order)
        try:
            self.listed.emit(token, paths)
        except RuntimeError:  # the window is gone
            pass


class MainWindow(QMainWindow):
    """Shows one image of a playlist at a time; every failure is a message in the window."""

    serviceRestarted = Signal()  # a new codec service replaced one that crashed (emitted from any thread)

    def __init__(
        self,
        playlist: Playlist | None = None,
        parent: QWidget | None = None,
        *,
        weights_dir=None,
        tile_size: int = TILE_SIZE,
        settings: QSettings | None = None,
    ):
        """``weights_dir``: where the decoder's weights are (default: the codec's); ``tile_size``:
        photo pixels per reconstructed tile side; ``settings``: where the recent files and the
        panels' visibility are kept (default: the user's settings file)."""
        super().__init__(parent)
        self.playlist = playlist or Playlist()
        self.weights_dir = weights_dir  # the export worker's (the decoder's are reconstruction's)
        self.settings = settings if settings is not None else open_settings()
        self.ends_application = False  # True: closing this window ends the program (``main`` sets it)
        self.document = None  # the document shown (turned as the user rotated it), None for none or an error
        self.sort_order = stored.read(self.settings, stored.SORT)
        self.background_sort = BackgroundSort(self)
        self.background_sort.done.connect(self._sorted_in_background)
        self._sort_token = None  # what the latest background sort was started for
        self._sort_playlist(opening=True)
        self.tools = ImageTools(self, self._say)
        self.ratings = RatingTools(self, self._say)
        self.labels = Labels()  # the shown file's rating and colour label (its XMP)
        self.slideshow = Slideshow(lambda: self.step(1), stored.read(self.settings, stored.SLIDESHOW_S), self)
        self.recent = RecentFiles(self.settings, self)
        self.view = ImageView(self)
        self.setCentralWidget(self.view)
        self.setAcceptDrops(True)
        self.view.setAcceptDrops(False)  # drops go to the window, whatever part of it is under the mouse
        self.view.viewport().setAcceptDrops(False)
        self.loader = DocumentLoader(self)
        self.loader.loaded.connect(self._show_result)
        self.folder_watch = FolderWatch(self)
        self.folder_watch.listed.connect(self._folder_changed)
        self.folder_watch.watch(self.playlist.watched, self.sort_order)
        self._make_docks()
        self.reconstruction = Reconstruction(self.view, weights_dir=weights_dir, tile_size=tile_size, parent=self)
        self.reconstruction.statusChanged.connect(self._show_reconstruction)
        self.reconstruction.failed.connect(self._show_reconstruction_failure)
        self._summary = ""
        self.info_label = QLabel()
        self.labels_label = QLabel()  # the shown file's stars and colour label
        self.reconstruction_label = QLabel()
        self.position_label = QLabel()
        self.zoom_label = QLabel()
        self.weights_label = QLabel()
        self.statusBar().addWidget(self.info_label, 1)
        for label in (
            self.labels_label,
            self.reconstruction_label,
            self.position_label,
            self.zoom_label,
            self.weights_label,
        ):
            label.setContentsMargins(8, 0, 8, 0)
            self.statusBar().addPermanentWidget(label)
        self.weights_label.hide()
        self.view.zoomChanged.connect(self._show_zoom)
        self.view.stepRequested.connect(self.step)
        self._make_menus()
        self.help = ShortcutHelp(self.view, self.menuBar())
        self.slideshow_badge = SlideshowBadge(self.view)
        self._before_slideshow = None  # (window state, strip shown, metadata panel shown) to put back
        self.resize(1100, 760)
        self.setWindowTitle(window_title(None, None))
        self._weights_check = WeightsCheck(self)
        self._weights_check.done.connect(self._show_weights_status)
        self._rechecked = False
        self.serviceRestarted.connect(lambda: self._say(SERVICE_RESTARTED))
        service().add_restart_listener(self._service_restarted)
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
        self.strip_dock.setVisible(stored.read(self.settings, stored.STRIP))
        self.metadata_dock.setVisible(stored.read(self.settings, stored.METADATA))

    def restore_layout(self) -> None:
        """The window's size and place, and where its panels were docked, as the user left them
        (``main`` asks for it; a window made by a test starts at its default size)."""
        geometry, state = stored.read(self.settings, stored.GEOMETRY), stored.read(self.settings, stored.STATE)
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def _save_layout(self) -> None:
        stored.write(self.settings, stored.GEOMETRY, self.saveGeometry())
        stored.write(self.settings, stored.STATE, self.saveState())
        stored.write(self.settings, stored.STRIP, not self.strip_dock.isHidden())
        stored.write(self.settings, stored.METADATA, not self.metadata_dock.isHidden())
        stored.write(self.settings, stored.NAVIGATOR, self.navigator_action.isChecked())
        if self.playlist.current is not None:
            stored.write(self.settings, stored.LAST_FOLDER, str(self.playlist.current.absolute().parent))
            stored.write(self.settings, stored.LAST_IMAGE, str(self.playlist.current.absolute()))
        self.settings.sync()

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
        self._action(
            file_menu, "&Quit", ["Ctrl+Q"], self.quit
        )  # one key: two of the same are "ambiguous" and do nothing
        self.ratings.make_menus(self.tools.make_menu(self.menuBar()))
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "Zoom &In", ["+", "=", QKeySequence.StandardKey.ZoomIn], self.view.zoom_in)
        self._action(view_menu, "Zoom &Out", ["-", QKeySequence.StandardKey.ZoomOut], self.view.zoom_out)
        # Ctrl+digits: the bare digits rate (0-5) and label (6-9) the image, as photographers expect
        self._action(view_menu, "&Fit to Window", ["Ctrl+0"], self.view.fit)
        self._action(view_menu, "Zoom &50%", ["Ctrl+5"], lambda: self.view.set_zoom(0.5))
        self._action(view_menu, "&Actual Size (100%)", ["Ctrl+1"], lambda: self.view.set_zoom(1.0))
        self._action(view_menu, "Zoom &200%", ["Ctrl+2"], lambda: self.view.set_zoom(2.0))
        self._action(view_menu, "Zoom &400%", ["Ctrl+4"], lambda: self.view.set_zoom(4.0))
        self.reconstruction_action = QAction("Show &Reconstruction", self, checkable=True, checked=True)
        self.reconstruction_action.setShortcut(QKeySequence("C"))
        self.reconstruction_action.toggled.connect(self.reconstruction.set_shown)
        view_menu.addAction(self.reconstruction_action)
        self.compare_action = QAction("Co&mpare Preview | Reconstruction", self, checkable=True)
        self.compare_action.setShortcut(QKeySequence("X"))
        self.compare_action.setToolTip("The preview left of a line, the reconstruction right of it; drag the line")
        self.compare_action.toggled.connect(lambda on: self.view.set_split(0.5 if on else None))
        view_menu.addAction(self.compare_action)
        self._action(view_menu, "Compare With &Original\u2026", [], self.compare_with_original)
        self.navigator_action = QAction("&Navigator While Zoomed In", self, checkable=True)
        self.navigator_action.setShortcut(QKeySequence("N"))
        self.navigator_action.setToolTip(
            "A map of the whole photo in the corner, the visible part framed; click it to move"
        )
        self.navigator_action.setChecked(stored.read(self.settings, stored.NAVIGATOR))
        self.view.navigator.set_enabled_by_user(self.navigator_action.isChecked())
        self.navigator_action.toggled.connect(self.view.navigator.set_enabled_by_user)
        view_menu.addAction(self.navigator_action)
        view_menu.addSeparator()
        self._action(view_menu, "&Next Image", ["PgDown", "Space"], lambda: self.step(1))
        self._action(view_menu, "&Previous Image", ["PgUp", "Backspace"], lambda: self.step(-1))
        self._action(view_menu, "Fi&rst Image", ["Home"], lambda: self.go_to(0))
        self._action(view_menu, "&Last Image", ["End"], lambda: self.go_to(len(self.playlist.paths) - 1))
        view_menu.addSeparator()
        for dock, text, key in (
            (self.strip_dock, "&Thumbnail Strip", "T"),
            (self.metadata_dock, "&Metadata Panel", "I"),
        ):
            action = dock.toggleViewAction()
            action.setText(text)
            action.setShortcut(QKeySequence(key))
            view_menu.addAction(action)
        self.fullscreen_action = self._action(view_menu, "F&ull Screen", ["F11"], self.toggle_fullscreen)
        self.fullscreen_action.setCheckable(True)
        self.leave_fullscreen_action = QAction("Leave Full Screen", self, enabled=False)
        self.leave_fullscreen_action.setShortcut(QKeySequence("Escape"))  # only in full screen or a slideshow
        self.leave_fullscreen_action.triggered.connect(self.escape)
        self.addAction(self.leave_fullscreen_action)
        view_menu.addSeparator()
        self.slideshow_action = self._action(view_menu, "Sli&deshow", ["F5"], self.toggle_slideshow)
        self.slideshow_action.setCheckable(True)
        self._action(view_menu, "Slideshow &Interval\u2026", [], self.choose_slideshow_interval)
        sort_menu = view_menu.addMenu("&Sort By")
        self.sort_actions = {}
        group = QActionGroup(self)
        for order, text in SORT_ORDERS.items():
            action = QAction(text, self, checkable=True, checked=order == self.sort_order)
            action.triggered.connect(lambda _=False, o=order: self.set_sort_order(o))
            group.addAction(action)
            sort_menu.addAction(action)
            self.sort_actions[order] = action
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&Keyboard Shortcuts", ["F1", "?"], lambda: self.help.toggle())
        for top in self.menuBar().actions():
            top.menu().aboutToHide.connect(self._menu_closed)

    def _menu_closed(self) -> None:
        """A menu closed with Escape leaves the menu bar in keyboard mode, where the next Left or
        Right only moves between its titles: give the keys back to the image once no menu is open."""
        QTimer.singleShot(0, self._leave_menu_bar)

    def _leave_menu_bar(self) -> None:
        if QApplication.activePopupWidget() is None and self.menuBar().hasFocus():
            self.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def _action(self, menu: QMenu, text: str, keys: list, slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.triggered.connect(lambda _checked=False: slot())  # not ``checked`` as the slot's first argument
        menu.addAction(action)
        return action

    # ------------------------------------------------------------------ opening

    def open_paths(self, arguments: list[str | Path], *, remember: bool = True) -> None:
        """Replace the playlist (files, folders, or one file and its folder) and show it, in the
        chosen sort order; ``remember``: put the arguments on File > Open Recent."""
        self.playlist = Playlist.from_arguments(arguments)
        self._sort_playlist(opening=True)
        self.folder_watch.watch(self.playlist.watched, self.sort_order)  # stops watching the folder left
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

    def set_sort_order(self, order: str) -> None:
        """View > Sort By: the same files in another order (remembered); the image shown stays."""
        self.sort_order = order
        self.sort_actions[order].setChecked(True)
        stored.write(self.settings, stored.SORT, order)
        self.folder_watch.watch(self.playlist.watched, order)
        self._sort_playlist()
        self.show_current()

    def _sort_playlist(self, *, opening: bool = False) -> None:
        """Put the playlist in the chosen order; a big folder by date is re-sorted on a thread
        (shown in name order until then) so its first image does not wait for every EXIF header.
        ``opening``: a playlist just opened with no file named (a folder) starts at the first file
        of this order; one sorted on a thread moves there when its order arrives, unless the
        user has stepped meanwhile. Otherwise the current file stays current."""
        paths = self.playlist.paths
        self._to_first = opening and not self.playlist.named
        if self.sort_order == "date" and len(paths) > INLINE_DATE_SORT_LIMIT:
            self.playlist.reorder(sorted_paths(paths, "name"))
            self._sort_token = (self.playlist, object())
            self.background_sort.start(self._sort_token, paths, "date")
        else:
            self._sort_token = None
            self.playlist.reorder(sorted_paths(paths, self.sort_order))
        if self._to_first:
            self.playlist.go_to(0)

    def _sorted_in_background(self, token, paths: list[Path]) -> None:
        if token is not self._sort_token or token[0] is not self.playlist:
            return  # another folder or another order since
        self._sort_token = None
        self.playlist.reorder(merged_order(paths, self.playlist.paths))
        if self._to_first:  # opened as a folder, not stepped since: its first image by date
            self._to_first = False
            self.playlist.go_to(0)
            self.show_current()
        else:
            self._show_position()

    def _folder_changed(self, token, paths: list[Path]) -> None:
        """The watched folders' files, listed again after a change on disk: the image shown
        stays (by path); if it went, its neighbour shows, and the status bar says so."""
        if token is not self.folder_watch.token or paths == self.playlist.paths:
            return
        sorting, self._sort_token = self._sort_token is not None, None  # this list is sorted whole: newer
        shown = self.playlist.current
        gone = self.playlist.follow(paths)
        if sorting and self._to_first:  # as the date sort would have: a folder just opened goes to its first
            self._to_first, shown = False, None
            self.playlist.go_to(0)
        if gone is not None:
            self.tools.forget(gone)
            now = self.playlist.current
            self._say(f"{gone.name} is no longer in the folder" + (f"; showing {now.name}." if now else "."))
        if gone is not None or shown is None:
            self.show_current()
        else:
            self._show_position()

    def toggle_slideshow(self) -> None:
        """View > Slideshow (F5): starts or stops it."""
        if self.slideshow.running():
            self.stop_slideshow()
        else:
            self.start_slideshow()

    def start_slideshow(self) -> None:
        """The next image every few seconds, full screen with the panels hidden and a small
        "Slideshow — Esc to stop" over the image, until Escape or F5."""
        if self.slideshow.running():
            return
        self._before_slideshow = (self.windowState(), not self.strip_dock.isHidden(), not self.metadata_dock.isHidden())
        self.strip_dock.hide()
        self.metadata_dock.hide()
        self.view.fit()  # a slideshow shows whole photos (each next one is fitted as it opens)
        self.slideshow.start()
        self.slideshow_badge.show()
        self.slideshow_badge.raise_()
        self.slideshow_action.setChecked(True)
        self.leave_fullscreen_action.setEnabled(True)
        if not self.isFullScreen():
            self.setWindowState(self.windowState() | Qt.WindowState.WindowFullScreen)
        self._say(f"Slideshow: the next image every {self.slideshow.interval:g} s (Esc or F5 stops).")

    def stop_slideshow(self) -> None:
        """Stop the slideshow and put back the window state and the panels it changed."""
        if not self.slideshow.running():
            return
        self.slideshow.stop()
        self.slideshow_badge.hide()
        self.slideshow_action.setChecked(False)
        state, strip, metadata = self._before_slideshow
        self._before_slideshow = None
        if self.windowState() != state:
            self.setWindowState(state)
        self.strip_dock.setVisible(strip)
        self.metadata_dock.setVisible(metadata)
        self.leave_fullscreen_action.setEnabled(self.isFullScreen())
        self._say("Slideshow stopped.")

    def escape(self) -> None:
        """Escape: stops a slideshow (the window returns as it was), else leaves full screen."""
        if self.slideshow.running():
            self.stop_slideshow()
        elif self.isFullScreen():
            self.toggle_fullscreen()

    def choose_slideshow_interval(self) -> None:
        seconds, ok = QInputDialog.getDouble(
            self, "Slideshow Interval", "Seconds per image:", self.slideshow.interval, 0.5, 3600.0, 1
        )
        if ok:
            self.slideshow.set_interval(seconds)
            stored.write(self.settings, stored.SLIDESHOW_S, self.slideshow.interval)

    def refresh(self) -> None:
        """Show the current file again (a rotation changed how it is shown; a saved one changed the
        file, which the loader then opens again: its cache checks size and modification time)."""
        self.show_current()

    reopen = refresh

    def remove_from_playlist(self, path: Path) -> None:
        """``path`` is gone (moved to the trash): show the file after it."""
        self.playlist.remove(path)
        self.show_current()

    def _say(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def compare_with_original(self, path: Path | None = None) -> bool:
        """View > Compare With Original: the original photo left of the comparison line, the
        reconstruction right of it. ``path``: the original (None: the export's source beside the
        file, else one the user chooses). Refused, with a message, unless it has the same size."""
        document = self.document
        if document is None or not document.is_hyperthumbnail:
            self._say("Compare With Original needs a HyperThumbnail on screen.")
            return False
        if path is None:
            path = find_original(document.path)
        if path is None:
            chosen, _ = QFileDialog.getOpenFileName(self, "Original photo", str(document.path.parent), OPEN_FILTER)
            if not chosen:
                return False
            path = Path(chosen)
        try:
            original = open_original(document, Path(path))
        except (ValueError, CodecError) as exc:
            self._say(f"Cannot compare: {exc}")
            return False
        self.view.set_original(to_qimage(original.preview), original.icc_profile)
        self.compare_action.setChecked(True)
        self._say(f"Original {Path(path).name} left of the line, the reconstruction right of it: drag the line.")
        return True

    def step(self, offset: int) -> None:
        self._to_first = False  # the user has moved: a late sort keeps this image
        if len(self.playlist.paths) > 1:
            self.playlist.step(offset)
            self.show_current()

    def go_to(self, index: int) -> None:
        """Show the playlist's ``index``-th file (Home, End, a click in the strip)."""
        self._to_first = False
        if self.playlist.paths and index != self.playlist.index:
            self.playlist.go_to(index)
            self.show_current()

    def show_current(self, *, wait: bool = False) -> None:
        """Show the playlist's current file: at once when it is preloaded, else once a worker has
        opened it (``wait``: open it here and now); its neighbours are preloaded either way."""
        path = self.playlist.current
        self._show_position()
        if path is None:
            self.document = None
            self.view.show_message(self.playlist.empty_text())
            self.reconstruction.set_document(None)
            self.metadata_panel.show_metadata(None)
            self._set_labels(Labels())
            self.info_label.setText("")
            self.zoom_label.setText("")
            self.setWindowTitle(window_title(None, None))
            return
        if not self.loader.request(path, self.playlist.neighbours(), wait=wait):
            self._show_loading(path)

    def _show_position(self) -> None:
        """ "n of m" and the strip, for the playlist as it is now."""
        self.position_label.setText(self.playlist.position_text())
        self.strip.set_paths(self.playlist.paths)
        self.strip.set_current(self.playlist.index if self.playlist.current is not None else -1)

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
        replaced = self.document.preview.nbytes if self.document is not None else 0
        if result.document is None:
            self.document = None
            self.view.show_message(f"Cannot open {result.path.name}\n\n{result.error}")
            self.reconstruction.set_document(None)
            self.info_label.setText(f"Cannot open: {result.error}")
            self.zoom_label.setText("")
            self.metadata_panel.show_metadata(describe_error(result.path, result.error or ""))
            self._set_labels(Labels())
        else:
            self.document = document = self.tools.shown(result.document)  # turned as the user rotated it
            self.view.set_document(document)
            self.reconstruction.set_document(document)
            self._summary = document_summary(document)
            self.info_label.setText(self._summary)
            self.info_label.setToolTip("")
            self._set_labels(self.ratings.labels_for(result.path))
            self.metadata_panel.show_metadata(describe_document(document, self.labels))
            if TRUNCATED_NOTE in document.notes:  # shown as far as it could be read: say so over it
                self.view.set_notice(TRUNCATED_NOTE[0].upper() + TRUNCATED_NOTE[1:] + ".")
            original = find_original(result.path) if document.is_hyperthumbnail else None
            if original is not None:  # the export's source is beside it: offer the comparison
                self._say(f"The original {original.name} is beside it: View \u203a Compare With Original shows both.")
        self.setWindowTitle(window_title(result.path, self.document if result.document is not None else None))
        give_back_freed_memory(replaced)  # the pixmap of a big image just replaced

    # ------------------------------------------------------------------ status

    def _set_labels(self, labels: Labels) -> None:
        self.labels = labels
        self.labels_label.setText(labels_html(labels))
        self.labels_label.setVisible(bool(self.labels_label.text()))

    def show_labels(self, path: Path, labels: Labels) -> None:
        """``path`` (the file shown) now has ``labels``: the status bar, the panel and the strip say so."""
        if self.document is None or Path(self.document.path) != path:
            return
        self._set_labels(labels)
        self.metadata_panel.show_metadata(describe_document(self.document, labels))

    def _show_zoom(self, zoom: float, fitted: bool) -> None:
        self.zoom_label.setText(zoom_text(zoom, fitted))

    def _show_reconstruction(self, status: ReconstructionStatus) -> None:
        if status.state in ("reconstructing", "detailing", "full") and self.view.notice().startswith(UNAVAILABLE):
            self.view.set_notice("")  # working again (the codec service restarted)
            self.info_label.setText(self._summary)
            self.info_label.setToolTip("")
        text, tooltip = reconstruction_text(status)
        self.reconstruction_label.setText(text)
        self.reconstruction_label.setToolTip(tooltip)
        self.reconstruction_label.setVisible(bool(text))
        self.view.set_indicator(indicator_text(status))

    def _show_reconstruction_failure(self, message: str) -> None:
        """The decoder cannot run for this image: say why over the image and in the status bar."""
        text = f"{UNAVAILABLE}{message}"
        self.view.set_notice(text)
        self.info_label.setText(f"{self._summary} \u2014 {text[0].lower()}{text[1:]}")
        self.info_label.setToolTip(text)

    def _service_restarted(self) -> None:
        try:
            self.serviceRestarted.emit()  # to the GUI thread
        except RuntimeError:  # the window is gone
            pass

    def quit(self) -> None:
        """File > Quit (Ctrl+Q): the application ends, at once."""
        self.ends_application = True
        self.close()
        QApplication.quit()

    def closeEvent(self, event: QCloseEvent) -> None:
        """Stop the workers and remember the window. When the application ends with it, the codec
        service is stopped first: a worker waiting on it (a decoder still being made, which cannot
        be abandoned) then returns at once instead of holding the exit for seconds."""
        self.hide()
        service().remove_restart_listener(self._service_restarted)
        self.stop_slideshow()  # before the layout is saved: the panels and window state as they were
        if self.ends_application:
            stop_service()
        self.reconstruction.shutdown()
        self.loader.shutdown()
        self.strip.shutdown()
        self._save_layout()
        super().closeEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.help.place()

    def keyPressEvent(self, event) -> None:
        """Escape closes the shortcut help (in full screen, Escape's action leaves full screen first)."""
        if event.key() == Qt.Key.Key_Escape and self.help.isVisible():
            self.help.hide()
            return
        super().keyPressEvent(event)

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
            self.leave_fullscreen_action.setEnabled(full or self.slideshow.running())
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
        current, document = self.playlist.current, self.document
        known = document.is_hyperthumbnail if document is not None and document.path == current else None
        self.export_dialog = open_export_dialog(self, current, self.weights_dir, hyperthumbnail=known)

    def export_folder(self) -> None:
        """File > Export Folder as HyperThumbnails: every image in the shown image's folder."""
        current = self.playlist.current
        self.batch_export = start_folder_export(self, current.parent if current else None, self.weights_dir)
