"""What the checkpoint gate checks on a Hugging Face folder, which carries no Readiness metadata.

    >>> [(name, status) for name, status, _ in folder_checks(adapter, ids)]
    [('loads safely', 'ok'), ('weights match config', 'ok'), ('metadata complete', 'ok'),
     ('family verified', 'ok'), ('matches transformers', 'ok')]

- `loads safely`: the weights were read from safetensors files only;
- `weights match config`: transformers found no tensor the config expects
  missing, none left over, none with another shape;
- `metadata complete`: the architecture fields Readiness needs were read
  from config.json;
- `family verified`: the `model_type` is one Readiness tests end to end
  (`not checked` otherwise: the next row is then the only evidence);
- `matches transformers`: the wrapper's prefill logits, and decode logits
  through its cache, against transformers' own forward of the same model
  (its attention, rotary and mask) on `ids`, within `atol`.

Rows are (name, status, detail), status "ok", "failed" or "not checked".
"""

from __future__ import annotations

from typing import Any

OK, FAILED, NOT_CHECKED = "ok", "failed", "not checked"
MATCH_ATOL = 1e-4  # fp32: the wrapper reorders the same operations (measured <= 3e-6 on the tiny families)


def _list(names: tuple[str, ...], limit: int = 3) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def weights_rows(adapter: Any) -> list[tuple[str, str, str]]:
    report = adapter.load_report
    load = ("loads safely", OK, f"{', '.join(report.files)}: {report.tensors} tensors, "
            f"{report.params:,} parameters (safetensors, no pickle)")
    problems = [f"{what}: {_list(keys)}" for what, keys in (
        ("missing from the files", report.missing), ("not in the model", report.unexpected),
        ("shape differs", report.mismatched)) if keys]
    match = ("weights match config", FAILED, "; ".join(problems)) if problems else \
        ("weights match config", OK, f"every tensor config.json implies is there with its shape "
         f"({adapter.folder.model_type})")
    return [load, match]


def family_row(arch: dict[str, Any]) -> tuple[str, str, str]:
    from pipeline.hf.families import VERIFIED

    family = arch.get("family", "")
    if family in VERIFIED:
        return ("family verified", OK, f"{family}: {VERIFIED[family]}")
    return ("family verified", NOT_CHECKED, f"model_type {family!r} is not among the verified families "
            f"({', '.join(VERIFIED)}); the wrapper was compared with transformers' forward")


def transformers_row(adapter: Any, ids: Any, atol: float = MATCH_ATOL, prefix: int = 4) -> tuple[str, str, str]:
    """Wrapper prefill and decode logits vs transformers' own forward on `ids` [B, T]."""
    import torch

    decoder = adapter.module
    try:
        with torch.no_grad():
            reference = decoder.transformers_logits(ids)
            prefill = adapter.prefill_module()(ids)
            worst = float((prefill[0] - reference).abs().max())
            caches, decode = prefill_caches(adapter, ids[:, :prefix]), adapter.decode_module()
            for pos in range(prefix, ids.shape[1]):
                out = decode(ids[:, pos:pos + 1], torch.tensor([pos], dtype=torch.int32), *caches)
                caches = out[1:]
                worst = max(worst, float((out[0][:, 0] - reference[:, pos]).abs().max()))
    except Exception as exc:  # the model's own code failed on this input: that is the finding
        return ("matches transformers", FAILED, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    detail = (f"prefill and {ids.shape[1] - prefix} decode steps vs transformers' forward on "
              f"{list(ids.shape)}: max abs error {worst:.3g}")
    within = worst <= atol
    return ("matches transformers", OK if within else FAILED, f"{detail} ({'<=' if within else '>'} {atol:g})")


def prefill_caches(adapter: Any, ids: Any) -> tuple[Any, ...]:
    out = adapter.prefill_module()(ids)
    return tuple(out[len(adapter.prefill_output_names()) - 2 * adapter.n_layers:])


def folder_checks(adapter: Any, ids: Any, atol: float = MATCH_ATOL) -> list[tuple[str, str, str]]:
    """Every row above, in order."""
    from pipeline.adapter import REQUIRED_ARCH

    missing = [f for f in REQUIRED_ARCH if f not in adapter.arch]
    metadata = ("metadata complete", FAILED, f"config.json gives no {', '.join(missing)}") if missing else \
        ("metadata complete", OK, f"{len(adapter.arch)} architecture fields read from config.json")
    return [*weights_rows(adapter), metadata, family_row(adapter.arch), transformers_row(adapter, ids, atol)]
