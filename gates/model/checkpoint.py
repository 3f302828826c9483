"""The `checkpoint` gate: does the model's checkpoint load safely and describe itself?

Checks, one evidence row each:
- `loads safely`: safetensors, or a legacy `.pt` through `weights_only=True`;
  a pickle that needs code execution, a truncated or garbage file fails here;
- `metadata complete`: `model_arch` holds every architecture field;
- `arch hash`: the stored hash matches the weights, and the weights match the
  architecture the metadata describes (bundled student);
- `vocab vs tokenizer`: model vocabulary == tokenizer size, or larger by at
  most `vocab_padding_max` documented padding rows;
- `tokenizer fingerprint`: the one the checkpoint recorded == the tokenizer file's;
- `forward pass`: prefill on a sample gives logits [1, T, V], all finite.

A Hugging Face folder (`adapter = "hf:<folder>"`) has no Readiness
metadata: its rows are `loads safely` (safetensors only), `weights match
config` (no tensor missing, left over or of another shape), `metadata
complete` (read from config.json), `family verified`, `matches
transformers` (the wrapper vs transformers' own forward), then `vocab vs
tokenizer` and `forward pass` (see `pipeline.hf.checks`).

Settings: `vocab_padding_max` (default 0), `sample_length` (16). The adapter
it builds from the checkpoint it read is the run's shared one
(`gates.model.shared.shared_adapter`).
Metrics: `checks`, `checks_ok`, `checks_ok_pct`, `model_vocab_size`,
`tokenizer_vocab_size`, `params`, `step`, `arch_hash`, `weights_mapped`
(the loaded weights live in a file map, `pipeline.mapped_weights`; false
where they could not, and the *Memory* table says why). Evidence: the
checks table, the architecture table, the memory table, the checkpoint file.

`fail` when a check fails; `warn` when a check could not apply (no tokenizer
configured, or a user adapter that supplies its own weights without a
checkpoint file, or a user checkpoint that stores no `arch_hash`); `error` when the checkpoint or
tokenizer file is missing, or a user adapter cannot be imported; `not_evaluable` without a model.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gates.engine.protocol import GateContext, GateError
from gates.engine.spec import ModelKind, ModelSpec
from gates.model.shared import (
    BUILTIN,
    ModelGate,
    ModelLoadError,
    resolve,
    sample_ids,
    shared_adapter,
    shared_mapped_weights,
)
from gates.result import GateResult, Status

if TYPE_CHECKING:
    from pipeline.adapter import ModelAdapter
    from pipeline.mapped_weights import MappedWeights


class CheckStatus(enum.StrEnum):
    """One checkpoint check's outcome, as its evidence row shows it."""

    OK = "ok"
    FAILED = "failed"
    NOT_CHECKED = "not checked"


OK, FAILED, NOT_CHECKED = CheckStatus.OK, CheckStatus.FAILED, CheckStatus.NOT_CHECKED


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    vocab_padding_max: int = 0
    sample_length: int = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One row of the checks table: which check, its outcome, what was seen."""

    name: str
    status: CheckStatus
    detail: str = ""


# -- measuring ------------------------------------------------------------------

def read_weights(path: Path) -> tuple[Check, Any]:
    from pipeline.checkpoint import CheckpointError, read_checkpoint

    try:
        return Check(name="loads safely", status=OK, detail=path.name), read_checkpoint(path)
    except CheckpointError as exc:
        hash_problem = "hash mismatch" in str(exc)
        return Check(name="arch hash" if hash_problem else "loads safely", status=FAILED,
                     detail=str(exc)), None


def metadata_check(arch: dict[str, Any], builtin: bool, source: str) -> Check:
    """`source` names where the arch came from (the checkpoint file, or the adapter)."""
    from pipeline.adapter import REQUIRED_ARCH
    from pipeline.student import StudentConfig

    fields = tuple(StudentConfig().model_arch) if builtin else REQUIRED_ARCH
    missing = [f for f in fields if f not in arch]
    if missing:
        return Check(name="metadata complete", status=FAILED,
                     detail=f"{source}: model_arch lacks {', '.join(missing)}")
    return Check(name="metadata complete", status=OK, detail=f"{len(arch)} architecture fields")


def hash_check(ckpt: Any, arch_problem: str, builtin: bool) -> Check:
    """The stored hash matched the weights when read; the builtin also rebuilt the architecture."""
    if arch_problem:
        return Check(name="arch hash", status=FAILED, detail=arch_problem)
    if builtin or ckpt.metadata.get("arch_hash"):
        return Check(name="arch hash", status=OK, detail=ckpt.arch_hash[:12])
    return Check(name="arch hash", status=NOT_CHECKED,
                 detail=f"checkpoint records no arch_hash (weights hash to {ckpt.arch_hash[:12]})")


def vocab_check(model_vocab: int, tokenizer_vocab: int | None, padding_max: int) -> Check:
    if tokenizer_vocab is None:
        return Check(name="vocab vs tokenizer", status=NOT_CHECKED, detail="no tokenizer configured")
    extra = model_vocab - tokenizer_vocab
    if extra < 0:
        return Check(name="vocab vs tokenizer", status=FAILED, detail=f"tokenizer has {tokenizer_vocab} "
                     f"tokens but the model only {model_vocab} rows: ids >= {model_vocab} are out of range")
    if extra > padding_max:
        return Check(name="vocab vs tokenizer", status=FAILED, detail=f"model vocabulary {model_vocab} "
                     f"exceeds the tokenizer's {tokenizer_vocab} by {extra} (documented padding: {padding_max})")
    return Check(name="vocab vs tokenizer", status=OK,
                 detail=f"{model_vocab} == {tokenizer_vocab}" + (f" + {extra} padding" if extra else ""))


def fingerprint_check(recorded: str, tokenizer_fp: str | None) -> Check:
    if not recorded or tokenizer_fp is None:
        why = "no tokenizer configured" if tokenizer_fp is None else "checkpoint records no fingerprint"
        return Check(name="tokenizer fingerprint", status=NOT_CHECKED, detail=why)
    if recorded != tokenizer_fp:
        return Check(name="tokenizer fingerprint", status=FAILED, detail=f"checkpoint was trained with "
                     f"tokenizer {recorded[:12]}, the configured one is {tokenizer_fp[:12]}")
    return Check(name="tokenizer fingerprint", status=OK, detail=recorded[:12])


def forward_check(adapter: ModelAdapter, ids: list[int]) -> Check:
    import torch

    x = torch.tensor([ids], dtype=torch.int32)
    try:
        with torch.no_grad():
            logits = adapter.prefill_module()(x)[0]
    except Exception as exc:  # the model's own code failed: that is the finding
        return Check(name="forward pass", status=FAILED, detail=f"prefill raised {type(exc).__name__}: {exc}")
    expected = (1, len(ids), adapter.vocab_size)
    if tuple(logits.shape) != expected:
        return Check(name="forward pass", status=FAILED, detail=f"logits {tuple(logits.shape)}, expected {expected}")
    bad = int((~torch.isfinite(logits)).sum())
    if bad:
        return Check(name="forward pass", status=FAILED, detail=f"{bad} non-finite logits")
    return Check(name="forward pass", status=OK, detail=f"logits {expected}, all finite")


def memory_table(weights: MappedWeights) -> dict[str, Any]:
    """The *Memory* table: where the loaded model's weights live, and why where not mapped."""
    where = ("mapped to a file in the work folder: parked while converted programs run" if weights.mapped
             else f"kept in memory ({weights.reason})")
    return {"title": "Memory", "columns": ["what", "where"], "rows": [["eager weights", where]]}


# -- judging ----------------------------------------------------------------------

def judge(checks: list[Check]) -> tuple[Status, float, str]:
    ok = [c for c in checks if c.status == OK]
    failed = [c for c in checks if c.status == FAILED]
    evaluated = len(ok) + len(failed)
    score = len(ok) / evaluated if evaluated else 0.0
    if failed:
        return Status.FAIL, score, f"{failed[0].name}: {failed[0].detail}"
    if not ok:
        return Status.FAIL, 0.0, "nothing could be checked"
    if len(ok) < len(checks):
        skipped = ", ".join(c.name for c in checks if c.status == NOT_CHECKED)
        return Status.WARN, score, f"{len(ok)} checks passed; not checked: {skipped}"
    return Status.PASS, 1.0, f"all {len(ok)} checkpoint checks passed"


class CheckpointGate(ModelGate, name="checkpoint", after=("environment",), settings=Settings):

    def check_model(self, ctx: GateContext, model: ModelSpec) -> GateResult:
        if model.kind == ModelKind.MODULE:
            from gates.model.module_kind import checkpoint as module_kind

            return module_kind.check(self, ctx, model)
        ckpt_path, tok_path = resolve(model.checkpoint, ctx.root), resolve(model.tokenizer, ctx.root)
        if model.adapter.startswith("hf:"):
            return self._hf_checks(ctx, tok_path)
        builtin = model.adapter == BUILTIN
        for label, path in (("checkpoint", ckpt_path), ("tokenizer", tok_path)):
            if path is not None and not path.is_file():
                raise GateError(f"{path}: {label} file not found")
        if builtin and ckpt_path is None:
            raise GateError("the builtin student needs a checkpoint path")
        return self._checks(ctx, model, ckpt_path, tok_path)

    def _checks(self, ctx: GateContext, model: ModelSpec, ckpt_path: Path | None,
                tok_path: Path | None) -> GateResult:
        builtin = model.adapter == BUILTIN
        checks: list[Check] = []
        ckpt = None
        if ckpt_path is not None:
            load, ckpt = read_weights(ckpt_path)
            checks.append(load)
        else:
            checks.append(Check(name="loads safely", status=NOT_CHECKED,
                                detail="no checkpoint file configured: the adapter supplies the weights"))
        if ckpt_path is not None and ckpt is None:
            return self._result(checks, {}, None, ckpt_path)
        adapter, arch_problem = self._adapter(ctx, ckpt, builtin)
        # The adapter holds the weights (mapped to a file); the read tensors go now, before the
        # forward pass reads the map in: two copies of a 1B model's weights otherwise.
        ckpt = ckpt.without_tensors() if ckpt is not None else None
        from_file = ckpt is not None and bool(ckpt.model_arch)
        arch = dict(ckpt.model_arch) if ckpt is not None and from_file else dict(getattr(adapter, "arch", {}))
        checks.append(metadata_check(arch, builtin, str(ckpt_path) if from_file or builtin else
                                     f"adapter {model.adapter}"))
        if ckpt is not None:
            checks.append(hash_check(ckpt, arch_problem, builtin))
        if adapter is None:
            return self._result(checks, arch, ckpt, ckpt_path)
        tok = self._tokenizer(tok_path)
        checks.append(vocab_check(adapter.vocab_size, tok[0], ctx.settings.vocab_padding_max))
        if ckpt is not None:
            checks.append(fingerprint_check(ckpt.tokenizer_fingerprint, tok[1]))
        ids = sample_ids(tok_path if tok[0] else None, adapter.vocab_size, ctx.settings.sample_length)
        checks.append(forward_check(adapter, ids))
        return self._result(checks, arch, ckpt, ckpt_path, adapter, tok[0],
                            weights=shared_mapped_weights(ctx, adapter.module))

    def _hf_checks(self, ctx: GateContext, tok_path: Path | None) -> GateResult:
        """A Hugging Face folder: safetensors, weights vs config.json, the wrapper vs transformers."""
        import torch

        from pipeline.hf.checks import folder_checks
        from pipeline.hf.loading import HFAdapter

        if tok_path is not None and not tok_path.is_file():
            raise GateError(f"{tok_path}: tokenizer file not found")
        adapter = shared_adapter(ctx)
        if not isinstance(adapter, HFAdapter):
            raise GateError(f"adapter {ctx.spec.model.adapter if ctx.spec.model else ''}: "
                            "not a Hugging Face folder adapter")
        tok = self._tokenizer(tok_path)
        ids = sample_ids(tok_path if tok[0] else None, adapter.vocab_size, ctx.settings.sample_length)
        checks = [Check(name=n, status=CheckStatus(s), detail=d)
                  for n, s, d in folder_checks(adapter, torch.tensor([ids], dtype=torch.int32))]
        checks += [vocab_check(adapter.vocab_size, tok[0], ctx.settings.vocab_padding_max),
                   forward_check(adapter, ids)]
        return self._result(checks, dict(adapter.arch), None, adapter.folder.path, adapter, tok[0],
                            weights=shared_mapped_weights(ctx, adapter.module),
                            remediation="Re-save the folder with save_pretrained from the model that was "
                            "trained (safetensors), with the tokenizer.json it was trained with.")

    def _adapter(self, ctx: GateContext, ckpt: Any, builtin: bool) -> tuple[Any, str]:
        """The shared adapter, built from the checkpoint just read; a builtin whose
        arch lies is a finding (the arch hash check fails), not an error."""
        if not builtin:
            return shared_adapter(ctx), ""
        try:
            return shared_adapter(ctx, checkpoint=ckpt), ""
        except ModelLoadError as exc:
            return None, exc.reason

    @staticmethod
    def _tokenizer(path: Path | None) -> tuple[int | None, str | None]:
        if path is None:
            return None, None
        from pipeline.text_tokenizer import TokenizerError, fingerprint, load_tokenizer

        try:
            tok = load_tokenizer(path)
        except TokenizerError as exc:
            raise GateError(str(exc)) from None
        return tok.get_vocab_size(), fingerprint(tok)

    def _result(self, checks: list[Check], arch: dict[str, Any], ckpt: Any, path: Path | None,
                adapter: ModelAdapter | None = None, tokenizer_vocab: int | None = None,
                remediation: str = "", weights: MappedWeights | None = None) -> GateResult:
        status, score, summary = judge(checks)
        ok = sum(c.status == OK for c in checks)
        evaluated = sum(c.status != NOT_CHECKED for c in checks)
        metrics: dict[str, Any] = {"checks": evaluated, "checks_ok": ok,
                                   "checks_ok_pct": round(100.0 * ok / evaluated, 2) if evaluated else 0.0}
        if adapter is not None:
            metrics["model_vocab_size"] = adapter.vocab_size
            metrics["params"] = sum(p.numel() for p in adapter.module.parameters())
        if tokenizer_vocab is not None:
            metrics["tokenizer_vocab_size"] = tokenizer_vocab
        if ckpt is not None:
            metrics.update({"arch_hash": ckpt.arch_hash, "step": ckpt.step})
        tables: list[dict[str, Any]] = [{"title": "Checkpoint checks", "columns": ["check", "status", "detail"],
                   "rows": [[c.name, c.status, c.detail] for c in checks]}]
        if arch:
            tables.append({"title": "Architecture (model_arch)", "columns": ["field", "value"],
                           "rows": [[k, v if isinstance(v, (int, float, str)) or v is None else str(v)]
                                    for k, v in sorted(arch.items())]})
        if weights is not None:
            metrics["weights_mapped"] = weights.mapped
            tables.append(memory_table(weights))
        return GateResult(
            name=self.name, status=status, severity=self.severity, score=score, summary=summary,
            metrics=metrics, remediation="" if status is Status.PASS else remediation or
            "Re-save the checkpoint with pipeline.checkpoint.save_checkpoint from the model that was "
            "trained, with the tokenizer it was trained with.",
            evidence={"tables": tables, "files": [str(path)] if path else [],
                      "failures": [{"title": c.name, "detail": c.detail} for c in checks if c.status == FAILED]})
