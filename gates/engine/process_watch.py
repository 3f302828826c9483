"""Run one command in its own session, watched: wall time, peak memory, signals.

The test suite of a distillation project is run once, in a child process that
leads its own process group, so that a timeout can kill everything it started
(workers, servers, a stray `sleep`) with one `killpg`. While it runs, the
watcher samples the process tree with psutil twice a second (listing it
costs milliseconds, so sampling more often would slow the suite it
measures) and keeps the largest total resident set seen; the child itself is reaped with `os.wait4`, whose rusage
gives the child's own high-water mark even between polls. Output goes to a
file, never a pipe, so a chatty suite cannot dead-lock on a full buffer:

    >>> run = run_watched(["python", "-c", "print(1)"], cwd=Path("."), log_path=Path("out.log"))
    >>> run.returncode, run.timed_out
    (0, False)
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import psutil

from gates.engine import children

POLL_S = 0.05  # how soon an exit is noticed (a wait4 syscall: cheap)
RSS_POLL_S = 0.5  # how often the tree is measured (listing /proc: a few ms each)
KILL_GRACE_S = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchedRun:
    """How a watched command ended. `signal_name` is set when a signal ended it."""

    returncode: int
    timed_out: bool
    wall_s: float
    peak_rss_mb: float
    log_path: Path

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    def output_tail(self, max_chars: int = 4000) -> str:
        """The last characters the command wrote (stdout and stderr together)."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - max_chars))
                return handle.read().decode("utf-8", "replace")
        except OSError:
            return ""


def _tree_rss_bytes(root: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, now."""
    total = 0
    try:
        members = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue  # it exited between listing and reading: nothing to add
    return total


def _kill_group(pgid: int) -> None:
    """SIGTERM the whole group, then SIGKILL whatever is left after a grace."""
    for sig, wait_s in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(POLL_S)


def run_watched(argv: list[str], *, cwd: Path, log_path: Path, timeout_s: float = 600.0,
                env: Mapping[str, str] | None = None) -> WatchedRun:
    """Run `argv` to completion or timeout; never raises for the child's own failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env) if env is not None else None,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    children.register(proc)  # an interrupted assessment stops this group too
    try:
        return _watch(proc, started, timeout_s, log_path)
    finally:
        children.forget(proc)


def _watch(proc: subprocess.Popen, started: float, timeout_s: float, log_path: Path) -> WatchedRun:
    watched = psutil.Process(proc.pid)
    peak = 0
    timed_out = False
    status = None
    rusage_peak = 0
    next_sample = started + POLL_S
    while status is None:
        pid, raw_status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status = raw_status
            rusage_peak = rusage.ru_maxrss * 1024  # Linux reports KiB
            break
        now = time.monotonic()
        if now >= next_sample:
            peak = max(peak, _tree_rss_bytes(watched))
            next_sample = now + RSS_POLL_S
        if now - started > timeout_s:
            timed_out = True
            _kill_group(proc.pid)
            _, status, rusage = os.wait4(proc.pid, 0)
            rusage_peak = rusage.ru_maxrss * 1024
            break
        time.sleep(POLL_S)
    wall_s = time.monotonic() - started
    returncode = os.waitstatus_to_exitcode(status)
    proc.returncode = returncode  # reaped here; keeps Popen from waiting again
    if not timed_out:
        _kill_group(proc.pid)  # a child that daemonised must not outlive the run
    return WatchedRun(returncode=returncode, timed_out=timed_out, wall_s=wall_s,
                      peak_rss_mb=max(peak, rusage_peak) / 2**20, log_path=log_path)
