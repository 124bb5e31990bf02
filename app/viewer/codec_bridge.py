"""The viewer's only door into ``app.codec``: everything else in the viewer imports from here.

Opening goes through ``app.codec.document`` (numpy and Pillow only), so showing a file never
waits for torch; the weights check and the decoder import torch lazily, the decoder only on the
reconstruction worker thread, so the GUI thread never pays for loading a network.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import piexif
from PIL import Image

from app.codec.document import ImageDocument, open_image
from app.codec.errors import CodecError, FormatError
from app.codec.fileformat import read_marker
from app.codec.imageio import (
    ORIENTATION_TAG,
    decode_pixels,
    load_image,
    open_pil,
    orientation_of,
)
from app.codec.orientation import display_box_to_stored, display_size, to_display
from app.codec.tiling import Box, CancelFn, Cancelled

__all__ = [
    "Box", "Cancelled", "CodecError", "DocumentDecoder", "ImageDocument", "StripPreview", "display_box_to_stored",
    "display_size", "exif_tags", "open_decoder", "open_image", "preview_scale", "quantization_tables",
    "strip_preview", "weights_status",
]  # fmt: skip


def weights_status(weights_dir=None) -> str | None:
    """None when trained weights are installed (in ``weights_dir``, default the project's), else one
    sentence saying why not."""
    # imports torch: asked for after the window shows
    from app.codec.weights import installed_weights_status

    return installed_weights_status(weights_dir)


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

    Making one loads the weights the file's marker names (once per weights file and process) and
    prepares the file's decoder inputs, so it is made on the worker thread, once per document.
    """

    def __init__(self, document: ImageDocument, weights_dir: str | Path | None = None):
        codec = _codec(weights_dir)
        self.device: str = codec.device.type  # "cpu", "cuda" or "mps": shown in the status bar
        self._reconstructor = codec.reconstructor(document)

    def decode(self, box: Box, cancelled: CancelFn = None) -> np.ndarray:
        """The full-resolution pixels of ``box`` (stored orientation); raises ``Cancelled``."""
        return self._reconstructor.decode(box, cancelled=cancelled)


def open_decoder(document: ImageDocument, weights_dir: str | Path | None = None) -> DocumentDecoder:
    """A decoder for ``document``; raises ``CodecError`` (e.g. its weights are not installed)."""
    return DocumentDecoder(document, weights_dir)


_codecs: dict[tuple[Path, str], object] = {}
_codecs_lock = threading.Lock()


def _codec(weights_dir: str | Path | None):
    """One ``Codec`` per weights folder (and device setting), so models load once per process."""
    from app.codec.api import Codec  # imports torch
    from app.codec.weights import weights_dir as resolve

    key = (resolve(weights_dir).resolve(), os.environ.get("HYPERTHUMB_DEVICE", ""))
    with _codecs_lock:
        if key not in _codecs:
            _codecs[key] = Codec(weights_dir=key[0])
        return _codecs[key]


# --------------------------------------------------------------------------- thumbnail strip and metadata


@dataclass(frozen=True)
class StripPreview:
    """A small picture of a file for the thumbnail strip."""

    rgb: np.ndarray  # uint8 HxWx3, DISPLAYED orientation, longest side <= the size asked for
    hyperthumbnail: bool
    full_size: tuple[int, int]  # displayed (width, height) of the photo (the original for a HyperThumbnail)


_DIRECT_MODES = {"RGB", "RGBX", "L", "P", "1", "CMYK", "YCbCr", "LAB", "HSV"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}


def strip_preview(path: str | Path, size: int) -> StripPreview:
    """A picture of ``path`` at most ``size`` pixels a side; raises ``CodecError`` for a bad file.

    Cheap even for big photos: a JPEG (a HyperThumbnail is one: its preview IS its thumbnail) is
    decoded at 1/2..1/8 scale by libjpeg's DCT scaling, and only formats whose pixels need the
    codec's careful conversion (16-bit, float) pay a full decode.
    """
    path = Path(path)
    try:
        marker = read_marker(path)
    except FormatError:
        marker = None  # a damaged marker: still a valid JPEG, shown as a plain image
    with open_pil(path) as im:
        stored = (marker.width, marker.height) if marker is not None else im.size
        if im.format == "JPEG":
            im.draft("RGB", (size, size))  # keeps the image at least ``size`` on its longer side
        decode_pixels(im, str(path))
        orientation = _orientation(im)
        if im.mode in _DIRECT_MODES or (im.mode in _ALPHA_MODES):
            picture = _over_white(im) if im.mode in _ALPHA_MODES or "transparency" in im.info else im.convert("RGB")
        else:
            picture = None  # 16-bit, 32-bit or float pixels: the codec's own conversion, below
    if picture is None:
        picture = Image.fromarray(load_image(path).rgb)
    picture.thumbnail((size, size), Image.Resampling.BILINEAR)
    rgb = np.ascontiguousarray(to_display(np.asarray(picture.convert("RGB")), orientation))
    return StripPreview(rgb, marker is not None, display_size(*stored, orientation))


def _orientation(im: Image.Image) -> int:
    exif = im.info.get("exif")
    if exif:
        return orientation_of(exif)
    value = im.getexif().get(ORIENTATION_TAG, 1)  # TIFF keeps it in its own tags
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _over_white(im: Image.Image) -> Image.Image:
    rgba = im.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def exif_tags(exif: bytes | None) -> dict[str, dict[int, object]]:
    """An EXIF block (``ImageDocument.exif``) as piexif's IFD dicts ("0th", "Exif", "GPS"...);
    empty when there is none or it cannot be parsed (metadata must never stop a photo showing)."""
    if not exif:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tags = piexif.load(exif)
    except Exception:  # noqa: BLE001 -- piexif raises anything on a damaged block: no EXIF then
        return {}
    return {name: ifd for name, ifd in tags.items() if isinstance(ifd, dict)}


def quantization_tables(document: ImageDocument) -> tuple[list[list[int]], list[list[int]]] | None:
    """A HyperThumbnail's luma and chroma tables as 8x8 grids (natural row-major order); None
    for a plain image."""
    thumbnail = document.thumbnail
    if thumbnail is None:
        return None
    grids = [np.asarray(t, dtype=np.int64).reshape(8, 8).tolist() for t in (thumbnail.luma_table, thumbnail.chroma_table)]
    return grids[0], grids[1]


# --------------------------------------------------------------------------- export
# All of these but ``is_hyperthumbnail`` import torch and run networks: call them on a worker thread.


def is_hyperthumbnail(path: str | Path) -> bool:
    """Whether ``path`` carries the HyperThumbnail marker (reads the header only; no torch);
    raises ``CodecError`` for a file that is not a readable image."""
    from app.codec.fileformat import read_marker as marker_of

    return marker_of(path) is not None


def rate_presets() -> dict[str, float]:
    """The encoder's named rates: {"LOW": 0.0, "MEDIUM": 0.5, "HIGH": 1.0}."""
    from app.codec.api import RATE_PRESETS  # imports torch

    return dict(RATE_PRESETS)


def load_photo(path: str | Path, weights_dir: str | Path | None = None, *, progress=None, cancelled: CancelFn = None):
    """The photo to export (an opaque object for ``estimate_size`` and ``encode_photo``): a plain
    image's pixels, or a HyperThumbnail's full-resolution reconstruction; raises ``CodecError``."""
    return _codec(weights_dir).load_photo(path, progress=progress, cancelled=cancelled)


def estimate_size(photo, rate: float, weights_dir: str | Path | None = None, *, strip_gps: bool = False,
                  keep_exif: bool = True, sample_pixels: int | None = None, cancelled: CancelFn = None):  # fmt: skip
    """About how large ``photo``'s HyperThumbnail will be (a ``SizeEstimate``: ``bytes``, ``exact``, ``sampled``)."""
    options = {} if sample_pixels is None else {"sample_pixels": sample_pixels}
    return _codec(weights_dir).estimate_size(photo, rate, strip_gps=strip_gps, keep_exif=keep_exif,
                                             cancelled=cancelled, **options)  # fmt: skip


def encode_photo(photo, destination: str | Path, weights_dir: str | Path | None = None, *, rate: float,
                 strip_gps: bool = False, keep_exif: bool = True, force: bool = False, progress=None,
                 cancelled: CancelFn = None):  # fmt: skip
    """Write ``photo``'s HyperThumbnail atomically (an ``EncodeResult``); raises ``Cancelled``,
    ``OutputExistsError`` (unless ``force``) or another ``CodecError``."""
    return _codec(weights_dir).encode_photo(photo, destination, rate=rate, strip_gps=strip_gps, keep_exif=keep_exif,
                                            force=force, progress=progress, cancelled=cancelled)  # fmt: skip
