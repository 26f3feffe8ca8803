"""Energy and power: the ASIC model (asicsim/chip/power.py) and the GPU model (gpusim/power.py).

Golden values: Sohu's power budget of docs/sohu-assumptions.md section 4 (691.3 W at 1.50 GHz, 1.528 GHz
power limit); H100 0.71 pJ/FLOP all-in and 700 W TDP (area_energy.csv, gpu_specs.csv).
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpusim.power as gpu_power
from asicsim.chip.power import (FULL_LOAD, Activity, capped_clock_hz, mac_energy_j, power_w, static_power_w,
                                step_energy_breakdown_j, step_energy_j)
from asicsim.chip.programmability import derive_asic_spec
from asicsim.core.registry import load_hardware
from asicsim.core.results import StepRecord
from workloads.errors import InputError


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
