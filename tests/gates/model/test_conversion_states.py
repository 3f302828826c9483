"""The conversion gate on compressed and stateful packages: states against the KV layout."""

from __future__ import annotations

from dataclasses import replace

from gates.model.conversion import Settings, measure
from gates.model.conversion_states import state_problems
from pipeline.to_coreml import PackageTensor, read_package
from tests.fixtures.export import built


def _stateful_info():
    arts = built.compressed_stateful_artifacts()
    return arts, read_package(arts.coreml_package("decode_stateful", "fp16"))


def test_compressed_and_stateful_packages_match_the_contract():
    arts = built.compressed_stateful_artifacts()
    checks = measure(arts, arts.contract, Settings())
    assert {c.artifact: c.problems for c in checks} == {k.filename: () for k in arts.expected_packages()}
    sizes = {c.artifact: c.size_bytes for c in checks}
    assert sizes["prefill_int4_block32.mlpackage"] < sizes["prefill_fp16.mlpackage"]


def test_a_state_in_another_kv_layout_is_named_with_the_ops_that_use_it():
    arts, info = _stateful_info()
    transposed = tuple(replace(s, shape=(1, 80, 2, 8)) if s.name == "k_cache_0" else s for s in info.states)
    problems = state_problems(arts.contract, replace(info, states=transposed), "float16")
    assert len(problems) == 1
    assert problems[0].startswith("state k_cache_0 is declared [1, 80, 2, 8]; the contract's KV layout "
                                  "[B, n_kv_heads, T_state, d_head] is [1, 2, 80, 8] (read and written by "
                                  "read_state '")


def test_a_state_never_written_wrong_dtype_or_window_range_is_named():
    arts, info = _stateful_info()
    ops = {**info.state_ops, "v_cache_1": tuple(o for o in info.state_ops["v_cache_1"] if o.startswith("read"))}
    window = replace(info.input("kv_window"), ranges=((1, 1), (2, 64)))
    broken = replace(info, state_ops=ops, inputs=(info.inputs[0], window))
    problems = state_problems(arts.contract, broken, "float32")
    assert "state v_cache_1 is never written: the program has no write_state for it" in "\n".join(problems)
    assert "state k_cache_0 is float16, the package computes in float32" in problems
    assert "kv_window ranges over (2, 64), not the cache lengths + 1 (2, 80)" in problems


def test_missing_or_reordered_states_are_refused():
    arts, info = _stateful_info()
    extra = PackageTensor(name="scratch", dtype="float16", shape=(1,))
    problems = state_problems(arts.contract, replace(info, states=(*info.states[1:], extra)), "float16")
    assert problems[0] == ("states ['v_cache_0', 'k_cache_1', 'v_cache_1', 'scratch'] are not the contract's "
                           "['k_cache_0', 'v_cache_0', 'k_cache_1', 'v_cache_1'] (KV layout order)")


def test_the_seeded_kv_layout_defect_fails_conversion_naming_the_state_and_its_ops():
    from gates.model.conversion import package_problems
    from pipeline.contract import load_contract
    from tests.fixtures.parity.build import case_dir

    contract = load_contract(case_dir("lossy") / "contract.json")
    good = read_package(case_dir("lossy") / "decode_stateful_fp16.mlpackage")
    assert package_problems(contract, "decode_stateful", "fp16", None, good, (1, 79)) == []
    wrong = read_package(case_dir("stateful_kv_layout") / "decode_stateful_fp16.mlpackage")
    problems = package_problems(contract, "decode_stateful", "fp16", None, wrong, (1, 79))
    assert len(problems) == 4 and problems[0].startswith(
        "state k_cache_0 is declared [1, 80, 2, 16]; the contract's KV layout [B, n_kv_heads, T_state, d_head] "
        "is [1, 2, 80, 16] (read and written by read_state '")
    assert "write_state of '" in problems[0]
