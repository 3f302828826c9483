"""Validation of exported prefill and decode programs: one row per length or step.

Each row says what was *observed*, never a guess at the cause, because two
different defects look alike from one comparison: a decode step whose logits
differ from prefill's at the same position may ignore its cache, or the
prefill it is compared with may not be causal. So each observation is
checked on its own:

- a prefill length row changes only the last token and checks that the logits
  at every earlier position stay put (`Finding.NOT_CAUSAL` when they move);
- a decode step that disagrees with prefill is probed: is eager prefill over
  the decode sequence itself causal? Do the decode logits move when the KV
  cache is zeroed, or when the position changes? Each answer that explains
  the disagreement is a finding of the row.

Rows carry a one-line `reason` (a table cell) and, when an exception was
behind it, the whole message in `detail` (see `pipeline.export_failure`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

from pipeline.contract import TensorSpec, resolve_shape
from pipeline.export_failure import describe

OK = "ok"
FAILED = "failed"


class Finding(str, enum.Enum):
    """What a failed row observed (short enough for a gate summary)."""

    EXPORT_FAILED = "export failed"
    DID_NOT_RUN = "the exported program did not run"
    EAGER_FAILED = "the eager model failed"
    BAD_OUTPUTS = "outputs do not match their declaration"
    DIFFERS_FROM_EAGER = "the exported program differs from eager"
    NOT_CAUSAL = "the prefill is not causal"
    DIFFERS_FROM_PREFILL = "its logits differ from prefill's"
    REFERENCE_NOT_CAUSAL = "the prefill it is compared with is not causal"
    IGNORES_CACHE = "it ignores its KV cache"
    IGNORES_POSITION = "it ignores its position"


@dataclass(frozen=True, slots=True, kw_only=True)
class LengthRow:
    """The validation of one enumerated prefill length."""

    T: int
    status: str
    reason: str = ""
    max_abs_err: float | None = None
    finding: Finding | None = None
    detail: str = ""  # the whole exception message behind `reason`, when there was one

    def to_dict(self) -> dict[str, Any]:
        return {"T": self.T, "status": self.status, "reason": self.reason, "max_abs_err": self.max_abs_err}


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeRow:
    """One decode step: exported vs eager decode, and vs eager prefill."""

    step: int
    position: int
    status: str
    reason: str = ""
    max_abs_err: float | None = None  # vs the eager decode module
    prefill_abs_err: float | None = None  # vs eager prefill of the whole sequence
    findings: tuple[Finding, ...] = ()
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "position": self.position, "status": self.status,
                "reason": self.reason, "max_abs_err": self.max_abs_err,
                "prefill_abs_err": self.prefill_abs_err}


def failed_length(length: int, finding: Finding, what: str, exc: BaseException) -> LengthRow:
    failure = describe(exc)
    return LengthRow(T=length, status=FAILED, reason=f"{what}: {failure.line}", finding=finding,
                     detail=failure.detail)


def failed_step(step: int, position: int, finding: Finding, what: str, exc: BaseException) -> DecodeRow:
    failure = describe(exc)
    return DecodeRow(step=step, position=position, status=FAILED, reason=f"{what}: {failure.line}",
                     findings=(finding,), detail=failure.detail)


# --- prefill -----------------------------------------------------------------

def validate_length(module, program, ids: torch.Tensor, names: Sequence[str],
                    out_specs: Sequence[TensorSpec], options: Any, vocab: int) -> LengthRow:
    """Run the program at one length: outputs as declared, equal to eager, causal."""
    length = ids.shape[1]
    runner = program.module()
    try:
        with torch.no_grad():
            got = as_tuple(runner(ids))
    except Exception as exc:
        return failed_length(length, Finding.DID_NOT_RUN, "program did not run", exc)
    try:
        with torch.no_grad():
            want = as_tuple(module(ids))
    except Exception as exc:
        return failed_length(length, Finding.EAGER_FAILED, "eager model failed", exc)
    err = max_abs_err(got, want)
    problem = compare(got, want, names, out_specs, {"T": length, "B": ids.shape[0]})
    got = got[:1]  # only the logits are needed from here (at T=2048, the rest is GBs)
    del want
    finding = Finding.BAD_OUTPUTS if problem else None
    if not problem and err > options.atol:
        problem, finding = f"differs from eager by {err:.3g} > atol {options.atol:g}", Finding.DIFFERS_FROM_EAGER
    if not problem:
        shift = causal_shift(lambda x: as_tuple(runner(x))[0], ids, got[0], vocab)
        if shift is not None and shift > options.atol:
            problem, finding = not_causal(length, shift), Finding.NOT_CAUSAL
    return LengthRow(T=length, status=FAILED if problem else OK, reason=problem, finding=finding,
                     max_abs_err=None if err != err else err)


def causal_shift(run: Callable[[torch.Tensor], torch.Tensor], ids: torch.Tensor, logits: torch.Tensor,
                 vocab: int) -> float | None:
    """How far logits before the last position move when only the last token changes."""
    changed = ids.clone()
    changed[:, -1] = (ids[:, -1] + 1) % vocab
    try:
        with torch.no_grad():
            other = run(changed)
    except Exception:  # the run itself is judged elsewhere; this probe is then silent
        return None
    if other.shape != logits.shape or logits.shape[1] < 2:
        return None
    return max_abs_diff(other[:, :-1], logits[:, :-1])


def not_causal(length: int, shift: float) -> str:
    return (f"logits at positions 0..{length - 2} change by up to {shift:.3g} when only the token at "
            f"position {length - 1} changes: the prefill is not causal")


# --- decode ------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeReference:
    """Eager prefill over the whole decode sequence, and whether it is causal."""

    logits: torch.Tensor
    causal_shift: float | None


def validate_decode(module, program, ids: torch.Tensor, reference: DecodeReference,
                    caches: Sequence[torch.Tensor], names: Sequence[str], out_specs: Sequence[TensorSpec],
                    options: Any) -> list[DecodeRow]:
    """Decode `decode_steps` tokens with the cache threaded through, row by row."""
    prompt, rows = options.decode_prompt_length, []
    got_cache, want_cache = list(caches), list(caches)
    runner = program.module()
    for step in range(options.decode_steps):
        position = prompt + step
        token = ids[:, position:position + 1]
        pos = torch.tensor([position], dtype=torch.int32)
        try:
            got = _step(runner, token, pos, got_cache, Finding.DID_NOT_RUN, "program did not run")
            want = _step(module, token, pos, want_cache, Finding.EAGER_FAILED, "eager decode failed")
        except _StepFailed as failed:
            rows.append(failed_step(step, position, failed.finding, failed.what, failed.cause))
            break
        rows.append(_decode_row(step, position, got, want, reference, names, out_specs, options,
                                lambda p, c, token=token: as_tuple(runner(token, p, *c))[0], got_cache))
        got_cache, want_cache = list(got[1:]), list(want[1:])
    return rows


class _StepFailed(Exception):
    """One decode step of the program or of eager PyTorch raised: which, and the exception."""

    def __init__(self, finding: Finding, what: str, cause: BaseException) -> None:
        super().__init__(what)
        self.finding, self.what, self.cause = finding, what, cause


def _step(run: Any, token: torch.Tensor, pos: torch.Tensor, cache: Sequence[torch.Tensor], finding: Finding,
          what: str) -> tuple[torch.Tensor, ...]:
    try:
        with torch.no_grad():
            return as_tuple(run(token, pos, *cache))
    except Exception as exc:  # the model's own code failed: that is this step's finding
        raise _StepFailed(finding, what, exc) from exc


def _decode_row(step, position, got, want, reference, names, out_specs, options, run, cache) -> DecodeRow:
    problem = compare(got, want, names, out_specs, {"T_cache": position, "B": got[0].shape[0]})
    err = max_abs_err(got, want)
    prefill_err = float((got[0][:, 0] - reference.logits[:, position]).abs().max())
    findings: tuple[Finding, ...] = (Finding.BAD_OUTPUTS,) if problem else ()
    if not problem and err > options.atol:
        problem = f"differs from eager decode by {err:.3g} > atol {options.atol:g}"
        findings = (Finding.DIFFERS_FROM_EAGER,)
    if not problem and not prefill_err <= options.decode_prefill_atol:
        findings = (Finding.DIFFERS_FROM_PREFILL,
                    *_explain(run, position, got[0], cache, reference, options.atol))
        problem = "; ".join([f"decode logits at position {position} differ from prefill logits at position "
                             f"{position} by up to {prefill_err:.3g} > decode_prefill_atol "
                             f"{options.decode_prefill_atol:g}"]
                            + [_observed(f, position, reference) for f in findings[1:]])
    return DecodeRow(step=step, position=position, status=FAILED if problem else OK, reason=problem,
                     max_abs_err=err, prefill_abs_err=prefill_err, findings=findings)


def _explain(run, position: int, logits: torch.Tensor, cache: Sequence[torch.Tensor],
             reference: DecodeReference, atol: float) -> tuple[Finding, ...]:
    """Observations that account for a decode/prefill disagreement (possibly none)."""
    found = []
    if reference.causal_shift is not None and reference.causal_shift > atol:
        found.append(Finding.REFERENCE_NOT_CAUSAL)
    pos = torch.tensor([position], dtype=torch.int32)
    probes = ((Finding.IGNORES_CACHE, lambda: run(pos, [torch.zeros_like(c) for c in cache])),
              (Finding.IGNORES_POSITION, lambda: run(pos - 1, list(cache))))
    for finding, probe in probes:
        try:
            with torch.no_grad():
                moved = float((probe().float() - logits.float()).abs().max())
        except Exception:  # a probe that cannot run explains nothing
            continue
        if moved <= atol:
            found.append(finding)
    return tuple(found)


def _observed(finding: Finding, position: int, reference: DecodeReference) -> str:
    if finding is Finding.REFERENCE_NOT_CAUSAL:
        return (f"eager prefill over the decode sequence is not causal (earlier logits move by up to "
                f"{reference.causal_shift:.3g} when the last token changes), so it is no reference here")
    if finding is Finding.IGNORES_CACHE:
        return "the decode logits stay the same when its KV cache is zeroed: the cache has no effect"
    return (f"the decode logits stay the same when its position is {position - 1} instead of {position}: "
            "the position has no effect")


# --- shared helpers ----------------------------------------------------------

def as_tuple(value: Any) -> tuple[torch.Tensor, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def max_abs_err(got, want) -> float:
    if len(got) != len(want):
        return float("nan")
    errs = [max_abs_diff(g, w) if g.shape == w.shape and g.numel() else
            (0.0 if g.shape == w.shape else float("inf")) for g, w in zip(got, want)]
    return max(errs) if errs else float("nan")


PIECE = 1 << 22  # elements: the reductions below walk views this size, never a full-size temporary


def pieces(tensor: torch.Tensor) -> Iterator[torch.Tensor]:
    """Views of `tensor` of at most about PIECE elements, in order (at T=2048 one logits
    difference would be 2x the weights of a 125M model's embedding)."""
    if tensor.dim() == 0 or tensor.numel() <= PIECE:
        yield tensor
    elif tensor.dim() == 1:
        for start in range(0, tensor.numel(), PIECE):
            yield tensor[start:start + PIECE]
    elif (rows := PIECE // max(1, tensor[0].numel())) >= 1:
        for start in range(0, tensor.shape[0], rows):
            yield tensor[start:start + rows]
    else:
        for row in tensor:
            yield from pieces(row)


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over two tensors of one shape, piece by piece; NaN if either holds NaN."""
    worst = 0.0
    for x, y in zip(pieces(a), pieces(b)):
        diff = float(torch.sub(x.float(), y.float()).abs_().max())
        if diff != diff:
            return diff
        worst = max(worst, diff)
    return worst


def all_finite(tensor: torch.Tensor) -> bool:
    return all(bool(torch.isfinite(piece).all()) for piece in pieces(tensor))


def compare(got, want, names, specs, env: dict[str, int]) -> str:
    """Empty if `got` has the declared count and shapes and is finite."""
    if len(got) != len(names):
        return f"returned {len(got)} outputs but {len(names)} are named ({', '.join(names)})"
    for tensor, spec in zip(got, specs):
        expected = resolve_shape(spec.shape, env)
        if tuple(tensor.shape) != expected:
            return f"{spec.name} has shape {list(tensor.shape)}, expected {list(expected)}"
        if tensor.is_floating_point() and not all_finite(tensor):
            return f"{spec.name} contains NaN or Inf"
    if len(want) != len(got):
        return f"eager returned {len(want)} outputs, the program {len(got)}"
    return ""
