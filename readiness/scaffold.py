"""`readiness init`: a commented configuration to start from."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from readiness.exit_codes import HarnessError
from reports.writer import write_text


def template() -> str:
    return resources.files("readiness").joinpath("data/readiness.toml.template").read_text(encoding="utf-8")


def write_config(path: Path, force: bool = False) -> Path:
    if path.exists() and not force:
        raise HarnessError(f"{path}: already exists (use --force to overwrite)")
    write_text(template(), path)
    return path
