"""Write output files all-or-nothing.

A failed, cancelled or interrupted write must never leave a half-written photo behind, nor
clobber an existing file the user did not ask to overwrite. Output goes to a hidden
``.NAME.XXXX.part`` file in the same folder (same filesystem, so the final ``os.replace``
is atomic) and is renamed into place only once it is complete.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.codec.errors import CodecError, OutputExistsError


def _check_target(target: Path, force: bool) -> None:
    """Refuse up front what would fail or surprise only after a long encode."""
    if not target.parent.is_dir():
        raise CodecError(f"output folder does not exist: {target.parent}")
    if target.is_dir():
        raise CodecError(f"output is a directory: {target}")
    if target.exists() and not force:
        raise OutputExistsError(f"output exists: {target} (use --force to overwrite)")


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` only if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed and
    ``path`` is left exactly as it was.
    """
    target = Path(path)
    _check_target(target, force)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        # os.open with 0o666 lets the umask decide permissions, as a plain open() would.
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as exc:
        raise CodecError(f"cannot write to folder {target.parent}: {exc.strerror}") from exc
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; OSErrors become one-line CodecErrors."""
    try:
        with atomic_output(path, force=force) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise CodecError(f"cannot write {path}: {exc.strerror or exc}") from exc
