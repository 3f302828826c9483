"""children: what an interrupted run stops and removes."""

from __future__ import annotations

import signal
import sys
import threading
import time

import pytest

from gates.engine import children

HANG_GUARD_S = 120.0


@pytest.fixture(autouse=True)
def fresh_run():
    children.reset()
    yield
    children.reset()
    children.remove_folders(wait_s=0)


def test_the_stop_signal_is_remembered_for_the_exit_status():
    assert children.stop_signal() is None
    children.request_stop(signal.SIGTERM)
    assert children.stop_signal() == signal.SIGTERM
    children.reset()
    assert children.stop_signal() is None and not children.stop_requested.is_set()


def test_a_child_started_after_the_stop_is_stopped_at_once():
    children.request_stop(signal.SIGINT)
    process = children.spawn([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert process.wait(timeout=HANG_GUARD_S) == -signal.SIGTERM
    finally:
        children.kill_group(process)
        children.forget(process)


def test_folders_left_tracked_are_removed_and_released_ones_kept(tmp_path):
    kept, left = tmp_path / "kept", tmp_path / "left"
    for folder in (kept, left):
        folder.mkdir()
        children.track(folder)
    children.release(kept, remove=False)  # e.g. keep_copy = true
    assert children.remove_folders(wait_s=0) == 1
    assert kept.is_dir() and not left.exists()


def test_the_owner_gets_to_tidy_its_folder_before_it_is_removed(tmp_path):
    folder = tmp_path / "workspace"
    folder.mkdir()
    children.track(folder)
    removed: list[int] = []
    waiter = threading.Thread(target=lambda: removed.append(children.remove_folders(wait_s=HANG_GUARD_S)))
    waiter.start()
    deadline = time.monotonic() + HANG_GUARD_S
    while not children._released._waiters and time.monotonic() < deadline:  # noqa: SLF001 - waiting is the event
        time.sleep(0.01)
    (folder / "stored").write_text("what the gate kept")  # the owner still works in it
    children.release(folder, remove=False)
    waiter.join(timeout=HANG_GUARD_S)
    assert removed == [0] and (folder / "stored").is_file()
