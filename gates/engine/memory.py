"""Peak resident memory of each gate: Readiness's own process and the processes it starts.

Three readings make a gate's peak:
- the process's high-water mark (`VmHWM`, Linux): when it rose while the gate
  ran, the gate set a new peak and the mark is that peak, exactly;
- the process's resident size, sampled every `OWN_SAMPLE_S` (reading
  `/proc/self/statm` costs microseconds), for a gate that stays under an
  earlier gate's mark;
- the resident size of the child processes a gate starts (pytest, mutmut),
  sampled every `TREE_SAMPLE_S` (listing the process tree costs milliseconds)
  and added to the process's own size at that moment.

The mark is read, never reset: resetting it would also lower what `time -v`
or a parent's `getrusage` reports for the whole run. Gates that run at the
same time (`--jobs` above 1) share one process, so each one's peak includes
what the others held.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil

OWN_SAMPLE_S = 0.02
TREE_SAMPLE_S = 0.5
_STATUS = Path("/proc/self/status")
_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _high_water_bytes() -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _children_rss_bytes(process: psutil.Process) -> int:
    total = 0
    try:
        children = process.children(recursive=True)
    except psutil.Error:
        return 0
    for child in children:
        try:
            total += child.memory_info().rss
        except psutil.Error:
            continue  # it exited between listing and reading
    return total


class PeakMeter:
    """Measures each gate's peak resident memory while the engine runs.

    `start(name)` when a gate begins, `stop(name)` when it ends (returns MiB).
    A sampling thread runs only while at least one gate is being measured.
    """

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self._peaks: dict[str, int] = {}
        self._marks: dict[str, int | None] = {}
        self._children = 0
        self._thread: threading.Thread | None = None
        self.samples = 0  # how many times the sampler has measured (tests wait on it)

    def _own_rss_bytes(self) -> int:
        try:
            return int(_STATM.read_text().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return int(self._process.memory_info().rss)

    def start(self, name: str) -> None:
        mark = _high_water_bytes()
        self._children = _children_rss_bytes(self._process)
        now = self._own_rss_bytes() + self._children
        with self._lock:
            self._marks[name] = mark
            self._peaks[name] = now
            if self._thread is None:
                self._thread = threading.Thread(target=self._sample, daemon=True, name="peak-rss")
                self._thread.start()

    def stop(self, name: str) -> float | None:
        """The gate's peak in MiB, or None when it was never started."""
        now = self._own_rss_bytes() + _children_rss_bytes(self._process)
        mark = _high_water_bytes()
        with self._lock:
            sampled = self._peaks.pop(name, None)
            mark_before = self._marks.pop(name, None)
        if sampled is None:
            return None
        peak = max(sampled, now)
        if mark is not None and mark_before is not None and mark > mark_before:
            peak = max(peak, mark)  # the process's record was set while this gate ran
        return round(peak / 2**20, 1)

    def _sample(self) -> None:
        ticks_per_tree = max(1, round(TREE_SAMPLE_S / OWN_SAMPLE_S))
        tick = 0
        while True:
            time.sleep(OWN_SAMPLE_S)
            tick += 1
            if tick % ticks_per_tree == 0:
                self._children = _children_rss_bytes(self._process)
            rss = self._own_rss_bytes() + self._children
            with self._lock:
                if not self._peaks:
                    self._thread = None
                    return
                self.samples += 1
                for name, peak in self._peaks.items():
                    if rss > peak:
                        self._peaks[name] = rss
