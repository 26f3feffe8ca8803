"""The validation table, its target check, the CLI command, and the per-step time breakdown."""

from __future__ import annotations

import argparse
import json

import pytest

from asicsim.analysis import validate as v
from asicsim.analysis.breakdown import CATEGORIES, format_breakdown, step_breakdown
from asicsim.commands import validate as command
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.runner import RunSpec, run_workload
from asicsim.gpusim.device import GpuDevice


def row(group: str, published: float, predicted: float, excluded: str = "") -> v.ValidationRow:
    return v.ValidationRow(group, f"{group} {published}", "h100-sxm", "x", published, predicted, "synthetic", excluded)


# ---- check logic on tiny synthetic tables ---------------------------------------------------------------
def test_all_targets_met() -> None:
    rows = [row(v.MICRO_GROUP, 100, 109), row(v.E2E_GROUP, 100, 93), row(v.E2E_GROUP, 100, 108)]
    assert v.check_targets(rows) == []


def test_a_microbenchmark_row_outside_10_percent_misses() -> None:
    missed = v.check_targets([row(v.MICRO_GROUP, 100, 111), row(v.MICRO_GROUP, 100, 100)])
    assert len(missed) == 1 and "+11.0%" in missed[0]


def test_e2e_mape_over_10_percent_misses_even_if_no_row_is_over_25_and_no_bias() -> None:
    missed = v.check_targets([row(v.E2E_GROUP, 100, 88), row(v.E2E_GROUP, 100, 112)])
    assert missed == ["end-to-end MAPE 12.0% over 2 rows is over 10%"]


def test_one_e2e_row_over_25_percent_misses_even_if_mape_is_fine() -> None:
    rows = [row(v.E2E_GROUP, 100, 126)] + [row(v.E2E_GROUP, 100, 98)] * 9
    missed = v.check_targets(rows)
    assert len(missed) == 1 and "worse than +-25%" in missed[0]


def test_a_one_sided_error_misses_the_bias_target_though_mape_is_fine() -> None:
    missed = v.check_targets([row(v.E2E_GROUP, 100, 106)] * 4)
    assert missed == ["end-to-end mean signed error +6.0% is outside +-5%"]


def test_every_end_to_end_group_counts_toward_the_targets() -> None:
    rows = [row(v.E2E_GROUP, 100, 100), row("end-to-end (B200 in-flight batching)", 100, 140)]
    summary = v.e2e_summary(rows)
    assert summary["rows"] == 2 and summary["mape"] == pytest.approx(0.2) and summary["bias"] == pytest.approx(0.2)
    assert any("worse than +-25%" in line for line in v.check_targets(rows))


def test_excluded_rows_and_other_groups_count_toward_no_target() -> None:
    rows = [row(v.MICRO_GROUP, 100, 300, excluded="different kernel"), row("operator (skinny FP8 GEMM)", 100, 300)]
    assert v.check_targets(rows) == []
    summary = v.group_summary(rows)
    assert v.MICRO_GROUP not in summary and summary["operator (skinny FP8 GEMM)"]["mape"] == pytest.approx(2.0)


def test_signed_error_and_mape() -> None:
    rows = [row(v.E2E_GROUP, 200, 150), row(v.E2E_GROUP, 100, 110)]
    assert [r.error for r in rows] == pytest.approx([-0.25, 0.10])
    s = v.group_summary(rows)[v.E2E_GROUP]
    assert s == {"rows": 2, "mape": pytest.approx(0.175), "worst": pytest.approx(0.25)}
    assert "MAPE 17.5% over 2 rows" in v.format_table(rows)


# ---- the shipped rows -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def micro() -> list[v.ValidationRow]:
    return v.microbenchmark_rows()


def test_every_microbenchmark_row_is_predicted(micro) -> None:
    table = v._data("microbenchmarks.csv")
    assert len(micro) == len(table)
    assert all(r.predicted > 0.0 for r in micro)
    kept = [r for r in micro if not r.excluded]
    assert v.group_summary(kept)[v.MICRO_GROUP]["mape"] < 0.05  # calibrated on these rows


def test_no_microbenchmark_prediction_beats_the_datasheet(micro) -> None:
    """GEMM/attention TFLOP/s under the dense peak, HBM under the datasheet bandwidth."""
    for r in micro:
        name = v._DEVICE.get(r.hardware.split(" ")[0], r.hardware.split(" ")[0])
        if name == "any":
            continue
        spec = load_hardware(name)
        if r.unit == "TFLOP/s":
            peak = spec.dense_fp8_flops_per_s if "fp8" in r.label else spec.dense_bf16_flops_per_s
            assert r.predicted * 1e12 <= peak
        elif r.unit == "TB/s":
            assert r.predicted * 1e12 <= spec.hbm_bandwidth_bytes_per_s
        elif r.unit == "GB/s":  # NVLS reduces in the switch: algbw at most one NVLink direction
            n = int(r.hardware.split(" x")[1])
            assert r.predicted * 1e9 <= spec.nvlink_bandwidth_bytes_per_s / 2 * 2 * (n - 1) / n


def test_nccl_sizes_read_as_powers_of_two() -> None:
    assert v._nccl_bytes("1KB") == 2**10 and v._nccl_bytes("33MB") == 2**25 and v._nccl_bytes("8GB") == 2**33
    assert v._gemm_shape("M=N=K=1024") == (1024, 1024, 1024)
    assert v._gemm_shape("M=6144 N=12288 K=12288") == (6144, 12288, 12288)


def test_validation_csv_rows_carry_source_version_and_date() -> None:
    table = v._data("validation.csv")
    assert len(table) > 0
    for column in ("source", "version", "date"):
        assert table[column].notna().all() and (table[column].astype(str).str.len() > 0).all()


def test_command_json_and_check_on_a_small_table(monkeypatch, capsys, tmp_path) -> None:
    rows = [row(v.MICRO_GROUP, 100, 150), row(v.E2E_GROUP, 100, 100)]
    monkeypatch.setattr(command, "validation_rows", lambda requests: rows)
    args = argparse.Namespace(json=True, check=True, plot=None, requests=8)
    assert command.run(args) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["rows"][0]["error"] == pytest.approx(0.5) and len(out["missed"]) == 1
    args = argparse.Namespace(json=False, check=False, plot=None, requests=8)
    assert command.run(args) == 0
    assert "MISSED" in capsys.readouterr().out
    pytest.importorskip("matplotlib")
    plot = tmp_path / "v.png"
    command.plot_validation(rows, str(plot))
    assert plot.stat().st_size > 0


# ---- breakdown ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_run():
    return run_workload(RunSpec("h100-sxm", 8, "llama-3.1-8b", "fp8", tp=8, isl=256, osl=8, requests=4))


def test_breakdown_adds_up_to_the_replica_time(small_run) -> None:
    b = step_breakdown(small_run)
    span = sum(max(s.end_at for s in small_run.steps if s.replica == rep)
               for rep in {s.replica for s in small_run.steps})
    assert b["total_s"] == pytest.approx(span, rel=1e-9)
    assert set(b["seconds"]) == set(CATEGORIES)
    assert all(x >= 0.0 for x in b["seconds"].values())
    assert sum(b["share"].values()) == pytest.approx(1.0)
    assert b["compute_bound_share"] + b["memory_bound_share"] == pytest.approx(1.0)
    assert b["seconds"]["gemm"] > 0.0 and b["seconds"]["collectives"] > 0.0  # tp 8: all-reduces every layer
    assert b["prefill_s"] + b["decode_s"] == pytest.approx(sum(s.end_at - s.start_at for s in small_run.steps))
    assert "collectives" in format_breakdown(small_run)


# ---- roofline: decode time grows with batch and context -------------------------------------------------
@pytest.mark.parametrize("name", ["h100-sxm", "b200"])
def test_decode_step_grows_with_batch_and_context(name) -> None:
    from asicsim.core.engine import StepEngine
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.graph_types import StepBatch
    from asicsim.workloads.models import load_model
    import numpy as np

    engine = StepEngine(GpuDevice(load_hardware(name), 8))
    model = load_model("llama-3-70b")

    def step_s(batch: int, context: int) -> float:
        graph = build_step_graph(model, StepBatch.make(decode_past=np.full(batch, context)), tp=8, dtype="fp8")
        return engine.run_step([graph]).time_s

    by_batch = [step_s(b, 2048) for b in (1, 16, 128, 512)]
    by_context = [step_s(64, c) for c in (128, 1024, 8192, 32768)]
    assert by_batch == sorted(by_batch) and by_batch[0] < by_batch[-1]
    assert by_context == sorted(by_context) and by_context[0] < by_context[-1]
    # the memory model: 24k more cached tokens for 64 sequences cost at least their KV bytes at peak HBM
    kv_bytes = 64 * (32768 - 8192) * model.num_hidden_layers * 2 * 1 * 128 * 1.0  # 1 KV head per GPU, fp8
    assert by_context[-1] - by_context[-2] >= kv_bytes / load_hardware(name).hbm_bandwidth_bytes_per_s


# ---- trtllm-bench methodology (tuning.py calc_engine_setting / finetune_setting) -------------------------
def test_trtllm_bench_settings_worked_examples_by_hand() -> None:
    """8 x H100 (80e9 B = 74.506 GiB each), Llama-3-70B fp8 weights and KV, tp 8. Hand calculation from the
    formula in NVIDIA/TensorRT-LLM tensorrt_llm/bench/build/tuning.py:
    KV GiB/token = 2 x 80 layers x max(8, 8) heads x 128 x 1 B / 2^30 = 1.52588e-4;
    engine = 70.5537e9 params x 1 B / 1e9 = 70.554; available = 8 x 74.506 - 70.554 = 525.49 GiB;
    cache = 0.95 x 525.49 = 499.21 GiB = 3.2716e6 tokens.
    2048/2048: 3.2716e6 / 4096 = 798.7 requests -> batch 128 x ceil(798.7/128) = 896; tokens 798.7 x 2 = 1597
    -> max(2048, 256 x 7) = 2048. 2048/128: 3.2716e6 / 2176 = 1503.5 -> batch 256 x 6 = 1536; tokens
    1503.5 x 17 = 25560 -> 1024 x 25 = 25600. 128/128: 12780 -> capped at 4096 (batch 4096);
    tokens min(8192, 32768) -> 8192."""
    from asicsim.workloads.models import load_model

    model = load_model("llama-3-70b")
    assert model.param_count() == pytest.approx(70.5537e9, rel=1e-5)
    gib = 80e9 / 2**30
    s = v.trtllm_bench_settings(model, "fp8", "fp8", 8, 1, 2048, 2048, gib)
    assert (s.max_batch, s.max_num_tokens) == (896, 2048) and s.kv_max_requests == pytest.approx(798.7, abs=0.1)
    s = v.trtllm_bench_settings(model, "fp8", "fp8", 8, 1, 2048, 128, gib)
    assert (s.max_batch, s.max_num_tokens) == (1536, 25600) and s.kv_max_requests == pytest.approx(1503.5, abs=0.1)
    assert (v.trtllm_bench_settings(model, "fp8", "fp8", 8, 1, 128, 128, gib).max_batch,
            v.trtllm_bench_settings(model, "fp8", "fp8", 8, 1, 128, 128, gib).max_num_tokens) == (4096, 8192)
    # tp 2: available 2 x 74.506 - 70.554 = 78.46 GiB; x 0.95 / 1.52588e-4 / 2176 = 224.5 requests
    # -> batch 32 x ceil(224.5/32) = 256; tokens 224.5 x 17 = 3816 -> 256 x 15 = 3840.
    s = v.trtllm_bench_settings(model, "fp8", "fp8", 2, 1, 2048, 128, gib)
    assert (s.max_batch, s.max_num_tokens) == (256, 3840)


def test_trtllm_bench_floors_and_memory_errors() -> None:
    from asicsim.workloads.errors import InputError
    from asicsim.workloads.models import load_model

    model = load_model("llama-3-70b")
    # few requests fit: batch floor 64, token floor 2048
    s = v.trtllm_bench_settings(model, "fp8", "fp8", 1, 1, 2048, 2048, 80.0)
    assert s.max_batch == 64 and s.max_num_tokens == 2048 and s.kv_max_requests < 64
    with pytest.raises(InputError, match="no KV cache"):
        v.trtllm_bench_settings(model, "bf16", "bf16", 1, 1, 128, 128, 80e9 / 2**30)


def test_published_request_counts_and_scheduler_by_version() -> None:
    from asicsim.workloads.errors import InputError

    assert [v.published_requests(*p) for p in ((128, 128), (128, 2048), (2048, 128), (2048, 2048))] == [
        30000, 3000, 3000, 1500]
    with pytest.raises(InputError):
        v.published_requests(100, 100)
    assert v.trtllm_scheduler("TensorRT-LLM v0.14 perf overview") == "inflight-chunked"
    assert v.trtllm_scheduler("TensorRT-LLM 0.19.0") == "inflight"


def test_operator_rows_of_validation_csv_are_predicted_and_kept_out_of_the_e2e_path() -> None:
    """The skinny FP8 GEMM rows (vLLM PR #49363, H100) run through the GEMM model, under the FP8 peak, and
    never reach the end-to-end runner; they are not a target group. M = 1 and 16 (weight streaming bound)
    are where `gemm_weight_stream_fraction` comes from, so they land within 2%; M = 64 and 128, where
    compute starts to matter, are not fitted and stay within 10%."""
    rows = v.operator_rows()
    table = v._data("validation.csv")
    assert len(rows) == int(table["metric"].isin(v.OPERATOR_METRICS).sum())
    gemms = [r for r in rows if r.unit == "TFLOP/s"]
    assert len(gemms) == int((table["metric"] == v.OPERATOR_METRIC).sum()) >= 4
    spec = load_hardware("h100-sxm")
    for r in rows:
        assert r.group not in v.TARGET_GROUPS
    for r in gemms:
        assert 0.0 < r.predicted * 1e12 <= spec.dense_fp8_flops_per_s
    assert v._e2e_table()["metric"].isin((*v.E2E_METRICS, v.PER_USER_METRIC)).all()
    by_m = sorted(gemms, key=lambda r: v._gemm_shape(r.label.split(" ", 1)[1])[0])
    assert all(a.predicted < b.predicted for a, b in zip(by_m, by_m[1:]))  # throughput rises with M
    for r in by_m:
        m = v._gemm_shape(r.label.split(" ", 1)[1])[0]
        assert abs(r.error) < (0.02 if m <= 16 else 0.10), r


def test_nccl_group_size_rows_reproduce_the_ring_cap_and_the_nvls_curve() -> None:
    """NVIDIA/nccl issue #1455 (8x H100 SXM, 2-4 GB): 2 and 4 GPUs stay at the ring's ~367 GB/s busbw, 8 GPUs
    reach NVLS's 480; the model gives the 2-4 GPU rows from the ring cap and the 8 GPU row from the
    microbenchmark curve, and busbw never falls as the group grows."""
    rows = sorted((r for r in v.operator_rows() if r.label.startswith("nccl_allreduce_busbw")),
                  key=lambda r: int(r.label.rsplit("x", 1)[1]))
    assert [int(r.label.rsplit("x", 1)[1]) for r in rows] == [2, 4, 5, 6, 7, 8]
    for r in rows:
        if r.label.endswith(("x2", "x4", "x8")):
            assert abs(r.error) < 0.03, r
    assert all(a.predicted <= b.predicted + 1e-9 for a, b in zip(rows, rows[1:]))


# ---- mixture-of-experts rows (issue 16): loaded, run with their layout, reported without a target ----------
def _moe_table():
    table = v._e2e_table()
    return table[table["group"].map(v.is_moe_group)]


def test_moe_rows_load_with_layout_columns_and_skips_carry_a_reason() -> None:
    table = v._data("validation.csv")
    for column in ("ep", "attention_dp", "requests", "max_num_tokens", "skip"):
        assert column in table.columns
    dense = table[~table["group"].map(v.is_moe_group)]
    assert (dense["attention_dp"] == 0).all() and dense["ep"].isna().all()  # the existing rows keep their runs
    moe = _moe_table()
    assert len(moe) >= 20 and moe["requests"].gt(0).all()  # every MoE row runs the notes' request count
    assert set(moe["metric"]) <= set(v.E2E_METRICS)
    skipped = [r for r in v.skipped_rows() if v.is_moe_group(r.group)]
    assert len(skipped) >= 2 and all(r.reason for r in v.skipped_rows())
    assert all("MTP" in r.reason for r in skipped if r.published < 1000)  # the min-latency rows
    assert len(moe) + len(skipped) == int(table["group"].map(v.is_moe_group).sum())  # none dropped silently


def test_moe_rows_resolve_to_their_published_layout_and_dtypes() -> None:
    from asicsim.core.description import resolve

    for row in _moe_table().itertuples(index=False):
        d = resolve(v._table_spec(row))
        assert d.chips == d.tp == row.tp, row
        assert d.attention_dp == bool(row.attention_dp), row
        assert d.ep == (row.ep or (row.tp if row.attention_dp else 1)), row
        assert (d.dtype, d.kv_dtype) == (row.dtype, row.kv_dtype), row
        assert d.harness == ("trtllm-bench-pytorch" if "PyTorch" in row.group else
                             "vllm-throughput" if "SGLang" in row.group else "trtllm-bench"), row
        native = make_device(row.hardware, 1).supported_dtypes
        assert d.widen == (row.dtype not in native), row  # W4A16 on Hopper runs widened; Blackwell has fp4
        if row.max_batch:  # stated per attention-DP rank: the group gets tp times as many
            assert d.max_batch == row.max_batch * (row.tp if row.attention_dp else 1), row
            assert d.max_tokens_per_step == row.max_num_tokens * (row.tp if row.attention_dp else 1), row


def test_a_small_moe_row_predicts_a_positive_per_gpu_throughput() -> None:
    """Qwen3-30B-A3B FP4 on one B200 (perf-overview row); 48 requests here instead of the published 3000, so
    only the sign and the per-GPU conversion are checked, not the accuracy."""
    table = _moe_table()
    row = next(table[(table["model"] == "qwen3-30b-a3b") & (table["hardware"] == "b200")].itertuples(index=False))
    assert row.metric == "output_tokens_per_s_per_gpu"
    result = run_workload(v._table_spec(row, requests=48))
    assert result.description.requests == 48
    per_gpu = v.predicted_metric(result, row.metric)
    assert per_gpu > 0.0
    assert per_gpu == pytest.approx(result.summary["output_tokens_per_s"] / result.description.chips)


def test_moe_groups_are_reported_with_bias_and_worst_row_but_count_toward_no_target() -> None:
    moe_group = v.MOE_GROUP_PREFIX + ", TensorRT-LLM PyTorch perf overview)"
    rows = [row(v.E2E_GROUP, 100, 100), row(moe_group, 100, 180), row(moe_group, 100, 60),
            row(v.MOE_GROUP_PREFIX + ", TensorRT engine flow)", 100, 110)]
    assert v.check_targets(rows) == [] and v.e2e_summary(rows)["rows"] == 1
    summary = v.moe_summary(rows)
    assert summary[moe_group]["mape"] == pytest.approx(0.6) and summary[moe_group]["bias"] == pytest.approx(0.2)
    assert summary[moe_group]["worst"]["error"] == pytest.approx(0.8)
    assert summary["all MoE"]["rows"] == 3 and summary["all MoE"]["bias"] == pytest.approx(0.5 / 3)
    skipped = [v.SkippedRow(moe_group, "x fp4 tp8 1024/2048", "b200", 274.4, "tok/s", "s", "MTP on")]
    text = v.format_table(rows, skipped)
    assert "bias +20.0%" in text and "no target" in text and "MTP on" in text and "skipped" in text


def test_explain_finds_moe_rows_and_names_the_reason_a_row_is_skipped() -> None:
    from asicsim.analysis.explain import find_row
    from asicsim.workloads.errors import InputError

    found = find_row("qwen3-30b-a3b b200")
    assert found.model == "qwen3-30b-a3b" and v.is_moe_group(found.group)
    with pytest.raises(InputError, match="skipped, never run: min-latency"):
        find_row("deepseek-r1 tp8 ep2")


def test_trtllm_sizing_and_host_work_are_per_attention_dp_rank() -> None:
    """With attention DP every rank schedules its own requests: TensorRT-LLM applies max_batch_size and
    max_num_tokens per rank (the DeepSeek-R1 best-practice blog: 896 per rank, concurrency 7168 on 8 GPUs), and
    each rank's host loop serves its own requests, so the tp group gets tp times the per-rank sizing and 1/tp of
    the per-request host work; without attention DP nothing changes."""
    from asicsim.core.description import resolve
    from asicsim.core.harness import PYTORCH_HOST_S_PER_SEQUENCE, trtllm_engine_settings
    from asicsim.workloads.models import load_model

    base = dict(hardware="b200", chips=4, model="qwen3-235b-a22b", dtype="fp4", tp=4, isl=1024, osl=1024,
                requests=8, harness="trtllm-bench-pytorch")
    plain, dep = resolve(RunSpec(**base, ep=4)), resolve(RunSpec(**base, attention_dp=True))
    eng = trtllm_engine_settings(load_model("qwen3-235b-a22b"), "fp4", "fp8", 4, 1, 1024, 1024,
                                 plain.make_device().memory_bytes_per_chip / 2**30)
    assert (plain.max_batch, plain.max_tokens_per_step) == (eng.max_batch, eng.max_num_tokens)
    assert (dep.max_batch, dep.max_tokens_per_step) == (4 * eng.max_batch, 4 * eng.max_num_tokens)
    assert plain.host_s_per_sequence == pytest.approx(PYTORCH_HOST_S_PER_SEQUENCE)
    assert dep.host_s_per_sequence == pytest.approx(PYTORCH_HOST_S_PER_SEQUENCE / 4)
