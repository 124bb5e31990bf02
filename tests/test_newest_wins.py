"""The newest-request-wins queue the document loader and the thumbnail strip share."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from app.viewer.newest_wins import NewestWins  # noqa: E402


def _collect(queue: NewestWins) -> list:
    got: list = []
    queue.finished.connect(lambda item, result: got.append((item, result)))
    return got


def test_a_new_request_replaces_what_was_not_started(qtbot):
    gate, started = threading.Event(), threading.Event()

    def work(item):
        if item == "first":
            started.set()
            gate.wait(5)
        return item.upper()

    queue = NewestWins(work, lambda item, exc: None, threads=1)
    got = _collect(queue)
    queue.replace(["first", "stale-1", "stale-2"])
    assert started.wait(5)
    queue.replace(["first", "new", "new", "newer"])  # "first" is running: not queued twice; duplicates once
    assert queue.pending() == ["new", "newer", "first"]
    gate.set()
    qtbot.waitUntil(queue.idle, timeout=5000)
    assert got == [("first", "FIRST"), ("new", "NEW"), ("newer", "NEWER")]
    queue.shutdown()


def test_a_failure_becomes_a_result_and_the_worker_lives_on(qtbot):
    def work(item):
        if item == 2:
            raise ZeroDivisionError("boom")
        return item * 10

    queue = NewestWins(work, lambda item, exc: f"failed: {type(exc).__name__}", threads=2)
    got = _collect(queue)
    queue.replace([1, 2, 3])
    qtbot.waitUntil(queue.idle, timeout=5000)
    assert sorted(got, key=lambda pair: pair[0]) == [(1, 10), (2, "failed: ZeroDivisionError"), (3, 30)]
    queue.shutdown()


def test_key_makes_items_the_same_work(qtbot):
    queue = NewestWins(lambda item: item[1], lambda item, exc: None, key=lambda item: item[0])
    got = _collect(queue)
    queue.replace([("a", 96), ("a", 192), ("b", 96)])  # the same file at two sizes: the first asked wins
    qtbot.waitUntil(queue.idle, timeout=5000)
    assert got == [(("a", 96), 96), (("b", 96), 96)]
    queue.shutdown()
