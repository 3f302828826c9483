"""What each Core ML variant costs in quality for what it saves in size: the parity gate's trade-off table.

Per Core ML target the gate records the bytes of the packages it ran
(`size_bytes`: prefill + decode, or the stateful decode) and of the fp16
packages of the same kind (`baseline_bytes`), so the saving is measured
against what the model would ship without compression. `tradeoff_table`
turns the target entries into one evidence table, one row per target:

    target, runtime, size_bytes, size_saving_pct, top1_pct, top5_pct, kl,
    ppl_delta_pct, greedy_match_pct, status

with the worst value of each quality metric over the target's rows (top-1
and top-5 from the prefill logits, where they are rates). The table carries
a `chart` hint (size saving against KL) that the HTML report draws; every
other format shows the table. Sizes come from the files on disk or, for
packages not built in this run, from the contract's package list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

COLUMNS = ["target", "runtime", "size_bytes", "size_saving_pct", "top1_pct", "top5_pct", "kl", "ppl_delta_pct",
           "greedy_match_pct", "status"]
CHART = {"type": "scatter", "x": "size_saving_pct", "y": "kl", "label": "target", "y_scale": "log",
         "x_title": "size saving against fp16 (%)", "y_title": "KL of next-token distributions (nats)"}
_WORST = {"top1_pct": min, "top5_pct": min, "kl": max, "ppl_delta_pct": max, "greedy_match_pct": min}


def _bytes(arts: Any, kind: str, variant: str) -> int | None:
    from pipeline.compression import package_bytes

    try:
        path = Path(arts.coreml_package(kind, variant))
    except Exception:  # not built in this run: the file may still sit in the folder
        path = Path(getattr(arts, "folder", ".")) / f"{kind}_{variant}.mlpackage"
    if path.is_dir():
        return package_bytes(path)
    contract = getattr(arts, "contract", None)
    listed = (contract.doc.get("packages") or []) if contract is not None else []
    return next((p["size_bytes"] for p in listed if p["file"] == f"{kind}_{variant}.mlpackage"), None)


def package_sizes(arts: Any, target: str, variant: str) -> tuple[int | None, int | None]:
    """(bytes of the target's packages, bytes of the fp16 packages of the same kind)."""
    kinds = ("decode_stateful",) if target == "coreml_stateful" else ("prefill", "decode")

    def total(v: str) -> int | None:
        sizes = [_bytes(arts, kind, v) for kind in kinds]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]
    return total(variant), total("fp16")


def _worst(rows: list[Mapping[str, Any]], metric: str) -> Any:
    picked = [r for r in rows if r.get("output") == "logits" and r.get("phase") == "prefill"] \
        if metric in ("top1_pct", "top5_pct") else rows
    values = [r[metric] for r in picked if r.get(metric) is not None]
    return _WORST[metric](values) if values else None


def tradeoff_table(targets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The size/quality table over every target with a recorded size; None when there is none."""
    rows = []
    for key, entry in targets.items():
        size, base = entry.get("size_bytes"), entry.get("baseline_bytes")
        if size is None:
            continue
        saving = round(100.0 * (1 - size / base), 2) if base else None
        quality = [_worst(entry.get("rows") or [], m) for m in _WORST]
        rows.append([key, entry.get("runtime"), size, saving, *quality, entry.get("status")])
    if not rows:
        return None
    return {"title": "Core ML variants: quality cost against size saving", "columns": COLUMNS, "rows": rows,
            "chart": dict(CHART)}
