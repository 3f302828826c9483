"""Fixtures shared by the gate tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import project_venv


@pytest.fixture(scope="session")
def project_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a project's own venv: the gates' tools plus `kdmath`, which
    readiness's environment lacks (about 0.1 s to build)."""
    return project_venv.build(tmp_path_factory.mktemp("project-venv") / "venv")
