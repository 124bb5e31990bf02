"""A worker queue where the newest request wins: each ``replace`` throws away what was not started.

The document loader (the current photo and its neighbours) and the thumbnail strip (the items on
screen) both need this: the user moves faster than files open, and work for a position they have
left must not delay the one they are at. Items already taken by a worker finish (a file half
read is not abandoned) and are not queued again while they run; everything else follows the
newest list, in its order.

``work(item)`` runs on up to ``threads`` worker threads and must return a result; if it raises,
``failed(item, exc)`` makes the result instead (a thread boundary: a failure becomes a message,
never a dead worker). ``finished(item, result)`` is emitted on the thread that owns this object
(the GUI thread), queued, once per item taken.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, QThreadPool, Signal


def describe_failure(exc: BaseException) -> str:
    """A worker's unexpected exception as text for the user (the known kinds are handled by ``work``)."""
    return f"{type(exc).__name__}: {exc}"


class NewestWins(QObject):
    """Runs ``work`` for the items of the latest ``replace``; ``key(item)`` says which items are the
    same piece of work (a thumbnail asked for at a new size is still the same file)."""

    finished = Signal(object, object)  # (item, result), on the owner's thread
    _done = Signal(object, object)  # from a worker thread, queued to the owner's

    def __init__(
        self,
        work: Callable[[Any], Any],
        failed: Callable[[Any, Exception], Any],
        *,
        threads: int = 1,
        key: Callable[[Any], Hashable] = lambda item: item,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self._work, self._failed, self._key = work, failed, key
        self._pool = QThreadPool(self)  # a child: destroying it waits for the running items
        self._pool.setMaxThreadCount(max(1, threads))
        self._done.connect(self._land)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self._lock = threading.Lock()
        # Shared with the workers, under the lock:
        self._queue: list[Any] = []  # not yet started, first first; replaced by every request
        self._busy: set[Hashable] = set()  # keys taken by a worker whose result has not landed
        self._running = 0  # workers draining the queue
        self._closing = False

    def replace(self, items: Iterable[Any]) -> None:
        """Work on ``items`` (in this order, duplicates and running ones dropped) instead of whatever
        was queued before."""
        seen: set[Hashable] = set()
        with self._lock:
            if self._closing:
                return
            queue = []
            for item in items:
                key = self._key(item)
                if key not in seen and key not in self._busy:
                    seen.add(key)
                    queue.append(item)
            self._queue = queue
            starts = max(0, min(len(queue), self._pool.maxThreadCount() - self._running))
            self._running += starts
        for _ in range(starts):
            self._pool.start(self._drain)

    def pending(self) -> list[Hashable]:
        """Keys queued or running."""
        with self._lock:
            return [self._key(item) for item in self._queue] + sorted(self._busy, key=str)

    def idle(self) -> bool:
        """Nothing queued and nothing running (tests wait for this)."""
        with self._lock:
            return not self._queue and not self._busy and not self._running

    def shutdown(self) -> None:
        """Drop the queue and wait for the items in progress (the window is closing)."""
        with self._lock:
            self._closing, self._queue = True, []
        self._pool.waitForDone()
        with self._lock:
            self._closing = False

    def _drain(self) -> None:
        """On a worker: take queued items until there are none."""
        while True:
            with self._lock:
                if self._closing or not self._queue:
                    self._running -= 1
                    return
                item = self._queue.pop(0)
                self._busy.add(self._key(item))
            try:
                result = self._work(item)
            except Exception as exc:  # noqa: BLE001 -- a thread boundary: see the module docstring
                result = self._failed(item, exc)
            try:
                self._done.emit(item, result)
            except RuntimeError:  # the owner is gone (the application is ending): stop quietly
                return

    def _land(self, item: Any, result: Any) -> None:
        with self._lock:
            self._busy.discard(self._key(item))
        self.finished.emit(item, result)
