"""Building a GateContext around the demo model or a seeded defect (shared by model-gate tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gates.engine.protocol import GateContext
from gates.engine.spec import ModelSpec, ProjectSpec
from tests.fixtures.models import REPO_ROOT, demo

DEFECTS = "tests.fixtures.models.defects"


def model_context(settings: Any, work_dir: Path, *, adapter: str = "builtin:student",
                  checkpoint: Path | None = None, tokenizer: Path | None | str = "demo") -> GateContext:
    assets = demo()
    model = ModelSpec(adapter=adapter, checkpoint=checkpoint or assets.checkpoint,
                      tokenizer=assets.tokenizer if tokenizer == "demo" else tokenizer)
    return GateContext(spec=ProjectSpec(name="model", root=REPO_ROOT, model=model),
                       settings=settings, work_dir=work_dir)
