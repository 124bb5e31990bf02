"""The main window: File and View menus, the keys, stepping through a playlist, the status bar.

Reconstruction runs by itself (``reconstruction`` watches the view); the window tells it which
document is shown, forwards key C, and puts what it reports into the status bar.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMenu, QWidget

from app.viewer.codec_bridge import weights_status
from app.viewer.describe import (
    NO_WEIGHTS_SHORT,
    ReconstructionStatus,
    document_summary,
    reconstruction_text,
    window_title,
    zoom_text,
)
from app.viewer.image_view import ImageView
from app.viewer.loader import DocumentLoader, LoadResult
from app.viewer.playlist import IMAGE_SUFFIXES, Playlist
from app.viewer.reconstruction import Reconstruction
from app.viewer.tile_grid import TILE_SIZE

OPEN_FILTER = "Images ({});;All files (*)".format(" ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)))


class MainWindow(QMainWindow):
    """Shows one image of a playlist at a time; every failure is a message in the window."""

    def __init__(self, playlist: Playlist | None = None, parent: QWidget | None = None, *,
                 weights_dir=None, tile_size: int = TILE_SIZE):  # fmt: skip
        """``weights_dir``: where the decoder's weights are (default: the codec's); ``tile_size``:
        photo pixels per reconstructed tile side."""
        super().__init__(parent)
        self.playlist = playlist or Playlist()
        self.view = ImageView(self)
        self.setCentralWidget(self.view)
        self.loader = DocumentLoader(self)
        self.loader.loaded.connect(self._show_result)
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
        QTimer.singleShot(0, self.check_weights)
        self.show_current()

    def _make_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open\u2026", [QKeySequence.StandardKey.Open], self.choose_file)
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

    def _action(self, menu: QMenu, text: str, keys: list, slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(k) for k in keys])
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ------------------------------------------------------------------ opening

    def open_paths(self, arguments: list[str | Path]) -> None:
        """Replace the playlist (files, folders, or one file and its folder) and show it."""
        self.playlist = Playlist.from_arguments(arguments)
        self.show_current()

    def choose_file(self) -> None:
        start = str(self.playlist.current.parent) if self.playlist.current else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open Image", start, OPEN_FILTER)
        if path:
            self.open_paths([path])

    def step(self, offset: int) -> None:
        if len(self.playlist.paths) > 1:
            self.playlist.step(offset)
            self.show_current()

    def show_current(self) -> None:
        path = self.playlist.current
        self.position_label.setText(self.playlist.position_text())
        if path is None:
            self.view.show_message("No images to show. Use File \u203a Open to choose one.")
            self.reconstruction.set_document(None)
            self.info_label.setText("")
            self.zoom_label.setText("")
            self.setWindowTitle(window_title(None, None))
            return
        self.loader.request(path)

    def _show_result(self, result: LoadResult) -> None:
        if result.path != self.playlist.current:
            return  # a late answer for an image the user has already left
        if result.document is None:
            self.view.show_message(f"Cannot open {result.path.name}\n\n{result.error}")
            self.reconstruction.set_document(None)
            self.info_label.setText(f"Cannot open: {result.error}")
            self.zoom_label.setText("")
        else:
            self.view.set_document(result.document)
            self.reconstruction.set_document(result.document)
            self._summary = document_summary(result.document)
            self.info_label.setText(self._summary)
            self.info_label.setToolTip("")
        self.setWindowTitle(window_title(result.path, result.document))

    # ------------------------------------------------------------------ status

    def _show_zoom(self, zoom: float, fitted: bool) -> None:
        self.zoom_label.setText(zoom_text(zoom, fitted))

    def _show_reconstruction(self, status: ReconstructionStatus) -> None:
        text, tooltip = reconstruction_text(status)
        self.reconstruction_label.setText(text)
        self.reconstruction_label.setToolTip(tooltip)
        self.reconstruction_label.setVisible(bool(text))

    def _show_reconstruction_failure(self, message: str) -> None:
        """The decoder cannot run for this image: say why over the image and in the status bar."""
        text = f"Reconstruction unavailable: {message}"
        self.view.set_notice(text)
        self.info_label.setText(f"{self._summary} \u2014 {text[0].lower()}{text[1:]}")
        self.info_label.setToolTip(text)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.reconstruction.shutdown()
        super().closeEvent(event)

    def check_weights(self) -> None:
        """Say in the status bar when reconstruction cannot work (the full sentence as tooltip)."""
        status = weights_status()
        self.weights_label.setVisible(status is not None)
        self.weights_label.setText(NO_WEIGHTS_SHORT if status else "")
        self.weights_label.setToolTip(status or "")
