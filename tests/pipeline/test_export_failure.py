"""Describing an export exception: one line for a table, the whole message and the model line for a detail."""

from __future__ import annotations

from pipeline.export_failure import Failure, describe

TORCH_POINTER = ('Could not guard on data-dependent expression Eq(u0, 1)\n\nmore help\n'
                 'The following call raised this error:\n'
                 '  File "/somewhere/else/my_model.py", line 7, in forward\n'
                 '    if x.any():\n')


def test_without_a_model_frame_torchs_own_pointer_names_the_line():
    failure = describe(RuntimeError(TORCH_POINTER))  # never raised: no traceback at all
    assert failure.location == "/somewhere/else/my_model.py:7 in forward"
    assert failure.line == ("RuntimeError: Could not guard on data-dependent expression Eq(u0, 1) "
                            "(at /somewhere/else/my_model.py:7 in forward)")
    assert failure.detail.startswith("model code: /somewhere/else/my_model.py:7 in forward\n\n")
    assert failure.detail.endswith("if x.any():")  # the whole message, not its first line


def test_the_innermost_model_frame_of_the_traceback_is_named():
    def forward():
        raise ValueError("bad value\nsecond line")

    try:
        forward()
    except ValueError as exc:
        failure = describe(exc)
    line = forward.__code__.co_firstlineno + 1
    assert failure.location.endswith(f"test_export_failure.py:{line} in forward")
    assert "\n" not in failure.line and failure.detail.endswith("bad value\nsecond line")


def test_a_message_without_a_location_stays_plain():
    failure = Failure(kind="UserError", message="Constraints violated (T)!\n  - guard (T % 2) == 0")
    assert failure.line == "UserError: Constraints violated (T)!"
    assert failure.detail == "UserError: Constraints violated (T)!\n  - guard (T % 2) == 0"
