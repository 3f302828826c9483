"""Contract v1: the one JSON document that says what an exported model promises.

A contract lists the prefill and decode tensors (names, dtypes, symbolic
shapes such as `[1, "T", 97]` or `[1, 2, "T_cache+1", 8]`), the enumerated and
primary lengths, the KV layout (per-layer k/v names, axes
[B, n_kv_heads, T_cache, d_head]), `model_arch`, `arch_hash`, the tokenizer
fingerprint, the per-length validation rows and `gates_ok`. The JSON Schema
ships in `pipeline/schemas/contract-v1.json`:

    >>> doc = load_contract(path)            # schema + consistency checked
    >>> doc.tensor("decode", "k_cache_0").shape
    (1, 2, 'T_cache', 8)

Loading never returns a half-valid contract: malformed JSON, a schema
violation, a newer `schema_version` or an inconsistency (primary length not
enumerated, a KV name absent from the tensors, a cache shape that disagrees
with the layout) is a `ContractError` naming the file and the problem.

SCHEMA_VERSION history: 1 — first version.

This module is standard library + jsonschema only: the contract and conversion
gates read contracts without importing torch.
"""

from __future__ import annotations

import ast
import json
import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schemas" / "contract-v1.json"
KV_AXES = ("B", "n_kv_heads", "T_cache", "d_head")
Dim = int | str


class ContractError(Exception):
    """A contract that cannot be trusted; the message names the file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TensorSpec:
    """One named tensor at a model boundary."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        return cls(name=data["name"], dtype=data["dtype"], shape=tuple(data["shape"]))


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def resolve_dim(dim: Dim, env: Mapping[str, int]) -> int:
    """`"T_cache+1"` with T_cache=8 -> 9; only names, ints, + - * are allowed."""
    if isinstance(dim, int):
        return dim

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name) and node.id in env:
            return int(env[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"cannot resolve dimension {dim!r} with {dict(env)}")

    return walk(ast.parse(dim, mode="eval").body)


def resolve_shape(shape: Sequence[Dim], env: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(resolve_dim(d, env) for d in shape)


@dataclass(frozen=True, kw_only=True)
class Contract:
    """A loaded, validated contract (the JSON document plus where it came from)."""

    doc: Mapping[str, Any]
    path: Path | None = None

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(self.doc["lengths"])

    @property
    def primary_length(self) -> int:
        return int(self.doc["primary_length"])

    def tensors(self, entry: str, side: str) -> tuple[TensorSpec, ...]:
        """`entry` is "prefill", "decode" or "decode_stateful"; `side` "inputs", "outputs" (or "states")."""
        return tuple(TensorSpec.from_dict(t) for t in self.doc[entry][side])

    def tensor(self, entry: str, name: str) -> TensorSpec:
        for side in ("inputs", "outputs"):
            for spec in self.tensors(entry, side):
                if spec.name == name:
                    return spec
        raise KeyError(f"{entry} has no tensor named {name!r}")


def build_contract(*, model_arch: Mapping[str, Any], arch_hash: str, tokenizer_fingerprint: str | None,
                   lengths: Sequence[int], primary_length: int, batch: int,
                   prefill_io: tuple[Sequence[TensorSpec], Sequence[TensorSpec]],
                   decode_io: tuple[Sequence[TensorSpec], Sequence[TensorSpec]],
                   cache_range: tuple[int, int], kv_layout: Mapping[str, Any],
                   rows: Iterable[Mapping[str, Any]], decode_rows: Iterable[Mapping[str, Any]],
                   gates_ok: bool, decode_stateful: Mapping[str, Any] | None = None,
                   packages: Sequence[Mapping[str, Any]] | None = None) -> Contract:
    """A contract document from export results (validated before it is returned).

    `decode_stateful` (inputs, outputs, states, cache_range) and `packages`
    (file, kind, variant, precision, compression, length, size_bytes) are
    present when the model spec asks for a stateful or compressed package."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "model_arch": _jsonable(dict(model_arch)),
        "arch_hash": arch_hash,
        "tokenizer_fingerprint": tokenizer_fingerprint,
        "lengths": list(lengths),
        "primary_length": primary_length,
        "batch": batch,
        "prefill": {"inputs": [t.to_dict() for t in prefill_io[0]],
                    "outputs": [t.to_dict() for t in prefill_io[1]]},
        "decode": {"inputs": [t.to_dict() for t in decode_io[0]],
                   "outputs": [t.to_dict() for t in decode_io[1]],
                   "cache_range": list(cache_range)},
        "kv_layout": dict(kv_layout),
        "validation": {"prefill": [dict(r) for r in rows], "decode": [dict(r) for r in decode_rows]},
        "gates_ok": gates_ok,
    }
    if decode_stateful is not None:
        doc["decode_stateful"] = _jsonable(dict(decode_stateful))
    if packages is not None:
        doc["packages"] = [dict(p) for p in packages]
    return validate(doc, None)


def kv_layout(n_layers: int, n_kv_heads: int, d_head: int, decode_inputs: Sequence[str],
              decode_outputs: Sequence[str]) -> dict[str, Any]:
    """The layout record from the adapter's names (k_0, v_0, k_1, ... order)."""
    ins, outs = list(decode_inputs)[-2 * n_layers:], list(decode_outputs)[-2 * n_layers:]
    layers = [{"layer": i, "k": ins[2 * i], "v": ins[2 * i + 1], "k_out": outs[2 * i],
               "v_out": outs[2 * i + 1]} for i in range(n_layers)]
    return {"axes": list(KV_AXES), "n_layers": n_layers, "n_kv_heads": n_kv_heads,
            "d_head": d_head, "layers": layers}


def save_contract(contract: Contract, path: Path) -> Path:
    """Write atomically (no half-written contract is ever left behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(contract.doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_contract(path: Path) -> Contract:
    """Read, schema-check and consistency-check one contract file."""
    return validate(read_document(Path(path)), Path(path))


def read_document(path: Path) -> Any:
    """A contract file's JSON; every way it cannot be read is a ContractError naming the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"{path}: no such contract file") from None
    except IsADirectoryError:
        raise ContractError(f"{path}: is a folder, not a contract file") from None
    except OSError as exc:
        raise ContractError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ContractError(f"{path}: not a contract (JSON nested too deeply)") from None


def check_document(doc: Any, path: Path | None, *, schema_path: Path, schema_version: int,
                   consistency: Any) -> None:
    """The schema first (with a clear word for a newer version), then `consistency(doc)`'s problems."""
    import jsonschema

    where = str(path) if path else "<contract>"
    if not isinstance(doc, dict):
        raise ContractError(f"{where}: a contract is a JSON object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if isinstance(version, int) and version > schema_version:
        raise ContractError(f"{where}: schema_version {version} is newer than this harness "
                            f"understands ({schema_version}); upgrade readiness")
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(doc))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ContractError(f"{where}: {at}: {error.message}")
    problems = consistency(doc)
    if problems:
        raise ContractError(f"{where}: inconsistent contract: {'; '.join(problems)}")


def validate(doc: Any, path: Path | None) -> Contract:
    """A decoder contract document checked (`check_document`)."""
    check_document(doc, path, schema_path=SCHEMA_PATH, schema_version=SCHEMA_VERSION,
                   consistency=consistency_problems)
    return Contract(doc=doc, path=path)


def consistency_problems(doc: Mapping[str, Any]) -> list[str]:
    """What a schema cannot say: cross-field agreement."""
    problems: list[str] = []
    lengths = list(doc["lengths"])
    if doc["primary_length"] not in lengths:
        problems.append(f"primary_length {doc['primary_length']} is not in lengths {lengths}")
    rows_t = [r["T"] for r in doc["validation"]["prefill"]]
    if sorted(rows_t) != sorted(lengths):
        problems.append(f"validation rows cover lengths {rows_t}, not {lengths}")
    layout = doc["kv_layout"]
    if len(layout["layers"]) != layout["n_layers"]:
        problems.append(f"kv_layout lists {len(layout['layers'])} layers but n_layers is {layout['n_layers']}")
    arch = doc["model_arch"]
    for key in ("n_layers", "n_kv_heads", "d_head"):
        if key in arch and arch[key] != layout[key]:
            problems.append(f"model_arch {key}={arch[key]} but kv_layout {key}={layout[key]}")
    problems += _kv_problems(doc, layout)
    problems += _state_problems(doc, layout)
    primary_ok = any(r["T"] == doc["primary_length"] and r["status"] == "ok"
                     for r in doc["validation"]["prefill"])
    decode_ok = bool(doc["validation"]["decode"]) and all(
        r["status"] == "ok" for r in doc["validation"]["decode"])
    if doc["gates_ok"] and not (primary_ok and decode_ok):
        problems.append("gates_ok is true but the primary length or decode did not validate")
    return problems


def _kv_problems(doc: Mapping[str, Any], layout: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    tensors = {(entry, side): {t["name"]: t for t in doc[entry][side]}
               for entry in ("prefill", "decode") for side in ("inputs", "outputs")}
    expected_tail = [layout["n_kv_heads"], None, layout["d_head"]]
    for layer in layout["layers"]:
        for key, where in (("k", ("decode", "inputs")), ("v", ("decode", "inputs")),
                           ("k_out", ("decode", "outputs")), ("v_out", ("decode", "outputs"))):
            name = layer[key]
            tensor = tensors[where].get(name)
            if tensor is None:
                problems.append(f"kv_layout layer {layer['layer']} names {name!r}, absent from {'.'.join(where)}")
                continue
            shape = tensor["shape"]
            if len(shape) != 4 or shape[1] != expected_tail[0] or shape[3] != expected_tail[2]:
                problems.append(f"{name} has shape {shape}, expected [B, {expected_tail[0]}, T_cache, "
                                f"{expected_tail[2]}] by kv_layout")
    return problems


def _state_problems(doc: Mapping[str, Any], layout: Mapping[str, Any]) -> list[str]:
    """A stateful decode holds one state per cache tensor, laid out as the KV layout says."""
    entry = doc.get("decode_stateful")
    if entry is None:
        return []
    want = [layer[key] for layer in layout["layers"] for key in ("k", "v")]
    got = [t["name"] for t in entry["states"]]
    if got != want:
        return [f"decode_stateful states {got} are not the kv_layout caches {want}"]
    return [f"decode_stateful state {t['name']} has shape {t['shape']}, expected [B, {layout['n_kv_heads']}, "
            f"T_state, {layout['d_head']}] by kv_layout" for t in entry["states"]
            if len(t["shape"]) != 4 or t["shape"][1] != layout["n_kv_heads"] or t["shape"][3] != layout["d_head"]]


def compare_tensors(expected: Sequence[TensorSpec], actual: Sequence[TensorSpec], *,
                    what: str, float_dtype: str | None = None,
                    env: Mapping[str, int] | None = None) -> list[str]:
    """Differences between two tensor lists (names in order, dtypes, shapes).

    `float_dtype` replaces every floating dtype of `expected` (an fp16 package
    carries float16 where the contract, from fp32 torch, says float32). With
    `env`, symbolic dims are resolved; an actual dim of None (unknown in the
    package) matches any symbolic dim.
    """
    problems: list[str] = []
    want_names, got_names = [t.name for t in expected], [t.name for t in actual]
    if want_names != got_names:
        missing = [n for n in want_names if n not in got_names]
        extra = [n for n in got_names if n not in want_names]
        detail = f"missing {missing}, unexpected {extra}" if missing or extra else "in another order"
        problems.append(f"{what}: names {got_names} differ from the contract's {want_names} ({detail})")
        return problems
    for want, got in zip(expected, actual):
        dtype = float_dtype if float_dtype and want.dtype.startswith("float") else want.dtype
        if got.dtype != dtype:
            problems.append(f"{what}: {got.name} is {got.dtype}, the contract says {dtype}")
        if not _shape_matches(want.shape, got.shape, env):
            problems.append(f"{what}: {got.name} has shape {list(got.shape)}, the contract says "
                            f"{list(want.shape)}" + (f" at {dict(env)}" if env else ""))
    return problems


def _shape_matches(want: Sequence[Dim], got: Sequence[Any], env: Mapping[str, int] | None) -> bool:
    if len(want) != len(got):
        return False
    for w, g in zip(want, got):
        if g is None:  # unknown in the package: only a symbolic contract dim may be unknown
            if isinstance(w, int):
                return False
            continue
        if env is not None:
            try:
                w = resolve_dim(w, env)
            except ValueError:
                return False
        if w != g:
            return False
    return True


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


__all__ = ["SCHEMA_VERSION", "ContractError", "Contract", "TensorSpec", "Dim", "build_contract",
           "kv_layout", "save_contract", "load_contract", "validate", "consistency_problems",
           "compare_tensors", "resolve_dim", "resolve_shape"]
