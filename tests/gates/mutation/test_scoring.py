"""Pure parts of the mutation gate: interval, selection, judging, merging."""

from __future__ import annotations

import pytest

from gates.engine.protocol import GateError
from gates.mutation.evidence import ModuleCounts, verdict_of
from gates.mutation.gate import MutationGate, Settings, parse_shard, validate
from gates.mutation.interval import wilson_interval
from gates.mutation.judging import incomplete, judge
from gates.mutation.session import select
from gates.result import GateResult, Status


def module(**counts: int | bool | float) -> ModuleCounts:
    base = dict(path="pkg/core.py", threshold_pct=70.0, population=10)
    return ModuleCounts(**{**base, **counts})


def run_info(**extra):
    return {"shard": "1/1", "sample": 0, "seed": 0, "judge": "lower_bound", "sampled": False,
            "mutants_total": 10, "mutants_run": 10, **extra}


def test_wilson_interval_matches_the_published_value_for_45_of_50():
    low, high = wilson_interval(45, 50)
    assert (round(low, 4), round(high, 4)) == (0.7864, 0.9565)


def test_wilson_interval_of_a_perfect_sample_is_not_a_point():
    low, high = wilson_interval(9, 9)
    assert low < 0.75 and high == pytest.approx(1.0)


def test_wilson_interval_rejects_more_successes_than_trials():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_sample_is_deterministic_under_a_seed_and_changes_with_it():
    names = [f"m.x_f__mutmut_{i}" for i in range(200)]
    first, sampled = select(names, 50, 7, (1, 1))
    again, _ = select(reversed(names), 50, 7, (1, 1))
    other, _ = select(names, 50, 8, (1, 1))
    assert sampled and len(first) == 50 and first == again and first != other


def test_a_sample_as_large_as_the_population_is_a_census():
    names = [f"m.x_f__mutmut_{i}" for i in range(5)]
    chosen, sampled = select(names, 50, 0, (1, 1))
    assert chosen == sorted(names) and not sampled


def test_shards_partition_the_mutants_exactly():
    names = [f"m.x_f__mutmut_{i}" for i in range(23)]
    shards = [set(select(names, 0, 0, (i, 4))[0]) for i in range(1, 5)]
    assert set().union(*shards) == set(names)
    assert sum(len(s) for s in shards) == len(names)
    assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1


@pytest.mark.parametrize("text", ["0/2", "3/2", "a/b", "2", "1/0"])
def test_bad_shard_is_refused_naming_the_setting(text):
    with pytest.raises(GateError, match="shard"):
        parse_shard(text)


def test_bad_judge_is_refused_naming_the_setting():
    with pytest.raises(GateError, match="judge"):
        validate(Settings(judge="median"))


def test_sample_is_judged_on_its_lower_bound_but_a_census_on_its_score():
    sampled = module(killed=8, survived=2, sampled=True)  # 80 %, interval ~49-94 %
    census = module(killed=8, survived=2)
    assert verdict_of(sampled, mode="lower_bound") == "fail"
    assert verdict_of(sampled, mode="point") == "pass"
    assert verdict_of(census, mode="lower_bound") == "pass"


def test_judging_uses_the_rounding_the_report_shows():
    # 2099 of 3000 is 69.967 %: shown as 70.0 %, so it meets a 70 % threshold.
    assert verdict_of(module(killed=2099, survived=901, population=3000), mode="point") == "pass"
    assert verdict_of(module(killed=2098, survived=902, population=3000), mode="point") == "fail"


def test_no_test_mutants_count_against_the_score_and_timeouts_for_it():
    m = module(killed=5, timeouts=2, survived=1, no_tests=2)
    assert m.score == pytest.approx(0.7)


def test_a_module_with_no_mutants_fails_rather_than_passes():
    status, failed = judge([module(population=0), module(path="b.py", killed=9, survived=1)], mode="point")
    assert status is Status.FAIL and failed == ["pkg/core.py"]


def test_zero_mutants_is_an_error_never_a_score():
    result = MutationGate.result_of([module(population=0)], [], run_info(mutants_total=0))
    assert result.status is Status.ERROR and result.score is None


def test_zero_killed_and_zero_survived_is_an_error_never_a_score():
    # mutmut's own export reports this after an aborted stats run.
    result = MutationGate.result_of([module(population=1374, not_checked=1374)], [],
                                    run_info(mutants_total=1374))
    assert result.status is Status.ERROR and "no mutant was tested" in result.summary
    assert result.score is None


def survivors(n: int) -> list[dict]:
    return [{"mutant": f"pkg.core.x_f__mutmut_{i}", "file": "pkg/core.py", "bucket": "survived", "line": i,
             "diff": f"-a{i}\n+b{i}"} for i in range(n)]


def test_every_survivor_is_in_the_evidence_and_the_first_20_in_a_table():
    result = MutationGate.result_of([module(killed=10, survived=25, population=35)], survivors(25),
                                    run_info(mutants_total=35))
    assert len(result.evidence["survivors"]) == 25
    table = [t for t in result.evidence["tables"] if t["title"].startswith("Surviving")][0]
    assert len(table["rows"]) == 20 and table["columns"] == ["file", "line", "mutant", "diff"]
    assert result.status is Status.FAIL and result.metrics["survived"] == 25


def test_every_bucket_is_a_metric():
    result = MutationGate.result_of([module(killed=6, timeouts=1, survived=2, no_tests=1)], [], run_info())
    expected = {"mutation_score_pct": 70.0, "killed": 6, "timeouts": 1, "survived": 2, "no_tests": 1,
                "mutants_total": 10, "mutants_run": 10, "sampled": 0, "ci_low_pct": 70.0, "ci_high_pct": 70.0}
    assert {k: result.metrics[k] for k in expected} == expected
    assert result.status is Status.PASS


def shard_result(index: int, count: int, **counts) -> GateResult:
    records = [dict(s, shard=index) for s in survivors(counts.get("survived", 0))]
    result = MutationGate.result_of([module(**counts)], records, run_info(shard=f"{index}/{count}", shard_count=count))
    return incomplete(result, [index], count) if count > 1 else result


def test_one_shard_alone_is_never_a_verdict():
    alone = shard_result(1, 2, killed=5)
    assert alone.status is Status.ERROR and alone.score is None
    assert "merge shards 2" in alone.summary and alone.metrics["killed"] == 5


def test_merge_adds_shard_counts_and_judges_the_sum():
    # Shard 1 alone would fail (60 %); together with shard 2 (100 %) it is 80 %.
    one, two = shard_result(1, 2, killed=3, survived=2), shard_result(2, 2, killed=5)
    merged = MutationGate.merge([two, one])
    assert merged.status is Status.PASS and merged.score == pytest.approx(0.8)
    assert (merged.metrics["killed"], merged.metrics["survived"]) == (8, 2)
    assert len(merged.evidence["survivors"]) == 2


def test_merging_pairwise_as_readiness_merge_does_gives_the_same_result():
    shards = [shard_result(1, 3, killed=3, survived=1), shard_result(2, 3, killed=4), shard_result(3, 3, survived=2)]
    folded = shards[0]
    for shard in shards[1:]:
        folded = MutationGate.merge([folded, shard])
    at_once = MutationGate.merge(shards)
    assert folded.metrics == at_once.metrics and folded.status is at_once.status is Status.PASS
    assert folded.metrics["killed"] == 7 and folded.metrics["survived"] == 3


def test_merge_of_an_incomplete_partition_is_an_error_naming_the_missing_shard():
    merged = MutationGate.merge([shard_result(1, 3, killed=3), shard_result(3, 3, killed=3)])
    assert merged.status is Status.ERROR and merged.score is None
    assert "merge shards 2 for a verdict" in merged.summary


def test_a_rerun_shard_replaces_the_earlier_one():
    merged = MutationGate.merge([shard_result(1, 2, survived=4), shard_result(2, 2, killed=4),
                                 shard_result(1, 2, killed=4)])
    assert (merged.metrics["killed"], merged.metrics["survived"]) == (8, 0)
    assert merged.evidence["survivors"] == []


def test_merge_of_a_shard_that_errored_is_an_error():
    broken = GateResult(name="mutation", status=Status.ERROR, summary="mutmut stopped")
    merged = MutationGate.merge([shard_result(1, 2, killed=3), broken])
    assert merged.status is Status.ERROR and "mutmut stopped" in merged.summary


def test_shards_of_different_code_do_not_merge():
    other = MutationGate.result_of([module(killed=3)], [], run_info(shard="2/2", shard_count=2, mutants_total=11))
    merged = MutationGate.merge([shard_result(1, 2, killed=3), other])
    assert merged.status is Status.ERROR and "mutants_total" in merged.summary


def test_merged_result_survives_a_json_round_trip():
    parts = [shard_result(1, 2, killed=3, survived=1), shard_result(2, 2, killed=4)]
    merged = MutationGate.merge(parts)
    again = MutationGate.merge([GateResult.from_dict(p.to_dict()) for p in parts])
    assert again.metrics == merged.metrics and again.status == merged.status
