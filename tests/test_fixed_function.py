"""Fixed-function chips: native op features, the fallback unit, the workload-mix sweep axis; weight formats."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.analysis.sweep import evaluate_point, mix_summaries, point_run_spec
from asicsim.core.description import RunSpec, resolve
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.runner import run_workload
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph import build_step_graph, model_features
from asicsim.workloads.graph_types import Feature, OpKind, StepBatch
from asicsim.workloads.memory import weight_bytes_per_chip
from asicsim.workloads.models import load_model

SOHU = load_hardware("sohu")


def _ops(model: str, kind: str):
    graph = build_step_graph(load_model(model), StepBatch.make([64], [0], [100] * 8), tp=8, dtype="fp8")
    return [op for op, _ in graph.all_ops() if op.kind == kind]


def test_an_op_outside_native_ops_is_priced_on_the_fallback_unit():
    device = make_device(SOHU, 8)
    op = _ops("mixtral-8x7b", OpKind.MOE_MATMUL)[0]
    assert Feature.MOE_EXPERTS in op.features and Feature.MOE_EXPERTS not in SOHU.native_features
    cost = device.cost(op)
    expected = SOHU.fallback_latency_s + max(op.flops / SOHU.fallback_flops_per_s,
                                             op.memory_bytes / SOHU.fallback_bandwidth_bytes_per_s)
    assert cost.fallback_s == pytest.approx(expected, rel=1e-12) and cost.fixed_s == cost.fallback_s
    assert cost.compute_cycles == cost.memory_cycles == cost.weight_cycles == 0.0


def test_the_same_op_runs_on_the_arrays_when_its_features_are_native():
    native = dataclasses.replace(SOHU, native_ops=(*SOHU.native_features, Feature.MOE_EXPERTS))
    op = _ops("mixtral-8x7b", OpKind.MOE_MATMUL)[0]
    cost = make_device(native, 8).cost(op)
    assert cost.fallback_s == 0.0 and cost.compute_cycles > 0.0


def test_a_dense_llama_needs_only_the_default_native_features():
    assert model_features(load_model("llama-3.1-8b")) <= SOHU.native_features
    assert make_device(SOHU, 8).missing_features(load_model("llama-3.1-8b")) == ()
    assert make_device(load_hardware("h200"), 8).missing_features(load_model("deepseek-r1")) == ()
    missing = make_device(SOHU, 8).missing_features(load_model("deepseek-r1"))
    assert {Feature.MLA, Feature.MOE_EXPERTS, Feature.TOPK_ROUTING} <= set(missing)


def test_a_run_books_fallback_time_and_names_the_features():
    result = run_workload(RunSpec(hardware="sohu", chips=8, model="mixtral-8x7b", requests=8, isl=128, osl=8))
    s = result.summary
    assert Feature.MOE_EXPERTS in s["fallback_features"] and 0.0 < s["fallback_time_share"] <= 1.0
    native = run_workload(RunSpec(hardware="sohu", chips=8, model="llama-3.1-8b", requests=8, isl=128, osl=8))
    assert native.summary["fallback_features"] == [] and native.summary["fallback_time_share"] == 0.0


@settings(max_examples=100, deadline=None)
@given(a=st.floats(1.0, 1e6), b=st.floats(1.0, 1e6), s1=st.floats(0.0, 1.0), s2=st.floats(0.0, 1.0))
def test_a_mixed_workload_lies_between_its_models_and_moves_monotonically_with_the_share(a, b, s1, s2):
    def mixed(share):
        base = {"output_tokens_per_s": a, "input_tokens_per_s": a, "total_tokens_per_s": 2 * a,
                "energy_j_per_output_token": 1.0, "chips": 8}
        mix = {"output_tokens_per_s": b, "input_tokens_per_s": b, "total_tokens_per_s": 2 * b,
               "energy_j_per_output_token": 2.0, "chips": 8}
        return mix_summaries(base, mix, share)["output_tokens_per_s"]

    lo, hi = sorted((s1, s2))
    assert min(a, b) * (1 - 1e-12) <= mixed(lo) <= max(a, b) * (1 + 1e-12)
    if b < a:
        assert mixed(hi) <= mixed(lo) * (1 + 1e-12)
    else:
        assert mixed(hi) >= mixed(lo) * (1 - 1e-12)
    assert mixed(0.0) == pytest.approx(a) and mixed(1.0) == pytest.approx(b)


def test_a_sweep_point_with_a_mix_is_the_time_shared_result_of_its_two_runs():
    work = {"model": "llama-3.1-8b", "chips": 8, "dtype": "fp8", "kv_dtype": "", "tp": 0, "pp": 1, "isl": 128,
            "osl": 8, "requests": 8, "max_batch": 0, "max_tokens_per_step": 8192, "mix_model": "mixtral-8x7b",
            "mix_share": 0.25}
    point = {"base": "sohu", "spec": {"programmable_area_fraction": 0.0}, "workload": work}
    row = evaluate_point(point)
    from asicsim.chip.programmability import derive_asic_spec
    spec = derive_asic_spec(SOHU, programmable_area_fraction=0.0)
    base = run_workload(point_run_spec(point, spec)).summary["output_tokens_per_s"]
    mix = run_workload(dataclasses.replace(point_run_spec(point, spec), model="mixtral-8x7b"))
    expected = 1.0 / (0.75 / base + 0.25 / mix.summary["output_tokens_per_s"])
    assert row["feasible"] and row["output_tokens_per_s"] == pytest.approx(expected, rel=1e-12)
    assert row["mix_fallback_time_share"] > 0.0


def test_block_scaled_formats_carry_their_scale_bytes():
    model = load_model("llama-3.1-8b")
    norms = model.num_hidden_layers * 2 * model.hidden_size * 2 + model.hidden_size * 2  # bf16 norm weights
    fp4 = weight_bytes_per_chip(model, "fp4", 1, 1) - norms
    assert weight_bytes_per_chip(model, "mxfp4", 1, 1) - norms == pytest.approx(fp4 * 4.25 / 4, rel=1e-12)
    assert weight_bytes_per_chip(model, "nvfp4", 1, 1) - norms == pytest.approx(fp4 * 4.5 / 4, rel=1e-12)
    d = resolve(RunSpec(hardware="b200", chips=8, model="llama-3.1-8b", dtype="nvfp4"))
    assert (d.dtype, d.weight_format, d.kv_dtype) == ("fp4", "nvfp4", "fp8")


def test_expert_dtype_sets_the_experts_apart_and_is_refused_without_a_datapath():
    d = resolve(RunSpec(hardware="b200", chips=8, model="gpt-oss-120b", dtype="bf16", expert_dtype="mxfp4"))
    assert (d.dtype, d.expert_dtype) == ("bf16", "mxfp4")
    result = run_workload(d)
    assert result.summary["weight_bytes_per_chip"] < run_workload(
        RunSpec(hardware="b200", chips=8, model="gpt-oss-120b", dtype="bf16")).summary["weight_bytes_per_chip"] / 2
    with pytest.raises(InputError) as err:
        resolve(RunSpec(hardware="h200", chips=8, model="gpt-oss-120b", dtype="bf16", expert_dtype="mxfp4"))
    assert err.value.field == "expert_dtype" and "fp4" in err.value.problem
    resolve(RunSpec(hardware="h200", chips=8, model="gpt-oss-120b", dtype="bf16", expert_dtype="mxfp4", widen=True))
    with pytest.raises(InputError, match="no routed experts"):
        resolve(RunSpec(hardware="b200", chips=8, model="llama-3.1-8b", expert_dtype="fp4"))


def test_a_kv_cache_format_without_a_datapath_is_refused_unless_widened():
    with pytest.raises(InputError) as err:
        resolve(RunSpec(hardware="a100-sxm-80g", chips=8, model="llama-3.1-8b", dtype="bf16", kv_dtype="fp8"))
    assert err.value.field == "kv_dtype" and "fp8" in err.value.problem
    d = resolve(RunSpec(hardware="a100-sxm-80g", chips=8, model="llama-3.1-8b", dtype="bf16", kv_dtype="fp8",
                        widen=True))
    assert d.kv_dtype == "fp8"
    assert resolve(RunSpec(hardware="h100-sxm", chips=8, model="llama-3.1-8b", kv_dtype="fp8")).kv_dtype == "fp8"
