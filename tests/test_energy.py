"""Energy of a run: static power on every chip for the whole makespan (busy or idle), dynamic energy per step,
never below static x makespan, never above TDP x makespan."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asicsim


def test_idle_time_is_charged_static_power():
    """A sparse trace: the chips idle most of the time, yet each draws at least its static power."""
    s = asicsim.run(hardware="sohu", chips=8, rate=0.2, requests=16, isl=128, osl=16).summary
    static_w = s["static_power_w_per_chip"]
    assert static_w > 0
    assert s["avg_power_w_per_chip"] >= static_w
    assert s["energy_static_j"] == pytest.approx(static_w * s["chips"] * s["makespan_s"])
    assert s["energy_j_total"] == pytest.approx(s["energy_static_j"] + s["energy_dynamic_j"])
    assert s["energy_idle_j"] > 0.9 * s["energy_static_j"]  # 16 short requests over ~100 s: mostly idle
    assert s["energy_idle_j"] <= s["energy_static_j"]


@settings(deadline=None, max_examples=12)
@given(hw=st.sampled_from(["sohu", "h100-sxm"]), rate=st.sampled_from([0.0, 0.5, 5.0]),
       requests=st.integers(1, 24), isl=st.integers(16, 1024), osl=st.integers(1, 64))
def test_energy_between_static_and_tdp_over_the_makespan(hw, rate, requests, isl, osl):
    s = asicsim.run(hardware=hw, chips=1, model="llama-3.1-8b", rate=rate, requests=requests, isl=isl, osl=osl).summary
    chip_s = s["chips"] * s["makespan_s"]
    tdp_w = asicsim.load_spec(hw).tdp_w
    assert s["energy_j_total"] >= s["static_power_w_per_chip"] * chip_s * (1 - 1e-12)
    assert s["avg_power_w_per_chip"] <= tdp_w * (1 + 1e-9)


def test_a_binding_tdp_throttles_the_clock_and_costs_throughput(tmp_path):
    """Sohu draws ~691 W at full load: at 700 W nothing changes, under ~500 W the power manager's clock rule
    lowers the base clock (the asked-for clock stays the boost ceiling), so tokens/s fall, never only joules."""
    base = (Path(asicsim.__file__).parent / "specs" / "sohu.toml").read_text()
    rates = []
    for tdp in (700, 500, 300):
        path = tmp_path / f"sohu-{tdp}.toml"
        path.write_text("\n".join(f"tdp_w = {tdp}" if ln.startswith("tdp_w =") else ln for ln in base.splitlines()))
        d = asicsim.describe(str(path), 8, requests=64)
        device = d.make_device()
        assert device.spec.clock_hz <= asicsim.load_spec("sohu").clock_hz
        assert device.power_limits().full_load_power_w <= tdp * (1 + 1e-9)
        rates.append(asicsim.run(str(path), 8, requests=64).summary["output_tokens_per_s"])
    assert rates[0] >= rates[1] >= rates[2] and rates[2] < 0.95 * rates[0]
