"""The engine: dependency order, skipping, error isolation, timeouts, cache."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from gates.engine import scheduler as engine
from gates.engine.cache import ResultCache
from gates.engine.protocol import GateContext
from gates.engine.spec import ProjectSpec
from gates.result import GateResult, Status
from gates.testing import StaticGate
from tests.fixtures.processes import HANG_GUARD_S


def _factory(tmp_path: Path):
    spec = ProjectSpec(name="t", root=tmp_path)

    def make(gate, results):
        return GateContext(spec=spec, settings=None, work_dir=tmp_path, results=results)

    return make


def test_dependent_runs_after_what_it_needs(tmp_path: Path) -> None:
    seen: list[str] = []
    a, b = StaticGate.passing("a", needs=("b",)), StaticGate.passing("b")
    engine.run([a, b], _factory(tmp_path), listener=lambda ev, name, r: seen.append(f"{ev}:{name}"))
    assert seen.index("done:b") < seen.index("start:a")


def test_dependent_of_failed_gate_is_skipped_naming_it(tmp_path: Path) -> None:
    base = StaticGate.with_status("export", Status.FAIL, score=0.2)
    dependent = StaticGate.passing("parity", needs=("export",))
    results = {r.name: r for r in engine.run([base, dependent], _factory(tmp_path))}
    assert results["parity"].status is Status.SKIPPED
    assert "export" in results["parity"].summary and "fail" in results["parity"].summary
    assert dependent.calls == 0


def test_dependent_of_missing_gate_is_skipped_never_passed(tmp_path: Path) -> None:
    dependent = StaticGate.passing("parity", needs=("conversion",))
    [result] = engine.run([dependent], _factory(tmp_path))
    assert result.status is Status.SKIPPED
    assert "conversion" in result.summary


def test_after_orders_without_requiring_a_pass(tmp_path: Path) -> None:
    suite = StaticGate.with_status("suite_health", Status.FAIL, score=0.5)
    mutation = StaticGate.passing("mutation")
    mutation.after = ("suite_health",)
    results = {r.name: r for r in engine.run([mutation, suite], _factory(tmp_path))}
    assert results["mutation"].status is Status.PASS


def test_raising_gate_becomes_error_and_run_goes_on(tmp_path: Path) -> None:
    broken = StaticGate("broken", raises=RuntimeError("weights file truncated: model.safetensors"))
    fine = StaticGate.passing("fine")
    results = {r.name: r for r in engine.run([broken, fine], _factory(tmp_path))}
    assert results["broken"].status is Status.ERROR
    assert "model.safetensors" in results["broken"].summary
    assert results["broken"].score is None
    assert results["fine"].status is Status.PASS


def test_gate_returning_wrong_type_is_error(tmp_path: Path) -> None:
    gate = StaticGate.passing("odd")
    gate.check = lambda ctx: {"status": "pass"}  # type: ignore[method-assign]
    [result] = engine.run([gate], _factory(tmp_path))
    assert result.status is Status.ERROR


class _StuckGate(StaticGate):
    """Passes, but not before the test releases it: only its timeout can settle it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.release = threading.Event()

    def check(self, ctx: GateContext | None) -> GateResult:
        self.release.wait(HANG_GUARD_S)  # a broken timeout ends in a pass here, then a failed assert
        return super().check(ctx)


def test_gate_over_its_timeout_is_error(tmp_path: Path) -> None:
    # However slow the machine, the stuck gate cannot pass before its 0.2 s are up.
    slow = _StuckGate.passing("slow")
    fast = StaticGate.passing("fast")
    options = engine.EngineOptions(timeouts={"slow": 0.2})
    try:
        results = {r.name: r for r in engine.run([slow, fast], _factory(tmp_path), options)}
    finally:
        slow.release.set()
    assert results["slow"].status is Status.ERROR
    assert "timed out" in results["slow"].summary
    assert results["fast"].status is Status.PASS


def test_parallel_jobs_give_the_same_results(tmp_path: Path) -> None:
    gates = [StaticGate.passing(f"g{i}", sleep_s=0.05) for i in range(4)]
    serial = engine.run(gates, _factory(tmp_path), engine.EngineOptions(jobs=1))
    parallel = engine.run(gates, _factory(tmp_path), engine.EngineOptions(jobs=4))
    assert [r.status for r in serial] == [r.status for r in parallel] == [Status.PASS] * 4


def test_cycle_is_reported(tmp_path: Path) -> None:
    a, b = StaticGate.passing("a", needs=("b",)), StaticGate.passing("b", needs=("a",))
    with pytest.raises(engine.DependencyCycle, match="a -> b -> a|b -> a -> b"):
        engine.run([a, b], _factory(tmp_path))


def test_cache_hit_reuses_result_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("v1")
    cache = ResultCache(tmp_path / "cache")
    options = engine.EngineOptions(cache=cache)
    first_gate = StaticGate.passing("cov", inputs={"files": [str(data)]})
    [first] = engine.run([first_gate], _factory(tmp_path), options)
    second_gate = StaticGate.passing("cov", inputs={"files": [str(data)]})
    [second] = engine.run([second_gate], _factory(tmp_path), options)
    assert not first.cached and second.cached
    assert second_gate.calls == 0


def test_cache_misses_when_an_input_file_changes(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("v1")
    options = engine.EngineOptions(cache=ResultCache(tmp_path / "cache"))
    engine.run([StaticGate.passing("cov", inputs={"files": [str(data)]})], _factory(tmp_path), options)
    data.write_text("v2")
    gate = StaticGate.passing("cov", inputs={"files": [str(data)]})
    [result] = engine.run([gate], _factory(tmp_path), options)
    assert gate.calls == 1 and not result.cached


def test_cache_misses_when_the_harness_sources_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import source_digest

    harness = tmp_path / "harness"
    (harness / "gates").mkdir(parents=True)
    source = harness / "gates" / "measure.py"
    source.write_text("SCALE = 1\n")
    before = source_digest.sources_digest(harness, ("gates",))
    source.write_text("SCALE = 2\n")
    assert source_digest.sources_digest(harness, ("gates",)) != before  # how it measures changed
    options = engine.EngineOptions(cache=ResultCache(tmp_path / "cache"))
    monkeypatch.setattr(source_digest, "harness_digest", lambda: before)
    engine.run([StaticGate.passing("cov", inputs={})], _factory(tmp_path), options)
    monkeypatch.setattr(source_digest, "harness_digest", lambda: "another harness")
    gate = StaticGate.passing("cov", inputs={})
    [result] = engine.run([gate], _factory(tmp_path), options)
    assert gate.calls == 1 and not result.cached


def test_the_harness_digest_reads_the_sources_of_every_package_and_nothing_compiled(tmp_path: Path) -> None:
    from pipeline.source_digest import HARNESS_PACKAGES, HARNESS_ROOT, sources_digest

    assert all((HARNESS_ROOT / package / "__init__.py").is_file() for package in HARNESS_PACKAGES)
    nested = tmp_path / "pipeline" / "perf" / "timing.py"
    compiled = tmp_path / "pipeline" / "__pycache__" / "heap.cpython-311.pyc"
    for path in (nested, compiled):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("v1")
    before = sources_digest(tmp_path, ("pipeline",))
    compiled.write_text("v2")  # a recompile is not a change of code
    assert sources_digest(tmp_path, ("pipeline",)) == before
    nested.write_text("v2")  # a change in a subpackage is
    assert sources_digest(tmp_path, ("pipeline",)) != before


def test_errors_are_never_cached(tmp_path: Path) -> None:
    options = engine.EngineOptions(cache=ResultCache(tmp_path / "cache"))
    engine.run([StaticGate("g", raises=OSError("disk"), inputs={})], _factory(tmp_path), options)
    again = StaticGate("g", raises=OSError("disk"), inputs={})
    engine.run([again], _factory(tmp_path), options)
    assert again.calls == 1


def test_gate_without_cache_inputs_always_runs(tmp_path: Path) -> None:
    options = engine.EngineOptions(cache=ResultCache(tmp_path / "cache"))
    engine.run([StaticGate.passing("g")], _factory(tmp_path), options)
    gate = StaticGate.passing("g")
    engine.run([gate], _factory(tmp_path), options)
    assert gate.calls == 1


class _StoresOnStop(StaticGate):
    """Runs until the stop, then takes its time to store what it decided (as the mutation gate does)."""

    stored = False

    def check(self, ctx: GateContext) -> GateResult:
        from gates.engine import children

        children.stop_requested.wait(HANG_GUARD_S)
        for _ in range(20):  # storing takes a while; the run must wait for it
            threading.Event().wait(0.01)
        type(self).stored = True
        raise children.Interrupted("interrupted")


def test_a_stopped_run_waits_for_its_running_gates_to_store_what_they_decided(tmp_path: Path) -> None:
    from gates.engine import children

    gate = _StoresOnStop.passing("mutation")
    threading.Timer(0.05, children.request_stop).start()
    try:
        with pytest.raises(children.Interrupted):
            engine.run([gate], _factory(tmp_path))
        assert _StoresOnStop.stored  # the run ended only after the gate had stored its results
    finally:
        children.reset()


def test_a_file_every_gate_declares_is_hashed_once_per_run(tmp_path: Path, monkeypatch) -> None:
    """A model's weights (GBs) are declared by every model gate: one hash per run, not one per gate."""
    from gates.engine import cache as cache_module

    data = tmp_path / "weights.bin"
    data.write_bytes(b"w" * 4096)
    hashed: list[str] = []
    digest = cache_module.file_digest
    monkeypatch.setattr(cache_module, "file_digest", lambda path: hashed.append(path.name) or digest(path))
    options = engine.EngineOptions(cache=ResultCache(tmp_path / "cache"))
    gates = [StaticGate.passing(name, inputs={"files": [str(data)]}) for name in ("a", "b", "c")]
    assert [r.status for r in engine.run(gates, _factory(tmp_path), options)] == [Status.PASS] * 3
    assert hashed == ["weights.bin"]
    engine.run([StaticGate.passing("d", inputs={"files": [str(data)]})], _factory(tmp_path), options)
    assert hashed == ["weights.bin", "weights.bin"]  # a new run hashes it afresh
