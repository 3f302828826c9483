"""Everything exported and converted from one module model: what its gates share.

    >>> arts = build_module_artifacts(model, ModuleBuildOptions.from_model_spec(spec), out_dir)
    >>> arts.export.rows                 # one ShapeRow per shape case
    >>> arts.coreml_package("fp16")      # Path to the .mlpackage (all Core ML shape cases)
    >>> arts.onnx_model()                # Path to the checked .onnx
    >>> arts.contract, arts.contract_path
    >>> arts.errors                      # step -> message: "export", "coreml:fp16", "onnx", "contract"

The `kind = "module"` counterpart of `pipeline.artifacts`, with the same
habits: each step records its own error and the others go on; packages
live in a content-addressed folder (weights, declarations, the model's
source, options, tool versions) and are written under a temporary name, so
a warm run reuses them (`reused`); export and its validation always run.
The decomposition table each package was converted from is kept beside it
(`decompositions.json`), so a reused package is localised against the same
graph.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from pipeline import to_coreml
from pipeline.module_contract import ModuleContract, build_module_contract, save_module_contract
from pipeline.module_export import ModuleExportBundle, dynamic_shapes, example_case, export_module, tensors
from pipeline.module_inputs import random_inputs


class ModuleArtifactError(Exception):
    """An artifact that was asked for but could not be built; carries the step's message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleBuildOptions:
    """What to build. Defaults follow gates.engine.spec.ModelSpec."""

    precisions: tuple[str, ...] = ("fp32", "fp16")
    targets: tuple[str, ...] = ("coreml", "onnx")
    deployment_target: str = "iOS18"
    atol: float = 1e-4
    seed: int = 0

    @classmethod
    def from_model_spec(cls, spec: Any, **overrides: Any) -> ModuleBuildOptions:
        fields = {name: tuple(v) if isinstance(v, list) else v
                  for name in ("precisions", "targets", "deployment_target")
                  if (v := getattr(spec, name, None)) is not None}
        return cls(**{**fields, **overrides})


@dataclass(frozen=True, kw_only=True)
class ModuleArtifacts:
    """The exported program, converted models and contract of one module model."""

    folder: Path
    key: str
    options: ModuleBuildOptions
    export: ModuleExportBundle
    arch_hash: str
    coreml: Mapping[str, Path] = field(default_factory=dict)  # precision -> package
    onnx: Path | None = None
    contract: ModuleContract | None = None
    contract_path: Path | None = None
    errors: Mapping[str, str] = field(default_factory=dict)
    reused: tuple[str, ...] = ()
    decompositions: Mapping[str, str] = field(default_factory=dict)  # precision -> table

    def expected_packages(self) -> tuple[str, ...]:
        return self.options.precisions if "coreml" in self.options.targets else ()

    def coreml_package(self, precision: str) -> Path:
        if precision in self.coreml:
            return self.coreml[precision]
        raise ModuleArtifactError(self.errors.get(f"coreml:{precision}", f"no Core ML {precision} package was built"))

    def onnx_model(self) -> Path:
        if self.onnx is not None:
            return self.onnx
        raise ModuleArtifactError(self.errors.get("onnx", "no ONNX model was built"))


def build_module_artifacts(model: Any, options: ModuleBuildOptions, out_dir: Path, *,
                           reuse: bool = True) -> ModuleArtifacts:
    """Export, validate, convert and write the contract; each step records its own error."""
    from pipeline.checkpoint import arch_hash

    key = module_key(model, options)
    folder = Path(out_dir) / f"module-{key[:20]}"
    folder.mkdir(parents=True, exist_ok=True)
    bundle = export_module(model, atol=options.atol, seed=options.seed)
    errors = {k: v for k, v in bundle.errors.items()}
    arts = ModuleArtifacts(folder=folder, key=key, options=options, export=bundle,
                           arch_hash=arch_hash(model.module.state_dict()))
    coreml, decompositions, reused = {}, {}, []
    if "coreml" in options.targets:
        coreml, decompositions, reused = _build_coreml(model, arts, errors, reuse)
    onnx = _build_onnx(model, arts, errors, reuse, reused) if "onnx" in options.targets else None
    contract, path = _write_contract(model, arts, errors)
    return replace(arts, coreml=coreml, onnx=onnx, contract=contract, contract_path=path, errors=errors,
                   reused=tuple(reused), decompositions=decompositions)


def module_key(model: Any, options: ModuleBuildOptions) -> str:
    """sha256 over weights, declarations, output names, model source, options and tool versions."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.module.state_dict().items()):
        digest.update(name.encode())
        digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    try:
        digest.update(inspect.getsource(inspect.getmodule(type(model.module))).encode())  # type: ignore[arg-type]
    except (OSError, TypeError):
        digest.update(type(model.module).__qualname__.encode())
    versions = {n: _version(n) for n in ("torch", "coremltools", "onnx", "onnxscript", "transformers")}
    extra = {"io": model.io.to_dict(), "outputs": list(model.output_names), "arch": dict(model.arch),
             "options": asdict(options), "versions": versions}
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _complete(path: Path) -> bool:
    try:
        to_coreml.read_package(path)
        return True
    except to_coreml.PackageError:
        return False


def _build_coreml(model: Any, arts: ModuleArtifacts, errors: dict[str, str], reuse: bool):
    from pipeline.module_convert import convert_module

    sidecar = arts.folder / "decompositions.json"
    known = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    packages, tables, reused = {}, {}, []
    programs: dict[str, Any] = {}  # each decomposition once, not once per precision
    for precision in arts.expected_packages():
        path = arts.folder / f"module_{precision}.mlpackage"
        if reuse and precision in known and _complete(path):
            packages[precision], tables[precision] = path, known[precision]
            reused.append(f"coreml:{precision}")
            continue
        if arts.export.program is None:
            errors[f"coreml:{precision}"] = f"no program to convert: {arts.export.errors.get('export', '')}"
            continue
        try:
            packages[precision], tables[precision] = convert_module(
                arts.export.program, model.io, model.output_names, precision=precision, out_path=path,
                deployment=arts.options.deployment_target, tables=programs)
        except Exception as exc:  # recorded; the other packages still build
            errors[f"coreml:{precision}"] = str(exc)
    sidecar.write_text(json.dumps({**known, **tables}, sort_keys=True))
    return packages, tables, reused


def _build_onnx(model: Any, arts: ModuleArtifacts, errors: dict[str, str], reuse: bool,
                reused: list[str]) -> Path | None:
    from pipeline.to_onnx import export_module_onnx, is_complete

    path = arts.folder / "module.onnx"
    if reuse and is_complete(path):  # its data files are moved in before it
        reused.append("onnx")
        return path
    io = model.io
    example = tensors(io, random_inputs(io, example_case(io), arts.options.seed, 0))
    try:
        return export_module_onnx(model.entry(), example, input_names=model.input_names,
                                  output_names=model.output_names,
                                  dynamic_shapes=dynamic_shapes(io) if io.dims else None, out_path=path)
    except Exception as exc:
        errors["onnx"] = str(exc)
        return None


def contract_for(model: Any, arts: ModuleArtifacts) -> ModuleContract:
    bundle = arts.export
    if bundle.program is None:
        raise ModuleArtifactError(f"no exported program: {bundle.errors.get('export', '')}")
    module = model.module
    arch = {"class": f"{type(module).__module__}.{type(module).__qualname__}",
            "parameters": sum(p.numel() for p in module.parameters()), **model.arch}
    return build_module_contract(
        model_arch=arch, arch_hash=arts.arch_hash, io_doc=model.io.to_dict(), inputs=bundle.inputs,
        outputs=bundle.outputs, cases=[(c.label, c.env) for c in model.io.cases()],
        case_outputs=bundle.case_outputs, rows=[r.to_dict() for r in bundle.rows], gates_ok=bundle.ok)


def _write_contract(model: Any, arts: ModuleArtifacts, errors: dict[str, str]):
    try:
        contract = contract_for(model, arts)
        return contract, save_module_contract(contract, arts.folder / "contract.json")
    except Exception as exc:
        errors["contract"] = str(exc)
        return None, None


__all__ = ["ModuleArtifactError", "ModuleArtifacts", "ModuleBuildOptions", "build_module_artifacts",
           "contract_for", "module_key"]
