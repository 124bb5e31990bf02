"""File > Export as HyperThumbnail (and Save As): the dialog, its questions, and the menu state.

The dialog picks a rate (a preset or the slider), shows about how large the file will be,
a destination and the metadata options, and runs the export in an ``ExportWorker`` with a
progress bar and Cancel. It never overwrites a file without asking, and a cancelled or failed
export leaves no file (the codec writes atomically). Every failure is a line in the dialog.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.viewer import codec_bridge
from app.viewer.codec_bridge import CodecError
from app.viewer.export_worker import (
    Exported,
    ExportOptions,
    ExportWorker,
    default_destination,
    same_file,
)
from app.viewer.theme import ERROR_COLOUR
from app.viewer.time_left import TimeLeft
from app.viewer.units import bpp_text, size_text

SLIDER_STEPS = 100  # the slider's positions between rate 0 and 1
ESTIMATE_DELAY_MS = 150  # wait for the slider to settle before asking for an estimate
JPEG_FILTER = "HyperThumbnail JPEG (*.jpg *.jpeg)"
JPEG_SUFFIXES = (".jpg", ".jpeg")
ERROR_STYLE = f"color: {ERROR_COLOUR};"
TOOLTIP_WIDTH = 60  # characters per line of a long tooltip (Qt never wraps a plain-text one)


def wrapped(text: str, width: int = TOOLTIP_WIDTH) -> str:
    """``text`` in lines of at most ``width`` characters, for a tooltip that would be one long line."""
    return "\n".join(textwrap.wrap(text, width))


def unavailable_tip(status: str) -> str:
    """Why exporting is off: the weights status, said in terms of export if it is not already."""
    return status if "export" in status.lower() else f"Export needs trained weights. {status}"


def set_export_available(actions: Iterable[QAction], status: str | None) -> None:
    """Enable the export actions, or disable them with a tooltip saying why (``status``)."""
    for action in actions:
        action.setEnabled(status is None)
        tip = "" if status is None else unavailable_tip(status)
        action.setToolTip(tip or action.text().replace("&", "").rstrip("\u2026"))
        action.setStatusTip(tip)


def exported_text(exported: Exported) -> str:
    return f"Exported {exported.destination.name}: {size_text(exported.file_size)}, {bpp_text(exported.bits_per_pixel)}"


# --------------------------------------------------------------------------- questions (tests replace these)


def ask_overwrite(parent: QWidget, destination: Path) -> bool:
    """Whether the user agrees to replace the existing ``destination``."""
    answer = QMessageBox.question(
        parent,
        "Replace file?",
        f"{destination.name} already exists in {destination.parent}.\n\nReplace it with the new HyperThumbnail?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def choose_destination(parent: QWidget, current: Path) -> Path | None:
    """A file chosen with the save dialog (it does not ask about replacing: ``ask_overwrite`` does)."""
    path, _ = QFileDialog.getSaveFileName(
        parent,
        "Export as HyperThumbnail",
        str(current),
        JPEG_FILTER,
        options=QFileDialog.Option.DontConfirmOverwrite,
    )
    return Path(path) if path else None


# --------------------------------------------------------------------------- the dialog


class ExportDialog(QDialog):
    """Export ``source`` as a HyperThumbnail. Signal: ``exported(Exported)`` once the file is written
    (the dialog then closes)."""

    exported = Signal(object)

    def __init__(
        self, source: Path, *, weights_dir=None, hyperthumbnail: bool | None = None, parent: QWidget | None = None
    ):
        """``hyperthumbnail``: whether ``source`` is one, when the caller has the file open already
        (None: the dialog reads its header to find out)."""
        super().__init__(parent)
        self.source = Path(source).absolute()
        self._hyperthumbnail = bool(hyperthumbnail)
        self._known = hyperthumbnail is not None
        self.setWindowTitle("Export as HyperThumbnail")
        self.presets = codec_bridge.rate_presets()
        self.worker = ExportWorker(self.source, weights_dir, self, hyperthumbnail=hyperthumbnail)
        self.worker.photoLoaded.connect(self._photo_loaded)
        self.worker.estimated.connect(self._estimated)
        self.worker.estimateFailed.connect(self._estimated)
        self.worker.progressed.connect(self._progressed)
        self.worker.exported.connect(self._exported)
        self.worker.exportCancelled.connect(self._export_cancelled)
        self.worker.exportFailed.connect(self._export_failed)
        self._pixels: int | None = None
        self._estimates: dict[tuple, object] = {}  # options key -> SizeEstimate (or an error message)
        self._requests: dict[int, tuple] = {}  # estimate request -> its options key
        self._latest_key: tuple | None = None  # the key of the newest request (the worker drops older ones)
        self._exporting = False
        self._closed = False
        self._estimate_timer = QTimer(self, singleShot=True, interval=ESTIMATE_DELAY_MS)
        self._estimate_timer.timeout.connect(self._ask_estimate)
        self._build()
        self._check_source()
        self._ask_estimate()
        QCoreApplication.instance().aboutToQuit.connect(self._shutdown)

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.source_label = QLabel(f"<b>{self.source.name}</b>")
        self.source_label.setTextFormat(Qt.TextFormat.RichText)
        self.note_label = QLabel(wordWrap=True)
        self.note_label.hide()

        self.preset_buttons: dict[str, QPushButton] = {}
        self.preset_group = QButtonGroup(self)
        presets = QHBoxLayout()
        for name, value in sorted(self.presets.items(), key=lambda item: item[1]):
            button = QPushButton(name.title(), checkable=True, autoDefault=False)  # Return means Export
            button.setToolTip(f"Rate {value:g}")
            button.clicked.connect(lambda _=False, v=value: self.set_rate(v))
            self.preset_group.addButton(button)
            self.preset_buttons[name] = button
            presets.addWidget(button)
        presets.addStretch(1)
        self.slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=SLIDER_STEPS, singleStep=1, pageStep=10)
        self.slider.setToolTip("0: the smallest file; 1: the best reconstruction")
        self.slider.valueChanged.connect(self._rate_changed)
        self.rate_label = QLabel()
        self.rate_label.setMinimumWidth(32)
        slider_row = QHBoxLayout()
        slider_row.addWidget(QLabel("Smaller"))
        slider_row.addWidget(self.slider, 1)
        slider_row.addWidget(QLabel("Better"))
        slider_row.addWidget(self.rate_label)
        self.estimate_label = QLabel(wordWrap=True)
        self.estimate_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.destination_edit = QLineEdit(str(default_destination(self.source)))
        self.destination_edit.setMinimumWidth(360)
        self.browse_button = QPushButton("Browse\u2026", autoDefault=False)
        self.browse_button.clicked.connect(self.browse)
        destination_row = QHBoxLayout()
        destination_row.addWidget(self.destination_edit, 1)
        destination_row.addWidget(self.browse_button)

        self.keep_exif = QCheckBox("Keep EXIF metadata (camera, date, \u2026)", checked=True)
        self.keep_exif.setToolTip("Off: only the orientation is kept, so the photo still shows the right way up.")
        self.strip_gps = QCheckBox("Strip GPS location")
        self.keep_exif.toggled.connect(self._exif_toggled)
        self.strip_gps.toggled.connect(self._schedule_estimate)

        form = QFormLayout()
        form.addRow("Quality:", presets)
        form.addRow("Rate:", slider_row)
        form.addRow("Estimated size:", self.estimate_label)
        form.addRow("Save to:", destination_row)
        form.addRow("Metadata:", self.keep_exif)
        form.addRow("", self.strip_gps)

        self.progress = QProgressBar(minimum=0, maximum=100)
        self.progress.hide()
        self.time_left = TimeLeft()
        self.time_label = QLabel()  # "about 40 s left", once there is enough progress to tell
        self.time_label.hide()
        self.status_label = QLabel(wordWrap=True)
        self.status_label.hide()

        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.export_button.setDefault(True)
        self.cancel_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.start_export)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.source_label)
        layout.addWidget(self.note_label)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.time_label)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.set_rate(self.presets.get("MEDIUM", 0.5))

    def _check_source(self) -> None:
        """Say up front what the export will do with this file, or why it cannot."""
        try:
            hyper = self._hyperthumbnail if self._known else codec_bridge.is_hyperthumbnail(self.source)
        except CodecError as exc:
            self._show_status(f"Cannot export: {exc}", error=True)
            self.export_button.setEnabled(False)
            return
        self._hyperthumbnail = hyper
        if hyper:
            self.note_label.setText(
                "This file is already a HyperThumbnail: its full-resolution reconstruction will be "
                "encoded again (some quality is lost at every generation)."
            )
            self.note_label.show()

    # ------------------------------------------------------------------ rate and estimate

    def rate(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    def set_rate(self, rate: float) -> None:
        self.slider.setValue(round(rate * SLIDER_STEPS))
        self._rate_changed()

    def options(self) -> ExportOptions:
        keep = self.keep_exif.isChecked()
        return ExportOptions(rate=self.rate(), keep_exif=keep, strip_gps=keep and self.strip_gps.isChecked())

    def _rate_changed(self) -> None:
        rate = self.rate()
        self.rate_label.setText(f"{rate:.2f}")
        matching = [name for name, value in self.presets.items() if abs(value - rate) < 0.5 / SLIDER_STEPS]
        self.preset_group.setExclusive(False)
        for name, button in self.preset_buttons.items():
            button.setChecked(name in matching)
        self.preset_group.setExclusive(True)
        self._schedule_estimate()

    def _exif_toggled(self, keep: bool) -> None:
        self.strip_gps.setEnabled(keep)
        self._schedule_estimate()

    def current_estimate(self):
        """The ``SizeEstimate`` for the options shown (None while it is being measured or if it
        cannot be: the label then says why)."""
        estimate = self._estimates.get(self._key(self.options()))
        return None if isinstance(estimate, str) else estimate

    def _schedule_estimate(self) -> None:
        key = self._key(self.options())
        if key in self._estimates:
            self._show_estimate(self._estimates[key])
        else:
            self.estimate_label.setText("Estimating\u2026")
            self.estimate_label.setToolTip("")
            self._estimate_timer.start()

    @staticmethod
    def _key(options: ExportOptions) -> tuple:
        return (round(options.rate, 3), options.keep_exif, options.strip_gps)

    def _ask_estimate(self) -> None:
        options = self.options()
        key = self._key(options)
        if key in self._estimates:
            self._show_estimate(self._estimates[key])
        elif key != self._latest_key:
            self._requests[self.worker.request_estimate(options)] = key
            self._latest_key = key

    def _estimated(self, request: int, estimate) -> None:
        """A ``SizeEstimate``, or the message saying why there is none."""
        key = self._requests.pop(request, None)
        if key is not None:
            self._estimates[key] = estimate
            if key == self._latest_key:
                self._latest_key = None
            if key == self._key(self.options()):
                self._show_estimate(estimate)

    def _show_estimate(self, estimate) -> None:
        if isinstance(estimate, str):
            self.estimate_label.setText(f"unavailable: {estimate}")
            self.estimate_label.setToolTip(wrapped(estimate))
            return
        text = f"about {size_text(estimate.bytes)}"
        if self._pixels:
            text += f" ({bpp_text(estimate.bytes * 8 / self._pixels)})"
        self.estimate_label.setText(text)
        if estimate.exact:
            how = "Measured by encoding the whole photo in memory."
        else:
            how = (
                f"Measured by encoding {estimate.sampled:.1%} of the photo (tiles taken evenly across it, each "
                "with its surroundings, coded as the file will be) and scaling up by area. In 15 tests on photos "
                "of 2 to 24 megapixels the file came within 7.6% of such an estimate, 2.8% on average."
            )
        self.estimate_label.setToolTip(wrapped(how))

    def _photo_loaded(self, width: int, height: int, notes: list) -> None:
        self._pixels = width * height
        notes = [] if self._hyperthumbnail else notes  # the note under the name says it already
        details = "; ".join([f"{width}\u00d7{height} photo", *notes])
        self.source_label.setText(f"<b>{self.source.name}</b> \u2014 {details}")
        key = self._key(self.options())
        if key in self._estimates:
            self._show_estimate(self._estimates[key])

    # ------------------------------------------------------------------ destination

    def destination(self) -> Path:
        path = Path(self.destination_edit.text().strip()).expanduser()
        return path if path.is_absolute() else default_destination(self.source).parent / path

    def browse(self) -> None:
        chosen = choose_destination(self, self.destination())
        if chosen is not None:
            if chosen.suffix.lower() not in JPEG_SUFFIXES:
                chosen = chosen.with_name(chosen.name + ".jpg")
            self.destination_edit.setText(str(chosen))

    # ------------------------------------------------------------------ export

    def start_export(self) -> None:
        """Check the destination, ask before replacing a file, then encode on the worker."""
        if self._exporting:
            return
        if not self.destination_edit.text().strip():
            self._show_status("Choose where to save the HyperThumbnail.", error=True)
            return
        destination = self.destination()
        problem = None
        if destination.suffix.lower() not in JPEG_SUFFIXES:
            problem = f"A HyperThumbnail is a JPEG file: end the name with .jpg ({destination.name})."
        elif same_file(self.source, destination):
            problem = "The destination is the source photo itself: the source is never replaced. Choose another name."
        elif destination.is_dir():
            problem = f"The destination is a folder: {destination}"
        elif not destination.parent.is_dir():
            problem = f"The folder does not exist: {destination.parent}"
        if problem:
            self._show_status(problem, error=True)
            return
        overwrite = False
        if destination.exists():
            if not ask_overwrite(self, destination):
                self._show_status(f"Not exported: {destination.name} already exists and was kept.")
                return
            overwrite = True
        self._set_exporting(True)
        self.progress.setValue(0)
        self.time_left.start()
        self._show_status("Starting\u2026")
        self.worker.export(destination, self.options(), overwrite=overwrite)

    def _set_exporting(self, exporting: bool) -> None:
        self._exporting = exporting
        for widget in (
            *self.preset_buttons.values(),
            self.slider,
            self.destination_edit,
            self.browse_button,
            self.keep_exif,
            self.export_button,
        ):
            widget.setEnabled(not exporting)
        self.strip_gps.setEnabled(not exporting and self.keep_exif.isChecked())
        self.progress.setVisible(exporting)
        if not exporting:
            self.time_label.hide()

    def _progressed(self, percent: int, what: str) -> None:
        if self._exporting:
            self.progress.setValue(percent)
            self._show_status(what)
            self.time_label.setText(self.time_left.update(percent / 100))
            self.time_label.setVisible(bool(self.time_label.text()))

    def _exported(self, exported: Exported) -> None:
        self._set_exporting(False)
        self._show_status(exported_text(exported))
        self.exported.emit(exported)
        self.accept()

    def _export_cancelled(self) -> None:
        self._set_exporting(False)
        self._show_status("Export cancelled: no file was written.")

    def _export_failed(self, message: str) -> None:
        self._set_exporting(False)
        self._show_status(f"Export failed: {message}", error=True)

    def _show_status(self, text: str, *, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet(ERROR_STYLE if error else "")
        self.status_label.show()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self.slider.setFocus)  # not a preset button: a focus frame there reads as "selected"

    # ------------------------------------------------------------------ closing

    def reject(self) -> None:
        """Cancel (or Escape, or the window's close button): stops a running export first."""
        if self._exporting:
            self.worker.cancel()
            self._show_status("Cancelling\u2026")
            return
        super().reject()

    def done(self, result: int) -> None:
        self._shutdown()
        super().done(result)

    def _shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self._estimate_timer.stop()
            self.worker.shutdown()
            try:
                QCoreApplication.instance().aboutToQuit.disconnect(self._shutdown)
            except (RuntimeError, TypeError):  # already gone with the application
                pass


def open_export_dialog(
    window: QMainWindow, source: Path | None, weights_dir=None, *, hyperthumbnail: bool | None = None
) -> ExportDialog | None:
    """Show the export dialog for ``source`` over ``window``; the window's status bar reports the result.
    ``hyperthumbnail``: what the document on screen already knows of ``source`` (None: unknown)."""
    if source is None:
        window.statusBar().showMessage("There is no image to export.", 5000)
        return None
    dialog = ExportDialog(source, weights_dir=weights_dir, hyperthumbnail=hyperthumbnail, parent=window)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.exported.connect(lambda exported: window.statusBar().showMessage(exported_text(exported), 15000))
    dialog.open()
    return dialog
