"""``hyperthumb convert SRC DST``: a photo library mirrored into HyperThumbnails, resumably.

Every image file under SRC (the types ``hyperthumb encode`` reads: ``IMAGE_SUFFIXES``) becomes
``DST/<same relative folder>/<stem>.jpg``. Other files are skipped (a report line each), and so are
files that already are HyperThumbnails (found when the worker opens them; their thumbnail is not
the photo). When two sources of one folder map to one output (``a.png`` and ``a.jpg``), the one
converted first keeps ``a.jpg`` and the other gets its own suffix, ``a-png.jpg`` (then
``a-png-2.jpg``...); within one run the sources go in name order (case-insensitive), and a file
that is already in DST but is not one of this journal's outputs is never replaced: the name
moves on to the next candidate. Names compare case-insensitively (macOS and Windows disks).

The journal, ``DST/.hyperthumb-convert.sqlite3`` (SQLite in WAL mode, synchronous=FULL), has one
row per source: its relative path, size, mtime_ns and sha256, and its state:

- ``pending``: its output name is reserved, the conversion not recorded yet. Names are reserved
  (committed) before any work starts, so a name in the journal was free when it was given; an
  output found at a pending row's name is the work of a run that was killed before recording it,
  and is replaced.
- ``done`` (output name, bytes, full size), ``failed`` (the reason), ``skipped`` (a HyperThumbnail).

A run that is killed at any moment (Ctrl-C, SIGKILL, power loss) is resumed by running the same
command again: outputs are written through ``files.atomic`` (temporary ``.part`` file, synced,
renamed), so an output is either whole or absent, and stale ``.part`` files of dead writers are
removed at the start and the end of every run. A re-run converts only what is new, changed (size
or mtime differ *and* the sha256 differs; a touched file is only re-stamped), or whose output was
deleted; ``--force`` redoes everything, ``--retry-failed`` retries the failures of earlier runs.

The parent process owns the journal; the workers (``--workers N``, processes started with
multiprocessing's ``spawn``, each loading its own Codec once and running torch on
``cpu_count // N`` threads) only convert and send results back, so a worker that dies loses only
the photo it had in hand (retried once, then failed). ``--workers 1`` converts in this process.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from app.codec.errors import CodecError, printable, shorten, user_message
from app.codec.files.atomic import PART_SUFFIX, atomic_write_bytes, remove_stale_parts, same_file
from app.codec.files.raw import RAW_SUFFIXES

JOURNAL_NAME = ".hyperthumb-convert.sqlite3"
OUTPUT_SUFFIX = ".jpg"
# What ``encode`` reads: Pillow's photo types, HEIC/HEIF (pillow-heif), AVIF, camera RAW (LibRaw).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif", ".hif", ".avif"}
    | RAW_SUFFIXES
)
HASH_CHUNK = 1 << 20
WORKER_DEATHS_ALLOWED = 1  # a photo whose worker died this many times is retried; once more, it fails
LISTED = 20  # skipped files listed in the printed summary; all of them are in --report


@dataclass(frozen=True)
class Settings:
    """What every conversion of a run is made with (sent to each worker)."""

    rate: float
    effort: str = "default"
    strip_gps: bool = False
    keep_exif: bool = True  # False: no metadata of the source but its orientation (the viewer's option)
    weights_dir: str | None = None
    device: str | None = None
    runtime: str | None = None
    tile: int | None = None
    # torch threads per worker; None: the cores shared out among the workers. The encoder's float
    # sums can round differently on another thread count (oneDNN splits them differently), which
    # may move one quantization-table entry: the same bytes need the same threads per worker.
    threads: int | None = None

    def key(self) -> str:
        """What an output depends on, stored with it: another key means other settings."""
        what = {"rate": self.rate, "effort": self.effort, "strip_gps": self.strip_gps}
        if not self.keep_exif:
            what["keep_exif"] = False  # absent when true: the key of journals written before the option
        return json.dumps(what, sort_keys=True)


@dataclass(frozen=True)
class Task:
    rel: str  # the source, relative to SRC, with forward slashes
    source: str
    output_rel: str
    destination: str
    replace: bool  # the output may exist and be replaced (ours: a changed source, a killed run)
    why: str  # new, changed, output missing, interrupted, failed before, forced


@dataclass
class Entry:
    """One line of the report."""

    path: str
    status: str  # converted, unchanged, skipped, failed
    output: str | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    width: int | None = None
    height: int | None = None
    reason: str | None = None

    @property
    def bpp(self) -> float | None:
        if self.bytes_out is None or not self.width or not self.height:
            return None
        return self.bytes_out * 8 / (self.width * self.height)


@dataclass
class Plan:
    tasks: list[Task] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)  # what needs no work: unchanged, skipped, failed before
    restamp: list[tuple[str, int, int]] = field(default_factory=list)  # (rel, size, mtime_ns): content unchanged
    reserve: list[tuple[str, str, int, int, str | None]] = field(
        default_factory=list
    )  # (rel, output, size, mtime, sha)
    gone: int = 0  # journal rows whose source is no longer in SRC (their outputs are kept)


# ---------------------------------------------------------------------------------------------- journal


SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    rel TEXT PRIMARY KEY,
    size INTEGER,
    mtime_ns INTEGER,
    sha256 TEXT,
    status TEXT NOT NULL,
    output TEXT,
    bytes_out INTEGER,
    width INTEGER,
    height INTEGER,
    reason TEXT,
    settings TEXT,
    updated REAL
);
"""


class Journal:
    """The run's record in DST; only the parent process opens it (one connection)."""

    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        if readonly:  # --dry-run: no file created; immutable (no -shm) unless a run left its WAL to read
            wal = Path(f"{path}-wal").exists()
            uri = f"{path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}"
            self.db = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            self.db = sqlite3.connect(path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a recorded "done" survives a power loss
            self.db.executescript(SCHEMA)
        self.db.row_factory = sqlite3.Row

    def rows(self) -> dict[str, sqlite3.Row]:
        return {row["rel"]: row for row in self.db.execute("SELECT * FROM sources")}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def apply_plan(self, plan: Plan) -> None:
        """Re-stamp touched sources and reserve every task's output name, in one transaction."""
        now = time.time()
        with self.transaction():
            self.db.executemany(
                "UPDATE sources SET size=?, mtime_ns=? WHERE rel=?", [(s, m, r) for r, s, m in plan.restamp]
            )
            self.db.executemany(
                "INSERT INTO sources (rel, output, size, mtime_ns, sha256, status, updated) "
                "VALUES (?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT(rel) DO UPDATE SET "
                "output=excluded.output, size=excluded.size, mtime_ns=excluded.mtime_ns, "
                "sha256=excluded.sha256, status='pending', reason=NULL, updated=excluded.updated",
                [(*row, now) for row in plan.reserve],
            )

    def record(self, result: dict, settings_key: str) -> None:
        """A worker's result, one transaction (committed before the next photo is counted)."""
        status = result["status"]
        self.db.execute(
            "UPDATE sources SET status=?, output=?, bytes_out=?, width=?, height=?, reason=?, sha256=?, "
            "size=?, mtime_ns=?, settings=?, updated=? WHERE rel=?",
            (
                status,
                result["output"] if status == "done" else None,
                result.get("bytes_out"),
                result.get("width"),
                result.get("height"),
                result.get("reason"),
                result.get("sha256"),
                result.get("size"),
                result.get("mtime_ns"),
                settings_key if status == "done" else None,
                time.time(),
                result["rel"],
            ),
        )

    def close(self) -> None:
        self.db.close()


# ---------------------------------------------------------------------------------------------- scan and plan


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan(src: Path, dst: Path) -> tuple[list[tuple[str, int, int]], list[str]]:
    """(images as (rel, size, mtime_ns), other files' rel), both in name order. DST is not
    entered when it lies inside SRC; symlinked folders are not followed (no loops)."""
    images, others = [], []
    for folder, dirs, files in os.walk(src, onerror=None, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted((d for d in dirs if not _is_same_dir(here / d, dst)), key=_name_order)
        for name in sorted(files, key=_name_order):
            path = here / name
            rel = path.relative_to(src).as_posix()
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                others.append(rel)
                continue
            try:
                st = path.stat()
            except OSError:
                others.append(rel)  # a dangling link
                continue
            images.append((rel, st.st_size, st.st_mtime_ns))
    return images, others


def _path_order(rel: str) -> tuple:
    return tuple(_name_order(part) for part in rel.split("/"))


def _name_order(name: str) -> tuple[str, str]:
    return name.casefold(), name


def _is_same_dir(a: Path, b: Path) -> bool:
    return b.exists() and same_file(a, b)


def output_candidates(rel: str) -> Iterator[str]:
    """``dir/a.jpg``, then ``dir/a-png.jpg``, ``dir/a-png-2.jpg``, ... for ``dir/a.png``."""
    path = Path(rel)
    parent, stem, ext = path.parent, path.stem, path.suffix.lstrip(".").lower()
    yield (parent / f"{stem}{OUTPUT_SUFFIX}").as_posix()
    yield (parent / f"{stem}-{ext}{OUTPUT_SUFFIX}").as_posix()
    n = 2
    while True:
        yield (parent / f"{stem}-{ext}-{n}{OUTPUT_SUFFIX}").as_posix()
        n += 1


def plan_run(
    src: Path,
    dst: Path,
    rows: dict[str, sqlite3.Row],
    *,
    force: bool = False,
    retry_failed: bool = False,
    images: list[tuple[str, int, int]] | None = None,
    others: list[str] | None = None,
) -> Plan:
    """What this run has to do, from the tree and the journal (which it does not change)."""
    if images is None or others is None:
        images, others = scan(src, dst)
    plan = Plan(entries=[Entry(rel, "skipped", reason="not an image file") for rel in others])
    taken = {row["output"].casefold() for row in rows.values() if row["output"]}
    present = {rel for rel, _, _ in images}
    plan.gone = sum(1 for rel in rows if rel not in present)

    def fresh_name(rel: str) -> str:
        for candidate in output_candidates(rel):
            if candidate.casefold() not in taken and not os.path.lexists(dst / candidate):
                taken.add(candidate.casefold())
                return candidate
        raise AssertionError("unreachable")

    for rel, size, mtime_ns in images:
        row = rows.get(rel)
        sha = None
        if row is None:
            why = "new"
        else:
            changed = (row["size"], row["mtime_ns"]) != (size, mtime_ns)
            if changed and row["sha256"] and row["status"] != "pending":
                try:
                    sha = file_sha256(src / rel)
                except OSError:
                    sha = None
                if sha == row["sha256"]:
                    changed = False
                    plan.restamp.append((rel, size, mtime_ns))
            status, output = row["status"], row["output"]
            if status == "pending":
                why = "interrupted"
            elif changed:
                why = "changed"
            elif force:
                why = "forced"
            elif status == "done" and not (dst / output).is_file():
                why = "output missing"
            elif status == "failed" and retry_failed:
                why = "failed before"
            elif status == "done":
                plan.entries.append(
                    Entry(rel, "unchanged", output, size, row["bytes_out"], row["width"], row["height"])
                )
                continue
            elif status == "failed":
                plan.entries.append(Entry(rel, "failed", bytes_in=size, reason=f"{row['reason']} (earlier run)"))
                continue
            else:  # skipped: a HyperThumbnail
                plan.entries.append(Entry(rel, "skipped", bytes_in=size, reason=row["reason"]))
                continue
        output = row["output"] if row is not None and row["output"] else fresh_name(rel)
        replace = row is not None and row["output"] == output  # the name is this source's: ours to replace
        plan.reserve.append((rel, output, size, mtime_ns, sha))
        plan.tasks.append(Task(rel, str(src / rel), output, str(dst / output), replace, why))
    return plan


# ---------------------------------------------------------------------------------------------- workers


def load_codec(settings: Settings, threads: int | None = None):
    """A Codec with its model loaded (so a missing or broken weights file fails before any photo)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from app.codec.api import Codec

    codec = Codec(settings.weights_dir, settings.device, settings.tile, settings.runtime)
    codec.model(codec.weights())
    return codec


def convert_one(codec, settings: Settings, task: Task, *, progress=None, cancelled=None) -> dict:
    """One source -> its output: the one per-photo path of every batch (``convert``'s engines and
    the viewer's Export Folder, in its codec service). Never raises for a bad photo (a ``failed``
    result says why); ``cancelled`` (asked between tiles) raises ``Cancelled`` and leaves no file."""
    import warnings

    from app.codec.files.imageio import open_pil
    from app.codec.files.raw import is_raw_name
    from app.codec.files.reader import marker_of
    from app.codec.files.tiling import Cancelled

    result: dict = {"rel": task.rel, "output": task.output_rel, "status": "failed"}
    start = time.monotonic()
    try:
        st = os.stat(task.source)
        result.update(size=st.st_size, mtime_ns=st.st_mtime_ns, sha256=file_sha256(task.source))
        if not is_raw_name(task.source):  # a RAW is never a HyperThumbnail: do not develop it twice
            with open_pil(task.source, task.rel) as im:
                if marker_of(im, task.rel) is not None:
                    result.update(status="skipped", reason="already a HyperThumbnail")
                    return result
        Path(task.destination).parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            encoded = codec.encode_file(
                task.source,
                task.destination,
                rate=settings.rate,
                effort=settings.effort,
                strip_gps=settings.strip_gps,
                keep_exif=settings.keep_exif,
                force=task.replace,
                progress=progress,
                cancelled=cancelled,
            )
        width, height = encoded.full_size
        notes = list(encoded.notes) + [str(w.message) for w in caught]
        result.update(status="done", bytes_out=encoded.file_size, width=width, height=height, notes=notes)
    except (KeyboardInterrupt, Cancelled):
        raise
    except Exception as exc:  # noqa: BLE001 -- one bad photo is a line in the report, the run goes on
        if isinstance(exc, CodecError | OSError | MemoryError):
            reason = user_message(exc, "the encoder")
        else:
            reason = f"internal error: {type(exc).__name__}: {shorten(exc, 160)}"
        result["reason"] = " ".join(reason.split())
    result["seconds"] = time.monotonic() - start
    return result


def _exit_with_parent() -> None:
    """A worker whose parent is gone (killed outright) stops at once instead of lingering."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os._exit(1)


def worker_main(conn, settings: Settings, threads: int) -> None:
    """A worker process: load the codec once, then convert what the parent sends until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from app.codec.files.atomic import terminate_like_interrupt

    threading.Thread(target=_exit_with_parent, daemon=True).start()
    try:
        with terminate_like_interrupt():  # the parent's terminate(): the .part file is removed
            try:
                codec = load_codec(settings, threads)
            except Exception as exc:  # noqa: BLE001
                conn.send(("fatal", user_message(exc, "loading the model")))
                return
            conn.send(("ready", None))
            while True:
                task = conn.recv()
                if task is None:
                    return
                conn.send(("result", convert_one(codec, settings, task)))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return


@dataclass
class _Slot:
    process: multiprocessing.process.BaseProcess
    conn: object
    task: Task | None = None
    ready: bool = False


class WorkerPool:
    """N spawned worker processes; ``run(tasks)`` yields each task's result as it arrives."""

    def __init__(self, workers: int, settings: Settings):
        self.context = multiprocessing.get_context("spawn")
        self.settings = settings
        self.threads = settings.threads or max(1, (os.cpu_count() or 1) // workers)
        self.slots = [self._start() for _ in range(workers)]

    def _start(self) -> _Slot:
        parent_conn, child_conn = self.context.Pipe()
        process = self.context.Process(
            target=worker_main, args=(child_conn, self.settings, self.threads), daemon=True, name="hyperthumb-convert"
        )
        process.start()
        child_conn.close()
        return _Slot(process, parent_conn)

    def run(self, tasks: Iterable[Task]) -> Iterator[dict]:
        queue = deque(tasks)
        deaths: Counter[str] = Counter()
        while queue or any(s.task for s in self.slots):
            for slot in self.slots:
                if slot.ready and slot.task is None and queue:
                    slot.task = queue.popleft()
                    slot.conn.send(slot.task)
            waiting = {slot.conn: slot for slot in self.slots} | {slot.process.sentinel: slot for slot in self.slots}
            for ready in wait(list(waiting), timeout=5.0):
                slot = waiting[ready]
                if not any(s is slot for s in self.slots):
                    continue  # its death was handled already (its pipe and sentinel were both ready)
                if ready is slot.conn or slot.conn.poll():
                    try:
                        kind, payload = slot.conn.recv()
                    except (EOFError, OSError):
                        kind, payload = "died", None
                    if kind == "ready":
                        slot.ready = True
                        continue
                    if kind == "fatal":
                        raise CodecError(payload)
                    if kind == "result":
                        slot.task = None
                        yield payload
                        continue
                if slot.process.is_alive():
                    continue
                # the worker died (killed, out of memory, a crash in native code)
                if not slot.ready:
                    raise CodecError(f"a worker process could not start (exit code {slot.process.exitcode})")
                task, slot.task = slot.task, None
                self.slots[self.slots.index(slot)] = self._start()
                if task is None:
                    continue
                deaths[task.rel] += 1
                if deaths[task.rel] > WORKER_DEATHS_ALLOWED:
                    yield {
                        "rel": task.rel,
                        "output": task.output_rel,
                        "status": "failed",
                        "reason": f"the worker converting it died twice (exit code {slot.process.exitcode}: "
                        "killed, or out of memory)",
                    }
                else:
                    queue.appendleft(task)

    def close(self, now: bool = False) -> None:
        """Stop the workers: asked to finish (``None``), or at once (SIGTERM, then SIGKILL)."""
        for slot in self.slots:
            try:
                if now:
                    slot.process.terminate()
                else:
                    slot.conn.send(None)
            except (OSError, ValueError):
                pass
        for slot in self.slots:
            slot.process.join(timeout=10 if not now else 5)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=5)
            slot.conn.close()


# ---------------------------------------------------------------------------------------------- the run


@dataclass
class Summary:
    entries: list[Entry]
    dry_run: bool = False
    interrupted: bool = False
    gone: int = 0
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries if e.status == status)

    @property
    def converted(self) -> list[Entry]:
        return [e for e in self.entries if e.status == "converted"]

    @property
    def failed(self) -> list[Entry]:
        return [e for e in self.entries if e.status == "failed"]

    def totals(self, entries: list[Entry]) -> tuple[int, int, float | None]:
        """(bytes in, bytes out, mean bpp over all their pixels)."""
        done = [e for e in entries if e.bytes_out is not None]
        bytes_in = sum(e.bytes_in or 0 for e in done)
        bytes_out = sum(e.bytes_out for e in done)
        pixels = sum((e.width or 0) * (e.height or 0) for e in done)
        return bytes_in, bytes_out, (bytes_out * 8 / pixels if pixels else None)

    def as_dict(self) -> dict:
        bytes_in, bytes_out, bpp = self.totals(self.converted)
        return {
            "counts": {s: self.count(s) for s in ("converted", "unchanged", "skipped", "failed")},
            "bytes_in": bytes_in,
            "bytes_out": bytes_out,
            "mean_bpp": bpp,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "files": [{**asdict(e), "bpp": e.bpp} for e in self.entries],
        }


def write_report(summary: Summary, path: Path, header: dict) -> None:
    """``--report``: JSON (everything) or CSV (one row per source), by the file's suffix."""
    if path.suffix.lower() == ".csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["path", "status", "output", "bytes_in", "bytes_out", "bpp", "reason"])
        for e in summary.entries:
            bpp = f"{e.bpp:.4f}" if e.bpp is not None else ""
            writer.writerow(
                [e.path, e.status, e.output or "", e.bytes_in or "", e.bytes_out or "", bpp, e.reason or ""]
            )
        data = text.getvalue().encode()
    else:
        data = (json.dumps({**header, **summary.as_dict()}, indent=2) + "\n").encode()
    atomic_write_bytes(path, data, force=True)


def remove_stale_parts_under(dst: Path) -> int:
    removed = 0
    for folder, _, files in os.walk(dst):
        if any(name.endswith(PART_SUFFIX) for name in files):
            removed += len(remove_stale_parts(Path(folder)))
    return removed


@contextmanager
def exclusive(dst: Path) -> Iterator[None]:
    """One run at a time per DST (an advisory lock on the folder itself; POSIX)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    fd = os.open(dst, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CodecError(f"another hyperthumb convert is writing to {shorten(dst, 200)}") from None
        yield
    finally:
        os.close(fd)


def check_folders(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise CodecError(f"not a folder: {shorten(src, 200)}")
    if dst.exists() and not dst.is_dir():
        raise CodecError(f"output is not a folder: {shorten(dst, 200)}")
    if dst.exists() and same_file(src, dst):
        raise CodecError("the output folder must not be the source folder")


def dry_run(src: Path, dst: Path, *, force: bool, retry_failed: bool) -> tuple[Plan, Summary]:
    """What a run would do; writes nothing (the journal, if any, is opened read-only)."""
    journal_path = dst / JOURNAL_NAME
    rows: dict = {}
    if journal_path.is_file():
        journal = Journal(journal_path, readonly=True)
        try:
            rows = journal.rows()
        finally:
            journal.close()
    plan = plan_run(src, dst, rows, force=force, retry_failed=retry_failed)
    return plan, Summary(plan.entries, dry_run=True, gone=plan.gone)


def convert_tree(
    src: Path,
    dst: Path,
    settings: Settings,
    *,
    workers: int = 1,
    force: bool = False,
    retry_failed: bool = False,
    on_result: Callable[[Task, dict], None] | None = None,
    progress: Callable[[int], object] | None = None,
) -> Summary:
    """The run: plan, reserve names, convert (in workers), record each result as it comes.

    ``progress``: called with the number of photos to convert, returns an object with
    ``update(n)`` and ``close()`` (a tqdm bar), or None. KeyboardInterrupt (and
    ``Terminated``) propagate after the workers are stopped; the journal is consistent then."""
    start = time.monotonic()
    check_folders(src, dst)
    dst.mkdir(parents=True, exist_ok=True)
    with exclusive(dst):
        journal = Journal(dst / JOURNAL_NAME)
        try:
            remove_stale_parts_under(dst)
            plan = plan_run(src, dst, journal.rows(), force=force, retry_failed=retry_failed)
            journal.apply_plan(plan)
            summary = Summary(list(plan.entries), gone=plan.gone)
            bar = progress(len(plan.tasks)) if progress is not None else None
            by_rel = {task.rel: task for task in plan.tasks}
            key = settings.key()
            pool = None
            try:
                if plan.tasks and workers > 1:
                    pool = WorkerPool(min(workers, len(plan.tasks)), settings)
                    results = pool.run(plan.tasks)
                elif plan.tasks:
                    codec = load_codec(settings, settings.threads)
                    results = (convert_one(codec, settings, task) for task in plan.tasks)
                else:
                    results = iter(())
                for result in results:
                    journal.record(result, key)
                    task = by_rel[result["rel"]]
                    summary.entries.append(_entry(result))
                    if on_result is not None:
                        on_result(task, result)
                    if bar is not None:
                        bar.update(1)
            except BaseException:
                summary.interrupted = True
                if pool is not None:
                    pool.close(now=True)
                    pool = None
                raise
            finally:
                if pool is not None:
                    pool.close()
                if bar is not None:
                    bar.close()
            remove_stale_parts_under(dst)
        finally:
            journal.close()
    summary.seconds = time.monotonic() - start
    summary.entries.sort(key=lambda e: _path_order(e.path))
    return summary


def _entry(result: dict) -> Entry:
    status = {"done": "converted"}.get(result["status"], result["status"])
    return Entry(
        result["rel"],
        status,
        result["output"] if status == "converted" else None,
        result.get("size"),
        result.get("bytes_out"),
        result.get("width"),
        result.get("height"),
        result.get("reason"),
    )


# ---------------------------------------------------------------------------------------------- printing


def _size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def print_plan(plan: Plan, show: int, out=None) -> None:
    out = out or sys.stdout
    why = Counter(task.why for task in plan.tasks)
    detail = ", ".join(f"{n} {w}" for w, n in why.most_common())
    counts = Counter(e.status for e in plan.entries)
    print(f"would convert {len(plan.tasks)} photos" + (f" ({detail})" if detail else ""), file=out)
    for task in plan.tasks[:show]:
        print(printable(f"  {task.rel} -> {task.output_rel} ({task.why})"), file=out)
    if len(plan.tasks) > show:
        print(f"  ... and {len(plan.tasks) - show} more", file=out)
    print(
        f"unchanged {counts['unchanged']}, skipped {counts['skipped']}, failed in earlier runs {counts['failed']}"
        + (" (--retry-failed tries them again)" if counts["failed"] else ""),
        file=out,
    )
    if plan.gone:
        print(f"{plan.gone} sources in the journal are no longer in the source folder (outputs kept)", file=out)


def print_summary(summary: Summary, out=None) -> None:
    out = out or sys.stdout
    converted = summary.converted
    bytes_in, bytes_out, bpp = summary.totals(converted)
    minutes = summary.seconds / 60
    rate = f", {len(converted) / minutes:.1f} photos/min" if converted and minutes > 0 else ""
    print(
        f"converted {len(converted)}, unchanged {summary.count('unchanged')}, skipped {summary.count('skipped')}, "
        f"failed {summary.count('failed')} in {summary.seconds:.1f}s{rate}",
        file=out,
    )
    if converted:
        print(
            f"bytes in {_size(bytes_in)}, out {_size(bytes_out)}" + (f", mean {bpp:.4f} bpp" if bpp else ""),
            file=out,
        )
    skipped = [e for e in summary.entries if e.status == "skipped"]
    for e in skipped[:LISTED]:
        print(printable(f"skipped: {e.path}: {e.reason}"), file=out)
    if len(skipped) > LISTED:
        print(f"skipped: ... and {len(skipped) - LISTED} more (--report lists them all)", file=out)
    for e in summary.failed:
        print(printable(f"failed: {e.path}: {e.reason}"), file=out)
    if summary.gone:
        print(f"{summary.gone} sources in the journal are no longer in the source folder (outputs kept)", file=out)
