"""Child processes started by gates, so an interrupted run can stop them all.

Gates that run tools (pytest, mutmut) start them through `spawn`, which puts
each in its own session (process group) and remembers it. When the user
interrupts an assessment (SIGINT, SIGTERM), the CLI calls `terminate_all`:
every group gets SIGTERM, then SIGKILL after a grace period, so no pytest or
mutmut keeps running after `readiness` has exited.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from typing import Any, Sequence

_lock = threading.Lock()
_groups: dict[int, subprocess.Popen] = {}
stop_requested = threading.Event()


class Interrupted(Exception):
    """The run was asked to stop (SIGINT / SIGTERM); raised at a safe point."""


def request_stop(signum: int = signal.SIGTERM) -> None:
    """Ask the run to stop: safe to call from a signal handler.

    Sets the flag the engine polls and sends SIGTERM to every child group
    now, so gates blocked on a child return promptly.
    """
    stop_requested.set()
    with _lock:
        live = [p for p in _groups.values() if p.poll() is None]
    for process in live:
        kill_group(process, signal.SIGTERM)


def raise_if_stopped() -> None:
    if stop_requested.is_set():
        raise Interrupted("interrupted")


def spawn(command: Sequence[str], **kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen` in a new process group that `terminate_all` can stop."""
    kwargs.setdefault("start_new_session", True)
    process = subprocess.Popen(list(command), **kwargs)
    register(process)
    return process


def register(process: subprocess.Popen) -> None:
    with _lock:
        _groups[process.pid] = process


def forget(process: subprocess.Popen) -> None:
    with _lock:
        _groups.pop(process.pid, None)


def kill_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by `process` (the process alone if it has none)."""
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            process.send_signal(sig)
        except (ProcessLookupError, OSError):
            pass


def running() -> list[int]:
    with _lock:
        return [pid for pid, p in _groups.items() if p.poll() is None]


def terminate_all(grace_s: float = 3.0) -> int:
    """SIGTERM every live group, SIGKILL what is left after `grace_s`; returns how many."""
    with _lock:
        live = [p for p in _groups.values() if p.poll() is None]
    for process in live:
        kill_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(p.poll() is None for p in live):
        time.sleep(0.05)
    for process in live:
        if process.poll() is None:
            kill_group(process, signal.SIGKILL)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
    with _lock:
        _groups.clear()
    return len(live)
