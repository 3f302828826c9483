"""Everything exported and converted from one model: the API the model gates share.

    >>> options = BuildOptions.from_model_spec(spec.model)          # or BuildOptions(lengths=(8, 16), ...)
    >>> arts = build_artifacts(adapter, options, out_dir)
    >>> arts.export.rows                                  # per-length LengthRow(T, status, reason, max_abs_err)
    >>> arts.export.prefill[128], arts.export.decode      # torch.export programs (validated)
    >>> arts.coreml_package("prefill", "fp16")            # Path to the .mlpackage (enumerated lengths)
    >>> arts.coreml_package("prefill", "fp16", length=64) # per-length mode: one package per length
    >>> arts.coreml_package("decode", "fp32")             # KV cache in/out, RangeDim on the cache axis
    >>> arts.coreml_package("prefill", "int4_block32")    # compressions=("int4_block32",): from the fp16 package
    >>> arts.coreml_package("decode_stateful", "fp16")    # stateful=("fp16",): the KV cache as Core ML state
    >>> arts.onnx_model("decode")                         # Path to the checked .onnx
    >>> arts.contract, arts.contract_path                 # pipeline.contract.Contract and its JSON file
    >>> arts.errors                                       # step -> message, e.g. {"coreml:decode:fp16": "..."}

Steps and their names in `errors`: "export:prefill_dynamic" (the dynamic
prefill export failed; each length was then exported on its own, and
per-length failures are rows, not errors), "export:decode",
"coreml:<kind>:<variant>[:T<n>]" (a variant is a precision or a
compression), "onnx:<kind>", "contract". Each step
records its own error and the others go on; `coreml_package` / `onnx_model`
raise `ArtifactError` carrying the recorded message when asked for something
that failed. Only an adapter that cannot even build its modules makes
`build_artifacts` raise (the gate then reports `error`).

`model_identity(checkpoint, tokenizer, adapter)` gives the arch hash and
tokenizer fingerprint the contract records (checkpoint metadata first).

Packages live in a content-addressed folder `out_dir/<key>/`, where the key
hashes the weights and buffers (values, not only shapes), the architecture,
the names and source files of the model classes, the build options, the
torch / coremltools / onnx versions and the pipeline's own sources (a change
to how packages are built builds them again). Packages are written under a
temporary name and renamed, so a package that exists is complete: a warm re-run with
the same model and options reuses them (listed in `reused`) instead of
converting again. Export
and its validation always run (they are the evidence the export gate reports).

Gates share one instance per run through `ctx.memo.get("adapter", ...)` and
`ctx.memo.get("artifacts", ...)`; see `gates.model.export.shared_artifacts`.
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import json
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import torch

from pipeline import to_coreml, to_onnx
from pipeline.contract import Contract, build_contract, kv_layout, save_contract
from pipeline.export import ExportBundle, ExportOptions, export_model, for_conversion
from pipeline.source_digest import pipeline_digest


class Phase(enum.StrEnum):
    """Which program: prefill (the prompt), decode (one token, the KV cache threaded through), or the
    stateful decode (one token, the KV cache held as Core ML state; a Core ML package only)."""

    PREFILL = "prefill"
    DECODE = "decode"
    DECODE_STATEFUL = "decode_stateful"


KINDS = (Phase.PREFILL, Phase.DECODE)  # the programs every target gets
STATEFUL = Phase.DECODE_STATEFUL


class ArtifactError(Exception):
    """An artifact that was asked for but could not be built; carries the step's message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildOptions:
    """What to build. Defaults follow gates.engine.spec.ModelSpec."""

    lengths: tuple[int, ...] = (64, 128, 256, 512)
    primary_length: int = 128
    precisions: tuple[str, ...] = ("fp32", "fp16")
    targets: tuple[str, ...] = ("coreml", "onnx")
    deployment_target: str = "iOS18"
    per_length: bool = False
    atol: float = 1e-4
    decode_prefill_atol: float = 1e-3
    decode_steps: int = 4
    decode_prompt_length: int = 8
    batch: int = 1
    seed: int = 0
    compressions: tuple[str, ...] = ()  # pipeline.compression.KINDS: fp16 packages with compressed weights
    stateful: tuple[str, ...] = ()  # precisions or compressions that also get a stateful decode package

    def __post_init__(self) -> None:
        from pipeline.compression import KINDS

        bad = [p for p in self.precisions if p not in to_coreml.PRECISIONS]
        if bad:
            raise ValueError(f"precisions {bad} are not among {', '.join(to_coreml.PRECISIONS)}")
        bad = [c for c in self.compressions if c not in KINDS]
        if bad:
            raise ValueError(f"compressions {bad} are not among {', '.join(KINDS)}")
        bad = [v for v in self.stateful if v not in to_coreml.PRECISIONS and v not in KINDS]
        if bad:
            raise ValueError(f"stateful {bad}: each must be a precision or a compression "
                             f"({', '.join([*to_coreml.PRECISIONS, *KINDS])})")
        unknown = [t for t in self.targets if t not in ("coreml", "onnx")]
        if unknown:
            raise ValueError(f"targets {unknown} are not among coreml, onnx")
        self.export_options()  # validates lengths and the primary length

    @classmethod
    def from_model_spec(cls, spec: Any, **overrides: Any) -> BuildOptions:
        """From a gates.engine.spec.ModelSpec (or anything with those attributes)."""
        fields = {name: tuple(v) if isinstance(v, list) else v
                  for name in ("lengths", "primary_length", "precisions", "targets", "deployment_target",
                               "compressions", "stateful")
                  if (v := getattr(spec, name, None)) is not None}
        return cls(**{**fields, **overrides})

    def export_options(self) -> ExportOptions:
        return ExportOptions(lengths=tuple(self.lengths), primary_length=self.primary_length,
                             dynamic=not self.per_length, atol=self.atol,
                             decode_prefill_atol=self.decode_prefill_atol, decode_steps=self.decode_steps,
                             decode_prompt_length=self.decode_prompt_length, batch=self.batch, seed=self.seed)


@dataclass(frozen=True, slots=True, kw_only=True)
class PackageKey:
    """Which Core ML package: its program, a variant (precision or compression), and a length in
    per-length mode."""

    kind: Phase
    precision: str
    length: int | None = None

    def __post_init__(self) -> None:
        # A plain "prefill" names the same package: keep one type, so keys hash alike.
        object.__setattr__(self, "kind", Phase(self.kind))

    @property
    def step(self) -> str:
        return f"coreml:{self.kind}:{self.precision}" + (f":T{self.length}" if self.length else "")

    @property
    def filename(self) -> str:
        return f"{self.kind}_{self.precision}" + (f"_T{self.length}" if self.length else "") + ".mlpackage"


@dataclass(frozen=True, kw_only=True)
class ModelArtifacts:
    """The exported programs, converted models and contract of one model."""

    folder: Path
    key: str
    options: BuildOptions
    export: ExportBundle
    arch_hash: str
    tokenizer_fingerprint: str | None = None
    coreml: Mapping[PackageKey, Path] = field(default_factory=dict)
    onnx: Mapping[str, Path] = field(default_factory=dict)
    contract: Contract | None = None
    contract_path: Path | None = None
    errors: Mapping[str, str] = field(default_factory=dict)
    reused: tuple[str, ...] = ()

    def expected_packages(self) -> tuple[PackageKey, ...]:
        """Every Core ML package the options ask for: per precision, then per compression
        (whose `precision` field names the compression), then the stateful decodes."""
        if "coreml" not in self.options.targets:
            return ()
        keys = []
        for variant in (*self.options.precisions, *self.options.compressions):
            if self.options.per_length:
                keys += [PackageKey(kind=Phase.PREFILL, precision=variant, length=t) for t in self.options.lengths]
            else:
                keys.append(PackageKey(kind=Phase.PREFILL, precision=variant))
            keys.append(PackageKey(kind=Phase.DECODE, precision=variant))
        keys += [PackageKey(kind=STATEFUL, precision=variant) for variant in self.options.stateful]
        return tuple(keys)

    def coreml_package(self, kind: str, precision: str, length: int | None = None) -> Path:
        key = PackageKey(kind=Phase(kind), precision=precision, length=length if self.options.per_length else None)
        if key in self.coreml:
            return self.coreml[key]
        raise ArtifactError(self.errors.get(key.step, f"no Core ML package {key.step} was built "
                                            f"(targets {self.options.targets}, precisions "
                                            f"{self.options.precisions})"))

    def onnx_model(self, kind: str) -> Path:
        if kind in self.onnx:
            return self.onnx[kind]
        raise ArtifactError(self.errors.get(f"onnx:{kind}", f"no ONNX {kind} model was built"))


def build_artifacts(adapter: Any, options: BuildOptions, out_dir: Path, *, arch_hash: str | None = None,
                    tokenizer_fingerprint: str | None = None, reuse: bool = True) -> ModelArtifacts:
    """Export, validate, convert and write the contract; each step records its own error.

    `reuse=False` (`readiness assess --no-cache`) converts again even where a
    complete package with the same key is already on disk.
    """
    key = model_key(adapter, options)
    folder = Path(out_dir) / key[:20]
    folder.mkdir(parents=True, exist_ok=True)
    errors: dict[str, str] = {}
    bundle = export_model(adapter, options.export_options())
    errors.update({f"export:{k}": v for k, v in bundle.errors.items()})
    arts = ModelArtifacts(folder=folder, key=key, options=options, export=bundle,
                          arch_hash=arch_hash or weights_arch_hash(adapter.module),
                          tokenizer_fingerprint=tokenizer_fingerprint)
    coreml, reused = _build_coreml(adapter, arts, errors, reuse) if "coreml" in options.targets else ({}, [])
    onnx, onnx_reused = _build_onnx(adapter, arts, errors, reuse) if "onnx" in options.targets else ({}, [])
    arts = replace(arts, coreml=coreml, onnx=onnx)  # the contract lists the packages built
    contract, contract_path = _write_contract(adapter, arts, errors)
    return replace(arts, contract=contract, contract_path=contract_path,
                   errors=errors, reused=tuple(reused + onnx_reused))


def weights_arch_hash(module: torch.nn.Module) -> str:
    """The checkpoint's arch hash (names, shapes, dtypes) of a loaded module."""
    from pipeline.checkpoint import arch_hash

    return arch_hash(module.state_dict())


def model_key(adapter: Any, options: BuildOptions) -> str:
    """sha256 over weights, architecture, model source, options, tool versions and the
    pipeline's own sources (`pipeline_digest`)."""
    digest = hashlib.sha256()
    state = adapter.module.state_dict()
    # non-persistent buffers (rotary and mask tables, a seeded defect's dead weight) are converted too
    extra_buffers = {n: b for n, b in adapter.module.named_buffers() if n not in state}
    for name, tensor in sorted({**state, **extra_buffers}.items()):
        digest.update(name.encode())
        digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    # sorted, not a set: a set of classes iterates in id order, which differs per process
    for cls in sorted({type(adapter), type(adapter.module)}, key=lambda c: f"{c.__module__}.{c.__qualname__}"):
        digest.update(f"{cls.__module__}.{cls.__qualname__}".encode())  # one module may hold several models
        try:
            digest.update(inspect.getsource(inspect.getmodule(cls)).encode())  # type: ignore[arg-type]
        except (OSError, TypeError):
            digest.update(cls.__qualname__.encode())
    versions = {name: _version(name) for name in ("torch", "coremltools", "onnx", "onnxscript")}
    extra = {"arch": adapter.arch, "options": asdict(options), "versions": versions,
             "pipeline": pipeline_digest(),
             "names": [list(adapter.prefill_output_names()), list(adapter.decode_input_names()),
                       list(adapter.decode_output_names())]}
    digest.update(json.dumps(extra, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def _build_coreml(adapter: Any, arts: ModelArtifacts, errors: dict[str, str], reuse: bool = True):
    packages: dict[PackageKey, Path] = {}
    reused: list[str] = []
    programs: dict[Any, Any] = {}  # run_decompositions once per program, not per precision

    def build(key: PackageKey) -> Path:
        path = arts.folder / key.filename
        if key in packages:
            return packages[key]
        if reuse and _complete(path):
            reused.append(key.step)
            return path
        if key.kind is STATEFUL:
            base = None if key.precision in to_coreml.PRECISIONS else build(PackageKey(kind=STATEFUL,
                                                                                       precision="fp16"))
            return _convert_stateful(adapter, arts, key, programs, path, base)
        if key.precision not in to_coreml.PRECISIONS:  # a compression of the fp16 package
            from pipeline.compression import compress_package

            base = build(PackageKey(kind=key.kind, precision="fp16", length=key.length))
            return compress_package(base, key.precision, path).path
        program = _program_for(arts.export, key)
        if id(program) not in programs:
            programs[id(program)] = for_conversion(program)
        return _convert(adapter, arts, key, programs[id(program)], path)

    for key in arts.expected_packages():
        try:
            packages[key] = build(key)
        except Exception as exc:  # recorded; the other packages still build
            errors[key.step] = str(exc)
    return {k: v for k, v in packages.items() if k in set(arts.expected_packages())}, reused


def _convert_stateful(adapter: Any, arts: ModelArtifacts, key: PackageKey, programs: dict, path: Path,
                      base: Path | None) -> Path:
    """A stateful decode package; a compressed one is converted with the compression pass,
    configured by the const names of the fp16 stateful package `base`."""
    from pipeline import compression, stateful_decode

    opts, cache_range = arts.options, arts.export.cache_range
    if STATEFUL not in programs:  # one export serves every stateful variant
        module = stateful_decode.wrap(adapter, cache_range, opts.batch)
        programs[STATEFUL] = (module, stateful_decode.export_stateful(module, cache_range,
                                                                      opts.decode_prompt_length, opts.batch))
    module, program = programs[STATEFUL]
    compress = None if base is None else compression.conversion_pass(key.precision,
                                                                      compression.weight_names(base))
    return stateful_decode.convert_stateful(program, module, output_name=adapter.decode_output_names()[0],
                                            cache_range=cache_range, precision=to_coreml.compute_precision(
                                                key.precision), out_path=path,
                                            deployment=opts.deployment_target, batch=opts.batch,
                                            compression=compress)


def _complete(path: Path) -> bool:
    try:
        to_coreml.read_package(path)
        return True
    except to_coreml.PackageError:
        return False


def _program_for(bundle: ExportBundle, key: PackageKey) -> Any:
    if key.kind is Phase.DECODE:
        if bundle.decode is None:
            raise ArtifactError(f"no decode program to convert: {bundle.errors.get('decode', 'export failed')}")
        return bundle.decode
    length = key.length or bundle.options.primary_length
    program = bundle.prefill.get(length)
    if program is None:
        row = bundle.row(length)
        raise ArtifactError(f"no prefill program for T={length} to convert: {row.reason if row else ''}")
    if key.length is None and "prefill_dynamic" in bundle.errors:
        raise ArtifactError("enumerated lengths need the dynamic prefill program, which failed to export: "
                            + bundle.errors["prefill_dynamic"])
    return program


def _convert(adapter: Any, arts: ModelArtifacts, key: PackageKey, program: Any, path: Path) -> Path:
    opts = arts.options
    if key.kind is Phase.PREFILL:
        lengths = (key.length,) if key.length else opts.lengths
        return to_coreml.convert_prefill(
            program, input_name="input_ids", output_names=adapter.prefill_output_names(), lengths=lengths,
            default_length=key.length or opts.primary_length, precision=key.precision, out_path=path,
            deployment=opts.deployment_target, batch=opts.batch)
    return to_coreml.convert_decode(
        program, input_specs=arts.export.decode_io[0], output_names=adapter.decode_output_names(),
        cache_range=arts.export.cache_range, default_cache=opts.decode_prompt_length,
        precision=key.precision, out_path=path, deployment=opts.deployment_target)


def _build_onnx(adapter: Any, arts: ModelArtifacts, errors: dict[str, str], reuse: bool = True):
    opts, models, reused = arts.options, {}, []
    for kind in KINDS:
        path = arts.folder / f"{kind}.onnx"
        if reuse and to_onnx.is_complete(path):  # its data files are moved in before it
            models[kind] = path
            reused.append(f"onnx:{kind}")
            continue
        try:
            models[kind] = _export_onnx(adapter, kind, opts, arts.export, path)
        except Exception as exc:
            errors[f"onnx:{kind}"] = str(exc)
    return models, reused


def _dynamic_prefill(bundle: ExportBundle) -> torch.export.ExportedProgram | None:
    """The one prefill program every length shares (exported with a dynamic length), if any."""
    programs = {id(p): p for p in bundle.prefill.values()}
    return next(iter(programs.values())) if len(programs) == 1 and len(bundle.prefill) > 1 else None


def _export_onnx(adapter: Any, kind: str, opts: BuildOptions, bundle: ExportBundle, path: Path) -> Path:
    """ONNX from the programs the export step made (dynamic ones: the same ranges), so the model
    is not traced twice; from the module where there is none."""
    gen = torch.Generator().manual_seed(opts.seed)
    if kind == "prefill":
        ids = torch.randint(0, adapter.vocab_size, (opts.batch, opts.primary_length), generator=gen,
                            dtype=torch.int32)
        return to_onnx.export_prefill_onnx(adapter.prefill_module(), ids,
                                           output_names=adapter.prefill_output_names(), out_path=path,
                                           min_length=min(opts.lengths), max_length=max(opts.lengths),
                                           program=_dynamic_prefill(bundle))
    cache = [torch.randn(opts.batch, adapter.n_kv_heads, opts.decode_prompt_length, adapter.d_head,
                         generator=gen) for _ in range(2 * adapter.n_layers)]
    args = [torch.zeros(opts.batch, 1, dtype=torch.int32),
            torch.tensor([opts.decode_prompt_length], dtype=torch.int32), *cache]
    return to_onnx.export_decode_onnx(adapter.decode_module(), args, input_names=adapter.decode_input_names(),
                                      output_names=adapter.decode_output_names(), out_path=path,
                                      cache_range=bundle.cache_range, program=bundle.decode)


def contract_for(adapter: Any, arts: ModelArtifacts) -> Contract:
    """The contract document these artifacts promise (validated)."""
    bundle = arts.export
    layout = kv_layout(adapter.n_layers, adapter.n_kv_heads, adapter.d_head, adapter.decode_input_names(),
                       adapter.decode_output_names())
    stateful = None
    if arts.options.stateful and bundle.decode_io[1]:
        from pipeline.stateful_decode import signature

        stateful = signature(adapter, bundle.cache_range, bundle.decode_io[1], arts.options.batch).to_dict()
    packages = [package_entry(key, path) for key, path in arts.coreml.items()] if (
        arts.options.compressions or arts.options.stateful) else None
    return build_contract(
        model_arch=adapter.arch, arch_hash=arts.arch_hash, tokenizer_fingerprint=arts.tokenizer_fingerprint,
        lengths=arts.options.lengths, primary_length=arts.options.primary_length, batch=arts.options.batch,
        prefill_io=bundle.prefill_io, decode_io=bundle.decode_io, cache_range=bundle.cache_range,
        kv_layout=layout, rows=[r.to_dict() for r in bundle.rows],
        decode_rows=[r.to_dict() for r in bundle.decode_rows],
        gates_ok=bundle.primary_ok and bundle.decode_ok, decode_stateful=stateful, packages=packages)


def package_entry(key: PackageKey, path: Path) -> dict[str, Any]:
    """One package as the contract lists it, with its size on disk."""
    from pipeline.compression import package_bytes

    return {"file": key.filename, "kind": key.kind, "variant": key.precision,
            "precision": to_coreml.compute_precision(key.precision),
            "compression": None if key.precision in to_coreml.PRECISIONS else key.precision,
            "length": key.length, "size_bytes": package_bytes(path)}


def _write_contract(adapter: Any, arts: ModelArtifacts, errors: dict[str, str]):
    try:
        contract = contract_for(adapter, arts)
        return contract, save_contract(contract, arts.folder / "contract.json")
    except Exception as exc:
        errors["contract"] = str(exc)
        return None, None


def model_identity(checkpoint: Path | None, tokenizer: Path | None, adapter: Any) -> tuple[str, str | None]:
    """(arch_hash, tokenizer fingerprint) as the checkpoint and tokenizer files state them.

    The arch hash is the checkpoint's (checked against its weights when read),
    else the loaded module's; the fingerprint is the tokenizer file's, else
    the one the checkpoint recorded, else None.
    """
    from pipeline.checkpoint import read_checkpoint

    stored_fp = None
    if checkpoint is not None and Path(checkpoint).is_file():
        ckpt = read_checkpoint(Path(checkpoint))
        hash_, stored_fp = ckpt.arch_hash, ckpt.tokenizer_fingerprint or None
    else:
        hash_ = weights_arch_hash(adapter.module)
    if tokenizer is not None and Path(tokenizer).is_file():
        from tokenizers import Tokenizer

        from pipeline.text_tokenizer import fingerprint

        return hash_, fingerprint(Tokenizer.from_file(str(tokenizer)))
    return hash_, stored_fp
