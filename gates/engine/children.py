"""Child processes and temporary folders of gates, so an interrupted run can tidy up.

Gates that run tools (pytest, mutmut) start them through `spawn`, which puts
each in its own session (process group) and remembers it. When the user
interrupts an assessment (SIGINT, SIGTERM), the CLI calls `terminate_all`:
every group gets SIGTERM, then SIGKILL after a grace period, so no pytest or
mutmut keeps running after `readiness` has exited. A child registered after
the stop was asked for is stopped at once.

Gates run in daemon threads that die with the process, so a `finally` in a
gate is not enough to remove a temporary folder (the mutation workspace, a
copy of the project). A gate `track`s such a folder and `release`s it when
done; after an interrupt the CLI calls `remove_folders`, which gives the
gates a moment to finish their own tidying (the mutation gate stores the
mutants it already decided), then removes whatever is still tracked.
`stop_signal()` says which signal asked for the stop, for the exit status.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Sequence

_lock = threading.Lock()
_groups: dict[int, subprocess.Popen] = {}
_folders: set[Path] = set()
_released = threading.Condition(_lock)
_signal: list[int] = []  # the signal that asked for the stop, when one did
stop_requested = threading.Event()


class Interrupted(Exception):
    """The run was asked to stop (SIGINT / SIGTERM); raised at a safe point."""


def request_stop(signum: int = signal.SIGTERM) -> None:
    """Ask the run to stop: safe to call from a signal handler.

    Sets the flag the engine polls and sends SIGTERM to every child group
    now, so gates blocked on a child return promptly.
    """
    _signal[:] = [int(signum)]
    stop_requested.set()
    with _lock:
        live = [p for p in _groups.values() if p.poll() is None]
    for process in live:
        kill_group(process, signal.SIGTERM)


def stop_signal() -> int | None:
    """The signal that asked this run to stop, if any."""
    return _signal[0] if _signal else None


def reset() -> None:
    """Forget an earlier run's stop (one process may run several assessments)."""
    _signal.clear()
    stop_requested.clear()


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
    if stop_requested.is_set():  # started while the run was being stopped: stop it too
        kill_group(process, signal.SIGTERM)


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


def track(folder: Path) -> Path:
    """Remember a temporary folder that an interrupted run must remove; returns it."""
    with _lock:
        _folders.add(Path(folder))
    return Path(folder)


def release(folder: Path, *, remove: bool = True) -> None:
    """The owner is done with `folder`: remove it (unless asked to keep it) and forget it."""
    if remove:
        shutil.rmtree(folder, ignore_errors=True)
    with _released:
        _folders.discard(Path(folder))
        _released.notify_all()


def remove_folders(wait_s: float = 60.0) -> int:
    """After an interrupt: let owners release their folders, then remove the rest.

    `wait_s` only guards against a gate that never returns; a second Ctrl-C
    cuts the wait short. Returns how many folders were removed here.
    """
    deadline = time.monotonic() + wait_s
    try:
        with _released:
            while _folders and time.monotonic() < deadline:
                _released.wait(timeout=0.1)
    except KeyboardInterrupt:
        pass  # asked twice: stop waiting, still remove
    with _lock:
        left = list(_folders)
        _folders.clear()
    for folder in left:
        shutil.rmtree(folder, ignore_errors=True)
    return len(left)
