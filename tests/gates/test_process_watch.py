"""process_watch: exit codes, signals, timeouts that kill the whole group."""

from __future__ import annotations

import sys
import time

import psutil

from gates.process_watch import run_watched


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_exit_code_and_output_are_kept(tmp_path):
    run = run_watched(python("print('hello'); raise SystemExit(3)"), cwd=tmp_path,
                      log_path=tmp_path / "out.txt")
    assert (run.returncode, run.timed_out, run.signal_name) == (3, False, None)
    assert run.output_tail().strip() == "hello"
    assert run.peak_rss_mb > 0


def test_signal_that_ended_the_child_is_named(tmp_path):
    run = run_watched(python("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"),
                      cwd=tmp_path, log_path=tmp_path / "out.txt")
    assert run.signal_name == "SIGSEGV"


def test_timeout_kills_grandchildren_too(tmp_path):
    pid_file = tmp_path / "pid"
    code = ("import subprocess, time, pathlib; p = subprocess.Popen(['sleep', '60']); "
            f"pathlib.Path({str(pid_file)!r}).write_text(str(p.pid)); time.sleep(60)")
    run = run_watched(python(code), cwd=tmp_path, log_path=tmp_path / "out.txt", timeout_s=1.0)
    assert run.timed_out
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the grandchild outlived the timeout")
