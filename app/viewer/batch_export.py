"""File > Export Folder as HyperThumbnails: every image of a folder, one progress dialog, one summary.

The GUI thread plans the run (output names, one question about existing outputs) and shows the
progress; a ``BatchExporter`` sends the files one after the other, from its pool thread, to the
codec service, where each goes through the batch engine's own per-photo path (``convert_one``,
what ``hyperthumb convert`` runs: one code path for batches; the naming scheme is the same too,
``<stem>.hyper.jpg`` here because the outputs may land beside their sources). Files
that are already HyperThumbnails are skipped (their thumbnail is not the photo), files that are
not readable images fail, and existing outputs are skipped if the user says so, all before the
run (``sort_sources``), so every count shown is of the files that will be written; a file that
fails is reported with its reason while the others go on. The progress says about how long is
left (``time_left``). Cancel stops the file being
encoded at the encoder's next tile (it leaves no partial file: the codec writes atomically) and
starts no other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
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
    QVBoxLayout,
    QWidget,
)

from app.viewer import codec_bridge
from app.viewer.codec_bridge import Cancelled
from app.viewer.export_worker import (
    HYPER_SUFFIX,
    Exported,
    ExportOptions,
    error_text,
    same_file,
)
from app.viewer.playlist import folder_images
from app.viewer.save_folder import save_folder_for
from app.viewer.time_left import TimeLeft
from app.viewer.units import size_text

SUMMARY_LINES = 12  # reasons listed in the summary itself; all of them are in its details


@dataclass(frozen=True)
class BatchItem:
    source: Path
    destination: Path


def plan_batch(sources: list[Path], output_folder: Path, replaceable: Iterable[Path] = ()) -> list[BatchItem]:
    """One output per source, ``<stem>.hyper.jpg`` in ``output_folder``; names that would collide
    (a.png and a.jpg) or land on one of the sources get the source's suffix, then a number.
    ``replaceable``: sources an output may land on (earlier outputs, themselves skipped)."""
    output_folder = Path(output_folder)
    free = set(replaceable)
    taken = {p.name.casefold() for p in sources if p not in free and _same_folder(p.parent, output_folder)}
    items = []
    for source in sources:
        candidates = [f"{source.stem}{HYPER_SUFFIX}", f"{source.stem}-{source.suffix.lstrip('.')}{HYPER_SUFFIX}"]
        candidates += [
            f"{source.stem}-{source.suffix.lstrip('.')}-{n}{HYPER_SUFFIX}" for n in range(2, len(sources) + 3)
        ]
        name = next(c for c in candidates if c.casefold() not in taken)
        taken.add(name.casefold())
        items.append(BatchItem(source, output_folder / name))
    return items


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


@dataclass
class BatchSummary:
    output_folder: Path
    total: int
    exported: list[Exported] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False
    not_exported: int = 0  # files left undone by a cancel (the interrupted one included)

    def headline(self) -> str:
        words = f"{len(self.exported)} exported, {len(self.skipped)} skipped, {len(self.failed)} failed"
        if self.cancelled:
            words = f"Cancelled: {words}, {self.not_exported} not done"
        return words[0].upper() + words[1:] + "."

    def lines(self) -> list[str]:
        return [
            *(f"Failed: {path.name}: {reason}" for path, reason in self.failed),
            *(f"Skipped: {path.name}: {reason}" for path, reason in self.skipped),
            *(
                f"Exported: {e.source.name} \u2192 {e.destination.name} ({size_text(e.file_size)})"
                for e in self.exported
            ),
        ]


class BatchExporter(QObject):
    """Encodes a planned batch on its own pool thread. Signals (queued to the GUI thread):
    ``fileStarted(index, total, name)``, ``progressed(permille)`` (overall), ``finished(BatchSummary)``."""

    fileStarted = Signal(int, int, str)
    progressed = Signal(int)
    finished = Signal(object)

    def __init__(self, weights_dir=None, parent: QObject | None = None):
        super().__init__(parent)
        self.weights_dir = weights_dir
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._cancel = False  # written by the GUI thread, read by the pool's

    def start(
        self,
        items: list[BatchItem],
        output_folder: Path,
        options: ExportOptions,
        *,
        overwrite: bool,
        skipped: Iterable[tuple[Path, str]] = (),
        failed: Iterable[tuple[Path, str]] = (),
    ) -> None:
        """``skipped``, ``failed``: files the plan already left out, with why (for the summary)."""
        self._cancel = False
        known = (list(skipped), list(failed))
        self._pool.start(lambda: self._run(list(items), Path(output_folder), options, overwrite, *known))

    def cancel(self) -> None:
        self._cancel = True

    def shutdown(self) -> None:
        self._cancel = True
        self._pool.waitForDone()

    def _cancelled(self) -> bool:
        return self._cancel

    def _run(
        self,
        items: list[BatchItem],
        output_folder: Path,
        options: ExportOptions,
        overwrite: bool,
        skipped: list[tuple[Path, str]],
        failed: list[tuple[Path, str]],
    ) -> None:
        summary = BatchSummary(output_folder, len(items) + len(skipped) + len(failed), skipped=skipped, failed=failed)
        total = len(items)
        for index, item in enumerate(items):
            if self._cancel:
                summary.cancelled, summary.not_exported = True, total - index
                break
            self.fileStarted.emit(index, total, item.source.name)
            self.progressed.emit(1000 * index // total)
            try:
                self._export_one(index, total, item, options, overwrite, summary)
            except Cancelled:
                summary.cancelled, summary.not_exported = True, total - index
                break
            except Exception as exc:  # noqa: BLE001 -- a thread boundary: a failure is a reason in the summary
                summary.failed.append((item.source, error_text(exc)))
        self.progressed.emit(1000)
        self.finished.emit(summary)

    def _export_one(
        self, index: int, total: int, item: BatchItem, options: ExportOptions, overwrite: bool, summary: BatchSummary
    ) -> None:
        """One file by the batch engine's per-photo path (``codec_bridge.convert_photo``: what
        ``hyperthumb convert`` runs for each photo), in the codec service."""
        if item.destination.exists() and not overwrite:
            summary.skipped.append((item.source, f"{item.destination.name} already exists"))
            return
        if same_file(item.source, item.destination):
            summary.failed.append((item.source, f"the destination is the source photo itself: {item.destination.name}"))
            return

        def progress(done: int, count: int) -> None:
            self.progressed.emit(int(1000 * (index + done / count) / total))

        result = codec_bridge.convert_photo(
            item.source,
            item.destination,
            self.weights_dir,
            rate=options.rate,
            strip_gps=options.strip_gps,
            keep_exif=options.keep_exif,
            force=overwrite,
            progress=progress,
            cancelled=self._cancelled,
        )
        if result["status"] == "done":
            size = (result["width"], result["height"])
            summary.exported.append(
                Exported(item.source, item.destination, result["bytes_out"], size, list(result.get("notes", [])))
            )
        elif result["status"] == "skipped":
            summary.skipped.append((item.source, result.get("reason") or "skipped"))
        else:
            summary.failed.append((item.source, result.get("reason") or "failed"))


# --------------------------------------------------------------------------- questions (tests replace these)


class BatchSettingsDialog(QDialog):
    """Where to put the HyperThumbnails of a folder, and at what rate."""

    def __init__(
        self, folder: Path, count: int, presets: dict[str, float], parent: QWidget | None = None, left_out: str = ""
    ):
        """``count``: the images that will be encoded; ``left_out``: which others are skipped (words)."""
        super().__init__(parent)
        self.setWindowTitle("Export Folder as HyperThumbnails")
        self.presets = presets
        self.output_edit = QLineEdit(str(save_folder_for(folder)))
        self.output_edit.setMinimumWidth(360)
        browse = QPushButton("Browse\u2026")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.output_edit, 1)
        row.addWidget(browse)
        self.quality = QComboBox()
        for name, _ in sorted(presets.items(), key=lambda item: item[1]):
            self.quality.addItem(name.title(), name)
        self.quality.setCurrentIndex(max(0, self.quality.findData("MEDIUM")))
        self.keep_exif = QCheckBox("Keep EXIF metadata (camera, date, \u2026)", checked=True)
        self.strip_gps = QCheckBox("Strip GPS location")
        self.keep_exif.toggled.connect(self.strip_gps.setEnabled)
        form = QFormLayout()
        form.addRow("Output folder:", row)
        form.addRow("Quality:", self.quality)
        form.addRow("Metadata:", self.keep_exif)
        form.addRow("", self.strip_gps)
        buttons = QDialogButtonBox()
        buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole).setDefault(True)
        buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        images = "1 image" if count == 1 else f"{count} images"
        self.count_label = QLabel(
            f"<b>{escape(str(folder))}</b> \u2014 {images} to export" + (f"; {escape(left_out)}." if left_out else ".")
        )
        self.count_label.setWordWrap(True)
        layout.addWidget(self.count_label)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text())
        if chosen:
            self.output_edit.setText(chosen)

    def settings(self) -> tuple[Path, ExportOptions]:
        keep = self.keep_exif.isChecked()
        rate = self.presets[self.quality.currentData()]
        options = ExportOptions(rate, keep, keep and self.strip_gps.isChecked())
        return Path(self.output_edit.text().strip()).expanduser(), options


def choose_batch_settings(
    parent: QWidget, folder: Path, count: int, left_out: str = ""
) -> tuple[Path, ExportOptions] | None:
    """The output folder and options, or None if the user cancelled. ``count``: the images to
    encode; ``left_out``: the words saying which others are skipped."""
    dialog = BatchSettingsDialog(folder, count, codec_bridge.rate_presets(), parent, left_out)
    return dialog.settings() if dialog.exec() == QDialog.DialogCode.Accepted else None


def ask_existing_outputs(parent: QWidget, existing: list[BatchItem], total: int) -> str:
    """ "overwrite", "skip" or "cancel": what to do with outputs that already exist (asked once)."""
    box = QMessageBox(
        QMessageBox.Icon.Question,
        "Existing files",
        f"{len(existing)} of the {total} files to write already exist in {existing[0].destination.parent}.",
        parent=parent,
    )
    names = [item.destination.name for item in existing]
    box.setInformativeText(", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else ""))
    overwrite = box.addButton("Overwrite All", QMessageBox.ButtonRole.DestructiveRole)
    skip = box.addButton("Skip Existing", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(skip)
    box.exec()
    return {overwrite: "overwrite", skip: "skip"}.get(box.clickedButton(), "cancel")


# --------------------------------------------------------------------------- the run


class BatchProgressDialog(QDialog):
    """Overall progress, the file being encoded, and Cancel."""

    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export Folder")  # short: a title bar cuts long ones; the label names the file
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.label = QLabel("Preparing\u2026")
        self.label.setMinimumWidth(380)
        self.bar = QProgressBar(minimum=0, maximum=1000)
        self.bar.setFormat("%p%")
        self.time_label = QLabel()  # "about 40 s left", once there is enough progress to tell
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.time_label)
        layout.addLayout(row)

    def reject(self) -> None:
        """Cancel or Escape: ask the run to stop; the dialog closes when it has."""
        self.cancel_button.setEnabled(False)
        self.label.setText("Cancelling after the encoder's next step\u2026")
        self.cancelRequested.emit()


class BatchExport(QObject):
    """One run: the progress dialog, the worker, and the summary at the end.
    Signal: ``finished(BatchSummary)``; ``summary_box`` is the (non-blocking) summary shown."""

    finished = Signal(object)

    def __init__(
        self,
        window: QWidget,
        items: list[BatchItem],
        output_folder: Path,
        options: ExportOptions,
        *,
        overwrite: bool,
        weights_dir=None,
        skipped: Iterable[tuple[Path, str]] = (),
        failed: Iterable[tuple[Path, str]] = (),
    ):
        """``skipped``, ``failed``: files the plan left out, with why (they are in the summary)."""
        super().__init__(window)
        self.window = window
        self.summary: BatchSummary | None = None
        self.summary_box: QMessageBox | None = None
        self.dialog = BatchProgressDialog(window)
        self.worker = BatchExporter(weights_dir, self)
        self.dialog.cancelRequested.connect(self.worker.cancel)
        self.worker.fileStarted.connect(self._file_started)
        self.worker.progressed.connect(self._progressed)
        self.worker.finished.connect(self._finished)
        QCoreApplication.instance().aboutToQuit.connect(self.worker.shutdown)
        self.dialog.label.setText(
            f"Exporting {len(items)} file{'s' if len(items) != 1 else ''} to {output_folder.name}\u2026"
        )
        self.dialog.show()
        self.time_left = TimeLeft()
        self.time_left.start()
        self.worker.start(items, output_folder, options, overwrite=overwrite, skipped=skipped, failed=failed)

    def cancel(self) -> None:
        self.dialog.reject()

    def _progressed(self, permille: int) -> None:
        self.dialog.bar.setValue(permille)
        self.dialog.time_label.setText(self.time_left.update(permille / 1000))

    def _file_started(self, index: int, total: int, name: str) -> None:
        if self.dialog.cancel_button.isEnabled():
            self.dialog.label.setText(f"Exporting {index + 1} of {total}: {name}")

    def _finished(self, summary: BatchSummary) -> None:
        try:
            QCoreApplication.instance().aboutToQuit.disconnect(self.worker.shutdown)
        except (RuntimeError, TypeError):
            pass
        self.summary = summary
        self.dialog.hide()
        self.dialog.deleteLater()
        self.summary_box = show_summary(self.window, summary)
        if isinstance(self.window, QMainWindow):
            self.window.statusBar().showMessage(f"Export folder: {summary.headline()}", 15000)
        self.finished.emit(summary)


def show_summary(parent: QWidget, summary: BatchSummary) -> QMessageBox:
    """The summary as a message box, opened without blocking."""
    icon = QMessageBox.Icon.Warning if summary.failed else QMessageBox.Icon.Information
    box = QMessageBox(icon, "Export Folder", summary.headline(), parent=parent)
    lines = summary.lines()
    shown = lines[:SUMMARY_LINES] + (
        [f"\u2026 and {len(lines) - SUMMARY_LINES} more"] if len(lines) > SUMMARY_LINES else []
    )
    box.setInformativeText("\n".join([f"Output folder: {summary.output_folder}", *shown]))
    if len(lines) > SUMMARY_LINES:
        box.setDetailedText("\n".join(lines))
    box.setStyleSheet("QLabel#qt_msgbox_informativelabel { min-width: 520px; }")  # file names on one line
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def sort_sources(sources: list[Path]) -> tuple[list[Path], list[tuple[Path, str]], list[tuple[Path, str]]]:
    """(to encode, skipped, failed): HyperThumbnails are skipped, files that are not readable images
    fail, each with its reason. Reads headers only."""
    todo, skipped, failed = [], [], []
    for path in sources:
        try:
            hyper = codec_bridge.is_hyperthumbnail(path)
        except codec_bridge.CodecError as exc:
            failed.append((path, error_text(exc)))
            continue
        if hyper:
            skipped.append((path, "already a HyperThumbnail"))
        else:
            todo.append(path)
    return todo, skipped, failed


def start_folder_export(window: QMainWindow, folder: Path | None, weights_dir=None) -> BatchExport | None:
    """Ask for the settings (and, once, about existing outputs), then run the batch. Every count the
    questions and the progress show is of the files that will be written: HyperThumbnails, files
    that are not readable images and (when the user says skip) existing outputs are left out before."""
    if folder is None:
        window.statusBar().showMessage("Open an image first: its folder is the one exported.", 5000)
        return None
    sources = folder_images(folder)
    if not sources:
        window.statusBar().showMessage(f"There are no images in {folder}.", 5000)
        return None
    todo, skipped, failed = sort_sources(sources)
    if not todo:
        window.statusBar().showMessage(f"Nothing to export in {folder}: {left_out_text(skipped, failed)}.", 8000)
        return None
    settings = choose_batch_settings(window, folder, len(todo), left_out=left_out_text(skipped, failed))
    if settings is None:
        return None
    output_folder, options = settings
    if not output_folder.is_dir():
        QMessageBox.warning(window, "Export Folder", f"The output folder does not exist: {output_folder}")
        return None
    earlier_outputs = [p for p, _ in skipped if p.name.lower().endswith(HYPER_SUFFIX)]
    items = plan_batch(todo, output_folder, replaceable=earlier_outputs)
    existing = [item for item in items if item.destination.exists()]
    overwrite = False
    if existing:
        answer = ask_existing_outputs(window, existing, len(items))
        if answer == "cancel":
            return None
        overwrite = answer == "overwrite"
        if not overwrite:
            skipped += [(item.source, f"{item.destination.name} already exists") for item in existing]
            items = [item for item in items if item not in existing]
    return BatchExport(
        window,
        items,
        output_folder,
        options,
        overwrite=overwrite,
        weights_dir=weights_dir,
        skipped=skipped,
        failed=failed,
    )


def left_out_text(skipped: list[tuple[Path, str]], failed: list[tuple[Path, str]]) -> str:
    """ "2 already HyperThumbnails and 1 unreadable file are skipped" ('' when none is)."""
    parts = []
    if skipped:
        parts.append(
            f"{len(skipped)} already a HyperThumbnail"
            if len(skipped) == 1
            else f"{len(skipped)} already HyperThumbnails"
        )
    if failed:
        parts.append("1 unreadable file" if len(failed) == 1 else f"{len(failed)} unreadable files")
    if not parts:
        return ""
    return " and ".join(parts) + (" is" if len(skipped) + len(failed) == 1 else " are") + " skipped"
