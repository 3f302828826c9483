"""What one assessment looks at: the model, the code behind it, the tiers.

`ProjectSpec` describes the project in standard-library types, so gates never
import the `readiness` package that loads the configuration; `readiness`
builds one from the validated configuration, paths made absolute.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # standard library only at run time: the records come built from the configuration
    from pipeline.module_io import ModuleIO


@dataclass(frozen=True, slots=True, kw_only=True)
class Tier:
    """Minimum percentages a critical module of this tier must reach."""

    line_pct: float
    branch_pct: float
    mutation_pct: float


DEFAULT_TIERS: Mapping[str, Tier] = {
    "1": Tier(line_pct=85.0, branch_pct=90.0, mutation_pct=70.0),
    "2": Tier(line_pct=80.0, branch_pct=85.0, mutation_pct=60.0),
    "3": Tier(line_pct=70.0, branch_pct=75.0, mutation_pct=50.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CriticalModule:
    """A source file (relative to the code root) judged against a tier.

    `mutate` says whether the mutation gate mutates it (its coverage tier
    applies either way); `tests`, when given, are the tests mutmut runs for
    it instead of those the coverage contexts select.
    """

    path: str
    tier: str = "1"
    mutate: bool = True
    tests: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeSpec:
    """The code project behind the model: sources, tests, critical modules.

    `junit_xml` / `coverage_data` name results an earlier CI step produced;
    when set, the suite is not run again. `python` is the interpreter that
    runs the project's code ("" = readiness's own); a gate's own `python`
    setting overrides it.
    """

    root: Path
    sources: tuple[str, ...] = ()
    tests: tuple[str, ...] = ("tests",)
    critical: tuple[CriticalModule, ...] = ()
    tiers: Mapping[str, Tier] = field(default_factory=lambda: dict(DEFAULT_TIERS))
    junit_xml: Path | None = None
    coverage_data: Path | None = None
    pytest_args: tuple[str, ...] = ()
    python: str = ""


class ModelKind(enum.StrEnum):
    """What shape of model is assessed; some gates apply to one kind only."""

    DECODER = "decoder"  # prefill and decode entry points, a KV cache
    MODULE = "module"  # any nn.Module with declared inputs: encoders, CNNs, regressors


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """The model under assessment and how to export it.

    `adapter` is `module:callable` returning an `nn.Module` or an adapter
    object (see `pipeline.adapter`), `hf:<folder>` a Hugging Face checkpoint
    folder; `builtin:student` is the bundled one. `args` are `[model.args]`.
    `kind` is "decoder" (prefill/decode, the lengths below) or "module" (any
    nn.Module whose inputs, dimensions and outputs `module_io` declares).
    """

    kind: ModelKind = ModelKind.DECODER
    module_io: ModuleIO | None = None
    adapter: str = "builtin:student"
    args: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: Path | None = None
    tokenizer: Path | None = None
    lengths: tuple[int, ...] = (64, 128, 256, 512)
    primary_length: int = 128
    precisions: tuple[str, ...] = ("fp32", "fp16")
    targets: tuple[str, ...] = ("coreml", "onnx")
    deployment_target: str = "iOS18"
    compressions: tuple[str, ...] = ()  # compressed fp16 packages: int8, int4_block32, palettize4, ...
    stateful: tuple[str, ...] = ()  # precisions/compressions that also get a stateful decode package


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectSpec:
    """Everything assessed in one run."""

    name: str
    root: Path
    model: ModelSpec | None = None
    code: CodeSpec | None = None
