"""What a viewer opens: any image, with HyperThumbnail facts when it is one (no torch).

The viewer shows the preview at once and only later, on request, runs the learned decoder;
so opening must be cheap and must never need the model. A HyperThumbnail whose marker is
damaged or from a newer format version is still a valid JPEG, so it opens as a plain image
with a note rather than failing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.codec.errors import FormatError
from app.codec.files.imageio import decode_pixels, load_image, loaded_from, open_pil, to_rgb
from app.codec.files.marker import Marker
from app.codec.files.raw import raw_of
from app.codec.files.reader import Thumbnail, marker_of, thumbnail_from

# A plain image over this many pixels is shown from a reduced preview (scaled up to its size like a
# HyperThumbnail's): every camera up to 64 MP shows its own pixels at 100%, and the viewer's
# memory stays bounded whatever the file (the pixel budget admits 256 MP).
MAX_DISPLAY_PIXELS = 64_000_000
READ_WHOLE_BYTES = 64 * 2**20  # a JPEG up to this size is read into memory once (a 20K-wide thumbnail is less)


@dataclass
class ImageDocument:
    """An opened image as the viewer needs it."""

    path: Path
    preview: np.ndarray  # uint8 HxWx3 RGB, stored orientation: the thumbnail or the image
    full_size: tuple[int, int]  # (width, height) of the ORIGINAL photo, stored orientation
    orientation: int  # EXIF orientation 1..8
    marker: Marker | None
    exif: bytes | None
    icc_profile: bytes | None
    file_size: int
    notes: list[str] = field(default_factory=list)
    thumbnail: Thumbnail | None = None  # a HyperThumbnail's decoded samples and tables, kept so
    # that reconstruction and ``info`` never read and decode the file a second time

    @property
    def is_hyperthumbnail(self) -> bool:
        return self.marker is not None

    @property
    def bits_per_pixel(self) -> float | None:
        """File bits per ORIGINAL pixel: the rate the full photo is stored at."""
        if self.marker is None:
            return None
        return self.file_size * 8 / (self.marker.width * self.marker.height)


def open_image(path: str | os.PathLike[str]) -> ImageDocument:
    """Open any image Pillow reads; raises ImageLoadError (etc.) with a one-line message.

    One parse per open: a JPEG of thumbnail size is read into memory once, its header parsed
    once (marker, tables, payload) and its pixels decoded once (YCbCr, with the RGB made from
    them); anything else is decoded once, straight from the file.
    """
    path = Path(path)
    name = str(path)
    source = _jpeg_bytes(path) or path
    notes: list[str] = []
    with open_pil(source, name) as im:
        if raw_of(im) is not None:
            return _raw_document(path, im, name)
        try:
            marker = marker_of(im, name)
            if marker is not None:
                thumb = thumbnail_from(im, marker, name)
                return ImageDocument(
                    path=path,
                    preview=thumb.rgb,
                    full_size=(marker.width, marker.height),
                    orientation=thumb.orientation,
                    marker=marker,
                    exif=thumb.exif,
                    icc_profile=thumb.icc_profile,
                    file_size=_file_size(path, source),
                    thumbnail=thumb,
                )
        except FormatError as exc:
            notes.append(f"shown as a plain image: {exc}")
        if not notes:  # a plain image, not yet touched: decode it from this parse
            # for display: a truncated file shows what it holds, a huge one a bounded preview
            loaded = loaded_from(im, name, partial_ok=True, display_pixels=MAX_DISPLAY_PIXELS)
    if notes:  # a damaged HyperThumbnail may have been half decoded as one: start again as a plain image
        loaded = load_image(source, name, display_pixels=MAX_DISPLAY_PIXELS)
    return ImageDocument(
        path=path,
        preview=loaded.rgb,
        full_size=loaded.full_size or (loaded.rgb.shape[1], loaded.rgb.shape[0]),
        orientation=loaded.orientation,
        marker=None,
        exif=loaded.exif,
        icc_profile=loaded.icc_profile,
        file_size=_file_size(path, source),
        notes=notes + loaded.notes,
    )


def _raw_document(path: Path, im, name: str) -> ImageDocument:
    """A RAW file as the viewer shows it at once: the camera's embedded preview (smaller than the
    photo, scaled up to its size like a HyperThumbnail's), the photo developed only on export."""
    source = raw_of(im)
    truncated = decode_pixels(im, name, partial_ok=True)
    rgb, _ = to_rgb(im, name)
    notes = [source.preview_note] + (["the embedded preview is truncated"] if truncated else [])
    return ImageDocument(
        path=path,
        preview=np.array(rgb, dtype=np.uint8),
        full_size=source.full_size,
        orientation=source.orientation,
        marker=None,
        exif=source.exif,
        icc_profile=None,
        file_size=path.stat().st_size,
        notes=notes,
    )


def _jpeg_bytes(path: Path) -> bytes | None:
    """The whole file when it is a JPEG small enough to be a thumbnail (read once, parsed from
    memory); None for anything else, which is then read from the file as it is decoded."""
    try:
        with open(path, "rb") as f:
            if f.read(2) != b"\xff\xd8" or os.fstat(f.fileno()).st_size > READ_WHOLE_BYTES:
                return None
            f.seek(0)
            return f.read()
    except OSError:
        return None  # open_pil says what is wrong (missing, a folder, no permission)


def _file_size(path: Path, source: bytes | Path) -> int:
    return len(source) if isinstance(source, bytes) else path.stat().st_size
