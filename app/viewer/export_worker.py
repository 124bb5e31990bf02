"""Exports one photo as a HyperThumbnail off the GUI thread: size estimates, then the export.

The GUI thread only asks (``request_estimate``, ``export``, ``cancel``) and receives queued
signals; the worker's one pool thread waits on the codec service, where loading the photo (for
a HyperThumbnail source: reconstructing it) and the encoder run. The loaded photo stays in the
service between estimates and the export (the worker holds its handle), so a HyperThumbnail is
reconstructed once per dialog, not per question, and its pixels never cross to the viewer.

Files: the source is only read. The output is written by the codec to a hidden temporary file
and renamed into place; a cancel, at any point up to that rename, leaves no file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from app.codec.errors import user_message
from app.viewer import codec_bridge
from app.viewer.codec_bridge import Cancelled, CodecError
from app.viewer.save_folder import save_folder_for

# Photo pixels the size estimate encodes (None: the codec's default, about a megapixel); tests
# set it small so that their tiny photos are sampled rather than encoded whole.
ESTIMATE_SAMPLE_PIXELS: int | None = None

HYPER_SUFFIX = ".hyper.jpg"


def default_destination(source: Path, folder: Path | None = None) -> Path:
    """``<stem>.hyper.jpg`` in ``folder``, else beside the source (or in the user's Pictures folder
    when the source is a bundled sample or its folder is not writable: ``save_folder_for``)."""
    return (folder or save_folder_for(source.parent)) / f"{source.stem}{HYPER_SUFFIX}"


@dataclass(frozen=True)
class ExportOptions:
    rate: float = 0.5
    keep_exif: bool = True
    strip_gps: bool = False


@dataclass(frozen=True)
class Exported:
    """A finished export: what was written and how large it is."""

    source: Path
    destination: Path
    file_size: int
    full_size: tuple[int, int]  # the photo's (width, height), stored orientation
    notes: list[str] = field(default_factory=list)

    @property
    def bits_per_pixel(self) -> float:
        return self.file_size * 8 / (self.full_size[0] * self.full_size[1])


def error_text(exc: BaseException) -> str:
    """One sentence for any failure of loading or encoding (a thread boundary: never a traceback)."""
    return user_message(exc, "the encoder")


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and a.samefile(b))
    except OSError:
        return False


def export_photo(
    photo,
    source: Path,
    destination: Path,
    options: ExportOptions,
    *,
    force: bool,
    weights_dir=None,
    progress=None,
    cancelled=None,
) -> Exported:
    """Encode a loaded photo to ``destination`` (raises ``Cancelled`` or ``CodecError``)."""
    if same_file(source, destination):
        raise CodecError(f"the destination is the source photo itself: {destination.name}; choose another name")
    result = codec_bridge.encode_photo(
        photo,
        destination,
        weights_dir,
        rate=options.rate,
        strip_gps=options.strip_gps,
        keep_exif=options.keep_exif,
        force=force,
        progress=progress,
        cancelled=cancelled,
    )
    return Exported(source, Path(result.path), result.file_size, tuple(result.full_size), list(result.notes))


def _file_key(path: Path) -> tuple:
    try:
        stat = path.stat()
    except OSError as exc:
        raise CodecError(f"cannot read {path}: {exc.strerror or exc}") from None
    return (stat.st_mtime_ns, stat.st_size)


class ExportWorker(QObject):
    """One source photo's estimates and export on a worker thread.

    Signals (queued to the GUI thread): ``photoLoaded(width, height, notes)`` (displayed size),
    ``estimated(request, SizeEstimate)``,
    ``estimateFailed(request, message)``, ``progressed(percent, what)``, ``exported(Exported)``,
    ``exportCancelled()``, ``exportFailed(message)``.
    """

    photoLoaded = Signal(int, int, object)
    estimated = Signal(int, object)
    estimateFailed = Signal(int, str)
    progressed = Signal(int, str)
    exported = Signal(object)
    exportCancelled = Signal()
    exportFailed = Signal(str)

    def __init__(
        self, source: Path, weights_dir=None, parent: QObject | None = None, *, hyperthumbnail: bool | None = None
    ):
        super().__init__(parent)
        self.source = Path(source)
        self.hyperthumbnail = hyperthumbnail  # known from the open document, or None: read when needed
        self.weights_dir = weights_dir
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        # Written by the GUI thread, read by the pool's:
        self._estimate_request = 0
        self._cancel_export = False
        self._closing = False
        # Touched only on the pool's thread:
        self._photo = None
        self._photo_key: tuple | None = None

    # ------------------------------------------------------------------ GUI thread

    def request_estimate(self, options: ExportOptions) -> int:
        """Ask for the size of ``options``' file; an older estimate not yet started is dropped."""
        self._estimate_request += 1
        request = self._estimate_request
        self._pool.start(lambda: self._estimate(request, options))
        return request

    def export(self, destination: Path, options: ExportOptions, *, overwrite: bool) -> None:
        """Write the HyperThumbnail; ``overwrite``: the user agreed to replace ``destination``."""
        self._cancel_export = False
        self._pool.start(lambda: self._export(Path(destination), options, overwrite))

    def cancel(self) -> None:
        """Stop the export at the encoder's next tile (or before the file is renamed into place)."""
        self._cancel_export = True

    def shutdown(self) -> None:
        """Stop everything and wait for the pool's thread; the loaded photo is released."""
        self._closing = True
        self._cancel_export = True
        self._pool.clear()
        self._pool.waitForDone()
        self._release_photo()

    # ------------------------------------------------------------------ pool thread

    def _photo_for(self, progress=None, cancelled=None):
        """The source photo, loaded once (again only if the file changed since)."""
        key = _file_key(self.source)
        if not self._photo_ready(key):
            self._release_photo()
            photo = codec_bridge.load_photo(self.source, self.weights_dir, progress=progress, cancelled=cancelled)
            self._photo, self._photo_key = photo, key
            self.photoLoaded.emit(*codec_bridge.display_size(*photo.size, photo.orientation), list(photo.notes))
        return self._photo

    def _photo_ready(self, key: tuple) -> bool:
        """Loaded, from this version of the file, and still held by the codec service."""
        return self._photo is not None and key == self._photo_key and codec_bridge.is_loaded(self._photo)

    def _release_photo(self) -> None:
        if self._photo is not None:
            self._photo.release()
        self._photo = self._photo_key = None

    def _estimate(self, request: int, options: ExportOptions) -> None:
        stale = lambda: self._closing or request != self._estimate_request
        if stale():
            return
        try:
            photo = self._photo_for(cancelled=lambda: self._closing)
            estimate = codec_bridge.estimate_size(
                photo,
                options.rate,
                self.weights_dir,
                strip_gps=options.strip_gps,
                keep_exif=options.keep_exif,
                sample_pixels=ESTIMATE_SAMPLE_PIXELS,
                cancelled=stale,
            )
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 -- a thread boundary: any failure becomes a message
            self.estimateFailed.emit(request, error_text(exc))
            return
        self.estimated.emit(request, estimate)

    def _export(self, destination: Path, options: ExportOptions, overwrite: bool) -> None:
        cancelled = lambda: self._closing or self._cancel_export
        try:
            loaded = self._photo_ready(_file_key(self.source))
            hyper = (
                self.hyperthumbnail if self.hyperthumbnail is not None else codec_bridge.is_hyperthumbnail(self.source)
            )
            reconstruct = not loaded and hyper
            share = 50 if reconstruct else 0  # the reconstruction's part of the bar
            self.progressed.emit(0, "Reconstructing the photo\u2026" if reconstruct else "Reading the photo\u2026")

            def loading(done: int, total: int) -> None:
                self.progressed.emit(share * done // total, "Reconstructing the photo\u2026")

            def encoding(done: int, total: int) -> None:
                self.progressed.emit(share + (99 - share) * done // total, "Encoding\u2026")

            photo = self._photo_for(progress=loading, cancelled=cancelled)
            if cancelled():
                raise Cancelled()
            self.progressed.emit(share, "Encoding\u2026")
            exported = export_photo(
                photo,
                self.source,
                destination,
                options,
                force=overwrite,
                weights_dir=self.weights_dir,
                progress=encoding,
                cancelled=cancelled,
            )
        except Cancelled:
            self.exportCancelled.emit()
            return
        except Exception as exc:  # noqa: BLE001 -- a thread boundary: any failure becomes a message
            self.exportFailed.emit(error_text(exc))
            return
        self.progressed.emit(100, "Done")
        self.exported.emit(exported)
