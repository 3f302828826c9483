"""What the model gates share, owned here and nowhere else.

- the paths of the model spec, resolved against the project root (`resolve`);
- the "no model configured" rule: a model gate run without a `[model]`
  section is `not_evaluable`, never a pass (`no_model`, `ModelGate.check`);
- the run's one loaded adapter (memo key "adapter"): one factory and one
  wording of its failure (`ModelLoadError`), whichever gate asks first;
- the run's exported programs, converted packages and contract (memo key
  "artifacts"), built with the export gate's settings (`BuildSettings`);
- the cache key of every model gate's result (`model_cache_inputs`);
- `ModelGate`, the base class of the model gates: it declares `requires =
  MODEL`, caches by that key, applies the no-model rule and the
  not-applicable rule (a gate whose `kinds` leave out the configured model
  kind reports `off`, "not applicable to kind = ...": outside the score and
  never a pass), and hands `check_model` the model spec.

For `kind = "module"` the run's one loaded `pipeline.module_model.ModuleModel`
and its `pipeline.module_artifacts.ModuleArtifacts` come from
`shared_module` and `shared_module_artifacts` (memo keys "module" and
"module_artifacts"); `shared_adapter` and `shared_artifacts` are the
decoder's and refuse a module model.

The checkpoint gate may hand `shared_adapter` the checkpoint it has already
read, so the weights are read once; the adapter built from it is the same
one `pipeline.adapter.load_adapter` would build.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

from gates.engine.protocol import Gate, GateContext, GateError, Requires
from gates.engine.spec import ModelKind, ModelSpec
from gates.result import GateResult, Severity, Status

if TYPE_CHECKING:
    from pipeline.adapter import ModelAdapter
    from pipeline.artifacts import ModelArtifacts
    from pipeline.checkpoint import Checkpoint
    from pipeline.mapped_weights import MappedWeights
    from pipeline.module_artifacts import ModuleArtifacts
    from pipeline.module_model import ModuleModel

ADAPTER, ARTIFACTS, MAPPED_WEIGHTS = "adapter", "artifacts", "mapped_weights"  # memo keys
MODULE, MODULE_ARTIFACTS = "module", "module_artifacts"  # memo keys of kind = "module"
BUILTIN = "builtin:student"
# The bundled student's results depend on these pipeline sources as well as on its files.
PIPELINE_FILES = ("student.py", "adapter.py", "checkpoint.py", "text_tokenizer.py")


def resolve(path: Path | str | None, root: Path) -> Path | None:
    """A path from the model spec, relative to the project root unless absolute."""
    if path is None or path == "":
        return None
    found = Path(path)
    return found if found.is_absolute() else Path(root) / found


def no_model(gate: Gate) -> GateResult:
    """The result of a model gate run without a [model] section: never a pass."""
    return GateResult(name=gate.name, status=Status.NOT_EVALUABLE, severity=gate.severity,
                      summary="no model is configured",
                      remediation="Add a [model] section (adapter, checkpoint, tokenizer) to the configuration.")


NOT_APPLICABLE = "not_applicable"  # evidence flag of a gate that does not apply to the model kind


def not_applicable(gate: Gate, kind: str) -> GateResult:
    """A gate that does not apply to this kind of model: off, outside the score, never a pass."""
    reason = f'not applicable to kind = "{kind}"'
    return GateResult(name=gate.name, status=Status.OFF, severity=gate.severity, summary=reason,
                      evidence={"off_because": reason, NOT_APPLICABLE: True})


def configured_model(ctx: GateContext) -> ModelSpec:
    """The model spec; GateError when there is none (callers outside `ModelGate.check`)."""
    if ctx.spec.model is None:
        raise GateError("no model is configured ([model])")
    return ctx.spec.model


class ModelLoadError(GateError):
    """The model could not be loaded; `reason` is the loader's own message."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"model could not be loaded: {reason}")
        self.reason = reason


def shared_adapter(ctx: GateContext, checkpoint: Checkpoint | None = None) -> ModelAdapter:
    """The run's one loaded adapter; ModelLoadError (a GateError) when it cannot load.

    `checkpoint`, when given, is the bundled student's checkpoint already read
    by the caller; it saves reading the weights again.
    """
    from pipeline.adapter import AdapterError, StudentAdapter, load_adapter
    from pipeline.checkpoint import CheckpointError, build_student

    model = decoder_model(ctx)

    def load() -> ModelAdapter:
        try:
            if checkpoint is not None and model.adapter == BUILTIN:
                adapter: ModelAdapter = StudentAdapter(build_student(checkpoint), checkpoint.path)
            else:
                adapter = load_adapter(model, ctx.root)
        except (AdapterError, CheckpointError) as exc:
            raise ModelLoadError(str(exc)) from None
        # The weights move into a file map at once: whatever holds them from here on (the
        # ONNX exporter keeps references to them after it returns) holds pages of that file,
        # which a park hands back, never a second copy.
        shared_mapped_weights(ctx, adapter.module).park()
        return adapter

    return ctx.memo.get(ADAPTER, load)


def shared_mapped_weights(ctx: GateContext, module: Any) -> MappedWeights:
    """The run's one `pipeline.mapped_weights.MappedWeights` of the loaded model (mapped when
    `shared_adapter` or `shared_module` loads it; the parity gate parks it again before the
    converted programs run)."""
    from pipeline.mapped_weights import MappedWeights

    return ctx.memo.get(MAPPED_WEIGHTS, lambda: MappedWeights(module, Path(ctx.work_dir)))


def decoder_model(ctx: GateContext) -> ModelSpec:
    """The model spec of a decoder; GateError for a module model (its gates use `shared_module`)."""
    model = configured_model(ctx)
    if model.kind != ModelKind.DECODER:
        raise GateError(f'kind = "{model.kind}" has no decoder adapter (a gate of that kind uses shared_module)')
    return model


def shared_module(ctx: GateContext) -> ModuleModel:
    """The run's one loaded module model (kind = "module"); ModelLoadError when it cannot load."""
    model = configured_model(ctx)

    def load() -> ModuleModel:
        from pipeline.adapter import AdapterError
        from pipeline.module_model import load_module_model

        try:
            loaded = load_module_model(model, ctx.root)
        except AdapterError as exc:
            raise ModelLoadError(str(exc)) from None
        shared_mapped_weights(ctx, loaded.module).park()  # as `shared_adapter` does
        return loaded

    return ctx.memo.get(MODULE, load)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildSettings:
    """How the artifacts are built and validated: the export gate's settings."""

    atol: float = 1e-4
    decode_prefill_atol: float = 1e-3
    decode_steps: int = 4
    decode_prompt_length: int = 8
    per_length: bool = False


def recorded_build_settings(ctx: GateContext) -> BuildSettings:
    """The export gate's settings as its result recorded them (it may have been cached)."""
    export = ctx.results.get("export")
    recorded = dict(export.evidence.get("settings") or {}) if export is not None else {}
    known = {k: v for k, v in recorded.items() if k in BuildSettings.__dataclass_fields__}
    return BuildSettings(**known)


def shared_artifacts(ctx: GateContext, settings: BuildSettings | None = None) -> ModelArtifacts:
    """The run's `pipeline.artifacts.ModelArtifacts`, built once.

    The export gate runs first (the others need it) and passes its own
    settings; a later gate whose run reused a cached export result gets the
    settings recorded in it. Packages go to `ctx.options["artifacts_dir"]`,
    else `<shared_work_dir>/artifacts` (the run's configured work folder,
    stable across runs, so a warm run reuses them), else
    `ctx.work_dir / "artifacts"`.
    """

    def build() -> ModelArtifacts:
        from pipeline.artifacts import BuildOptions, build_artifacts, model_identity

        own = settings or recorded_build_settings(ctx)
        model = decoder_model(ctx)
        adapter = shared_adapter(ctx)
        options = BuildOptions.from_model_spec(
            model, per_length=own.per_length, atol=own.atol, decode_prefill_atol=own.decode_prefill_atol,
            decode_steps=own.decode_steps, decode_prompt_length=own.decode_prompt_length)
        arch_hash, tokenizer_fp = model_identity(resolve(model.checkpoint, ctx.root),
                                                 resolve(model.tokenizer, ctx.root), adapter)
        return build_artifacts(adapter, options, _artifacts_dir(ctx), arch_hash=arch_hash,
                               tokenizer_fingerprint=tokenizer_fp, reuse=not ctx.options.get("fresh"))

    return ctx.memo.get(ARTIFACTS, build)


def _artifacts_dir(ctx: GateContext) -> Path:
    shared = ctx.options.get("shared_work_dir")
    return Path(ctx.options.get("artifacts_dir")
                or (Path(shared) / "artifacts" if shared else ctx.work_dir / "artifacts"))


def shared_module_artifacts(ctx: GateContext, settings: BuildSettings | None = None) -> ModuleArtifacts:
    """The run's module artifacts (kind = "module"), built once, as `shared_artifacts` builds a decoder's."""

    def build() -> ModuleArtifacts:
        from pipeline.module_artifacts import ModuleBuildOptions, build_module_artifacts

        own = settings or recorded_build_settings(ctx)
        options = ModuleBuildOptions.from_model_spec(configured_model(ctx), atol=own.atol)
        return build_module_artifacts(shared_module(ctx), options, _artifacts_dir(ctx),
                                      reuse=not ctx.options.get("fresh"))

    return ctx.memo.get(MODULE_ARTIFACTS, build)


def model_cache_inputs(ctx: GateContext) -> dict[str, Any] | None:
    """Cache key material of every model gate: the model spec, its files and the pipeline sources.

    The bundled student's results are cached, and a Hugging Face folder's (`hf:`): its code
    is ours and transformers' (versioned), its files are hashed. A user adapter's code is not
    a file we can hash reliably, nor is a module model's `examples` callable: not cached.
    A folder holding a link is not cached either (its target may lie outside the project,
    which is never read).
    """
    model = ctx.spec.model
    if model is None:
        return None
    import pipeline

    here = Path(pipeline.__file__).parent
    configured = [p for p in (resolve(model.checkpoint, ctx.root), resolve(model.tokenizer, ctx.root)) if p]
    if model.adapter == BUILTIN:
        return {"model": _spec_material(model),
                "files": [str(p) for p in configured + [here / name for name in PIPELINE_FILES]]}
    from pipeline.hf.folder import is_hf, resolve_folder

    if not is_hf(model.adapter) or (model.module_io is not None and model.module_io.examples is not None):
        return None
    folder = _folder_files(resolve_folder(model.adapter, ctx.root), Path(ctx.root))
    if folder is None:
        return None
    from gates.engine.tools import installed_version

    sources = [here / name for name in PIPELINE_FILES] + sorted((here / "hf").glob("*.py"))
    return {"model": _spec_material(model), "transformers": installed_version("transformers") or "absent",
            "files": [str(p) for p in configured + folder + sources]}


def _spec_material(model: ModelSpec) -> dict[str, Any]:
    return {"adapter": model.adapter, "kind": str(model.kind), "args": dict(model.args),
            "module_io": model.module_io.to_dict() if model.module_io is not None else None,
            "lengths": list(model.lengths), "primary_length": model.primary_length,
            "precisions": list(model.precisions), "targets": list(model.targets),
            "deployment_target": model.deployment_target, "compressions": list(model.compressions),
            "stateful": list(model.stateful)}


def _folder_files(folder: Path, root: Path) -> list[Path] | None:
    """Every file of a model folder inside the project, or None (outside it, or holding a link)."""
    if folder.is_symlink() or not folder.resolve().is_relative_to(root.resolve()) or not folder.is_dir():
        return None
    files = []
    for where, dirs, names in os.walk(folder, followlinks=False):
        for name in (*dirs, *names):
            path = Path(where) / name
            if path.is_symlink():
                return None
            if name in names and path.is_file():
                files.append(path)
    return sorted(files)


class NamedCheck(Protocol):
    """One row of a gate's checks table: a name, whether it held, what was seen."""

    @property
    def name(self) -> str: ...

    @property
    def ok(self) -> bool: ...

    @property
    def detail(self) -> str: ...


def judge_checks(checks: Sequence[NamedCheck], what: str) -> tuple[Status, float, str]:
    """Every check held: pass; else fail with the share that held, naming the first that did not."""
    failed = [c for c in checks if not c.ok]
    if failed:
        return Status.FAIL, (len(checks) - len(failed)) / len(checks), f"{failed[0].name}: {failed[0].detail}"
    return Status.PASS, 1.0, f"all {len(checks)} {what} passed"


def sample_ids(tokenizer_path: Path | None, vocab_size: int, length: int, seed: int = 0) -> list[int]:
    """Token ids of bundled text when a tokenizer is given, seeded random ids otherwise."""
    if tokenizer_path is not None:
        from pipeline.text_tokenizer import corpus_text, encode, load_tokenizer

        ids = [i for i in encode(load_tokenizer(tokenizer_path), corpus_text()) if i < vocab_size]
        if len(ids) >= length:
            return ids[:length]
    rng = random.Random(seed)
    return [rng.randrange(vocab_size) for _ in range(length)]


class ModelGate(Gate):
    """Base of the model gates: the no-model and not-applicable rules, the shared cache key,
    `check_model`.

    A model gate declares itself in its class line (`kinds` only when it
    applies to some model kinds, not all):

        class ExportGate(ModelGate, name="export", needs=("checkpoint",), settings=Settings): ...
    """

    needs: tuple[str, ...] = ()
    severity = Severity.BLOCKER
    requires = Requires.MODEL

    def __init_subclass__(cls, *, name: str, settings: type, needs: tuple[str, ...] = (),
                          after: tuple[str, ...] = (), kinds: tuple[ModelKind, ...] = tuple(ModelKind),
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name, cls.Settings, cls.needs, cls.after, cls.kinds = name, settings, needs, after, kinds

    def cache_inputs(self, ctx: GateContext) -> dict[str, Any] | None:
        return model_cache_inputs(ctx)

    def check(self, ctx: GateContext) -> GateResult:
        if ctx.spec.model is None:
            return no_model(self)
        if ctx.spec.model.kind not in self.kinds:
            return not_applicable(self, ctx.spec.model.kind)
        return self.check_model(ctx, ctx.spec.model)

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        """The gate's own check, given the configured model."""
        raise NotImplementedError
