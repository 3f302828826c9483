"""Exit codes of `readiness` and the errors that map to code 2 without a traceback."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    SHIP = 0  # the model may ship
    SELECTED_PASSED = 0  # a partial run (--gate, --skip): the selected gates passed; not a ship decision
    NO_SHIP = 1  # it may not: a blocker failed, the score is under the bar, or it regressed
    HARNESS = 2  # the harness could not run: bad configuration, unreadable input
    INTERRUPTED = 130  # stopped by SIGINT (128 + 2); nothing half-written was left
    TERMINATED = 143  # stopped by SIGTERM (128 + 15), as shells and CI runners expect


class HarnessError(Exception):
    """The harness cannot run; the message is one line naming the file and the problem."""

    @staticmethod
    def expected() -> tuple[type[BaseException], ...]:
        """Exception types that are the user's input, not a bug: shown as one line."""
        from gates.engine.registry import PluginError
        from gates.engine.scheduler import DependencyCycle
        from readiness.config import ConfigError
        from readiness.document import DocumentError
        from readiness.history.store import HistoryError

        return (HarnessError, ConfigError, DocumentError, PluginError, DependencyCycle, HistoryError, OSError)
