"""Turn a JPEG (a HyperThumbnail is one) by its EXIF orientation tag: no pixel is re-encoded.

Rotating the pixels of a JPEG means decoding and re-encoding it, which loses quality and, for a
HyperThumbnail, would change the very coefficients its reconstruction is computed from. The
orientation tag says how a viewer should turn the stored pixels, so a rotation is two bytes: the
tag is patched in place inside the file's EXIF block (``exif_edit.set_orientation``, every other
byte kept, MakerNotes included), or a minimal EXIF block is added to a file that has none. The
file is replaced atomically (``atomic``), keeping its permissions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from app.codec import exif_edit
from app.codec.atomic import atomic_output
from app.codec.errors import CodecError, shorten
from app.codec.fileformat import minimal_exif

SOI, SOS, APP0, APP1 = 0xD8, 0xDA, 0xE0, 0xE1
STANDALONE = {0x01, *range(0xD0, 0xD8)}  # markers without a length field


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of every segment before the scan; ``CodecError`` if not a JPEG."""
    if data[:2] != b"\xff\xd8":
        raise CodecError("not a JPEG file: only JPEG files can be turned by their orientation tag")
    out, pos = [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise CodecError("damaged JPEG: a segment does not start where the previous one ends")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in STANDALONE:
            pos += 2
            continue
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > len(data):
            raise CodecError("damaged JPEG: a segment runs past the end of the file")
        out.append((marker, pos, end))
        if marker == SOS:
            break
        pos = end
    return out


def with_orientation(data: bytes, orientation: int) -> bytes:
    """The JPEG ``data`` whose EXIF orientation is ``orientation``; entropy-coded data untouched."""
    if not 1 <= orientation <= 8:
        raise CodecError(f"orientation must be 1..8, not {orientation}")
    segments = _segments(data)
    for marker, start, end in segments:
        if marker == APP1 and data[start + 4 : start + 10] == exif_edit.EXIF_HEADER:
            try:
                block = exif_edit.set_orientation(data[start + 4 : end], orientation)
            except exif_edit.ExifError as exc:
                raise CodecError(f"the file's EXIF block is damaged, so it is left as it is: {exc}") from None
            if block is None:
                raise CodecError("the file's EXIF has no orientation entry; adding one would mean rewriting "
                                 "its metadata, so the rotation is not saved")  # fmt: skip
            return data[: start + 4] + block + data[end:]
    if orientation == 1:
        return data  # no EXIF means upright already
    block = minimal_exif(orientation)
    segment = b"\xff\xe1" + (len(block) + 2).to_bytes(2, "big") + block
    after_jfif = next((end for marker, _, end in segments[:1] if marker == APP0), 2)  # EXIF follows JFIF
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
