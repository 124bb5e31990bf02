"""Writing a HyperThumbnail: a baseline 4:4:4 JPEG with the predicted tables and the header.

Table order: every quantization table here is 64 ints in NATURAL row-major order
(index = 8*row + col). Pillow's ``qtables=`` takes that order; only the DQT segment inside the
file stores tables in zig-zag order. Files are written through ``atomic`` (temporary + rename).
"""

from __future__ import annotations

import dataclasses
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.codec.files.atomic import atomic_write_bytes
from app.codec.files.header import build_metadata
from app.codec.files.imageio import (
    orientation_of,
)
from app.codec.files.marker import Marker, tables_digest


def _table(values: Any, what: str) -> list[int]:
    """Validate a quantization table: 64 integers in 1..255, natural row-major order."""
    arr = np.asarray(values)
    if arr.size != 64:
        raise ValueError(f"{what} table must have 64 entries, got {arr.size}")
    flat = arr.reshape(64)
    if not np.issubdtype(flat.dtype, np.number) or np.any(flat != np.round(flat)):
        raise ValueError(f"{what} table must hold integers")
    if flat.min() < 1 or flat.max() > 255:
        raise ValueError(f"{what} table values must be in 1..255, got {flat.min()}..{flat.max()}")
    return [int(v) for v in flat]


def encode_jpeg(
    thumbnail: np.ndarray,
    luma_table: Any,
    chroma_table: Any,
    *,
    exif: bytes | None = None,
    icc_profile: bytes | None = None,
    xmp_packet: bytes | None = None,
    extra: bytes = b"",
    dpi: tuple[float, float] | None = None,
    aspect: tuple[int, int] | None = None,
) -> bytes:
    """Encode uint8 HxWx3 RGB as a baseline 4:4:4 JPEG with the given tables (natural order);
    ``extra``: raw marker segments (the IPTC APP13, the payload's APP11) for the header;
    ``dpi``: the JFIF density in dots per inch, else ``aspect``: a pixel aspect ratio only (JFIF
    density unit 0), else 1:1."""
    if (
        not isinstance(thumbnail, np.ndarray)
        or thumbnail.dtype != np.uint8
        or thumbnail.ndim != 3
        or thumbnail.shape[2] != 3
        or thumbnail.shape[0] == 0
        or thumbnail.shape[1] == 0
    ):
        raise ValueError("thumbnail must be a non-empty uint8 HxWx3 RGB array")
    options: dict[str, Any] = {
        "qtables": [_table(luma_table, "luma"), _table(chroma_table, "chroma")],
        "subsampling": 0,
        "optimize": True,
    }
    if exif:
        options["exif"] = exif
    if icc_profile:
        options["icc_profile"] = icc_profile
    if xmp_packet:
        options["xmp"] = xmp_packet
    if extra:
        options["extra"] = extra
    if dpi:
        options["dpi"] = dpi
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(thumbnail), "RGB").save(out, "JPEG", **options)
    data = out.getvalue()
    return _jfif_aspect(data, aspect) if aspect and not dpi else data


def _jfif_aspect(jpeg: bytes, aspect: tuple[int, int]) -> bytes:
    """The JPEG with its JFIF density set to the aspect ratio ``aspect`` (unit 0), in place:
    Pillow writes a unit-0 density only as 1:1."""
    if jpeg[2:4] != b"\xff\xe0" or jpeg[6:11] != b"JFIF\x00" or jpeg[13] != 0:
        return jpeg
    return jpeg[:14] + int(aspect[0]).to_bytes(2, "big") + int(aspect[1]).to_bytes(2, "big") + jpeg[18:]


def write_hyperthumbnail(
    path: str | os.PathLike[str],
    thumbnail: np.ndarray,
    luma_table: Any,
    chroma_table: Any,
    marker: Marker,
    *,
    source_exif: bytes | None = None,
    icc_profile: bytes | None = None,
    strip_gps: bool = False,
    force: bool = False,
    source_xmp: bytes | None = None,
    orientation: int = 1,
    dpi: tuple[float, float] | None = None,
    aspect: tuple[int, int] | None = None,
    source_iptc: bytes | None = None,
    payload: bytes | None = None,
    notes: list[str] | None = None,
    optimize_entropy: bool = True,
) -> int:
    """Write a HyperThumbnail atomically; returns the number of bytes written. What could not be
    carried over from the source is appended to ``notes``. ``optimize_entropy``: losslessly
    re-code with mozjpeg (``optimize_entropy_coding``)."""
    size = (thumbnail.shape[1], thumbnail.shape[0])
    if size != marker.thumbnail_size:
        raise ValueError(
            f"thumbnail is {size[0]}x{size[1]} but a {marker.width}x{marker.height} original "
            f"needs {marker.thumbnail_size[0]}x{marker.thumbnail_size[1]}"
        )
    marker = dataclasses.replace(
        marker, tables_sha256=tables_digest(_table(luma_table, "luma"), _table(chroma_table, "chroma"))
    )
    meta = build_metadata(
        marker,
        size,
        source_exif=source_exif,
        source_xmp=source_xmp,
        source_iptc=source_iptc,
        strip_gps=strip_gps,
        orientation=orientation or orientation_of(source_exif),
        payload=payload,
    )
    data = encode_jpeg(
        thumbnail,
        luma_table,
        chroma_table,
        exif=meta.exif,
        icc_profile=icc_profile,
        xmp_packet=meta.xmp,
        extra=meta.extra,
        dpi=dpi,
        aspect=aspect,
    )
    if notes is not None:
        notes.extend(meta.notes)
    if optimize_entropy:
        data = optimize_entropy_coding(data)
    atomic_write_bytes(Path(path), data, force=force)
    return len(data)


_KEPT = ("APP0", "APP11", "APP13")  # segments the re-coding must keep as they are (besides EXIF and XMP)


def optimize_entropy_coding(jpeg: bytes) -> bytes:
    """The same JPEG, losslessly re-coded by mozjpeg (progressive, optimised scans): the same
    coefficients and header segments in fewer bytes. Kept only when smaller and when it decodes
    to exactly the same pixels; without the package the input is returned unchanged."""
    try:
        import mozjpeg_lossless_optimization as mozjpeg
    except ImportError:
        return jpeg
    try:
        optimized = mozjpeg.optimize(jpeg, copy=mozjpeg.COPY_MARKERS.ALL)
    except Exception:  # noqa: BLE001 -- an optimiser failure only costs the saving
        return jpeg
    if len(optimized) >= len(jpeg):
        return jpeg
    with Image.open(io.BytesIO(jpeg)) as a, Image.open(io.BytesIO(optimized)) as b:
        same = (
            a.info.get("xmp") == b.info.get("xmp")
            and a.info.get("exif") == b.info.get("exif")
            and [x for x in a.applist if x[0] in _KEPT] == [x for x in b.applist if x[0] in _KEPT]
            and np.array_equal(np.asarray(a), np.asarray(b))
        )
    return optimized if same else jpeg
