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
from app.codec.files.imageio import load_image
from app.codec.files.marker import Marker
from app.codec.files.reader import Thumbnail, read_marker, read_thumbnail


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
    """Open any image Pillow reads; raises ImageLoadError (etc.) with a one-line message."""
    path = Path(path)
    notes: list[str] = []
    try:
        if read_marker(path) is not None:
            thumb = read_thumbnail(path)
            return ImageDocument(
                path=path,
                preview=thumb.rgb,
                full_size=(thumb.marker.width, thumb.marker.height),
                orientation=thumb.orientation,
                marker=thumb.marker,
                exif=thumb.exif,
                icc_profile=thumb.icc_profile,
                file_size=path.stat().st_size,
                thumbnail=thumb,
            )
    except FormatError as exc:
        notes.append(f"shown as a plain image: {exc}")
    loaded = load_image(path)
    return ImageDocument(
        path=path,
        preview=loaded.rgb,
        full_size=(loaded.rgb.shape[1], loaded.rgb.shape[0]),
        orientation=loaded.orientation,
        marker=None,
        exif=loaded.exif,
        icc_profile=loaded.icc_profile,
        file_size=path.stat().st_size,
        notes=notes + loaded.notes,
    )
