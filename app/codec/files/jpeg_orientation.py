"""Turn a JPEG (a HyperThumbnail is one) by its EXIF orientation tag: no pixel is re-encoded.

Rotating the pixels of a JPEG means decoding and re-encoding it, which loses quality and, for a
HyperThumbnail, would change the very coefficients its reconstruction is computed from. The
orientation tag says how a viewer should turn the stored pixels, so a rotation is two bytes: the
tag is patched in place inside the file's EXIF block (``exif_edit.set_orientation``, every other
byte kept, MakerNotes included; an IFD0 without the tag gets it in a copy of its table), or a
minimal EXIF block is added to a file that has none. The
file is replaced atomically (``atomic``), keeping its permissions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from app.codec.errors import CodecError, shorten
from app.codec.files import exif_edit, jpeg_segments
from app.codec.files.atomic import atomic_output
from app.codec.files.header import minimal_exif


def _segments(data: bytes) -> list[jpeg_segments.Segment]:
    """The segments before the image data, through the SOS header; ``CodecError`` if not a JPEG."""
    if data[:2] != b"\xff\xd8":
        raise CodecError("not a JPEG file: only JPEG files can be turned by their orientation tag")
    try:
        return jpeg_segments.segments_of(data)
    except jpeg_segments.JpegLayoutError as exc:
        raise CodecError(str(exc)) from None


def with_orientation(data: bytes, orientation: int) -> bytes:
    """The JPEG ``data`` whose EXIF orientation is ``orientation``; entropy-coded data untouched."""
    if not 1 <= orientation <= 8:
        raise CodecError(f"orientation must be 1..8, not {orientation}")
    segments = _segments(data)
    for segment in segments:
        start, end = segment.start, segment.end
        if segment.marker == jpeg_segments.APP1 and data[start + 4 : start + 10] == exif_edit.EXIF_HEADER:
            try:
                block = exif_edit.set_orientation(data[start + 4 : end], orientation)
            except exif_edit.ExifError as exc:
                raise CodecError(f"the file's EXIF block is damaged, so it is left as it is: {exc}") from None
            if len(block) + 2 > 0xFFFF:
                raise CodecError(
                    "the file's EXIF block is full: an orientation entry does not fit in it, "
                    "so the rotation is not saved"
                )
            return data[:start] + b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block + data[end:]
    if orientation == 1:
        return data  # no EXIF means upright already
    block = minimal_exif(orientation)
    segment = b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block
    after_jfif = next((s.end for s in segments[:1] if s.marker == jpeg_segments.APP0), 2)  # EXIF follows JFIF
    return data[:after_jfif] + segment + data[after_jfif:]


def write_orientation(path: str | os.PathLike[str], orientation: int) -> None:
    """Set ``path``'s EXIF orientation (see the module docstring); raises ``CodecError``."""
    target = Path(path).resolve()  # a symlink stays a symlink: its target is what changes
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise CodecError(f"cannot read {shorten(target.name, 80)}: {exc.strerror or exc}") from None
    turned = with_orientation(data, orientation)
    if turned == data:
        return
    try:
        with atomic_output(target, force=True) as tmp:
            tmp.write_bytes(turned)
            shutil.copymode(target, tmp)
    except OSError as exc:
        raise CodecError(f"cannot write {shorten(target.name, 80)}: {exc.strerror or exc}") from None
