"""The orders a playlist can be in: by name, by the date the photo was taken, by file size.

"Date taken" is the EXIF DateTimeOriginal (or DateTime) that cameras write, read from the file's
header only (Pillow reads no pixels for it); a file without one sorts by its modification time,
so screenshots and downloads still fall in with the photos of the same day.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from pathlib import Path

from PIL import Image

SORT_ORDERS = {"name": "&Name", "date": "&Date Taken", "size": "&Size"}
# Above this many files the date order (every file's EXIF header, ~0.5 ms each) is found on a
# thread while the folder is shown in name order: opening a big folder must not wait for it.
INLINE_DATE_SORT_LIMIT = 100
DATE_TAGS = (0x9003, 0x0132)  # DateTimeOriginal (in the Exif IFD), DateTime (IFD0)


def name_key(path: Path) -> tuple[str, str]:
    return (path.name.casefold(), path.name)


def date_taken(path: Path) -> float:
    """Seconds since the epoch when the photo was taken (EXIF), else its modification time."""
    try:
        with Image.open(path) as im:
            exif = im.getexif()
            values = [exif.get_ifd(0x8769).get(DATE_TAGS[0]), exif.get(DATE_TAGS[1])]
    except Exception:  # noqa: BLE001 -- any unreadable header: fall back to the file's time
        values = []
    for value in values:
        if isinstance(value, str):
            try:
                return datetime.datetime.strptime(value.strip()[:19], "%Y:%m:%d %H:%M:%S").timestamp()
            except ValueError:
                continue
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def sorted_paths(paths: Iterable[Path], order: str) -> list[Path]:
    """``paths`` in ``order`` ("name", "date" or "size"; ties by name)."""
    paths = list(paths)
    if order == "date":
        return sorted(paths, key=lambda p: (date_taken(p), name_key(p)))
    if order == "size":
        return sorted(paths, key=lambda p: (file_size(p), name_key(p)))
    return sorted(paths, key=name_key)


def merged_order(sorted_earlier: list[Path], now: list[Path]) -> list[Path]:
    """An order found for an earlier copy of the playlist, applied to what it holds now: files
    since removed are dropped, files since added keep their place at the end."""
    present = set(now)
    ordered = [p for p in sorted_earlier if p in present]
    known = set(ordered)
    return ordered + [p for p in now if p not in known]
