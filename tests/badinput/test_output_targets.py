"""Where a report is written: an output path that is not a regular file.

`readiness report doc.json -o /dev/null` (or a named pipe a CI step reads)
must write into it, not rename a temporary file over it: run as root, the
atomic rename replaced /dev/null itself with a regular file. Tested on a
FIFO in a temporary folder, never on /dev/null.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")


def test_report_written_to_a_named_pipe_keeps_the_pipe(tmp_path: Path) -> None:
    from reports.writer import write_text

    fifo = tmp_path / "report.pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader is there, so a writer does not block
    try:
        write_text("hello\n", fifo)
        assert stat.S_ISFIFO(os.stat(fifo).st_mode), "the pipe was replaced by a regular file"
        assert os.read(reader, 100) == b"hello\n"
    finally:
        os.close(reader)
