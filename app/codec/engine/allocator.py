"""glibc's allocator, set for decoding: which freed memory the process keeps (torch-free).

Every decoder tile allocates and frees buffers of tens of MB. Kept in the heap, they cost no page
faults the next time (the decoder's speed) but can pile up as holes that no later buffer fits
(its memory); given back, they cost a fault per page on reuse. ``keep_freed_memory`` sets the
balance by ``HYPERTHUMB_MALLOC``; ``malloc_environment`` hands a policy to a child process (the
viewer starts its codec service with ``release``). No torch here: the viewer imports it.
"""

import functools
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -3, -4, -8  # glibc's mallopt() parameters
KEEP_FREED_BYTES = 512 * 2**20
MALLOC_ARENAS = 2
MALLOC_POLICY_ENV = "HYPERTHUMB_MALLOC"  # keep (the default) | release | default (glibc's own settings)
RELEASE_ABOVE_BYTES = 16 * 2**20  # the "release" policy's mmap threshold: a 592x336 tile's activation is 38 MB
# glibc >= 2.35 then backs its mmap'ed blocks with transparent huge pages where the kernel allows
# it (THP "madvise" mode): a fresh 38 MB buffer costs 19 page faults instead of ~9,700. Read only
# at process start, so ``malloc_environment`` hands it to a child process (the codec service).
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"


def malloc_policy(environ=None) -> str:
    """``HYPERTHUMB_MALLOC``: ``keep``, ``release`` or ``default`` (anything else reads as keep)."""
    value = (os.environ if environ is None else environ).get(MALLOC_POLICY_ENV, "").strip().lower()
    return value if value in ("release", "default") else "keep"


def malloc_environment(policy: str, environ=None) -> dict[str, str]:
    """The variables a child process needs to run under ``policy`` (see ``keep_freed_memory``):
    the policy itself and, for ``release``, glibc's huge-page tunable added to any the user set.
    A policy the user set in ``environ`` (default: this process's) wins."""
    environ = os.environ if environ is None else environ
    if MALLOC_POLICY_ENV in environ:
        policy = malloc_policy(environ)
    extra = {MALLOC_POLICY_ENV: policy}
    tunables = environ.get("GLIBC_TUNABLES", "")
    if policy == "release" and "glibc.malloc.hugetlb" not in tunables:
        extra["GLIBC_TUNABLES"] = f"{tunables}:{HUGE_PAGES_TUNABLE}" if tunables else HUGE_PAGES_TUNABLE
    return extra


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's allocator for decoding, by ``malloc_policy()``; True where it was set.

    ``keep`` (the CLI, bench, training): serve big tensors from the heap and keep up to 512 MB of
    freed memory instead of returning it to the kernel: the decoder's buffers are freed and
    allocated again every tile, and on Linux each fresh page costs a fault. Measured on the
    2-core dev VM: bf16 viewport decode 128 -> 80 ms, float32 450 -> 190 ms (tile 512). It pays
    where the tiles share one shape (``tiling.fixed_shape_contexts``): a 24 MP CLI decode peaks
    at 650-780 MB (966-1,042 MB with tiles of several shapes). Pieces of many shapes leave holes
    no later one fits: the viewer's pieces and views, decoded in one process, held 1.1-1.2 GB.

    ``release`` (the viewer's codec service, which decodes pieces of every shape): blocks of 16 MB
    and more are mmap'ed and given back when freed, with huge pages where ``HUGE_PAGES_TUNABLE`` was
    set at start. Measured on a 24 MP FINE file (AVX2 EPYC, float32; docs/PERFORMANCE.md): the
    service's peak while viewing 819-1,080 -> 704-744 MB, its last visible tile +16% (median of
    5 ``app.viewer.measure`` runs; +20% without huge pages).

    Under both, the heaps are capped at ``MALLOC_ARENAS``: glibc gives each new thread that
    allocates its own heap, and each heap kept its own freed tiles, so the viewer's codec service
    (a decoding lane, the detail prefetch, torch's threads) held several copies of the same
    buffers (2-core Xeon, service pattern: 952 -> ~750 MB, same speed). No-op off glibc;
    ``default`` opts out, and a ``MALLOC_ARENA_MAX`` set by the user is left alone."""
    policy = malloc_policy()
    if policy == "default" or platform.system() != "Linux":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        if "MALLOC_ARENA_MAX" not in os.environ:
            libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
        if policy == "release":
            return bool(libc.mallopt(_M_MMAP_THRESHOLD, RELEASE_ABOVE_BYTES))
        return bool(libc.mallopt(_M_MMAP_MAX, 0) and libc.mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES))
    except (OSError, AttributeError):
        return False
