"""Medians, order-statistic intervals and interleaved rounds, on an injected clock (never wall time)."""

from __future__ import annotations

import pytest

from pipeline.perf.timing import Cell, Estimate, median_interval, paired_ratio, run_trials


def test_median_interval_takes_order_statistics_that_reach_the_confidence() -> None:
    est = median_interval([9.0, 1.0, 8.0, 2.0, 7.0, 3.0, 6.0, 4.0, 5.0])
    assert (est.median, est.low, est.high, est.trials) == (5.0, 2.0, 8.0, 9)
    assert est.confidence == pytest.approx(1 - 2 * 10 / 512)  # P(Bin(9, 1/2) < 2) = 10/512


def test_few_trials_say_how_little_confidence_they_reach() -> None:
    est = median_interval([3.0, 1.0, 2.0, 5.0, 4.0])
    assert (est.low, est.high) == (1.0, 5.0)
    assert est.confidence == pytest.approx(0.9375)  # below 95 %: reported, not claimed


def test_one_outlier_moves_neither_the_median_nor_the_interval() -> None:
    calm = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99]
    spiked = [50.0 if v == 1.1 else v for v in calm]  # the slowest trial hit a load spike
    assert median_interval(spiked) == median_interval(calm)
    assert (median_interval(spiked).low, median_interval(spiked).high) == (0.95, 1.05)


def test_rates_invert_times_with_the_interval_ends_swapped() -> None:
    rate = Estimate(median=2.0, low=1.0, high=4.0, trials=5, confidence=0.9).inverted(100.0)
    assert (rate.median, rate.low, rate.high) == (50.0, 25.0, 100.0)


def test_paired_ratio_is_taken_round_by_round() -> None:
    # a load spike in round 3 slows both sides; the per-round ratio stays 4
    eager, onnx = [4.0, 4.0, 40.0, 4.0, 4.0], [1.0, 1.0, 10.0, 1.0, 1.0]
    est = paired_ratio(eager, onnx)
    assert (est.median, est.low, est.high) == (4.0, 4.0, 4.0)


class FakeClock:
    """Each call of a cell advances time by that cell's cost; reading the clock is free."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def cell(self, key: str, cost: float) -> Cell:
        def run() -> None:
            self.calls.append(key)
            self.now += cost
        return Cell(key=key, run=run)


def test_rounds_interleave_every_cell_in_a_fresh_order_each_round() -> None:
    clock = FakeClock()
    cells = [clock.cell(key, cost) for key, cost in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0))]
    trials = run_trials(cells, warmup=1, trials=6, min_trials=6, max_s=100.0, clock=clock, rewarm=False)
    assert clock.calls[:4] == ["a", "b", "c", "d"]  # warm-up
    rounds = [clock.calls[4 + 4 * i: 8 + 4 * i] for i in range(6)]
    assert all(sorted(r) == ["a", "b", "c", "d"] for r in rounds)  # one trial of each cell per round
    assert len({tuple(r) for r in rounds}) > 1  # the order changes, so neighbours change
    assert trials.samples == {"a": (1.0,) * 6, "b": (2.0,) * 6, "c": (3.0,) * 6, "d": (4.0,) * 6}
    assert trials.rounds == 6 and not trials.capped
    again = FakeClock()
    run_trials([again.cell(c.key, 1.0) for c in cells], warmup=1, trials=6, min_trials=6, clock=again, rewarm=False)
    assert again.calls == clock.calls  # seeded: the same order every run


def test_each_timed_call_follows_an_untimed_call_of_the_same_cell() -> None:
    clock = FakeClock()
    trials = run_trials([clock.cell("a", 0.125), clock.cell("b", 0.25)], warmup=0, trials=3, min_trials=3,
                        clock=clock)
    assert all(clock.calls[i] == clock.calls[i + 1] for i in range(0, len(clock.calls), 2))
    assert trials.samples == {"a": (0.125,) * 3, "b": (0.25,) * 3}  # the re-warming call is not timed


def test_a_call_long_enough_to_warm_itself_gets_one_warm_up_and_no_re_warming() -> None:
    clock = FakeClock()
    trials = run_trials([clock.cell("decode", 1 / 64), clock.cell("prefill_2048", 4.0)], warmup=2, trials=3,
                        min_trials=3, clock=clock, self_warming_s=0.5)
    assert clock.calls[:3] == ["decode", "decode", "prefill_2048"]  # warm-up: the long call once
    assert clock.calls.count("prefill_2048") == 1 + 3 and clock.calls.count("decode") == 2 + 2 * 3
    assert trials.samples == {"decode": (1 / 64,) * 3, "prefill_2048": (4.0,) * 3}


def test_a_long_cell_the_caller_just_probed_gets_no_warm_up_call() -> None:
    clock = FakeClock()
    trials = run_trials([clock.cell("decode", 1 / 64), clock.cell("prefill_2048", 4.0)], warmup=2, trials=3,
                        min_trials=3, clock=clock, self_warming_s=0.5, warm=frozenset({"prefill_2048"}))
    assert clock.calls.count("prefill_2048") == 3 and clock.calls[:2] == ["decode", "decode"]
    assert trials.samples["prefill_2048"] == (4.0,) * 3


def test_the_time_cap_stops_extra_rounds_but_never_the_minimum() -> None:
    clock = FakeClock()
    trials = run_trials([clock.cell("slow", 10.0)], warmup=0, trials=9, min_trials=4, max_s=5.0, clock=clock,
                        rewarm=False, self_warming_s=60.0)
    assert trials.rounds == 4 and trials.capped and len(trials.samples["slow"]) == 4
    assert trials.elapsed_s == 40.0


def test_past_the_cap_a_long_cell_stops_at_three_rounds_and_short_cells_go_on_to_the_minimum() -> None:
    clock = FakeClock()
    cells = [clock.cell("prefill", 8.0), clock.cell("eager_prefill", 12.0), clock.cell("decode", 0.01)]
    trials = run_trials(cells, warmup=1, trials=15, min_trials=7, max_s=30.0, clock=clock, rewarm=False,
                        self_warming_s=0.5)
    assert {k: len(v) for k, v in trials.samples.items()} == {"prefill": 3, "eager_prefill": 3, "decode": 7}
    assert trials.rounds == 7 and trials.capped
    # under the cap a long cell goes on like any other
    clock = FakeClock()
    trials = run_trials([clock.cell("prefill", 2.0)], warmup=1, trials=15, min_trials=7, max_s=20.0, clock=clock,
                        rewarm=False, self_warming_s=0.5)
    assert len(trials.samples["prefill"]) == 10  # rounds start at 2, 4, ... 20 s: the 11th would start past 20


def test_trials_below_the_minimum_are_refused() -> None:
    with pytest.raises(ValueError, match=r"need 1 <= min_trials \(5\) <= trials \(3\)"):
        run_trials([], trials=3, min_trials=5)


def test_a_cells_before_runs_ahead_of_every_call_of_it_and_off_the_clock() -> None:
    clock = FakeClock()

    def readied(key: str, cost: float) -> Cell:
        cell = clock.cell(key, cost)

        def before() -> None:
            clock.calls.append(f"before {key}")
            clock.now += 100.0  # what readying memory costs never reaches a sample
        return Cell(key=cell.key, run=cell.run, before=before)

    trials = run_trials([readied("a", 0.125), readied("b", 0.25)], warmup=1, trials=4, min_trials=4, max_s=1e9,
                        clock=clock)  # with re-warming: every call, timed or not, is readied
    runs = [i for i, c in enumerate(clock.calls) if not c.startswith("before")]
    assert all(clock.calls[i - 1] == f"before {clock.calls[i]}" for i in runs)
    assert len(runs) == 2 * (1 + 4 * 2)  # warm-up, then a re-warm and a timed call per round
    assert trials.samples == {"a": (0.125,) * 4, "b": (0.25,) * 4}


def test_a_groups_cells_run_back_to_back_and_the_groups_alternate_round_by_round() -> None:
    """Two runtimes' cells (three lengths each) with a readying hook: within every round one
    runtime's calls, then the other's, in the order A B, B A, A B...; one switch per round."""
    clock = FakeClock()
    cells = [Cell(key=f"{g}{t}", run=clock.cell(f"{g}{t}", 0.01).run, group=g) for t in (1, 2, 3) for g in "ab"]
    trials = run_trials(cells, warmup=1, trials=6, min_trials=6, max_s=1e9, clock=clock, rewarm=False)
    assert [c[0] for c in clock.calls[:6]] in (list("aaabbb"), list("bbbaaa"))  # warm-up grouped too
    rounds = [clock.calls[6 + 6 * i: 12 + 6 * i] for i in range(6)]
    groups = ["".join(dict.fromkeys(c[0] for c in r)) for r in rounds]
    assert all(len(g) == 2 for g in groups)  # each round: one group's three calls, then the other's
    assert all(first == second[::-1] for first, second in zip(groups, groups[1:]))  # ab, ba, ab, ...
    assert len({tuple(r[:3]) for r in rounds if r[0][0] == "a"}) > 1  # the order within a group changes
    assert {k: len(v) for k, v in trials.samples.items()} == {c.key: 6 for c in cells}

