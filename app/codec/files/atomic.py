"""Write output files all-or-nothing, and never replace a file the user did not ask to replace.

A failed, cancelled, interrupted or terminated write must never leave a half-written photo
behind, nor clobber an existing file. Output goes to a hidden temporary file in the same folder
(same filesystem, so publishing it is atomic), named ``.NAME.PID-HOST.RANDOM.part``, and is
published only once complete:

- without ``force`` by ``os.link(tmp, target)``, which fails if ``target`` exists: of two
  writers racing to a new name exactly one wins, the other gets "output exists" (on filesystems
  without hard links, an existence check and a rename: not atomic against a racing writer);
- with ``force`` by ``os.replace``.

The temporary name carries the writer's pid and host, so a ``.part`` left by a writer that was
killed outright (SIGKILL, power loss) is recognised as stale — its pid is no longer alive on
this host — and removed by the next writer into that folder. SIGTERM is turned into an
exception (``terminate_like_interrupt``), so it cleans up exactly as Ctrl-C does.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.codec.errors import CodecError, OutputExistsError, shorten

PART_SUFFIX = ".part"
_NAME_KEEP = 100  # characters of the output's name kept in the temporary name (names max 255 bytes)
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
_PART = re.compile(r"^\.(?P<name>.*)\.(?P<pid>\d+)-(?P<host>[0-9a-f]{6})\.[0-9a-f]{8}\.part$")
_OLD_PART = re.compile(r"^\..*\.[0-9a-f]{8}\.part$")  # before pids were in the name
_OLD_PART_AGE = 24 * 3600  # seconds after which an old-style .part can only be stale
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS, errno.EMLINK, errno.EACCES}
_cleaned: set[Path] = set()  # folders whose stale .part files this process has already removed
_cleaned_lock = threading.Lock()


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds (and cleans up) like Ctrl-C; the CLI exits 143 for it."""


def temporary_path(target: Path) -> Path:
    """A fresh hidden temporary name beside ``target``, carrying this process's pid and host."""
    return target.parent / f".{target.name[:_NAME_KEEP]}.{os.getpid()}-{_HOST}.{secrets.token_hex(4)}{PART_SUFFIX}"


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no harmless liveness probe here (os.kill would terminate): keep the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def is_stale_part(name: str, now: float | None = None, mtime: float | None = None) -> bool:
    """Whether a file name is a temporary output whose writer is gone (this host's, pid dead;
    or an old-style name over a day old)."""
    match = _PART.match(name)
    if match:
        return match["host"] == _HOST and int(match["pid"]) != os.getpid() and not _pid_alive(int(match["pid"]))
    if _OLD_PART.match(name) and mtime is not None:
        return (now if now is not None else time.time()) - mtime > _OLD_PART_AGE
    return False


def remove_stale_parts(folder: Path) -> list[Path]:
    """Remove the stale ``.part`` files in ``folder`` (see ``is_stale_part``); returns them."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".") and e.name.endswith(PART_SUFFIX)]
    except OSError:
        return removed
    for entry in entries:
        try:
            if entry.is_file(follow_symlinks=False) and is_stale_part(entry.name, now, entry.stat().st_mtime):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _clean_once(folder: Path) -> None:
    """Remove stale parts the first time this process writes into ``folder`` (a batch export
    writes thousands of files into one folder; one scan is enough)."""
    key = folder.resolve()
    with _cleaned_lock:
        if key in _cleaned:
            return
        _cleaned.add(key)
    remove_stale_parts(folder)


def check_target(target: Path, force: bool) -> None:
    """Refuse up front what would fail or surprise only after a long encode or decode."""
    if not target.parent.is_dir():
        raise CodecError(f"output folder does not exist: {shorten(target.parent, 200)}")
    if target.is_dir():
        raise CodecError(f"output is a directory: {shorten(target, 200)}")
    if target.exists() and not force:
        raise OutputExistsError(f"output exists: {shorten(target, 200)} (use --force to overwrite)")


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether two paths name one file: the same path once resolved, or (through a symlink or a
    hard link) the same inode."""
    try:
        if Path(a).resolve() == Path(b).resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop
        pass
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def refuse_source_as_output(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Never write an output over the file it is made from, even with ``--force``."""
    if same_file(source, target):
        raise CodecError(
            f"output {shorten(target, 200)} is the input file itself (the same path or a link to it): "
            "choose another output name"
        )


def _sync(path: Path) -> None:
    """Flush a file's (or folder's) data to the disk: a replaced file must never become an empty
    or truncated one after a power loss (the data is written late on many filesystems)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a filesystem or folder that cannot be synced: the best it allows
        pass
    finally:
        os.close(fd)


def _publish(tmp: Path, target: Path, force: bool) -> None:
    """Move the finished ``tmp`` to ``target``; without ``force`` only if ``target`` still does not
    exist. Synced first, and the folder after: this may replace a user's own photo (a saved
    rotation), whose old bytes must survive until the new ones are safely on disk."""
    _sync(tmp)
    if force:
        os.replace(tmp, target)
        _sync(target.parent)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputExistsError(f"output exists: {shorten(target, 200)} (use --force to overwrite)") from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(target):
            raise OutputExistsError(f"output exists: {shorten(target, 200)} (use --force to overwrite)") from None
        os.replace(tmp, target)  # this filesystem has no hard links: the best it allows
        _sync(target.parent)
        return
    tmp.unlink()
    _sync(target.parent)


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; it becomes ``path`` only if the block succeeds.

    On any exception (including KeyboardInterrupt and ``Terminated``) the temporary file is
    removed and ``path`` is left exactly as it was; without ``force`` an existing ``path`` is
    never replaced, even one that appeared while the block ran (``OutputExistsError``).
    """
    target = Path(path)
    check_target(target, force)
    _clean_once(target.parent)
    tmp = temporary_path(target)
    try:
        # os.open with 0o666 lets the umask decide permissions, as a plain open() would.
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as exc:
        raise CodecError(f"cannot write to folder {shorten(target.parent, 200)}: {exc.strerror}") from exc
    try:
        yield tmp
        _publish(tmp, target, force)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; OSErrors become one-line CodecErrors."""
    try:
        with atomic_output(path, force=force) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise CodecError(f"cannot write {shorten(path, 200)}: {exc.strerror or exc}") from exc


def _raise_terminated(signum, frame) -> None:
    signal.signal(signum, signal.SIG_IGN)  # a second SIGTERM must not interrupt the clean-up
    raise Terminated()


@contextmanager
def terminate_like_interrupt() -> Iterator[None]:
    """While active, SIGTERM raises ``Terminated`` (a KeyboardInterrupt), so every ``finally``
    and ``atomic_output`` cleans up as for Ctrl-C. Only the main thread can take signals; on
    another thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
