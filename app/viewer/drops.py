"""Drag and drop: which local files and folders a drag carries (anything else is refused)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData


def dropped_paths(mime: QMimeData | None) -> list[Path]:
    """The local files and folders in ``mime``'s URLs, in order; [] when there are none
    (web links, text...), so the drag is refused before the user lets go."""
    if mime is None or not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]
    return list(dict.fromkeys(paths))
