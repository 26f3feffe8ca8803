"""Energy and power: the ASIC model (asicsim/chip/power.py) and the GPU model (gpusim/power.py).

Golden values: Sohu's power budget of docs/sohu-assumptions.md section 4 (691.3 W at 1.50 GHz, 1.528 GHz
power limit); H100 0.71 pJ/FLOP all-in and 700 W TDP (area_energy.csv, gpu_specs.csv).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asicsim.gpusim.power as gpu_power
from asicsim.analysis.sweep import WORKLOAD_DEFAULTS, evaluate_point
from asicsim.chip.device import AsicDevice
from asicsim.chip.power import (FULL_LOAD, Activity, boost_budget_w, capped_clock_hz, elementwise_flop_j,
                                mac_charge_j, mac_energy_j, op_clock_hz, power_w, static_power_w,
                                step_energy_breakdown_j, step_energy_j, vector_clock_hz)
from asicsim.chip.programmability import derive_asic_spec
from asicsim.core.registry import load_hardware
from asicsim.core.results import StepRecord
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind


@pytest.fixture(scope="module")
def sohu():
    return load_hardware("sohu")


@pytest.fixture(scope="module")
def h100():
    return load_hardware("h100-sxm")


def _step(flops=1e12, memory_bytes=1e9, memory_busy_s=1e-3, link_busy_s=0.0, other_s=0.0, duration_s=2e-3):
    return StepRecord(step=0, replica=0, start_at=1.0, end_at=1.0 + duration_s, prefill_tokens=0, decode_tokens=64,
                      micro_batches=1, compute_busy_s=duration_s, memory_busy_s=memory_busy_s,
                      link_busy_s=link_busy_s, fixed_s=0.0, ideal_compute_s=0.0, stall_s=0.0, memory_wait_s=0.0,
                      flops_per_chip=flops, memory_bytes_per_chip=memory_bytes, gemm_s=0.0, attention_s=0.0,
                      collective_s=0.0, other_s=other_s)


# --- ASIC ---------------------------------------------------------------------------------------------------

def test_fp8_mac_is_half_a_bf16_mac() -> None:
    assert mac_energy_j("fp8", 4) == pytest.approx(0.5 * mac_energy_j("bf16", 4))  # fp8_mac_energy_vs_bf16
    assert mac_energy_j("bf16", 5) == pytest.approx(0.24e-12)  # bf16_mac_energy (N5)
    assert mac_energy_j("bf16", 7) == pytest.approx(0.32e-12, rel=1e-3)  # the 7nm figure of the same row


def test_sohu_full_load_power_matches_the_docs(sohu) -> None:
    assert power_w(sohu, FULL_LOAD) == pytest.approx(691.3, abs=0.05)
    assert capped_clock_hz(sohu) == sohu.clock_hz  # 1.50 GHz is under the cap
    unlimited = dataclasses.replace(sohu, clock_hz=3e9)
    assert capped_clock_hz(unlimited) == pytest.approx(1.528e9, rel=1e-3)
    assert capped_clock_hz(unlimited, grid=True) == 1.5e9


def test_tdp_cap_lowers_the_clock_to_exactly_tdp(sohu) -> None:
    tight = dataclasses.replace(sohu, tdp_w=500.0)
    clock = capped_clock_hz(tight)
    assert clock < tight.clock_hz
    assert power_w(tight, clock_hz=clock) == pytest.approx(500.0)
    idle_arrays = Activity(array=0.1, vector=0.1)
    assert capped_clock_hz(tight, idle_arrays) == tight.clock_hz  # light load: no throttling


def test_tdp_below_static_plus_hbm_is_an_input_error(sohu) -> None:
    with pytest.raises(InputError, match="alone exceeds"):
        capped_clock_hz(dataclasses.replace(sohu, tdp_w=150.0))


@settings(deadline=None, max_examples=50)
@given(util=st.floats(0.0, 1.0), hbm=st.floats(0.0, 1.0), clock_ghz=st.floats(0.1, 3.0))
def test_power_rises_with_activity_and_clock(sohu, util, hbm, clock_ghz) -> None:
    low = power_w(sohu, Activity(array=util, hbm=hbm, link=0.0, vector=util), clock_hz=clock_ghz * 1e9)
    assert static_power_w(sohu) <= low <= power_w(sohu, FULL_LOAD, clock_hz=clock_ghz * 1e9)
    assert low <= power_w(sohu, Activity(array=util, hbm=hbm, link=0.0, vector=util), clock_hz=clock_ghz * 1.1e9)


def test_step_energy_adds_up(sohu) -> None:
    idle = _step(flops=0.0, memory_bytes=0.0, memory_busy_s=0.0)
    assert step_energy_j(sohu, idle, "fp8") == pytest.approx(70.0 * 2e-3)  # static 10% of 700 W for 2 ms
    parts = step_energy_breakdown_j(sohu, _step(), "fp8")
    assert parts["mac_j"] == pytest.approx(0.5e12 * 0.12e-12)
    assert parts["hbm_j"] == pytest.approx(1e9 * 8 * 3.0e-12)  # all 1 GB went to HBM (busy time allows 5.5 GB)
    assert step_energy_j(sohu, _step(), "fp8") == pytest.approx(sum(parts.values()))
    assert step_energy_j(sohu, _step(), "bf16") > step_energy_j(sohu, _step(), "fp8")
    resident = _step(memory_busy_s=1e-5)  # most op bytes stayed in SRAM: only 55 MB reached HBM
    assert step_energy_breakdown_j(sohu, resident, "fp8")["hbm_j"] < parts["hbm_j"] / 10


def test_programmable_chip_pays_instruction_energy(sohu) -> None:
    fixed = step_energy_breakdown_j(sohu, _step(), "fp8")["instruction_j"]
    prog = derive_asic_spec(sohu, programmable_area_fraction=0.5)
    programmable = step_energy_breakdown_j(prog, _step(), "fp8")["instruction_j"]
    assert programmable > 100 * fixed


# --- boost clock --------------------------------------------------------------------------------------------

_CAPPED = dict(die_area_mm2=600.0, sram_bytes=64 * 2**20, hbm_stacks=4, tdp_w=320.0, clock_hz=2.0e9)


def test_built_in_specs_do_not_boost(sohu) -> None:
    assert sohu.max_clock_hz == 0.0 and sohu.boost_clock_hz == sohu.clock_hz
    assert op_clock_hz(sohu, 1.0, 1e-30) == sohu.clock_hz
    assert vector_clock_hz(sohu) == sohu.clock_hz
    below = dataclasses.replace(sohu, max_clock_hz=1.0e9)  # a ceiling at or below the base clock: no boost
    assert below.boost_clock_hz == sohu.clock_hz and op_clock_hz(below, 1.0, 1e-30) == sohu.clock_hz


def test_derived_spec_keeps_the_requested_clock_as_boost_ceiling(sohu) -> None:
    capped = derive_asic_spec(sohu, **_CAPPED)
    assert capped.clock_hz == pytest.approx(capped_clock_hz(dataclasses.replace(capped, max_clock_hz=0.0,
                                                                                clock_hz=2.0e9)))
    assert capped.clock_hz < capped.max_clock_hz == 2.0e9
    uncapped = derive_asic_spec(sohu, clock_hz=1.0e9)
    assert uncapped.clock_hz == uncapped.max_clock_hz == 1.0e9  # the cap does not bind: no boost


def test_full_array_gemm_runs_at_the_full_load_clock_and_half_filled_one_faster(sohu) -> None:
    """A GEMM that keeps every PE busy draws the full-load array power: its clock is the TDP cap for its dtype
    with the vector unit idle. Half the MACs in the same cycles: twice the clock (up to the ceiling)."""
    s = derive_asic_spec(sohu, **_CAPPED)
    cycles = 1e6
    full_j = cycles * s.macs_per_cycle("fp8") * mac_charge_j(s, "fp8")
    cap = capped_clock_hz(dataclasses.replace(s, clock_hz=10e9, max_clock_hz=0.0), Activity(vector=0.0), "fp8")
    assert op_clock_hz(s, cycles, full_j) == pytest.approx(min(cap, s.max_clock_hz))
    assert op_clock_hz(s, cycles, full_j) >= s.clock_hz
    assert op_clock_hz(s, cycles, full_j / 4) == pytest.approx(min(4 * cap, s.max_clock_hz))
    assert boost_budget_w(s) == pytest.approx(s.tdp_w - power_w(s, FULL_LOAD, clock_hz=0.0))  # static, HBM, links


def test_device_hands_boosted_cycles_over_at_the_base_clock(sohu) -> None:
    # 256 MiB of SRAM: the 117 MB of weights fit the prefetch buffer (half of SRAM), so the arrays read only SRAM and
    # every cycle scales with the clock. Ops streaming weights from HBM: tests/test_asic_memory.py.
    s = dataclasses.replace(derive_asic_spec(sohu, **_CAPPED), sram_bytes=256 * 2**20)
    plain = AsicDevice(dataclasses.replace(s, max_clock_hz=0.0), 1)
    boosted = AsicDevice(s, 1)
    # 8 rows x 11 arrays: a decode GEMM whose 2607-column shares leave the last fold of each array part-filled
    op = Op("gate_up", OpKind.MATMUL, "fp8", flops=2.0 * 8 * 4096 * 28672, weight_bytes=4096 * 28672, m=8, k=4096,
            n=28672)
    a, b = plain.cost(op), boosted.cost(op)
    clock = op_clock_hz(s, a.compute_cycles, 0.5 * op.flops * mac_charge_j(s, "fp8"))
    assert s.clock_hz < clock <= s.max_clock_hz
    assert b.compute_cycles == pytest.approx(a.compute_cycles * s.clock_hz / clock)
    assert b.ideal_compute_cycles == pytest.approx(a.ideal_compute_cycles * s.clock_hz / clock)
    assert b.weight_cycles == a.weight_cycles  # HBM time does not depend on the clock
    norm = Op("norm", OpKind.NORM, "bf16", flops=8.0 * 4096 * 4)
    assert boosted.cost(norm).compute_cycles == pytest.approx(
        plain.cost(norm).compute_cycles * s.clock_hz / op_clock_hz(s, plain.cost(norm).compute_cycles,
                                                                    norm.flops * elementwise_flop_j(s)))


@settings(deadline=None, max_examples=15)
@given(area=st.floats(350.0, 858.0), w_per_mm2=st.floats(0.35, 0.9), stacks=st.integers(1, 4),
       clock_ghz=st.floats(1.5, 3.0), isl=st.sampled_from([256, 2048]), osl=st.integers(2, 16),
       requests=st.integers(1, 32), dtype=st.sampled_from(["fp8", "bf16"]))
def test_boosted_runs_stay_within_tdp(sohu, area, w_per_mm2, stacks, clock_ghz, isl, osl, requests, dtype) -> None:
    """Average power per chip over a run never exceeds TDP, the power cap binding and ops boosted."""
    spec = dict(die_area_mm2=area, tdp_w=w_per_mm2 * area, hbm_stacks=stacks, clock_hz=clock_ghz * 1e9,
                sram_bytes=64 * 2**20)
    try:
        derive_asic_spec(sohu, **spec)
    except InputError:
        return
    work = dict(WORKLOAD_DEFAULTS, model="llama-3.1-8b", chips=1, dtype=dtype, isl=isl, osl=osl, requests=requests)
    row = evaluate_point({"base": "sohu", "spec": spec, "workload": work})
    assert row["feasible"], row["infeasible_reason"]
    assert row["power_w_per_chip"] <= spec["tdp_w"] * (1 + 1e-9)


# --- GPU ----------------------------------------------------------------------------------------------------

def test_h100_all_in_energy_matches_the_table(h100) -> None:
    assert gpu_power.all_in_pj_per_flop(h100) == pytest.approx(0.71, rel=0.01)  # h100_energy_per_flop_all_in


def test_h100_full_fp8_gemm_lands_near_700_w(h100) -> None:
    # An 8192^3 fp8 GEMM at full rate: 3 x 8192^2 B in 2 x 8192^3 / 1978.9e12 s = 0.36 TB/s of HBM (11%).
    seconds = 2 * 8192**3 / h100.dense_fp8_flops_per_s
    hbm_share = 3 * 8192**2 / seconds / h100.hbm_bandwidth_bytes_per_s
    load = gpu_power.GpuActivity(tensor=1.0, hbm=hbm_share, link=0.0)
    watts = gpu_power.power_w(h100, load, "fp8")
    assert watts == pytest.approx(700.0, rel=0.05)
    clock = gpu_power.capped_clock_hz(h100, load, "fp8")
    assert clock <= h100.tensor_clock_hz
    assert gpu_power.power_w(h100, load, "fp8", clock_hz=clock) <= 700.0 + 1e-6


def test_gpu_fp8_per_mac_energy_below_bf16(h100) -> None:
    fp8 = sum(gpu_power.energy_per_mac_j(h100, "fp8").values())
    bf16 = sum(gpu_power.energy_per_mac_j(h100, "bf16").values())
    assert fp8 == pytest.approx(bf16 / 2)
    a100 = load_hardware("a100-sxm-80g")  # no fp8: runs and costs as bf16
    assert gpu_power.energy_per_mac_j(a100, "fp8") == gpu_power.energy_per_mac_j(a100, "bf16")


def test_gpu_step_energy_and_sohu_is_cheaper_per_flop(sohu, h100) -> None:
    step = _step()
    gpu_j = gpu_power.step_energy_j(h100, step, "fp8")
    parts = gpu_power.step_energy_breakdown_j(h100, step, "fp8")
    # This step's parts add up to more than 700 W x 2 ms: the power manager holds the GPU at its TDP.
    assert sum(parts.values()) > 700.0 * 2e-3
    assert gpu_j == pytest.approx(min(sum(parts.values()), 700.0 * 2e-3)) and parts["static_j"] == pytest.approx(70.0 * 2e-3)
    assert step_energy_j(sohu, step, "fp8") < gpu_j  # same work, no instruction/register-file datapath


# --- through the Device protocol ------------------------------------------------------------------------------

def test_power_limits_are_the_power_models(sohu, h100) -> None:
    """`Device.power_limits()` (what `asicsim area` prints) is each power model's full load, unchanged."""
    from asicsim.core.registry import make_device

    asic = make_device("sohu", 1).power_limits()
    assert (asic.full_load_power_w, asic.capped_clock_hz) == (power_w(sohu), capped_clock_hz(sohu))
    assert (asic.tdp_w, asic.static_power_w, asic.clock_hz) == (700.0, static_power_w(sohu), sohu.clock_hz)
    assert asic.full_load_power_w == pytest.approx(691.29, abs=0.005)  # docs/sohu-assumptions.md section 4
    assert make_device("sohu", 1).power_limits("bf16").full_load_power_w == power_w(sohu, dtype="bf16")
    gpu = make_device("h100-sxm", 1).power_limits()
    assert (gpu.full_load_power_w, gpu.capped_clock_hz) == (gpu_power.power_w(h100), gpu_power.capped_clock_hz(h100))
    assert (gpu.tdp_w, gpu.static_power_w, gpu.clock_hz) == (700.0, 70.0, h100.tensor_clock_hz)
    assert gpu.full_load_power_w == pytest.approx(789.766) and gpu.capped_clock_hz == pytest.approx(1.5693e9, rel=1e-4)
