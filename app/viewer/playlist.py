"""Which files next/previous steps through: a folder's images in name order, or a list given.

A playlist made of folders (one file's folder, or folders named) knows them (``watched``): the
window watches them and hands the files found there again to ``follow``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from app.codec.files.raw import RAW_SUFFIXES

# What the viewer steps through and its Open dialog offers: what Pillow reads, HEIC/HEIF (pillow-heif) and
# camera RAW files (LibRaw, through ``app.codec.files.raw``).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".hif", ".avif"}
    | RAW_SUFFIXES
)


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def folder_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (case-insensitive)."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    images = [p for p in entries if is_image_name(p) and p.is_file()]
    return sorted(images, key=lambda p: (p.name.casefold(), p.name))


class Playlist:
    """An ordered list of files with a current position; stepping wraps around at the ends."""

    def __init__(
        self,
        paths: Iterable[Path] = (),
        current: int = 0,
        folders: Iterable[Path] = (),
        *,
        named: bool = True,
        watched: Iterable[Path] = (),
    ):
        """``folders``: the folders asked for, so that an empty list can say where it looked;
        ``named``: False when no particular file was asked for (a folder, several files), so the
        window shows the first file of its sort order rather than ``current``; ``watched``: the
        folders whose images make up the list (none for files named one by one)."""
        self.paths = list(paths)
        self.index = min(max(current, 0), max(len(self.paths) - 1, 0))
        self.folders = list(folders)
        self.named = named
        self.watched = list(watched)

    @classmethod
    def from_arguments(cls, arguments: Iterable[str | Path]) -> Playlist:
        """One file: its folder, starting at it. Folders: their images. Several files: those files.
        Only the first names a file to start at; the others start at the first in sort order."""
        items = [Path(a) for a in arguments]
        if len(items) == 1 and not items[0].is_dir():
            only = items[0]
            siblings = folder_images(only.parent)
            if only in siblings:
                return cls(siblings, siblings.index(only), watched=[only.parent])
            return cls([only])
        paths: list[Path] = []
        for item in items:
            paths.extend(folder_images(item) if item.is_dir() else [item])
        folders = [item for item in items if item.is_dir()]
        return cls(paths, folders=folders, named=False, watched=folders if len(folders) == len(items) else [])

    @property
    def current(self) -> Path | None:
        return self.paths[self.index] if self.paths else None

    def step(self, offset: int) -> Path | None:
        """Move by ``offset`` (wrapping) and return the new current file."""
        if self.paths:
            self.index = (self.index + offset) % len(self.paths)
        return self.current

    def go_to(self, index: int) -> Path | None:
        """Make ``index`` current (clamped to the list) and return it: Home, End, a strip click."""
        if self.paths:
            self.index = min(max(index, 0), len(self.paths) - 1)
        return self.current

    def reorder(self, paths: list[Path]) -> None:
        """The same files in another order (a sort); the current file stays current."""
        current = self.current
        self.paths = list(paths)
        if current in self.paths:
            self.index = self.paths.index(current)

    def remove(self, path: Path) -> None:
        """Drop ``path`` (moved to the trash); the file after it becomes current."""
        if path in self.paths:
            at = self.paths.index(path)
            del self.paths[at]
            if at < self.index:
                self.index -= 1
            self.index = max(0, min(self.index, len(self.paths) - 1))

    def follow(self, paths: list[Path]) -> Path | None:
        """The files now in the watched folders (in order): the current file stays current; if
        it is gone, the file that came after it (else the one before) becomes current, and the
        file that went is returned (None when the current file is still there)."""
        current = self.current
        if current is None or current in paths:
            self.paths = list(paths)
            self.index = self.paths.index(current) if current is not None else 0
            return None
        kept = set(paths)
        after = [p for p in self.paths[self.index + 1 :] if p in kept]
        before = [p for p in reversed(self.paths[: self.index]) if p in kept]
        self.paths = list(paths)
        self.index = self.paths.index((after or before)[0]) if after or before else 0
        return current

    def neighbours(self) -> list[Path]:
        """The files one step away, next first (the likelier step), without the current one."""
        if len(self.paths) < 2:
            return []
        after, before = self.paths[(self.index + 1) % len(self.paths)], self.paths[self.index - 1]
        return [after] if after == before else [after, before]

    def empty_text(self) -> str:
        """What to say when there is nothing to show."""
        if len(self.folders) == 1:
            return f"No images in {self.folders[0]}.\n\nOpen another folder, or drop a file or folder here."
        return "No images to show. Use File \u203a Open, or drop a file or folder here."

    def position_text(self) -> str:
        return f"{self.index + 1}/{len(self.paths)}" if self.paths else ""
