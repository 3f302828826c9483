"""process_watch: exit codes, signals, timeouts that kill the whole group."""

from __future__ import annotations

import sys

from gates.engine import process_watch
from gates.engine.process_watch import run_watched
from tests.fixtures.processes import HANG_GUARD_S, ClockAfter, wait_until_gone


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


def test_timeout_kills_grandchildren_too(tmp_path, monkeypatch):
    # The timeout fires once the grandchild runs (the clock leaps on its pid file),
    # however long a busy machine takes to get there.
    pid_file = tmp_path / "pid"
    code = ("import os, subprocess, time, pathlib; p = subprocess.Popen(['sleep', '600']); "
            f"pathlib.Path({str(pid_file)!r} + '.partial').write_text(str(p.pid)); "
            f"os.replace({str(pid_file)!r} + '.partial', {str(pid_file)!r}); time.sleep(600)")
    monkeypatch.setattr(process_watch, "time", ClockAfter(pid_file))
    run = run_watched(python(code), cwd=tmp_path, log_path=tmp_path / "out.txt", timeout_s=HANG_GUARD_S)
    assert run.timed_out
    assert run.signal_name == "SIGTERM"
    assert wait_until_gone(int(pid_file.read_text())), "the grandchild outlived the timeout"
