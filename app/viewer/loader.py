"""Turns a path into a document or a user-ready error message, and says so with a signal.

Opening is synchronous for now (previews are small). The window only listens to ``loaded``,
so moving ``open_image`` onto a worker thread later changes this module alone; numpy arrays
cross threads freely, and the QImage/QPixmap conversion stays on the GUI thread in the view.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.viewer.codec_bridge import CodecError, ImageDocument, open_image


@dataclass(frozen=True)
class LoadResult:
    """Exactly one of ``document`` and ``error`` is set."""

    path: Path
    document: ImageDocument | None = None
    error: str | None = None


def load(path: Path) -> LoadResult:
    """Open ``path``; bad input becomes an error message, never an exception."""
    try:
        return LoadResult(path, document=open_image(path))
    except CodecError as exc:
        return LoadResult(path, error=str(exc))
    except OSError as exc:
        return LoadResult(path, error=f"cannot read {path}: {exc.strerror or exc}")
    except MemoryError:
        return LoadResult(path, error=f"not enough memory to open {path}")


class DocumentLoader(QObject):
    """Emits ``loaded(LoadResult)`` for every ``request(path)``."""

    loaded = Signal(object)

    def request(self, path: Path) -> None:
        self.loaded.emit(load(path))
