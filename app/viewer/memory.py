"""Freed memory handed back to the system after a big image comes or goes.

Why: glibc keeps what a process frees in its heaps for the next allocation, and decoding a big
image frees a lot in pieces it cannot return on its own (a 15000x15000 1-bit PNG left the viewer
at 915 MB resident after it showed, its decoding buffers long freed). ``malloc_trim`` returns
the free pages; it walks the heaps, a few milliseconds, so it runs only after big images.
"""

from __future__ import annotations

import ctypes
import platform

BIG_BYTES = 32 * 2**20  # an image this big (decoded) is worth a trim when it comes or goes


def _libc():
    if platform.system() != "Linux":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


def give_back_freed_memory(nbytes: int = BIG_BYTES) -> bool:
    """Return freed heap pages to the system when ``nbytes`` (what just came or went) is big;
    True when a trim ran. Nothing off glibc."""
    if _LIBC is None or nbytes < BIG_BYTES:
        return False
    _LIBC.malloc_trim(0)
    return True
