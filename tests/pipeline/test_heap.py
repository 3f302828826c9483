"""The C allocator's settings: freed large blocks go back to the OS."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline import heap

ROOT = Path(__file__).resolve().parents[2]

# One 2 MB array made and freed (glibc's dynamic mmap threshold then climbs above 2 MB), then
# 300 more, each followed by a small allocation that stays alive (so a heap could not simply
# shrink from its top), then the arrays are freed: resident MB before, full, after.
CHURN = textwrap.dedent("""
    import sys
    import numpy as np
    from pipeline import heap
    if sys.argv[1] == "configured":
        assert heap.configure()
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
    base = rss()
    np.ones(2**18).sum()  # a first large block freed: glibc's own threshold would climb past 2 MB
    big, small = [], []
    for i in range(300):
        big.append(np.ones(2**18))  # 2 MB, touched
        small.append(np.ones(64))
    full = rss()
    del big
    if sys.argv[2] == "trim":
        heap.trim()
    print(base, full, rss())
""")

# Configured: the MB glibc holds in blocks mapped on their own (mallinfo2's hblkhd) grow by a 2 MB
# array made inside `plain_allocation()`, and by one made after it; then the churn above inside it:
# resident MB before, full, after the arrays are freed inside it, and after it is left.
PLAIN_CHURN = textwrap.dedent("""
    import ctypes
    import numpy as np
    from pipeline import heap
    assert heap.configure()
    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                    "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    def rss():
        return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
    def mapped_by(make):
        before = libc.mallinfo2().hblkhd
        kept = make()
        return (libc.mallinfo2().hblkhd - before) / 2**20, kept
    with heap.plain_allocation():  # nothing freed yet: no hole in the heap a block could reuse
        mapped_inside, kept_inside = mapped_by(lambda: np.ones(2**18))
    mapped_after, kept_after = mapped_by(lambda: np.ones(2**18))
    base = rss()
    with heap.plain_allocation() as made:
        assert made
        big, small = [], []
        for i in range(300):
            big.append(np.ones(2**18))
            small.append(np.ones(64))
        full = rss()
        del big
        inside = rss()
    print(base, full, inside, rss(), mapped_inside, mapped_after)
""")


def churn(mode: str, trim: str) -> tuple[float, float, float]:
    out = subprocess.run([sys.executable, "-c", CHURN, mode, trim], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    base, full, after = (float(v) for v in out.split())
    return base, full, after


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_large_arrays_leave_the_process_once_configured_or_trimmed() -> None:
    base, full, after = churn("configured", "no trim")
    assert full - base > 500  # the arrays were resident
    assert after - base < 50  # and every one of them went back as it was freed
    base, full, after = churn("plain", "no trim")
    assert after - base > 500  # the control: glibc's own settings keep them in its heap
    base, full, after = churn("plain", "trim")
    assert after - base < 50  # until a trim hands the free pages back


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_plain_allocation_reuses_freed_blocks_while_it_lasts_and_gives_them_back_after() -> None:
    out = subprocess.run([sys.executable, "-c", PLAIN_CHURN], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    base, full, inside, after, mapped_inside, mapped_after = (float(v) for v in out.split())
    assert full - base > 500
    assert inside - base > 500  # 2 MB blocks came from the heap, as in a plain process: kept for reuse
    assert after - base < 50  # the heap was trimmed on the way out
    assert mapped_inside == 0  # a 2 MB block inside comes from the heap
    assert mapped_after >= 2  # and after it, the fixed threshold is back: mapped on its own


def test_elsewhere_than_glibc_the_settings_say_they_did_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    assert heap.configure() is False and heap.trim() is False and heap.release() is False
    with heap.plain_allocation() as made:
        assert made is False


PROGRAMS = textwrap.dedent("""
    import gc
    import numpy as np
    from pipeline import heap
    gc.disable()  # only release() may collect
    heap.release()
    class Node:
        pass
    def rss():
        return heap.resident_bytes() / 2**20
    base = rss()
""")

CYCLES = PROGRAMS + textwrap.dedent("""
    for _ in range(3):  # a loaded program: objects pointing at each other, holding big arrays
        a, b = Node(), Node()
        a.other, b.other, a.weights = b, a, np.ones(2**25)  # 256 MB, touched
        del a, b
    full = rss()
    heap.release()
    print(base, full, rss())
""")


def _figures(script: str) -> tuple[float, ...]:
    """The MB figures a script prints, run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    return tuple(float(v) for v in out.split())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and glibc")
def test_release_collects_dropped_cycles_once_the_process_has_grown() -> None:
    base, full, after = _figures(CYCLES)
    assert full - base > 700  # three cycles of 256 MB each, unreachable but not yet collected
    assert after - base < 50


LATE_DROP = PROGRAMS + textwrap.dedent("""
    a, b = Node(), Node()
    a.other, b.other, a.weights = b, a, np.ones(2**25)  # a loaded program, still in use: 256 MB
    heap.release()  # made while the program is alive: the process now 'settled' with it
    del a, b  # the program is dropped afterwards
    heap.release()
    held = rss()
    heap.release(collect=True)  # what a caller that just dropped a program asks for
    print(base, held, rss())
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and glibc")
def test_a_program_dropped_after_a_release_is_collected_when_the_caller_asks() -> None:
    base, held, after = _figures(LATE_DROP)
    assert held - base > 200  # the growth rule alone does not see it: the process did not grow since
    assert after - base < 50


def test_a_dropped_graph_is_collected_at_once_only_when_it_holds_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full collection costs 0.2-0.3 s whatever it frees: a small model's programs wait for the next one."""
    asked: list[bool] = []
    monkeypatch.setattr(heap, "release", lambda collect=False: asked.append(collect) or True)
    heap.release_dropped(heap.COLLECT_DROPPED - 1)
    heap.release_dropped(heap.COLLECT_DROPPED)
    heap.release_dropped(10 * heap.COLLECT_DROPPED)
    assert asked == [False, True, True]
