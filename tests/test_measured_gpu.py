"""The H200 measurements (benchmarks/measure_gpu.py output) as calibration data: provenance, the constants
derived from them stay equal to their fits, and the GPU energy model's memory-path term keeps its invariants."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.analysis import measured_gpu as mg
from asicsim.core.area import area_constants
from asicsim.core.registry import load_hardware
from asicsim.gpusim.power import GpuActivity, power_w, static_power_w, step_energy_breakdown_j, step_energy_j


def test_measurements_carry_their_environment() -> None:
    assert "h200" in mg.available_hardware()
    env = mg.environment("h200")
    for field in ("gpu", "driver", "cuda", "torch", "date", "method", "script"):
        assert env[field], field
    assert env["gpu"] == "NVIDIA H200"
    rows = mg.load_measurements("h200")
    assert not rows.duplicated(["benchmark", "size"]).any()
    assert {"gemm_bf16_torch", "gemm_fp8_scaled_mm", "attention_decode_sdpa_bf16", "board_power_nvml",
            "kernel_launch_cuda_graph", "hbm_copy_torch"} <= set(rows["benchmark"])


def test_onchip_memory_path_constant_is_its_fit() -> None:
    constant = area_constants()["gpu_energy"]["onchip_memory_path_pj_per_bit"]
    assert constant == pytest.approx(mg.onchip_memory_path_pj_per_bit_fit("h200"), abs=0.005)


def test_graph_launch_constant_is_the_measured_row() -> None:
    rows = mg.load_measurements("h200")
    measured_us = float(rows.loc[rows["benchmark"] == "kernel_launch_cuda_graph", "value"].iloc[0])
    assert load_hardware("h200").graph_launch_overhead_s == pytest.approx(measured_us * 1e-6, rel=0.01)


def test_every_group_is_compared_and_the_fits_are_marked() -> None:
    comparisons = mg.compare("h200")
    groups = {c.group for c in comparisons}
    assert {"gemm bf16", "gemm fp8", "decode attention", "power", "launch", "hbm bandwidth"} <= groups
    assert all(math.isfinite(c.error) and c.measured > 0 and c.predicted > 0 for c in comparisons)
    fits = {(c.group, c.case) for c in comparisons if c.role == "fit"}
    assert fits == {("launch", "CUDA Graph replay, per kernel"), ("power", "sustained device copy 1 GiB"),
                    ("power-limit throttle", "gemm_bf16 M=N=K=8192: sustained / burst"),
                    ("power-limit throttle", "gemm_fp8 M=N=K=8192: sustained / burst"),
                    ("attention part power", "llama-70b tp8 8 layers attention only batch=1024 ctx=2048, sustained")}
    summary = mg.summarize(comparisons)
    assert set(summary["group"]) == groups
    assert (summary["cases"] > 0).all()


def test_copy_power_reproduces_the_measurement() -> None:
    """The fitted row: static power plus the DRAM and on-chip path energy of the copy's bytes gives the board
    power NVML read (to the constant's rounding)."""
    power = [c for c in mg.compare("h200") if c.case == "sustained device copy 1 GiB"]
    assert len(power) == 1 and abs(power[0].error) < 0.005


_GPUS = ("h100-sxm", "h200", "b200", "mi300x")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_GPUS), st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_memory_path_energy_shrinks_as_tensor_cores_take_over(hw: str, hbm: float, low: float, high: float) -> None:
    """Power rises with HBM traffic, and the same traffic costs no more per byte when the tensor cores are busier
    (their datapath term then carries the on-chip movement); at full tensor activity only the DRAM is charged."""
    spec = load_hardware(hw)
    low, high = min(low, high), max(low, high)
    dram_w = hbm * spec.hbm_bandwidth_bytes_per_s * 8 * area_constants()["energy"]["hbm_pj_per_bit"] * 1e-12
    for tensor in (low, high):
        assert power_w(spec, GpuActivity(tensor, hbm, 0.0)) >= power_w(spec, GpuActivity(tensor, 0.0, 0.0)) - 1e-9
    extra_low = power_w(spec, GpuActivity(low, hbm, 0.0)) - power_w(spec, GpuActivity(low, 0.0, 0.0))
    extra_high = power_w(spec, GpuActivity(high, hbm, 0.0)) - power_w(spec, GpuActivity(high, 0.0, 0.0))
    assert extra_high <= extra_low + 1e-9
    full = power_w(spec, GpuActivity(1.0, hbm, 0.0)) - power_w(spec, GpuActivity(1.0, 0.0, 0.0))
    assert full == pytest.approx(dram_w, rel=1e-9, abs=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(_GPUS), st.floats(1e-6, 1e-1), st.floats(0.0, 1.0), st.floats(0.0, 1.0),
       st.floats(0.0, 1e10), st.sampled_from(("bf16", "fp8")))
def test_step_energy_at_least_static_and_path_bounded(hw: str, duration: float, busy: float, mem: float,
                                                      flops: float, dtype: str) -> None:
    spec = load_hardware(hw)
    bytes_moved = mem * duration * spec.hbm_bandwidth_bytes_per_s * spec.hbm_achievable_fraction
    c = area_constants()
    path = bytes_moved * 8 * c["gpu_energy"]["onchip_memory_path_pj_per_bit"] * 1e-12
    step = SimpleNamespace(flops_per_chip=flops, compute_busy_s=busy * duration, memory_bytes_per_chip=bytes_moved,
                           memory_busy_s=mem * duration, link_busy_s=0.0, start_at=0.0, end_at=duration,
                           op_energy_j=path * (1.0 - busy))
    energy = step_energy_j(spec, step, dtype)
    assert energy >= static_power_w(spec) * duration * (1 - 1e-12)
    assert energy <= spec.tdp_w * duration * (1 + 1e-12)
    parts = step_energy_breakdown_j(spec, step, dtype)
    assert parts["hbm_j"] == pytest.approx(bytes_moved * 8 * c["energy"]["hbm_pj_per_bit"] * 1e-12, rel=1e-12, abs=1e-18)
    assert parts["onchip_memory_j"] == step.op_energy_j


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(_GPUS), st.integers(1, 4096), st.integers(1, 8192), st.integers(1, 16), st.booleans())
def test_onchip_memory_energy_per_op(hw: str, batch: int, context: int, kv_heads: int, decode: bool) -> None:
    """An op's on-chip path energy lies between nothing and its bytes at the full path (plus the decode-attention
    term for decode attention), and a GEMM's shrinks as its tensor cores get busier."""
    from asicsim.analysis import operator_tables as ot
    from asicsim.gpusim.device import GpuDevice
    from asicsim.gpusim.options import GpuOptions
    from asicsim.gpusim.power import onchip_memory_j
    from asicsim.workloads.graph_types import OpKind
    c = area_constants()["gpu_energy"]
    device = GpuDevice(load_hardware(hw), 1, GpuOptions())
    kind = OpKind.ATTENTION_DECODE if decode else OpKind.ATTENTION_PREFILL
    op = ot._attention_op(kind, SimpleNamespace(batch=batch, q_heads=kv_heads * 8, kv_heads=kv_heads, head_dim=128,
                                                kv_dtype="bf16", dtype="bf16", past_tokens=context, isl=min(context, 512)))
    full = op.memory_bytes * 8e-12 * (c["onchip_memory_path_pj_per_bit"] + (c["decode_attention_pj_per_bit"] if decode else 0.0))
    energy = device.cost(op).energy_j
    assert 0.0 <= energy <= full * (1 + 1e-12)
    if decode:
        assert energy >= op.memory_bytes * 8e-12 * c["decode_attention_pj_per_bit"] * (1 - 1e-12)
    gemm = ot._gemm_op("fp8", batch, 8192, 8192)
    assert onchip_memory_j(gemm, 1.0, 1.0) == 0.0  # tensor cores busy the whole kernel: no extra path
    assert onchip_memory_j(gemm, 0.0, 1.0) == pytest.approx(gemm.memory_bytes * 8e-12 * c["onchip_memory_path_pj_per_bit"])
    assert onchip_memory_j(gemm, 0.3, 1.0) >= onchip_memory_j(gemm, 0.6, 1.0)


def test_decode_attention_constant_is_its_fit() -> None:
    constant = area_constants()["gpu_energy"]["decode_attention_pj_per_bit"]
    assert constant == pytest.approx(mg.decode_attention_pj_per_bit_fit("h200"), abs=0.005)


def test_sustained_fraction_constant_is_its_fit() -> None:
    fit = mg.sustained_compute_fraction_fit("h200")
    assert load_hardware("h200").sustained_compute_fraction == pytest.approx(fit, abs=0.0005)
    assert load_hardware("h100-sxm").sustained_compute_fraction == load_hardware("h200").sustained_compute_fraction


def _gemm(m: int, n: int, k: int, dtype: str):
    from asicsim.analysis import operator_tables as ot
    return ot._gemm_op(dtype, m, n, k)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(("h100-sxm", "h200")), st.integers(1, 16384), st.integers(128, 16384), st.integers(128, 16384),
       st.sampled_from(("bf16", "fp8")))
def test_throttle_slows_gemms_within_the_measured_bound(hw: str, m: int, n: int, k: int, dtype: str) -> None:
    """At the power limit a GEMM is never faster, and never slower than the measured compute-bound slowdown
    (1 / sustained_compute_fraction); with the throttle off the model is the kernel-timing model exactly."""
    from asicsim.gpusim.device import GpuDevice
    from asicsim.gpusim.options import GpuOptions, kernel_timing
    spec = load_hardware(hw)
    op = _gemm(m, n, k, dtype)
    hot = GpuDevice(spec, 1, GpuOptions()).explain(op)
    cold = GpuDevice(spec, 1, kernel_timing(GpuOptions())).explain(op)
    assert cold["time_s"] <= hot["time_s"] * (1 + 1e-12)
    assert hot["compute_s"] <= cold["compute_s"] / spec.sustained_compute_fraction * (1 + 1e-12)
    assert hot["memory_s"] == cold["memory_s"]


def test_throttle_leaves_decode_attention_and_unmeasured_gpus_alone() -> None:
    from types import SimpleNamespace

    from asicsim.analysis import operator_tables as ot
    from asicsim.gpusim.device import GpuDevice
    from asicsim.gpusim.options import GpuOptions, kernel_timing
    from asicsim.workloads.graph_types import OpKind
    attention = ot._attention_op(OpKind.ATTENTION_DECODE, SimpleNamespace(
        batch=256, q_heads=8, kv_heads=1, head_dim=128, kv_dtype="bf16", dtype="bf16", past_tokens=2048, isl=1))
    big = _gemm(8192, 8192, 8192, "fp8")
    for hw in ("h200", "b200", "mi300x"):
        spec = load_hardware(hw)
        hot, cold = GpuDevice(spec, 1, GpuOptions()), GpuDevice(spec, 1, kernel_timing(GpuOptions()))
        assert hot.explain(attention)["time_s"] == cold.explain(attention)["time_s"]
        ratio = hot.explain(big)["compute_s"] / cold.explain(big)["compute_s"]
        if spec.sustained_compute_fraction == 1.0:
            assert ratio == 1.0
        else:  # a large GEMM keeps the tensor cores at their calibrated rate: close to the full measured slowdown
            assert 1.0 / spec.sustained_compute_fraction * 0.97 <= ratio <= 1.0 / spec.sustained_compute_fraction


def test_report_targets_exit_code_and_lines(capsys) -> None:
    from asicsim.commands._output import report_targets
    assert report_targets([], check=True) == 0
    assert "all met" in capsys.readouterr().out
    assert report_targets(["h200 gemm bf16: MAPE 30.0% > 20%"], check=False) == 0
    assert report_targets(["h200 gemm bf16: MAPE 30.0% > 20%"], check=True) == 1
    out = capsys.readouterr().out
    assert out.count("MISSED h200 gemm bf16") == 2 and "all met" not in out


def test_the_repeat_carries_its_environment_and_matches_stored_cases() -> None:
    repeat = mg.load_repeat("h200")
    assert repeat is not None and not repeat.duplicated(["benchmark", "size"]).any()
    env = mg.environment("h200", mg.REPEAT)
    for field in ("gpu", "driver", "cuda", "torch", "date", "runs", "purpose"):
        assert env[field], field
    stored = mg.load_measurements("h200")
    matched = stored.merge(repeat, on=["benchmark", "size"])
    assert len(matched) == len(repeat)  # every repeated case was stored before


def test_repeatability_is_the_case_by_case_ratio_of_medians() -> None:
    table = mg.repeatability("h200").set_index("group")
    stored, repeat = mg.load_measurements("h200"), mg.load_repeat("h200")
    both = stored.merge(repeat, on=["benchmark", "size"], suffixes=("", "_r"))
    bf16 = both[both["benchmark"] == "gemm_bf16_torch"]
    ratio = bf16["median_s_r"] / bf16["median_s"]
    row = table.loc["gemm bf16"]
    assert row["cases"] == len(bf16)
    assert row["median_ratio"] == pytest.approx(float(ratio.median()))
    assert row["max_dev"] == pytest.approx(float((ratio - 1.0).abs().max()))
    assert row["mean_dev"] <= row["p90_dev"] <= row["max_dev"]
    assert set(table.index) >= {"gemm bf16", "gemm fp8", "decode attention"}
    assert mg.repeatability("b200").empty and mg.repeatability_table(["b200"]).empty  # no repeat: nothing
