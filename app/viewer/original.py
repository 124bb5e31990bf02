"""Compare with the original: where an export's source is, and whether it can be compared.

An export is named ``<stem>.hyper.jpg`` from its source (``export_worker.default_destination``;
a folder export adds the source's suffix on a clash: ``<stem>-png.hyper.jpg``, ``<stem>-png-2...``),
so the source is looked for beside it under those names, or under the same stem with another
image extension. The original opens as a plain image (``document.open_image``, no torch) and
must have the HyperThumbnail's full size, in stored orientation.
"""

from __future__ import annotations

import re
from pathlib import Path

from app.viewer.codec_bridge import CodecError, ImageDocument, is_hyperthumbnail, open_image
from app.viewer.export_worker import HYPER_SUFFIX
from app.viewer.playlist import IMAGE_SUFFIXES

_BATCH_NAME = re.compile(r"^(?P<stem>.+?)-(?P<suffix>[A-Za-z0-9]+)(?:-\d+)?$")


def original_candidates(path: Path) -> list[Path]:
    """The files beside ``path`` that may be the photo it was exported from, likeliest first."""
    path = Path(path)
    name = path.name
    stems: list[tuple[str, str | None]] = []  # (stem, suffix if the name says it)
    if name.lower().endswith(HYPER_SUFFIX):
        stem = name[: -len(HYPER_SUFFIX)]
        stems.append((stem, None))
        batch = _BATCH_NAME.match(stem)
        if batch and f".{batch['suffix'].lower()}" in IMAGE_SUFFIXES:
            stems.insert(0, (batch["stem"], batch["suffix"]))
    else:
        stems.append((path.stem, None))
    found = []
    for stem, suffix in stems:
        suffixes = [f".{suffix}"] if suffix else sorted(IMAGE_SUFFIXES)
        for ext in suffixes:
            for candidate in (path.with_name(stem + ext), path.with_name(stem + ext.upper())):
                if candidate != path and candidate.is_file() and candidate not in found:
                    found.append(candidate)
    return found


def find_original(path: Path) -> Path | None:
    """The first candidate that is not itself a HyperThumbnail (read from its header), or None."""
    for candidate in original_candidates(path):
        try:
            if not is_hyperthumbnail(candidate):
                return candidate
        except CodecError:
            continue
    return None


def open_original(document: ImageDocument, path: Path) -> ImageDocument:
    """``path`` opened as the original of ``document``; ValueError with a sentence if it cannot be."""
    original = open_image(path)
    if original.is_hyperthumbnail:
        raise ValueError(f"{Path(path).name} is a HyperThumbnail, not an original photo.")
    if original.full_size != tuple(document.full_size) or original.preview.shape[1::-1] != tuple(document.full_size):
        w, h = original.full_size
        fw, fh = document.full_size
        raise ValueError(
            f"{Path(path).name} is {w}\u00d7{h}; this HyperThumbnail's photo is {fw}\u00d7{fh}: "
            "only the photo it was made from can be compared."
        )
    return original
