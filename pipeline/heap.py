"""Keeping the process's resident size near what it holds: the C allocator's settings and trims.

A model gate allocates and frees thousands of arrays of a few MB to a few
hundred MB (activations of every layer at every length). glibc's malloc
serves those under its dynamic mmap threshold (which climbs to 32 MB after
the first large free) from its heaps, one per thread that allocated, and
keeps what was freed there: the resident size creeps up by GBs while what
is live stays flat. These calls keep it honest:

- `configure()` (at start: `readiness.assessment.assess` calls it, so an
  in-process caller gets it as the CLI does): a fixed mmap threshold, so every block of
  `MMAP_THRESHOLD` bytes or more is mapped on its own and returned to the
  OS when freed, and at most `ARENA_MAX` heaps;
- `plain_allocation()` (around the performance gate's timing): glibc's own threshold
  while runtimes are timed, so they are timed as in a user's process;
- `trim()` (between gates, between a gate's large steps): hands the free
  pages left in the heaps back to the OS (`malloc_trim`); `release()` first
  collects the reference cycles a dropped object graph may sit in (a loaded
  MIL program is one: its ops and vars point at each other), then trims.

`drop_pages()` takes a shared file map's pages out of the resident size
(`pipeline.mapped_weights` parks a torch model's weights with it).
Elsewhere than glibc (macOS, musl) both do nothing and say so (`False`).
What it costs: a mapped block is zero-filled page by page when first
written, about 5 % more CPU in a MIL interpreter run of a 125M decoder at
T=1024 (user+sys 24.0 s -> 25.5 s over three runs, 1.4 M page faults instead
of 0.6 M); tests/pipeline/test_heap.py shows what it returns.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import gc
import sys
from typing import Iterator

MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large are mapped, and unmapped when freed
PLAIN_MMAP_THRESHOLD = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: where a plain process settles
ARENA_MAX = 2  # heaps: the gates' threads share them instead of each keeping its own
_M_MMAP_THRESHOLD = -3  # mallopt parameter numbers (malloc.h)
_M_ARENA_MAX = -8
_PAGE = 4096


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only: musl has no such symbol
        return libc
    except (OSError, AttributeError):
        return None


def configure() -> bool:
    """Fixed mmap threshold and a bounded number of heaps (see the module docstring)."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(_M_ARENA_MAX, ARENA_MAX))


@contextlib.contextmanager
def plain_allocation() -> Iterator[bool]:
    """Within: the mmap threshold a plain process settles at (glibc's dynamic threshold climbs to
    `PLAIN_MMAP_THRESHOLD` after the first large frees), so blocks below it are reused from the
    heaps instead of mapped and zero-filled page by page on every call; after: the fixed
    threshold again, and a trim. For timing: at 1 MB, a 125M decoder's eager prefill at
    T=1024 takes 25 % longer than in a user's own process (sys time of 0.9 M page faults a
    call instead of 0.6 M). Yields whether the setting was made (glibc only)."""
    libc = _glibc()
    if libc is None:
        yield False
        return
    made = bool(libc.mallopt(_M_MMAP_THRESHOLD, PLAIN_MMAP_THRESHOLD))
    try:
        yield made
    finally:
        if made:
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            trim()


def trim() -> bool:
    """Give the heaps' free pages back to the OS; True when glibc released some."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


_MADV_DONTNEED = 4  # madvise advice (Linux): drop these pages; a file's are read again when touched


def drop_pages(start: int, end: int) -> bool:
    """Take the pages of a shared file map between addresses `start` and `end` out of the
    resident size (the span is widened to whole pages: the map is whole pages of the file);
    they are read back from the file when next touched.

    Only for a shared map of a file: a private or anonymous page dropped loses what was written."""
    libc = _glibc()
    if libc is None or end <= start:
        return False
    first, last = start // _PAGE * _PAGE, -(-end // _PAGE) * _PAGE
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    return libc.madvise(first, last - first, _MADV_DONTNEED) == 0


COLLECT_GROWTH = 256 << 20  # bytes the process grew since the last release before a collection pays
COLLECT_DROPPED = 32 << 20  # bytes a dropped object graph holds before collecting it at once pays
_settled = 0  # resident bytes right after the last release


def resident_bytes() -> int:
    """This process's resident size (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def release(collect: bool = False) -> bool:
    """Free what dropped object graphs still hold (their reference cycles), then `trim()`.

    A full collection costs about 0.2 s once torch and coremltools are loaded, so it runs
    only when the process grew by `COLLECT_GROWTH` since the last release (after a large
    model's gate, not after each step of a small one), or when asked (`collect`): a caller
    that just dropped a loaded program, whose cycles hold its weights, asks, since an
    earlier release may have been made while that program was still alive."""
    global _settled
    if collect or resident_bytes() - _settled >= COLLECT_GROWTH:
        gc.collect()
    freed = trim()
    _settled = resident_bytes()
    return freed


def release_dropped(nbytes: int) -> bool:
    """`release()` right after dropping an object graph that holds about `nbytes` (a loaded
    program and its weights, kept alive by its reference cycles): collected at once when it
    holds `COLLECT_DROPPED` or more; a smaller one waits for the next collection, since a full
    collection costs its 0.2-0.3 s however little it frees (most of a small model's assessment)."""
    return release(collect=nbytes >= COLLECT_DROPPED)
