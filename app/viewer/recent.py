"""The recent-files list (File > Open Recent), kept in the viewer's settings (``settings.RECENT``).

The recent list holds the files and folders the user opened (not every image stepped through), most recent first, at
most ten; entries whose file is gone are dropped whenever the list is read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from app.viewer.settings import RECENT, read, write

RECENT_LIMIT = 10


class RecentFiles(QObject):
    """The recent list stored in ``settings``. Signal: ``changed()``."""

    changed = Signal()

    def __init__(self, settings: QSettings, parent: QObject | None = None, *, limit: int = RECENT_LIMIT):
        super().__init__(parent)
        self.settings = settings
        self.limit = limit

    def paths(self) -> list[Path]:
        """The entries that still exist, most recent first (missing ones are pruned from the file)."""
        stored = self._stored()
        present = [path for path in stored if path.exists()]
        if present != stored:
            self._store(present)
        return present

    def add(self, path: str | Path) -> None:
        """Put ``path`` (a file or a folder) at the top; it appears once, and the oldest fall off."""
        path = Path(path).absolute()
        self._store([path, *(p for p in self._stored() if p != path)])

    def add_all(self, paths: list[str | Path]) -> None:
        """Several paths opened together: the first given ends on top."""
        for path in reversed(paths):
            self.add(path)

    def clear(self) -> None:
        self._store([])

    def _stored(self) -> list[Path]:
        return [Path(item) for item in read(self.settings, RECENT) if isinstance(item, str) and item]

    def _store(self, paths: list[Path]) -> None:
        unique = list(dict.fromkeys(paths))[: self.limit]
        write(self.settings, RECENT, [str(path) for path in unique])
        self.settings.sync()
        self.changed.emit()


def recent_label(number: int, path: Path) -> str:
    """'&1  photo.jpg  (folder)': numbered for the keyboard, '&' in names kept literal."""
    name = (path.name or str(path)).replace("&", "&&")
    where = str(path.parent).replace("&", "&&")
    prefix = f"&{number}  " if number < 10 else f"{number // 10}&{number % 10}  "
    return f"{prefix}{name}  \u2014  {where}"


class RecentMenu(QMenu):
    """File > Open Recent: rebuilt each time it opens, so it always shows the pruned list."""

    def __init__(self, recent: RecentFiles, open_path: Callable[[Path], None], parent: QWidget | None = None):
        super().__init__("Open &Recent", parent)
        self.recent = recent
        self.open_path = open_path
        self.aboutToShow.connect(self.rebuild)
        self.rebuild()

    def rebuild(self) -> None:
        self.clear()
        paths = self.recent.paths()
        for number, path in enumerate(paths, 1):
            action = QAction(recent_label(number, path), self)
            action.setToolTip(str(path))
            action.setData(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
            self.addAction(action)
        if not paths:
            empty = self.addAction("No recent files")
            empty.setEnabled(False)
        self.addSeparator()
        clear = self.addAction("&Clear Recent")
        clear.setEnabled(bool(paths))
        clear.triggered.connect(self.recent.clear)

    def entries(self) -> list[Path]:
        """The paths the menu offers now (tests)."""
        return [Path(action.data()) for action in self.actions() if action.data()]
