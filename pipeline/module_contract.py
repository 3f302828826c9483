"""The contract of a `kind = "module"` model: one JSON document, schema `contract-module-v1.json`.

It records what the exported model promises at its boundary: the declared
dimensions (enumerated values or a range, and the default), the inputs and
outputs as the exported graph declares them (dtypes, symbolic shapes over
the dimension names, e.g. `["B", 1, 128, "T"]`, an input's valid value
range and image preprocessing, an output's kind), every shape case with
the concrete output shapes eager gave at it, `model_arch`, `arch_hash`, the
per-shape validation rows and `gates_ok`:

    >>> contract = load_module_contract(path)      # schema + consistency checked
    >>> contract.case("B=1,T=64")["outputs"]["position"]
    [1, 2]

The decoder's contract (`pipeline.contract`, `contract-v1.json`) is a
different document: its KV layout and lengths mean nothing here, and a
module's inputs and dimensions mean nothing there. Loading never returns a
half-valid contract: malformed JSON, a schema violation, a newer version or
an inconsistency (a shape using an undeclared dimension, cases that are not
every combination of the dimensions, validation rows that do not cover the
cases, `gates_ok` while a row failed) is a `ContractError` naming the file.

SCHEMA_VERSION history: 1 — first version.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pipeline.contract import TensorSpec, check_document, read_document

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schemas" / "contract-module-v1.json"
KIND = "module"


@dataclass(frozen=True, kw_only=True)
class ModuleContract:
    """A loaded, validated module contract."""

    doc: Mapping[str, Any]
    path: Path | None = None

    def tensors(self, side: str) -> tuple[TensorSpec, ...]:
        """`side` is "inputs" or "outputs"."""
        return tuple(TensorSpec(name=t["name"], dtype=t["dtype"], shape=tuple(t["shape"]))
                     for t in self.doc[side])

    def case(self, label: str) -> Mapping[str, Any]:
        for case in self.doc["cases"]:
            if case["shape"] == label:
                return case
        raise KeyError(f"the contract has no shape case {label!r}")


def build_module_contract(*, model_arch: Mapping[str, Any], arch_hash: str, io_doc: Mapping[str, Any],
                          inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                          cases: Sequence[tuple[str, Mapping[str, int]]],
                          case_outputs: Mapping[str, Mapping[str, Sequence[int]]],
                          rows: Sequence[Mapping[str, Any]], gates_ok: bool) -> ModuleContract:
    """A contract from the declarations (`ModuleIO.to_dict()`) and the export results, validated."""
    declared_in = {i["name"]: i for i in io_doc["inputs"]}
    kinds = {o["name"]: o["kind"] for o in io_doc["outputs"]}
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "model_arch": _jsonable(dict(model_arch)),
        "arch_hash": arch_hash,
        "dims": dict(io_doc["dims"]),
        "batch_dim": io_doc["batch_dim"] if io_doc["batch_dim"] in io_doc["dims"] else None,
        "inputs": [{**t.to_dict(), **{k: declared_in[t.name][k] for k in ("value_range", "image")
                                      if k in declared_in.get(t.name, {})}} for t in inputs],
        "outputs": [{**t.to_dict(), "kind": kinds.get(t.name, "tensor")} for t in outputs],
        "cases": [{"shape": label, "env": dict(env),
                   "outputs": {n: list(s) for n, s in case_outputs.get(label, {}).items()}}
                  for label, env in cases],
        "validation": [dict(r) for r in rows],
        "gates_ok": gates_ok,
    }
    return validate_module_contract(_jsonable(doc), None)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def save_module_contract(contract: ModuleContract, path: Path) -> Path:
    """Write atomically (no half-written contract is ever left behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(contract.doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_module_contract(path: Path) -> ModuleContract:
    """Read, schema-check and consistency-check one module contract file."""
    return validate_module_contract(read_document(Path(path)), Path(path))


def validate_module_contract(doc: Any, path: Path | None) -> ModuleContract:
    """The schema first (a newer version gets its own word), then consistency."""
    check_document(doc, path, schema_path=SCHEMA_PATH, schema_version=SCHEMA_VERSION,
                   consistency=consistency_problems)
    return ModuleContract(doc=doc, path=path)


def _candidates(dim: Mapping[str, Any]) -> list[int]:
    return list(dim["values"]) if "values" in dim else list(dict.fromkeys((dim["min"], dim["max"])))


def consistency_problems(doc: Mapping[str, Any]) -> list[str]:
    """What the schema cannot say: dimensions used and declared, cases, rows, gates_ok."""
    problems: list[str] = []
    dims = doc["dims"]
    for side in ("inputs", "outputs"):
        for tensor in doc[side]:
            for size in tensor["shape"]:
                if side == "inputs" and isinstance(size, str) and size not in dims:
                    problems.append(f"input {tensor['name']} uses dimension {size!r}, which is not declared")
    expected = [",".join(f"{k}={v}" for k, v in zip(dims, sizes)) or "static"
                for sizes in itertools.product(*(_candidates(d) for d in dims.values()))]
    labels = [c["shape"] for c in doc["cases"]]
    if sorted(labels) != sorted(expected):
        problems.append(f"cases {labels} are not every combination of the dimensions {expected}")
    rows = [r["shape"] for r in doc["validation"]]
    if sorted(rows) != sorted(labels):
        problems.append(f"validation rows cover {rows}, not the cases {labels}")
    if doc["batch_dim"] is not None and doc["batch_dim"] not in dims:
        problems.append(f"batch_dim {doc['batch_dim']!r} is not a declared dimension")
    if doc["gates_ok"] and not (doc["validation"] and all(r["status"] == "ok" for r in doc["validation"])):
        problems.append("gates_ok is true but a shape case did not validate")
    return problems
