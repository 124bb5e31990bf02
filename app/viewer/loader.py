"""Turns a path into a document or an error message, off the GUI thread, and keeps the last few.

``DocumentLoader.request(path, neighbours)`` answers at once (``loaded`` is emitted before it
returns) when ``path`` is in the small LRU of opened documents; otherwise ``open_image`` runs on
a worker thread and ``loaded`` follows when it is done. Either way the neighbours are then opened
in the background, so stepping to them is a cache hit. Every request replaces the queue of
files not yet started (``NewestWins``): a held-down key never builds a backlog.

numpy arrays cross threads freely; the QImage/QPixmap conversion stays on the GUI thread in the
view. Cached entries remember the file's size and modification time, so an edited file reopens.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.codec.errors import user_message
from app.viewer import codec_bridge
from app.viewer.codec_bridge import CodecError, ImageDocument
from app.viewer.memory import give_back_freed_memory
from app.viewer.newest_wins import NewestWins, describe_failure

CACHE_ITEMS = 8  # documents kept: the current one, its neighbours, and a few just left
CACHE_BYTES = 512 * 2**20  # ... unless their pixels add up to more than this
KEEP_NEWEST = 3  # never evicted whatever their size: the current document and its two neighbours
LOADER_THREADS = 2  # one can start on the current image while the other finishes a stale neighbour


@dataclass(frozen=True)
class LoadResult:
    """Exactly one of ``document`` and ``error`` is set."""

    path: Path
    document: ImageDocument | None = None
    error: str | None = None


def load(path: Path) -> LoadResult:
    """Open ``path``; bad input becomes an error message, never an exception."""
    try:
        return LoadResult(path, document=codec_bridge.open_image(path))
    except (CodecError, OSError, MemoryError) as exc:
        return LoadResult(path, error=user_message(exc, f"opening {path.name}"))


def file_signature(path: Path) -> tuple[int, int] | None:
    """(modification time, size), or None when the file cannot be looked at (it then stays None)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def result_bytes(result: LoadResult) -> int:
    document = result.document
    if document is None:
        return 0
    size = document.preview.nbytes
    if document.thumbnail is not None and document.thumbnail.ycbcr is not None:
        size += document.thumbnail.ycbcr.nbytes
    return size


class DocumentCache:
    """An LRU of load results keyed by path, each checked against the file's signature on use."""

    def __init__(self, items: int = CACHE_ITEMS, max_bytes: int = CACHE_BYTES):
        self.items = max(items, KEEP_NEWEST)
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Path, tuple[tuple[int, int] | None, LoadResult]] = OrderedDict()

    def __contains__(self, path: Path) -> bool:
        return path in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def paths(self) -> list[Path]:
        """Cached paths, least recently used first."""
        return list(self._entries)

    def has(self, path: Path) -> bool:
        """Cached and unchanged; unlike ``get``, the LRU order stays as it is."""
        entry = self._entries.get(path)
        return entry is not None and entry[0] == file_signature(path)

    def get(self, path: Path) -> LoadResult | None:
        """The result for ``path`` if cached and the file is unchanged (marked as just used)."""
        entry = self._entries.get(path)
        if entry is None:
            return None
        if entry[0] != file_signature(path):
            self._drop(path)
            return None
        self._entries.move_to_end(path)
        return entry[1]

    def put(self, result: LoadResult, signature: tuple[int, int] | None, *, wanted: bool = True) -> None:
        """Cache ``result``; one no longer ``wanted`` (the user moved on) goes in as the oldest, so
        it is the first evicted and never pushes out the current image or its neighbours."""
        if result.path in self._entries:
            self._drop(result.path)
        self._entries[result.path] = (signature, result)
        if not wanted:
            self._entries.move_to_end(result.path, last=False)
        self.size += result_bytes(result)
        while len(self._entries) > KEEP_NEWEST and (len(self._entries) > self.items or self.size > self.max_bytes):
            self._drop(next(iter(self._entries)))

    def touch(self, paths: Iterable[Path]) -> None:
        for path in paths:
            if path in self._entries:
                self._entries.move_to_end(path)

    def _drop(self, path: Path) -> None:
        _, result = self._entries.pop(path)
        self.size -= result_bytes(result)


def _open(path: Path) -> tuple[tuple[int, int] | None, LoadResult]:
    """On a worker: the file's signature as it was before the open, and the open's result."""
    signature = file_signature(path)
    result = load(path)
    give_back_freed_memory(result_bytes(result))  # what decoding a big image freed
    return signature, result


def _open_failed(path: Path, exc: Exception) -> tuple[None, LoadResult]:
    return None, LoadResult(path, error=f"cannot open {path.name}: {describe_failure(exc)}")


class DocumentLoader(QObject):
    """Emits ``loaded(LoadResult)`` for the path last requested, once; background opens (of a
    neighbour, or of a path the user has already left) land in the cache silently."""

    loaded = Signal(object)

    def __init__(
        self, parent: QObject | None = None, *, cache: DocumentCache | None = None, threads: int = LOADER_THREADS
    ):
        super().__init__(parent)
        self.cache = cache if cache is not None else DocumentCache()
        self._opener = NewestWins(_open, _open_failed, threads=threads, parent=self)
        self._opener.finished.connect(self._land)
        self._current: Path | None = None
        self._neighbours: list[Path] = []
        self._answered = True  # ``loaded`` was emitted for ``_current``

    def request(self, path: Path, neighbours: Iterable[Path] = (), *, wait: bool = False) -> bool:
        """Show ``path``: emit ``loaded`` now if it is cached (or ``wait``: open it on this thread),
        else when its worker is done; then preload ``neighbours``. Returns True if answered now."""
        neighbours = [p for p in neighbours if p != path]
        self._current, self._neighbours, self._answered = path, neighbours, False
        result = self.cache.get(path)
        if result is None and wait:
            signature, result = _open(path)
            self.cache.put(result, signature)
        if result is not None:
            self._answer(result)
        self._touch_wanted()
        paths = ([] if self._answered else [path]) + neighbours
        self._opener.replace(p for p in paths if not self.cache.has(p))
        return self._answered

    def idle(self) -> bool:
        """Nothing queued and nothing being opened (tests wait for this)."""
        return self._opener.idle()

    def shutdown(self) -> None:
        """Drop the queue and wait for the opens in progress (the window is closing)."""
        self._opener.shutdown()

    # ------------------------------------------------------------------ internals

    def _touch_wanted(self) -> None:
        """Mark the neighbours, then the current file, as the newest: the last to be evicted."""
        self.cache.touch(self._neighbours)
        if self._current is not None:
            self.cache.touch([self._current])

    def _answer(self, result: LoadResult) -> None:
        self._answered = True
        self.loaded.emit(result)

    def _land(self, path: Path, opened: tuple[tuple[int, int] | None, LoadResult]) -> None:
        """On the GUI thread: cache a worker's result; answer the request if it is the current one."""
        signature, result = opened
        wanted = path == self._current or path in self._neighbours
        self.cache.put(result, signature, wanted=wanted)  # a file the user has left must not push these out
        self._touch_wanted()
        if path == self._current and not self._answered:
            self._answer(result)
