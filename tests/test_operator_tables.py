"""The shipped aiconfigurator-core operator tables, the stack terms fitted on them, switchable effects and
`asicsim validate --explain`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from asicsim.analysis import operator_tables as ot
from asicsim.analysis.explain import e2e_labels, find_row
from asicsim.cli import main
from asicsim.core.registry import load_hardware
from asicsim.core.runner import RunSpec, run_workload
from asicsim.gpusim.device import GpuDevice
from asicsim.gpusim.options import GpuOptions
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import OpKind


# ---- the data and its provenance -----------------------------------------------------------------------
def test_provenance_names_package_version_hash_and_every_gpu() -> None:
    prov = ot.provenance()
    assert prov["package"] == "aiconfigurator-core" and prov["package_version"] == "0.12.0"
    assert prov["license"] == "Apache-2.0" and len(prov["wheel_sha256"]) == 64
    assert set(ot.available_hardware()) == {"h100-sxm", "h200", "b200", "gb200", "gb300"}
    for hw, entry in prov["gpus"].items():
        for table in ot.TABLES:
            assert len(ot.load_table(hw, table)) == entry["rows"][table] > 0


@pytest.mark.parametrize("hw", ["h100-sxm", "b200"])
def test_a_held_out_gemm_weight_shape_never_appears_in_calibration(hw) -> None:
    gemm = ot.load_table(hw, "gemm")
    splits = gemm.groupby(["n", "k"])["split"].nunique()
    assert (splits == 1).all()
    share = (gemm.drop_duplicates(["n", "k"])["split"] == "holdout").mean()
    assert 0.3 < share < 0.7


def test_the_split_rule_is_a_stable_hash() -> None:
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "extract_aiconfigurator.py"
    spec = importlib.util.spec_from_file_location("extract_aiconfigurator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    gemm = ot.load_table("h100-sxm", "gemm").drop_duplicates(["n", "k"])
    for r in gemm.head(40).itertuples(index=False):
        assert (r.split == "holdout") == module.holdout(r.n, r.k)


# ---- fitted terms: sourced, and better than the bare kernel on rows they never saw ------------------------
@pytest.mark.parametrize("hw", ot.available_hardware())
def test_every_stack_term_is_sourced_to_the_calibration_split(hw) -> None:
    spec = load_hardware(hw)
    for name in ("decode_attention_fixed_s", "decode_attention_stream_fraction", "decode_attention_head_s",
                 "prefill_attention_fixed_s", "custom_allreduce_latency_s"):
        assert getattr(spec, name) > 0.0
        assert "calibration split of aiconfigurator-core" in spec.source_of(name)


@pytest.mark.parametrize("hw", ["h100-sxm", "b200"])
def test_stack_attention_beats_the_bare_kernel_on_held_out_decode_rows(hw) -> None:
    rows = ot.load_table(hw, "generation_attention")
    rows = rows[rows["split"] == "holdout"].sample(300, random_state=1)
    spec = load_hardware(hw)
    errors = {}
    for on in (True, False):
        device = GpuDevice(spec, 1, dataclasses.replace(GpuOptions.for_stack(ot.STACK), stack_attention=on))
        predicted = np.array([device.explain(ot._attention_op(OpKind.ATTENTION_DECODE, r))["time_s"]
                              for r in rows.itertuples(index=False)])
        errors[on] = float(np.mean(np.abs(predicted / (rows["latency_us"].to_numpy() * 1e-6) - 1.0)))
    assert errors[True] < 0.5 * errors[False]


def test_the_input_quantize_kernel_costs_only_in_the_pytorch_stack_and_only_for_narrow_dtypes() -> None:
    spec = load_hardware("h100-sxm")
    engine = GpuDevice(spec, 1, GpuOptions.for_stack("trtllm-0.14"))
    pytorch = GpuDevice(spec, 1, GpuOptions.for_stack("trtllm-pytorch"))
    fp8, bf16 = ot._gemm_op("fp8", 64, 8192, 8192), ot._gemm_op("bf16", 64, 8192, 8192)
    extra = pytorch.explain(fp8)["time_s"] - engine.explain(fp8)["time_s"]
    assert extra == pytest.approx(spec.quantize_kernel_fixed_s + 64 * 8192 * 3.0 / spec.hbm_read_bytes_per_s)
    assert pytorch.explain(bf16)["time_s"] == engine.explain(bf16)["time_s"]


def test_the_b200_fp4_gemm_has_its_own_efficiency() -> None:
    spec = load_hardware("b200")
    device = GpuDevice(spec, 1)
    big = ot._gemm_op("fp4", 8192, 8192, 8192)
    tflops = big.flops / device.explain(big)["time_s"]
    assert 0.0 < spec.gemm_efficiency_fp4 < 1.0
    assert tflops <= spec.dense_fp4_flops_per_s * spec.gemm_efficiency_fp4


# ---- switchable effects through the run description -------------------------------------------------------
def _small(**effects) -> RunSpec:
    return RunSpec(hardware="h100-sxm", chips=2, requests=8, isl=256, osl=16, effects=tuple(effects.items()))


def test_an_effect_switched_off_changes_the_run_and_naming_the_default_does_not() -> None:
    base = run_workload(_small()).summary["output_tokens_per_s"]
    same = run_workload(_small(stack_attention=True)).summary["output_tokens_per_s"]
    bare = run_workload(_small(stack_attention=False)).summary["output_tokens_per_s"]
    assert same == base and bare > base  # the measured stack attention is slower than the bare kernel


def test_unknown_effects_and_effects_on_an_asic_are_refused() -> None:
    with pytest.raises(InputError, match="effects"):
        run_workload(_small(warp_drive=True))
    with pytest.raises(InputError, match="effects"):
        run_workload(RunSpec(hardware="sohu", chips=8, requests=4, isl=64, osl=4, effects=(("cuda_graphs", False),)))


# ---- --explain -----------------------------------------------------------------------------------------------
def test_rows_are_found_by_number_or_words_and_ambiguity_is_refused() -> None:
    labels = e2e_labels()
    assert find_row("1").isl == int(labels[0].split()[3].split("/")[0])
    row = find_row("llama-3 b200 tp1")
    assert row.hardware == "b200" and int(row.tp) == 1
    with pytest.raises(InputError, match="matches 3 rows"):
        find_row("llama-3 b200")
    with pytest.raises(InputError, match="out of range"):
        find_row(str(len(labels) + 1))


def test_explain_cli_refuses_an_unknown_row_with_one_line(capsys) -> None:
    assert main(["validate", "--explain", "no such row"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--explain" in err[0]


def test_explain_prints_the_breakdown_and_every_effect(capsys) -> None:
    assert main(["validate", "--explain", "llama-3 b200 tp1"]) == 0
    out = capsys.readouterr().out
    assert "time breakdown over" in out and "published 11,253.3" in out
    for name in GpuDevice(load_hardware("b200"), 1).effects:
        assert f"  {name}" in out


def test_effect_flag_reaches_the_run_and_bad_values_exit_2(capsys) -> None:
    flags = ["run", "--hw", "h100-sxm", "--chips", "2", "--isl", "256", "--osl", "8", "--requests", "4", "--json"]
    assert main(flags) == 0
    base = capsys.readouterr().out
    assert main(flags + ["--effect", "stack_attention=off"]) == 0
    bare = capsys.readouterr().out
    assert base != bare
    for bad in ("stack_attention", "stack_attention=maybe", "warp_drive=on"):
        assert main(flags + ["--effect", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--effect" in err[0]


# ---- the PyTorch-backend harness ------------------------------------------------------------------------------
def test_pytorch_harness_steps_last_at_least_the_host_work_of_their_requests() -> None:
    from asicsim.core.harness import PYTORCH_HOST_S_PER_SEQUENCE
    spec = RunSpec(hardware="b200", chips=8, model="llama-3-70b", dtype="fp4", harness="trtllm-bench-pytorch",
                   isl=128, osl=64, requests=600)
    result = run_workload(spec)
    assert result.description.host_s_per_sequence == PYTORCH_HOST_S_PER_SEQUENCE > 0.0
    assert dict(result.description.effects)["separate_input_quantize"] is True
    for step in result.steps:
        assert step.end_at - step.start_at >= PYTORCH_HOST_S_PER_SEQUENCE * step.batch_size * (1 - 1e-9)
    engine = run_workload(RunSpec(**{**spec.__dict__, "harness": "trtllm-bench", "scheduler": "inflight"}))
    assert result.summary["output_tokens_per_s"] < engine.summary["output_tokens_per_s"]


def test_validation_rows_run_the_backend_of_their_release() -> None:
    from asicsim.analysis.validate import trtllm_harness
    assert trtllm_harness("TensorRT-LLM 0.14.0") == "trtllm-bench"
    assert trtllm_harness("TensorRT-LLM 0.19.0") == "trtllm-bench-pytorch"
    assert find_row("llama-3 b200 tp1").version == "TensorRT-LLM 0.19.0"


def test_a_user_effect_overrides_the_harness_effect() -> None:
    spec = RunSpec(hardware="b200", chips=1, model="llama-3-70b", dtype="fp4", harness="trtllm-bench-pytorch",
                   isl=128, osl=8, requests=4, effects=(("separate_input_quantize", False),))
    assert dict(run_workload(spec).description.effects)["separate_input_quantize"] is False


# ---- MoE, MLA and MoE-communication tables (issue 16) ---------------------------------------------------
MOE_TABLES = ("moe", "mla_context", "mla_generation", "mla_module_context", "mla_module_generation", "mla_bmm",
              "moe_a2a", "nccl_collectives")


@pytest.mark.parametrize("hw", ["h100-sxm", "h200", "b200", "gb200", "gb300"])
def test_moe_and_mla_tables_ship_with_their_row_counts_and_both_splits(hw) -> None:
    prov = ot.provenance()
    for table in MOE_TABLES:
        frame = ot.load_table(hw, table)
        assert len(frame) == prov["gpus"][hw]["rows"][table] > 0
        assert table in prov["tables"] and prov["tables"][table]["framework"]
        assert set(frame["split"]) == {"calibration", "holdout"}
        assert (frame["latency_us"] > 0).all()


@pytest.mark.parametrize("hw", ["h100-sxm", "b200"])
def test_moe_rows_cover_every_listed_model_and_hold_out_whole_expert_shapes(hw) -> None:
    moe = ot.load_table(hw, "moe")
    assert {"deepseek-v3|deepseek-r1", "gpt-oss-120b", "qwen3-235b-a22b", "qwen3-30b-a3b", "mixtral-8x7b",
            "mixtral-8x22b", "llama-4-maverick", "llama-4-scout"} <= set(moe["models"])
    assert (moe["moe_tp"] * moe["moe_ep"] <= 8).all()
    shape = ["hidden", "inter", "experts", "topk", "moe_tp", "moe_ep"]
    assert (moe.groupby(shape)["split"].nunique() == 1).all()
    if hw == "b200":
        assert {"fp4", "fp8_block", "mxfp4_w4a8"} <= set(moe["dtype"])


# ---- the issue-16 tables priced through the device, and the terms fitted on them ---------------------------
ISSUE16_TERMS = {
    "moe": ("grouped_gemm_fixed_s", "grouped_gemm_expert_s"),  # the efficiency fits at its bound 1.0 on Hopper
    "mla_generation": ("mla_decode_fixed_s", "mla_decode_head_s", "mla_decode_efficiency_bf16",
                       "mla_decode_efficiency_fp8"),
    "mla_context": ("mla_prefill_efficiency_bf16", "mla_prefill_efficiency_fp8", "mla_prefill_head_s"),
    "moe_a2a": ("all_to_all_latency_s", "all_to_all_bytes_per_s"),
}
# What each term is when off (the spec defaults).
_OFF = {"grouped_gemm_efficiency": 1.0}


def _price_rows(spec, table: str, rows, **options) -> np.ndarray:
    out = []
    for r in rows.itertuples(index=False):
        ops = ot.row_ops(table, r)
        group = max(op.group for op in ops)
        device = GpuDevice(spec, group, dataclasses.replace(GpuOptions.for_stack(ot.STACK), **options))
        out.append(ot.price_ops(device, ops))
    return np.array(out)


@pytest.mark.parametrize("hw", ["h100-sxm", "h200", "b200", "gb200", "gb300"])
@pytest.mark.parametrize("table", ot.OP_TABLES)
def test_every_kind_of_issue16_row_prices_to_a_positive_time(hw, table) -> None:
    frame = ot.load_table(hw, table)
    kinds = [c for c in ("dtype", "kernel", "distribution", "kv_dtype", "backend", "phase", "heads", "moe_ep")
             if c in frame]
    rows = frame.groupby(kinds, group_keys=False).head(2)  # every dtype / kernel / routing / layout present
    times = _price_rows(load_hardware(hw), table, rows)
    assert np.isfinite(times).all() and (times > 0.0).all()


def test_moe_rows_are_priced_as_the_ops_layers_builds_without_router_shared_expert_or_all_to_all() -> None:
    row = next(ot.load_table("h200", "moe").query("models == 'deepseek-v3|deepseek-r1' and moe_ep == 8")
               .itertuples(index=False))
    names = [op.name for op in ot.moe_ops(row)]
    assert names == ["topk", "experts_gate_up", "experts_act", "experts_down"]
    gate_up = ot.moe_ops(row)[1]
    assert gate_up.kind == OpKind.MOE_MATMUL and gate_up.experts <= 256 / 8


@pytest.mark.parametrize("hw", ["h100-sxm", "h200", "b200", "gb200", "gb300"])
@pytest.mark.parametrize("table", ot.OP_TABLES)
def test_the_issue16_terms_are_fitted_sourced_and_used(hw, table) -> None:
    spec = load_hardware(hw)
    rows = ot.load_table(hw, table)
    if table == "moe":
        rows = rows.query(ot.MOE_FIT_QUERY)
    rows = rows[rows["split"] == "holdout"].sample(150, random_state=3)
    off = {name: _OFF.get(name, 0.0) for name in ISSUE16_TERMS[table]}
    if table == "moe":
        assert "calibration split" in spec.source_of("grouped_gemm_efficiency")
    for name in ISSUE16_TERMS[table]:
        assert getattr(spec, name) != off[name], name
        assert "calibration split" in spec.source_of(name) and table in spec.source_of(name), name
    measured = rows["latency_us"].to_numpy() * 1e-6
    fitted = _price_rows(spec, table, rows)
    # the uncalibrated pricing: terms off (and for MoE the permutation too, which came with them)
    bare = _price_rows(dataclasses.replace(spec, **off), table, rows,
                       **({"separate_moe_permute": False} if table == "moe" else {}))
    assert not np.allclose(fitted, bare)  # the device reads the terms
    # and they help on rows they never saw (holdout MAPE, the number bench_operators reports)
    assert np.mean(np.abs(fitted / measured - 1.0)) < np.mean(np.abs(bare / measured - 1.0))


def test_the_moe_permute_costs_one_read_and_write_of_the_hidden_rows_and_can_be_switched_off() -> None:
    spec = load_hardware("h100-sxm")
    row = next(ot.load_table("h100-sxm", "moe").query("dtype == 'bf16' and tokens == 4096").itertuples(index=False))
    ops = ot.moe_ops(row)
    on = GpuDevice(spec, 1, GpuOptions.for_stack(ot.STACK))
    off = on.with_effects({"separate_moe_permute": False})
    gate_up, down = ops[1], ops[3]
    assert on.explain(gate_up)["permute_s"] == pytest.approx(on._stream_s(gate_up.act_in_bytes, gate_up.act_in_bytes))
    assert on.explain(down)["permute_s"] == pytest.approx(on._stream_s(down.act_out_bytes, down.act_out_bytes))
    assert ot.price_ops(off, ops) < ot.price_ops(on, ops)


def test_mla_terms_touch_only_mla_attention() -> None:
    spec = load_hardware("h200")
    gqa = ot._attention_op(OpKind.ATTENTION_DECODE, list(ot.load_table("h200", "generation_attention")
                                                         .iloc[500:501].itertuples(index=False))[0])
    mla = ot.mla_op(OpKind.ATTENTION_DECODE, list(ot.load_table("h200", "mla_generation").iloc[500:501]
                                                  .itertuples(index=False))[0])
    bare = dataclasses.replace(spec, mla_decode_fixed_s=0.0, mla_decode_head_s=0.0, mla_decode_efficiency_bf16=0.0,
                               mla_decode_efficiency_fp8=0.0)
    fitted, plain = GpuDevice(spec, 1, GpuOptions.for_stack(ot.STACK)), GpuDevice(bare, 1, GpuOptions.for_stack(ot.STACK))
    assert fitted.explain(gqa)["time_s"] == plain.explain(gqa)["time_s"]
    assert fitted.explain(mla)["time_s"] != plain.explain(mla)["time_s"] and fitted.explain(mla)["mla"]


def test_a_fused_moe_has_no_input_quantize_kernel_of_its_own() -> None:
    spec = load_hardware("b200")
    row = next(ot.load_table("b200", "moe").query("dtype == 'fp4' and tokens == 64").itertuples(index=False))
    pytorch = GpuDevice(spec, 1, GpuOptions.for_stack(ot.STACK))
    engine = pytorch.with_effects({"separate_input_quantize": False})
    gate_up = ot.moe_ops(row)[1]
    assert "quantize_s" not in pytorch.explain(gate_up)
    assert pytorch.explain(gate_up)["time_s"] == engine.explain(gate_up)["time_s"]


def test_bench_operators_reports_the_issue16_tables() -> None:
    errors = ot.table_errors("h200", tables=("moe_a2a",))
    assert {e.table for e in errors} == {"moe_a2a (ll)", "moe_a2a (ht)"}
    assert all(e.rows > 0 and np.isfinite(e.mape) for e in errors)
