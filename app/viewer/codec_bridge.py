"""The viewer's only door into ``app.codec``: everything else in the viewer imports from here.

Opening goes through ``app.codec.files.document`` (numpy and Pillow only), so showing a file never
waits for torch. Everything that needs torch (the weights check, decoders, the export encoder)
runs in the codec service, a child process started after the first paint (``codec_service``,
``service_client``): the viewer's process never imports torch, whose import alone holds the
GIL for a quarter of a second. The functions marked "blocks" wait for the service: call them
on a worker thread. Decoders and loaded photos live in the service; the viewer holds handles.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from app.codec.errors import CodecError, FormatError
from app.codec.files.document import ImageDocument, open_image
from app.codec.files.exif_tags import exif_ifds
from app.codec.files.imageio import decoded_reduced, image_orientation, open_pil, to_rgb
from app.codec.files.jpeg_orientation import write_orientation
from app.codec.files.orientation import display_box_to_stored, display_size, to_display
from app.codec.files.payload import DETAIL_KIND, PayloadError, unpack_records
from app.codec.files.presets import RATE_PRESETS
from app.codec.files.ratings import COLOURS, Labels, holds_xmp, read_labels, sidecar_path, write_labels
from app.codec.files.raw import raw_of
from app.codec.files.reader import read_marker
from app.codec.files.tiling import Box, CancelFn, Cancelled
from app.viewer.service_client import ServiceClient, ServiceStopped

__all__ = [
    "COLOURS", "RATE_PRESETS", "Box", "Cancelled", "CodecError", "DocumentDecoder", "Encoded", "ImageDocument",
    "Labels", "PhotoHandle", "holds_xmp", "read_labels", "sidecar_path", "write_labels",
    "ServiceStopped", "StripPreview", "display_box_to_stored", "display_size", "encode_photo", "estimate_size",
    "exif_tags", "has_detail_layer", "is_loaded", "load_photo", "open_decoder", "open_image", "preview_scale", "quantization_tables",
    "rate_presets", "service", "stop_service", "strip_preview", "to_display", "weights_status", "write_orientation",
]  # fmt: skip


# --------------------------------------------------------------------------- the service

_service = ServiceClient()


def service() -> ServiceClient:
    """The codec service client this process uses (one child process for every window)."""
    return _service


def stop_service() -> None:
    """End the codec service (the application is quitting); a later request starts it again."""
    _service.stop()


def weights_status(weights_dir=None) -> str | None:
    """None when trained weights are installed (in ``weights_dir``, default the project's), else one
    sentence saying why not. Blocks (the service's first request also waits for its torch import);
    once the weights are usable the service goes on to choose its decoder runtime."""
    return _service.call("weights_status", weights_dir=_path(weights_dir))


def _path(path) -> str | None:
    return None if path is None else str(path)


def preview_scale(document: ImageDocument) -> float:
    """How many original pixels one preview pixel covers (the marker's scale for a HyperThumbnail).

    A HyperThumbnail's original is the thumbnail scaled by exactly ``scale`` and cropped at the
    top-left, so the ratio of sizes would be slightly off when the size is not a multiple of it.
    """
    if document.marker is not None:
        return float(document.marker.scale)
    return document.full_size[0] / document.preview.shape[1]


class DocumentDecoder:
    """One HyperThumbnail's decoder as the viewer sees it: stored-coordinate boxes in, uint8 RGB out.

    Making one blocks: the service loads the weights the file's marker names (once per weights
    file) and prepares the file's decoder inputs; the decoder then lives in the service until
    ``close`` (or until this object is collected).
    """

    def __init__(self, document: ImageDocument, weights_dir: str | Path | None = None):
        if document.thumbnail is None:
            raise CodecError(f"not a HyperThumbnail: {document.path.name} is a plain image")
        thumbnail = document.thumbnail
        empty = np.empty((0, 0, 3), np.uint8)  # the pixels travel as raw bytes; the service needs no preview
        answer = _service.call(
            "open_decoder",
            weights_dir=_path(weights_dir),
            thumbnail=dataclasses.replace(thumbnail, ycbcr=empty, rgb=empty),
            payload=thumbnail.ycbcr,
        )
        self.generation = _service.answered_by()
        self.number: int = answer["decoder"]
        self.device: str = answer["device"]  # "cpu", "cuda" or "mps"
        self.runtime: str = answer["runtime"]  # e.g. "onnx-fp32": shown in the status bar with the device
        self.detail: bool = answer.get("detail", False)  # the file's detail layer is decoded (a second pass)
        self.notes: list[str] = answer.get("notes", [])  # e.g. why the file's detail layer is not used
        self.last_seconds = 0.0  # how long the service's decoder took for the last ``decode``
        self._finalizer = weakref.finalize(self, _service.post, self.generation, "close_decoder", decoder=self.number)

    def decode(
        self, box: Box, cancelled: CancelFn = None, *, tile: int | None = None, detail: bool = True
    ) -> np.ndarray:
        """The full-resolution pixels of ``box`` (stored orientation); raises ``Cancelled`` (at once:
        the service stops at its next tile) or ``ServiceStopped``. Blocks. ``detail=False``: the
        base reconstruction, without the file's detail layer."""
        pixels, self.last_seconds = _service.call(
            "decode",
            decoder=self.number,
            box=(box.y0, box.y1, box.x0, box.x1),
            tile=tile,
            cancelled=cancelled,
            abandon=True,
            generation=self.generation,
            detail=detail,
        )
        return pixels

    def close(self) -> None:
        """Free the service's decoder now."""
        self._finalizer()


def has_detail_layer(document: ImageDocument) -> bool:
    """Whether a HyperThumbnail carries a detail layer (read from its payload; no torch)."""
    payload = None if document.thumbnail is None else document.thumbnail.payload
    if not payload:
        return False
    try:
        return DETAIL_KIND in unpack_records(payload)
    except PayloadError:
        return False


def open_decoder(document: ImageDocument, weights_dir: str | Path | None = None) -> DocumentDecoder:
    """A decoder for ``document``; raises ``CodecError`` (e.g. its weights are not installed). Blocks."""
    return DocumentDecoder(document, weights_dir)


# --------------------------------------------------------------------------- thumbnail strip and metadata


@dataclass(frozen=True)
class StripPreview:
    """A small picture of a file for the thumbnail strip."""

    rgb: np.ndarray  # uint8 HxWx3, DISPLAYED orientation, longest side <= the size asked for
    hyperthumbnail: bool
    full_size: tuple[int, int]  # displayed (width, height) of the photo (the original for a HyperThumbnail)
    icc_profile: bytes | None = None  # the file's colour profile: the strip converts it to sRGB like the view


def strip_preview(path: str | Path, size: int) -> StripPreview:
    """A picture of ``path`` at most ``size`` pixels a side; raises ``CodecError`` for a bad file.

    Cheap even for big photos: a JPEG (a HyperThumbnail is one: its preview IS its thumbnail) is
    decoded at 1/2..1/8 scale by libjpeg's DCT scaling; other formats are decoded whole and made
    RGB by the codec's own conversion (alpha over white, 16-bit and float scaled), like an open.
    """
    path = Path(path)
    try:
        marker = read_marker(path)
    except FormatError:
        marker = None  # a damaged marker: still a valid JPEG, shown as a plain image
    with open_pil(path) as im:
        raw = raw_of(im)  # a RAW file: ``im`` is its embedded preview, smaller than the photo
        stored = (marker.width, marker.height) if marker is not None else raw.full_size if raw else im.size
        if im.format == "JPEG":
            im.draft("RGB", (size, size))  # keeps the image at least ``size`` on its longer side
        # in its own mode, a big PNG a band at a time: never a full-size RGB copy; a truncated file: its readable part
        small, _ = decoded_reduced(im, str(path), max(1, max(im.size) // (2 * size)), partial_ok=True)
        orientation = image_orientation(im)
        icc = im.info.get("icc_profile") or None
        picture = Image.fromarray(to_rgb(small, str(path))[0])
    picture.thumbnail((size, size), Image.Resampling.BILINEAR)
    rgb = np.ascontiguousarray(to_display(np.asarray(picture), orientation))
    return StripPreview(rgb, marker is not None, display_size(*stored, orientation), icc)


def exif_tags(exif: bytes | None) -> dict[str, dict[int, object]]:
    """An EXIF block (``ImageDocument.exif``) as IFD dicts ("0th", "Exif", "GPS"...) in piexif's
    value shapes; empty when there is none or it cannot be read. The bounded reader
    (``exif_tags.exif_ifds``): piexif trusts counts and can build gigabytes from a kilobyte."""
    return exif_ifds(exif)


def quantization_tables(document: ImageDocument) -> tuple[list[list[int]], list[list[int]]] | None:
    """A HyperThumbnail's luma and chroma tables as 8x8 grids (natural row-major order); None
    for a plain image."""
    thumbnail = document.thumbnail
    if thumbnail is None:
        return None
    grids = [
        np.asarray(t, dtype=np.int64).reshape(8, 8).tolist() for t in (thumbnail.luma_table, thumbnail.chroma_table)
    ]
    return grids[0], grids[1]


# --------------------------------------------------------------------------- export
# All of these but ``is_hyperthumbnail`` and ``rate_presets`` block on the service: call them on a worker thread.


def is_hyperthumbnail(path: str | Path) -> bool:
    """Whether ``path`` carries the HyperThumbnail marker (reads the header only; no torch);
    raises ``CodecError`` for a file that is not a readable image."""
    return read_marker(path) is not None


def rate_presets() -> dict[str, float]:
    """The encoder's named rates, smallest file first (``app.codec.files.presets``)."""
    return dict(RATE_PRESETS)


class PhotoHandle:
    """A photo loaded for export, kept in the service (a 6K photo is 75 MB: it never travels).

    ``size`` is its stored (width, height); collected or ``release``d, the service drops it.
    """

    def __init__(self, answer: dict, generation: int):
        self.generation = generation
        self.number: int = answer["photo"]
        self.size: tuple[int, int] = tuple(answer["size"])
        self.orientation: int = answer["orientation"]
        self.notes: list[str] = list(answer["notes"])
        self._finalizer = weakref.finalize(self, _service.post, generation, "release_photo", photo=self.number)

    def release(self) -> None:
        self._finalizer()


def is_loaded(photo: PhotoHandle) -> bool:
    """Whether the service still holds ``photo`` (not after a restart: load it again)."""
    return photo._finalizer.alive and _service.is_running(photo.generation)


@dataclass(frozen=True)
class Encoded:
    """What ``encode_photo`` wrote."""

    path: Path
    file_size: int
    full_size: tuple[int, int]  # (width, height), stored orientation
    notes: list[str]


def convert_photo(
    source: str | Path,
    destination: str | Path,
    weights_dir: str | Path | None = None,
    *,
    rate: float,
    strip_gps: bool = False,
    keep_exif: bool = True,
    force: bool = False,
    progress=None,
    cancelled: CancelFn = None,
) -> dict:
    """One photo of a batch (File › Export Folder) by the batch engine's own per-photo path
    (``hyperthumb convert``'s ``convert_one``, run in the service): the result as a dict, ``status``
    "done" (``bytes_out``, ``width``, ``height``, ``notes``), "skipped" (a HyperThumbnail) or
    "failed" (``reason``); raises ``Cancelled`` once no file was written. Blocks."""
    return _service.call(
        "convert_photo",
        source=str(source),
        destination=str(destination),
        settings={
            "rate": rate,
            "effort": "default",
            "strip_gps": strip_gps,
            "keep_exif": keep_exif,
            "weights_dir": _path(weights_dir),
        },
        force=force,
        progress=progress,
        cancelled=cancelled,
    )


def load_photo(
    path: str | Path, weights_dir: str | Path | None = None, *, progress=None, cancelled: CancelFn = None
) -> PhotoHandle:
    """The photo to export, as a handle for ``estimate_size`` and ``encode_photo``: a plain
    image's pixels, or a HyperThumbnail's full-resolution reconstruction; raises ``CodecError``. Blocks."""
    answer = _service.call(
        "load_photo", weights_dir=_path(weights_dir), path=str(path), progress=progress, cancelled=cancelled
    )
    return PhotoHandle(answer, _service.answered_by())


def estimate_size(
    photo: PhotoHandle,
    rate: float,
    weights_dir: str | Path | None = None,
    *,
    strip_gps: bool = False,
    keep_exif: bool = True,
    sample_pixels: int | None = None,
    cancelled: CancelFn = None,
):
    """About how large ``photo``'s HyperThumbnail will be (a ``SizeEstimate``: ``bytes``, ``exact``,
    ``sampled``). Blocks; a cancel returns at once."""
    return _service.call(
        "estimate_size",
        weights_dir=_path(weights_dir),
        photo=photo.number,
        rate=rate,
        strip_gps=strip_gps,
        keep_exif=keep_exif,
        sample_pixels=sample_pixels,
        cancelled=cancelled,
        abandon=True,
        generation=photo.generation,
    )


def encode_photo(
    photo: PhotoHandle,
    destination: str | Path,
    weights_dir: str | Path | None = None,
    *,
    rate: float,
    strip_gps: bool = False,
    keep_exif: bool = True,
    force: bool = False,
    progress=None,
    cancelled: CancelFn = None,
) -> Encoded:
    """Write ``photo``'s HyperThumbnail atomically; raises ``Cancelled`` (once the service confirms
    that no file was written), ``OutputExistsError`` (unless ``force``) or another ``CodecError``. Blocks."""
    answer = _service.call(
        "encode_photo",
        weights_dir=_path(weights_dir),
        photo=photo.number,
        destination=str(destination),
        rate=rate,
        strip_gps=strip_gps,
        keep_exif=keep_exif,
        force=force,
        progress=progress,
        cancelled=cancelled,
        generation=photo.generation,
    )
    return Encoded(Path(answer["path"]), answer["file_size"], tuple(answer["full_size"]), answer["notes"])
