"""One converted target against PyTorch: its rows folded per length, its outcome as an evidence entry."""

from __future__ import annotations

import gc
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pipeline.parity import targets
from pipeline.parity.cases import Comparison
from pipeline.parity.targets import TargetStatus, fold_rows, run_target
from pipeline.runtimes.base import NotEvaluable

PLAN = SimpleNamespace(target="coreml", precision="fp16", runtime="mil")


def _c(output: str, *, phase: str = "prefill", length: int = 64, source: str = "random", step: int = 0,
       max_abs: float = 1e-3, misses: tuple[str, ...] = ()) -> Comparison:
    return Comparison(phase=phase, source=source, length=length, step=step, output=output,
                      metrics={"max_abs": max_abs, "cosine": 1.0 - max_abs, "nan_count": 0}, misses=misses)


def test_rows_fold_sources_and_steps_into_the_worst_value_per_length_and_output() -> None:
    rows = fold_rows([_c("logits", max_abs=1e-3), _c("logits", source="text", max_abs=5e-3, misses=("max_abs",)),
                      _c("k_cache_0", max_abs=2e-3), _c("k_cache_1", max_abs=4e-3),
                      _c("logits", phase="decode", step=1, max_abs=1e-4)], "mil")
    assert [(r["phase"], r["T"], r["output"]) for r in rows] == [("prefill", 64, "cache"), ("prefill", 64, "logits"),
                                                                 ("decode", 64, "logits")]
    cache, logits, decode = rows
    assert logits["runs"] == 2 and logits["max_abs"] == 5e-3 and logits["cosine"] == pytest.approx(1 - 5e-3)
    assert logits["status"] == TargetStatus.FAIL and logits["misses"] == ["logits (text): max_abs"]
    assert cache["runs"] == 2 and cache["max_abs"] == 4e-3 and cache["status"] == TargetStatus.PASS
    assert decode["runtime"] == "mil" and decode["status"] == "pass"


def test_a_non_finite_metric_is_stored_as_null() -> None:
    [row] = fold_rows([Comparison(phase="prefill", source="random", length=8, step=0, output="logits",
                                  metrics={"max_abs": math.inf, "psnr_db": math.nan}, misses=("max_abs",))], "onnx")
    assert row["max_abs"] is None and row["psnr_db"] is None


def _run(monkeypatch: pytest.MonkeyPatch, outcome: Any, **kwargs: Any) -> dict[str, Any]:
    def compare(*args: Any) -> Any:
        if isinstance(outcome, BaseException):
            raise outcome
        rows, paths = outcome
        opened = targets.Programs(lambda path: object())
        for path in paths:
            opened[path]  # opened, as the comparisons would have
        return rows, opened

    monkeypatch.setattr(targets, "_compare_target", compare)
    options = {"thresholds": {}, "decode_steps": 1, "seed": 0, "sources": ("random",), "text_ids": (),
               "localise": False, "localise_tol": {}, "refs": (None, None), **kwargs}
    return run_target(PLAN, adapter=None, arts=None, **options)


def test_a_runtime_that_cannot_run_here_is_not_evaluable_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _run(monkeypatch, NotEvaluable("Core ML prediction needs macOS"))
    assert entry["status"] == TargetStatus.NOT_EVALUABLE and entry["reason"] == "Core ML prediction needs macOS"
    assert entry["rows"] == [] and entry["comparisons"] == 0


def test_any_other_failure_is_this_targets_error(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _run(monkeypatch, RuntimeError("the package is truncated"))
    assert entry["status"] == TargetStatus.ERROR and entry["reason"] == "RuntimeError: the package is truncated"


def test_nothing_compared_is_an_error_never_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _run(monkeypatch, ([], {}))
    assert entry["status"] == TargetStatus.ERROR and entry["reason"] == "nothing was compared"


def test_a_miss_fails_the_target_and_counts_it(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = _run(monkeypatch, ([_c("logits"), _c("logits", source="text", misses=("cosine",))], {"p.mlpackage": 1}))
    assert entry["status"] == TargetStatus.FAIL and (entry["comparisons"], entry["failed"]) == (2, 1)
    assert entry["files"] == ["p.mlpackage"] and entry["localisation"] == []


def test_a_localisation_that_fails_is_noted_and_never_changes_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.parity import localise

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("no such op")

    monkeypatch.setattr(localise, "localise_failure", broken)
    entry = _run(monkeypatch, ([_c("logits", misses=("max_abs",))], {}), localise=True)
    assert entry["status"] == TargetStatus.FAIL
    assert entry["localisation"] == [{"kind": "unavailable", "detail": "KeyError: 'no such op'"}]


def test_programs_open_on_first_use_and_a_released_one_opens_again_when_asked_for() -> None:
    opened: list[str] = []
    programs = targets.Programs(lambda path: opened.append(path) or f"runtime of {path}")
    assert programs.get("never.mlpackage") is None and opened == []
    assert programs["a.mlpackage"] == "runtime of a.mlpackage" and programs["a.mlpackage"] is not None
    assert opened == ["a.mlpackage"]  # opened once
    programs.release("a.mlpackage")
    assert dict.get(programs, "a.mlpackage") is None and list(programs) == ["a.mlpackage"]
    assert programs.get("a.mlpackage") == "runtime of a.mlpackage" and opened == ["a.mlpackage"] * 2


def test_each_lengths_program_is_let_go_once_its_rows_are_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-length prefill packages each hold the whole model: only the one in use may be open,
    and decode (which starts from the reference's caches) runs once every prefill is let go."""
    live: set[str] = set()
    seen: list[tuple[str, set[str]]] = []

    class Program:
        def __init__(self, path: str) -> None:
            self.path = path
            live.add(path)

        def __del__(self) -> None:
            live.discard(self.path)

    def compared(ref, cand, ids, *args, **kwargs):
        seen.append((cand.path, set(live)))
        return [_c("logits", length=len(ids))]

    monkeypatch.setattr(targets, "_open", lambda target, runtime, path: Program(path))
    monkeypatch.setattr(targets, "prefill_comparisons", compared)
    monkeypatch.setattr(targets, "decode_comparisons", lambda ref, ref_decode, cand, *a, **k: compared(ref, cand, *a))
    monkeypatch.setattr(targets, "input_ids", lambda source, length, **k: list(range(length)))
    monkeypatch.setattr(targets, "_names", lambda adapter: SimpleNamespace(prefill_outputs=("logits",)))
    arts = SimpleNamespace(options=SimpleNamespace(lengths=(8, 16, 32), primary_length=16),
                           export=SimpleNamespace(cache_range=(1, 64)),
                           coreml_package=lambda kind, precision, length=None: f"{kind}_{length}.mlpackage")
    rows, opened = targets._compare_target(PLAN, SimpleNamespace(vocab_size=8), arts, (None, None), {}, 1, 0,
                                           ("random",), ())
    assert [path for path, _ in seen] == ["prefill_8.mlpackage", "prefill_16.mlpackage", "prefill_32.mlpackage"] + \
        ["decode_None.mlpackage"] * 3
    for path, open_then in seen:
        assert open_then == {path}, open_then  # never two programs at once
    assert live == {"decode_None.mlpackage"} and len(rows) == 6
    assert sorted(opened) == ["decode_None.mlpackage", "prefill_16.mlpackage", "prefill_32.mlpackage",
                              "prefill_8.mlpackage"]  # every program is still named in the evidence
    opened.close()  # run_target's last step: the target holds no program once its entry is made
    assert live == set() and len(opened) == 4


def test_a_released_program_in_a_reference_cycle_is_freed_by_the_release(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded MIL program sits in reference cycles: only the release's collection frees it,
    so nothing else may hold it then (a program still held kept 0.5 GB through decode at 125M)."""
    live: set[str] = set()
    after_release: list[set[str]] = []

    class Program:
        def __init__(self, path: str) -> None:
            self.path, self.cycle = path, self  # freed by a collection only
            live.add(path)

        def __del__(self) -> None:
            live.discard(self.path)

    def release(collect: bool = False) -> bool:
        gc.collect()
        after_release.append(set(live))
        return True

    monkeypatch.setattr(targets.heap, "release", release)
    monkeypatch.setattr(targets, "_open", lambda target, runtime, path: Program(path))
    monkeypatch.setattr(targets, "prefill_comparisons", lambda *a, **k: [_c("logits")])
    monkeypatch.setattr(targets, "decode_comparisons", lambda *a, **k: [])
    monkeypatch.setattr(targets, "input_ids", lambda source, length, **k: list(range(length)))
    monkeypatch.setattr(targets, "_names", lambda adapter: SimpleNamespace(prefill_outputs=("logits",)))
    arts = SimpleNamespace(options=SimpleNamespace(lengths=(8, 16), primary_length=8),
                           export=SimpleNamespace(cache_range=(1, 64)),
                           coreml_package=lambda kind, precision, length=None: f"{kind}_{length}.mlpackage")
    gc.collect()
    targets._compare_target(PLAN, SimpleNamespace(vocab_size=8), arts, (None, None), {}, 1, 0, ("random",), ())
    assert after_release[:2] == [set(), set()]  # each length's program gone once released


def test_a_spilling_reference_runs_every_length_before_any_program_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    """An eager pass at the longest length and a program's weights never share memory; the
    reference's decode runs ahead too, then the weights are parked before a program opens."""
    events: list[str] = []

    class Reference:
        spills = True

        def run(self, inputs):
            events.append(f"reference T={len(inputs['input_ids'])}")
            return {"logits": np.zeros((1, 1, 4), np.float32)}

    class Decode:
        def run(self, inputs):
            events.append(f"decode at {int(inputs['position'][0])}")
            return {"logits": np.zeros((1, 1, 4), np.float32)}

    class Program:
        def __init__(self, path: str) -> None:
            events.append(f"open {path}")
            self.path = path

    monkeypatch.setattr(targets, "_open", lambda target, runtime, path: Program(path))
    def compared(ref, cand, ids, *args, **kwargs):
        ref.run({"input_ids": ids})
        return [_c("logits", length=len(ids))]

    monkeypatch.setattr(targets, "prefill_comparisons", compared)
    monkeypatch.setattr(targets, "decode_comparisons", lambda *a, **k: [])
    monkeypatch.setattr(targets, "input_ids", lambda source, length, **k: list(range(length)))
    monkeypatch.setattr(targets, "_names", lambda adapter: SimpleNamespace(
        prefill_outputs=("logits",), cache_inputs=(), decode_outputs=("logits",)))
    arts = SimpleNamespace(options=SimpleNamespace(lengths=(8, 16, 32), primary_length=16),
                           export=SimpleNamespace(cache_range=(1, 18)),
                           coreml_package=lambda kind, precision, length=None: f"{kind}.mlpackage")
    targets._compare_target(PLAN, SimpleNamespace(vocab_size=8), arts, (Reference(), Decode()), {}, 2, 0,
                            ("random",), (), park=lambda: events.append("park"))
    first_open = events.index("open prefill.mlpackage")
    # decode runs only where the cache holds the prompt and its steps (8 + 2 <= 18, 16 + 2 <= 18)
    assert events[:first_open] == ["reference T=8", "decode at 8", "decode at 9", "reference T=16", "decode at 16",
                                   "decode at 17", "reference T=32", "park"]
    Reference.spills = False  # a reference kept in memory is not run ahead: that would hold every length
    events.clear()
    targets._compare_target(PLAN, SimpleNamespace(vocab_size=8), arts, (Reference(), Decode()), {}, 2, 0,
                            ("random",), (), park=lambda: events.append("park"))
    assert events[0] == "open prefill.mlpackage" and "park" not in events


def test_a_primed_reference_is_not_walked_again_for_the_next_target(monkeypatch: pytest.MonkeyPatch) -> None:
    """Priming hashes every input it looks up (a decode step's caches are hundreds of MB at 1B):
    the targets after the first find it done."""
    from pipeline.parity.cases import CachedRuntime

    calls: list[int] = []

    class Eager:
        def run(self, inputs):
            calls.append(len(inputs["input_ids"][0]))
            return {"logits": np.zeros((1, 1, 4), np.float32)}

    refs = (CachedRuntime(Eager()), CachedRuntime(Eager()))
    adapter = SimpleNamespace(vocab_size=8, prefill_output_names=lambda: ("logits",),
                              decode_input_names=lambda: ("input_ids", "position"),
                              decode_output_names=lambda: ("logits",))
    arts = SimpleNamespace(options=SimpleNamespace(lengths=(8, 16)), export=SimpleNamespace(cache_range=(1, 64)))
    lookups = []
    original = CachedRuntime.run
    monkeypatch.setattr(CachedRuntime, "run", lambda self, inputs: lookups.append(1) or original(self, inputs))
    for _ in range(3):
        targets.prime_references(refs, adapter, arts, sources=("random",), seed=0, text_ids=(), decode_steps=2)
    assert len(lookups) == 2 * (1 + 2)  # once: two lengths, a prefill and two decode steps each
    targets.prime_references(refs, adapter, arts, sources=("random",), seed=1, text_ids=(), decode_steps=2)
    assert len(lookups) == 2 * 2 * (1 + 2)  # other inputs are primed on their own


def test_a_released_program_is_collected_at_once_by_what_its_package_weighs(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A collection pays for a large program's weights, not for a small model's (0.2-0.3 s each)."""
    dropped: list[int] = []
    monkeypatch.setattr(targets.heap, "release_dropped", lambda nbytes: dropped.append(nbytes) or True)
    large, small = tmp_path / "large.mlpackage", tmp_path / "small.mlpackage"
    for package, size in ((large, 40 << 20), (small, 4096)):
        (package / "Data").mkdir(parents=True)
        with open(package / "Data" / "weight.bin", "wb") as f:
            f.truncate(size)  # sparse: what the package declares it weighs
    opened = targets.Programs(lambda path: object())
    opened[large], opened[small] = opened[large], opened[small]
    opened.close()
    assert dropped == [40 << 20, 4096]
    assert [n >= targets.heap.COLLECT_DROPPED for n in dropped] == [True, False]
