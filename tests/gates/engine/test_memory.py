"""Peak resident memory per gate: measured for gates that run, absent for those that did not."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from gates.engine import scheduler as engine
from gates.engine.cache import ResultCache
from gates.engine.memory import PeakMeter
from gates.engine.protocol import Gate, GateContext
from gates.engine.spec import ProjectSpec
from gates.result import GateResult, Severity, Status
from gates.testing import StaticGate
from tests.fixtures.processes import HANG_GUARD_S

MIB = 2**20


def _held_until_sampled(meter: PeakMeter, mib: int) -> int:
    """Touch `mib` MiB and keep it until the meter has measured twice; the pages touched."""
    block = np.ones(mib * MIB, np.uint8)  # written, so resident
    seen = meter.samples
    deadline = time.monotonic() + HANG_GUARD_S
    while meter.samples < seen + 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    return int(block[:: 4096].sum())


class Allocating(Gate):
    """Touches `mib` MiB while the engine's meter looks, then lets it go before returning."""

    def __init__(self, name: str, mib: int, meters: list[PeakMeter]) -> None:
        self.name, self._mib, self._meters, self.needs, self.after = name, mib, meters, (), ()
        self.severity = Severity.BLOCKER

    def check(self, ctx: GateContext) -> GateResult:
        total = _held_until_sampled(self._meters[0], self._mib)
        return GateResult(name=self.name, status=Status.PASS, score=1.0, summary=f"touched {total} pages")


def _factory(tmp_path: Path):
    spec = ProjectSpec(name="t", root=tmp_path)
    return lambda gate, results: GateContext(spec=spec, settings=None, work_dir=tmp_path, results=results)


def test_a_gate_that_holds_memory_carries_its_peak_and_a_light_one_does_not(tmp_path: Path, monkeypatch) -> None:
    meters: list[PeakMeter] = []
    monkeypatch.setattr(engine, "PeakMeter", lambda: meters.append(PeakMeter()) or meters[-1])
    heavy, light = Allocating("heavy", 400, meters), StaticGate.passing("light", needs=("heavy",))
    results = {r.name: r for r in engine.run([heavy, light], _factory(tmp_path))}
    assert results["heavy"].peak_rss_mb is not None and results["light"].peak_rss_mb is not None
    # the heavy gate's 400 MiB shows in its own peak and not in the gate that ran after it
    assert results["heavy"].peak_rss_mb - results["light"].peak_rss_mb > 300
    assert results["heavy"].to_dict()["peak_rss_mb"] == results["heavy"].peak_rss_mb


def test_a_gate_under_an_earlier_record_is_measured_by_sampling() -> None:
    # the first gate sets the process's high-water mark; the second stays under it
    # yet holds 250 MiB while the sampler looks: its peak must show that
    meter = PeakMeter()
    meter.start("first")
    block = np.ones(600 * MIB, np.uint8)
    del block
    first = meter.stop("first")
    meter.start("second")
    _held_until_sampled(meter, 250)
    second = meter.stop("second")
    meter.start("third")
    third = meter.stop("third")
    assert first is not None and second is not None and third is not None
    assert first - second > 250 and second - third > 200


def test_memory_of_child_processes_counts_for_the_gate(tmp_path: Path) -> None:
    meter = PeakMeter()
    meter.start("alone")
    alone = meter.stop("alone")
    meter.start("with-child")
    child = subprocess.Popen([sys.executable, "-c",
                              "import sys; b = bytearray(300 * 2**20); b[::4096] = b'x' * len(b[::4096]);"
                              "print('ready', flush=True); sys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        with_child = meter.stop("with-child")
    finally:
        child.communicate("")
    assert alone is not None and with_child is not None
    assert with_child - alone > 250


def test_a_cached_result_did_not_run_and_carries_no_peak(tmp_path: Path) -> None:
    options = engine.EngineOptions(cache=ResultCache(tmp_path / "cache"))
    gate = StaticGate.passing("a", inputs={"x": 1})
    first = engine.run([gate], _factory(tmp_path), options)[0]
    again = engine.run([gate], _factory(tmp_path), options)[0]
    assert first.peak_rss_mb is not None and not first.cached
    assert again.cached and again.peak_rss_mb is None and "peak_rss_mb" not in again.to_dict()


def test_a_skipped_gate_did_not_run_and_carries_no_peak(tmp_path: Path) -> None:
    failing = StaticGate("f", GateResult(name="f", status=Status.FAIL, score=0.0))
    dependent = StaticGate.passing("d", needs=("f",))
    results = {r.name: r for r in engine.run([failing, dependent], _factory(tmp_path))}
    assert results["d"].status is Status.SKIPPED and results["d"].peak_rss_mb is None
    assert results["f"].peak_rss_mb is not None


def test_a_stored_document_without_peaks_still_loads() -> None:
    old = {"name": "a", "status": "pass", "severity": "blocker", "score": 1.0, "summary": "",
           "metrics": {}, "evidence": {}, "duration_s": 1.0}
    assert GateResult.from_dict(old).peak_rss_mb is None
    assert GateResult.from_dict({**old, "peak_rss_mb": 812.5}).peak_rss_mb == 812.5
