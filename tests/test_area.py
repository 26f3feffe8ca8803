"""Die-area models (asicsim/chip/area.py for the ASIC, gpusim/area.py for GPUs, `Device.area()` for either),
the programmability knob and derived specs, `asicsim area`.

Golden values: A100 826 mm2 and H100 814 mm2 (gpu_specs.csv die_area_mm2, vendor whitepapers); the A100
die-shot blocks (area_energy.csv a100_die_breakdown, LLMCompass); the Sohu area table of
docs/sohu-assumptions.md section 3. None of them is read back into the model. Throughput properties use
the sweep's evaluation of a point (asicsim.analysis.sweep.evaluate_point).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from asicsim.analysis.sweep import WORKLOAD_DEFAULTS, evaluate_point
from asicsim.chip.area import BLOCKS, area_breakdown, area_constants, hbm_edge_limit_stacks, node_scale
from asicsim.chip.power import FULL_LOAD, power_w
from asicsim.chip.programmability import check_model_runs, derive_asic_spec, is_fixed_function
from asicsim.workloads.models import CONFIG_DIR
from asicsim.cli import main
from asicsim.core.registry import load_hardware, make_device
from asicsim.workloads.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "asicsim" / "data"
DOC = ROOT / "docs" / "sohu-assumptions.md"
RETICLE_MM2 = 858.0  # area_energy.csv reticle_limit


def _csv_value(path: Path, **match: str) -> str:
    with path.open(encoding="utf-8") as fh:
        return next(r["value"] for r in csv.DictReader(fh) if all(r[k] == v for k, v in match.items()))


@pytest.fixture(scope="module")
def sohu():
    return load_hardware("sohu")


# --- GPUs: totals and the A100 die shot -------------------------------------------------------------------

def _area(name: str, check: bool = True):
    """A built-in chip's area through the Device protocol (any kind)."""
    return make_device(name, 1).area(check=check)


@pytest.mark.parametrize("name", ["a100-sxm-80g", "h100-sxm"])
def test_gpu_total_within_10_percent_of_the_die(name: str) -> None:
    published = float(_csv_value(DATA / "gpu_specs.csv", device=name, quantity="die_area_mm2"))  # 826 / 814
    total = _area(name).total_mm2
    assert total == pytest.approx(published, rel=0.10)


@pytest.mark.parametrize(("name", "total_mm2", "share"), [("a100-sxm-80g", 825.7, 0.539), ("h100-sxm", 772.3, 0.513),
                                                          ("h200", 772.3, 0.513), ("sohu", 824.1, 0.0)])
def test_modelled_totals_are_the_documented_ones(name: str, total_mm2: float, share: float) -> None:
    """The totals and programmable shares docs/area-model.md quotes: moving the GPU model to gpusim/area.py and
    the shared primitives to asicsim/core/area.py changed no number."""
    area = _area(name)
    assert area.total_mm2 == pytest.approx(total_mm2, abs=0.05)
    assert area.programmable_share == pytest.approx(share, abs=5e-4)


def test_asic_device_area_is_the_chip_area_model(sohu) -> None:
    assert make_device("sohu", 1).area() == area_breakdown(sohu)


def test_chip_area_model_refuses_a_gpu_spec() -> None:
    with pytest.raises(InputError, match="use the device's area"):
        area_breakdown(load_hardware("h100-sxm"))


def test_a100_blocks_within_20_percent_of_the_die_shot() -> None:
    text = _csv_value(DATA / "area_energy.csv", quantity="a100_die_breakdown")
    shot = {label: float(mm2) for label, mm2 in (p.strip().rsplit(" ", 1) for p in text.split(";"))}
    groups = _area("a100-sxm-80g").groups()
    names = {"cores": "cores", "interconnect": "interconnect", "L2": "l2_or_sram", "HBM PHY": "hbm_phy",
             "mem ctrl": "mem_ctrl", "NVLink PHY": "link_phy", "other": "other"}
    assert set(shot) == set(names)
    for label, mm2 in shot.items():
        assert groups[names[label]] == pytest.approx(mm2, rel=0.20), label


def test_gpus_are_about_half_programmable() -> None:
    for name in ("a100-sxm-80g", "h100-sxm"):
        assert 0.45 < _area(name).programmable_share < 0.6


def test_gpu_without_a_die_description_is_an_input_error() -> None:
    from asicsim.gpusim.device import GpuDevice

    spec = dataclasses.replace(load_hardware("h100-sxm"), name="mystery-gpu")
    with pytest.raises(InputError, match="no physical die description"):
        GpuDevice(spec, 1).area()
    with pytest.raises(InputError, match="no physical die description"):
        _area("b200", check=False)  # docs/area-model.md: B200 has no die description yet


# --- Sohu: agrees with docs/sohu-assumptions.md ------------------------------------------------------------

DOC_ROWS = {"HBM PHY": "hbm_phy", "HBM controllers": "hbm_controller", "chip-to-chip links": "links",
            "SRAM": "sram", "vector unit": "vector_units", "NoC": "noc", "control, PCIe, I/O": "other",
            "matrix arrays": "mac_arrays"}


def test_sohu_area_matches_the_docs_table(sohu) -> None:
    section = DOC.read_text(encoding="utf-8").split("## 3. Area budget")[1].split("\n## ")[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[\d.]+", cells[1]):
            rows[cells[0]] = float(cells[1])
    area = area_breakdown(sohu)
    for row, block in DOC_ROWS.items():
        assert area.blocks[block] == pytest.approx(rows[row], abs=0.01), row
    assert area.total_mm2 == pytest.approx(rows["total"], abs=0.01)  # 824.10
    assert area.programmable_share == 0.0 and is_fixed_function(sohu)


# --- limits and node scaling --------------------------------------------------------------------------------

def test_over_the_reticle_says_by_how_much(sohu) -> None:
    big = dataclasses.replace(sohu, array_count=18)  # 2 more 32.44 mm2 arrays: 824.1 + 64.9 = 889.0 mm2
    with pytest.raises(InputError, match=r"over the 858 mm2 reticle by 31\.0 mm2"):
        area_breakdown(big)


def test_hbm_stacks_limited_by_die_edge(sohu) -> None:
    # 858 mm2 at 26:33 -> two 33 mm long edges = 66 mm / 6.5 mm = 10.15 -> 10 stacks
    assert hbm_edge_limit_stacks(858.0) == 10
    with pytest.raises(InputError, match="11 stacks need 71.5 mm"):
        area_breakdown(dataclasses.replace(sohu, hbm_stacks=11, array_count=10))


@pytest.mark.parametrize("node", [7, 5, 4, 3])
def test_node_scaling_logic_shrinks_sram_less_phys_not(sohu, node: int) -> None:
    base = area_breakdown(sohu).blocks
    scaled = area_breakdown(dataclasses.replace(sohu, process_node_nm=node, array_count=8), check=False).blocks
    ns = node_scale(node)
    assert scaled["mac_arrays"] == pytest.approx(base["mac_arrays"] / 2 * ns.logic_area)
    assert scaled["sram"] == pytest.approx(base["sram"] * ns.sram_area)
    assert scaled["hbm_phy"] == base["hbm_phy"]  # PHYs do not shrink



def test_sram_scales_less_than_logic() -> None:
    n7, n3 = node_scale(7), node_scale(3)
    assert n7.logic_area / n3.logic_area > n7.sram_area / n3.sram_area > 1.0  # 2.30x versus 1.29x


def test_unknown_node_is_an_input_error(sohu) -> None:
    with pytest.raises(InputError, match="process_node_nm"):
        area_breakdown(dataclasses.replace(sohu, process_node_nm=10))


# --- the programmability knob -------------------------------------------------------------------------------

def test_programmability_moves_area_from_arrays_to_cores(sohu) -> None:
    fixed = derive_asic_spec(sohu)
    gpu_like = derive_asic_spec(sohu, programmable_area_fraction=0.5)
    a0, a5 = area_breakdown(fixed), area_breakdown(gpu_like)
    assert fixed.array_count == 16  # the same 16 arrays the hand derivation found
    assert gpu_like.array_count < fixed.array_count
    assert a5.programmable_share == pytest.approx(0.5, abs=0.03) and a5.programmable_cores > 100
    assert a0.total_mm2 <= RETICLE_MM2 and a5.total_mm2 <= RETICLE_MM2
    assert gpu_like.peak_flops_per_s("fp8") < fixed.peak_flops_per_s("fp8")


def _config(name: str) -> dict:
    import json
    return json.loads((CONFIG_DIR / f"{name}.json").read_text())


def test_fixed_function_chip_without_fallback_refuses_what_its_datapath_lacks(sohu) -> None:
    bare = dataclasses.replace(sohu, fallback_flops_per_s=0.0)
    for name, needs in (("mixtral-8x7b", "moe_grouped_gemm"), ("nemotron-h-56b", "mamba2_scan"),
                        ("deepseek-r1", "mla_attention"), ("gpt-oss-20b", "attention_sinks")):
        with pytest.raises(InputError, match=needs) as info:
            check_model_runs(bare, _config(name), "config.json")
        assert (info.value.source, info.value.field) == ("config.json", "model_type")
        check_model_runs(sohu, _config(name), "config.json")  # the shipped spec has a fallback unit
    check_model_runs(bare, _config("llama-3.1-8b"), "config.json")
    check_model_runs(derive_asic_spec(bare, programmable_area_fraction=0.2), _config("mixtral-8x7b"), "config.json")
    check_model_runs(load_hardware("h100-sxm"), _config("nemotron-h-56b"), "config.json")


# --- derived specs: properties ------------------------------------------------------------------------------

_shape = st.sampled_from([64, 128, 256])


@settings(deadline=None, max_examples=60)
@given(small=st.floats(380.0, 858.0), extra=st.floats(0.0, 400.0), rows=_shape, cols=_shape,
       node=st.sampled_from([7, 5, 4, 3]), stacks=st.integers(1, 6), sram_mb=st.integers(16, 256),
       clock_ghz=st.floats(0.8, 2.2))
def test_adding_area_never_lowers_peak_flops(sohu, small, extra, rows, cols, node, stacks, sram_mb, clock_ghz):
    """Fixed-function chips: a bigger area budget never gives fewer FLOP/s (power cap included).

    With programmable cores under a binding power cap it can (by < 0.1%): more area adds cores whose
    instruction power lowers the clock; docs/area-model.md.
    """
    large = min(small + extra, RETICLE_MM2)
    common = dict(array_rows=rows, array_cols=cols, process_node_nm=node, hbm_stacks=stacks,
                  sram_bytes=sram_mb * 2**20, clock_hz=clock_ghz * 1e9, tdp_w=0.8 * small)
    try:
        a = derive_asic_spec(sohu, die_area_mm2=small, **common)
    except InputError:
        return
    b = derive_asic_spec(sohu, die_area_mm2=large, **common)  # more area: must build if the smaller did
    assert b.peak_flops_per_s("fp8") >= a.peak_flops_per_s("fp8") * (1 - 1e-9)


def _tokens_per_s(area_mm2: float, spec: dict, workload: dict) -> float:
    """Output tokens/s of a sohu-derived chip with `area_mm2` of die, simulated as a sweep point."""
    work = dict(WORKLOAD_DEFAULTS, **workload, widen=True)  # fp4 runs widened on arrays without an fp4 datapath
    row = evaluate_point({"base": "sohu", "spec": dict(spec, die_area_mm2=area_mm2), "workload": work})
    assert row["feasible"], row["infeasible_reason"]
    return row["output_tokens_per_s"]


_sram = st.one_of(st.integers(16, 256).map(lambda mib: {"sram_bytes": mib * 2**20}),  # more arrays
                  st.floats(0.05, 0.5).map(lambda f: {"sram_area_fraction": f}))  # more arrays and SRAM


@settings(deadline=None, max_examples=40)
@given(small=st.floats(300.0, 858.0), extra=st.floats(1.0, 400.0), rows=_shape, cols=_shape,
       node=st.sampled_from([7, 5, 4, 3]), stacks=st.integers(1, 6), sram=_sram, clock_ghz=st.floats(0.3, 2.0),
       dtype=st.sampled_from(["fp8", "bf16", "fp4"]), chips=st.sampled_from([1, 2]),
       isl=st.sampled_from([64, 256, 1024]), osl=st.integers(2, 32), requests=st.integers(1, 16))
def test_adding_area_never_lowers_throughput_below_the_power_cap(sohu, small, extra, rows, cols, node, stacks, sram,
                                                                 clock_ghz, dtype, chips, isl, osl, requests):
    """Fixed-function chips whose clock the TDP does not lower: a bigger die (more arrays, and more SRAM
    with sram_area_fraction) never gives fewer simulated output tokens/s.

    The test below covers the case where the TDP caps the base clock.
    """
    large = min(small + extra, RETICLE_MM2)
    tdp = area_constants()["die"]["power_density_cap_w_per_mm2"] * small
    spec = dict(array_rows=rows, array_cols=cols, process_node_nm=node, hbm_stacks=stacks, clock_hz=clock_ghz * 1e9,
                tdp_w=tdp, **sram)
    try:
        a = derive_asic_spec(sohu, die_area_mm2=small, **spec)
    except InputError:
        assume(False)
    b = derive_asic_spec(sohu, die_area_mm2=large, **spec)  # more area: must build if the smaller did
    assume(a.clock_hz == b.clock_hz == spec["clock_hz"])  # the power cap binds at neither size
    assert a.programmable_area_fraction == 0.0 and b.array_count >= a.array_count
    workload = dict(model="llama-3.1-8b", chips=chips, dtype=dtype, isl=isl, osl=osl, requests=requests)
    assert _tokens_per_s(large, spec, workload) >= _tokens_per_s(small, spec, workload) * (1 - 1e-9)


def test_adding_area_never_lowers_throughput_under_the_power_cap_pinned(sohu) -> None:
    """The point that broke the invariant with one design clock (docs/sweep.md), now with the boost clock.

    500 -> 600 mm2 at 320 W: 8 -> 11 arrays, base clock capped 1.171 -> 0.852 GHz; Llama-3.1-8B decode at
    batch 8 needs 21 -> 18 folds per array, the 11-array folds only partly filled (gate_up 112 tiles over
    11 x 11 fold slots). With one clock for all ops tokens/s fell 2601 -> 2448; with the power-managed boost
    the half-filled folds run faster and it rises (2809 -> 2836 when written).
    """
    spec = dict(sram_bytes=64 * 2**20, hbm_stacks=4, tdp_w=320.0, clock_hz=2.0e9)
    workload = dict(model="llama-3.1-8b", chips=1, dtype="fp8", isl=256, osl=16, requests=8)
    small, large = (derive_asic_spec(sohu, die_area_mm2=a, **spec) for a in (500.0, 600.0))
    assert (small.array_count, large.array_count) == (8, 11)
    assert large.clock_hz < small.clock_hz < spec["clock_hz"] == large.max_clock_hz  # the cap binds at both
    assert _tokens_per_s(600.0, spec, workload) >= _tokens_per_s(500.0, spec, workload) * (1 - 1e-9)


@settings(deadline=None, max_examples=40)
@given(small=st.floats(300.0, 858.0), extra=st.floats(1.0, 400.0), rows=_shape, cols=_shape,
       node=st.sampled_from([7, 5, 4, 3]), stacks=st.integers(1, 6), sram=_sram,
       clock_ghz=st.floats(1.0, 3.0),
       w_per_mm2=st.floats(0.3, 1.1), dtype=st.sampled_from(["fp8", "bf16", "fp4"]), chips=st.sampled_from([1, 2]),
       isl=st.sampled_from([64, 256, 1024]), osl=st.integers(2, 32), requests=st.integers(1, 16))
def test_adding_area_never_lowers_throughput_under_the_power_cap(sohu, small, extra, rows, cols, node, stacks,
                                                                 sram, clock_ghz, w_per_mm2, dtype, chips, isl,
                                                                 osl, requests):
    """Fixed-function chips whose base clock the TDP lowers: a bigger die (more arrays at a lower base clock,
    each op boosted to what the TDP allows for the work it does, and more SRAM with sram_area_fraction) never
    gives fewer output tokens/s.
    """
    large = min(small + extra, RETICLE_MM2)
    spec = dict(array_rows=rows, array_cols=cols, process_node_nm=node, hbm_stacks=stacks, clock_hz=clock_ghz * 1e9,
                tdp_w=w_per_mm2 * small, **sram)
    try:
        a = derive_asic_spec(sohu, die_area_mm2=small, **spec)
    except InputError:
        assume(False)
    b = derive_asic_spec(sohu, die_area_mm2=large, **spec)  # more area: must build if the smaller did
    assume(b.clock_hz < spec["clock_hz"])  # the power cap binds (at the larger size at least)
    assert a.programmable_area_fraction == 0.0 and b.array_count >= a.array_count
    workload = dict(model="llama-3.1-8b", chips=chips, dtype=dtype, isl=isl, osl=osl, requests=requests)
    assert _tokens_per_s(large, spec, workload) >= _tokens_per_s(small, spec, workload) * (1 - 1e-9)


def test_more_sram_never_slows_the_two_micro_batch_step(sohu) -> None:
    """Found by the power-cap property with sram_area_fraction (300 -> 539 mm2, tokens/s 162.7 -> 144.8).

    The same die (64x64 arrays, 1 HBM stack, 150 W) with 40 or 96 MiB of SRAM: a 3 x 1024 token prefill
    split into two interleaved micro-batches. Activations under a quarter of SRAM skip HBM, so HBM busy time
    falls 31.6 -> 25.3 ms with compute equal. With units shared first come, first served the step took 32.2 ms
    with 40 MiB and 39.5 ms with 96 MiB (a list-scheduling anomaly); the engine's fixed per-unit order is
    monotone in op durations: 34.4 -> 30.7 ms when written.
    """
    from asicsim.core.serving import split_batch
    from asicsim.chip.device import AsicDevice
    from asicsim.core.engine import StepEngine
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.graph_types import StepBatch
    from asicsim.workloads.models import load_model

    spec = derive_asic_spec(sohu, die_area_mm2=300.0, array_rows=64, array_cols=64, process_node_nm=5,
                            hbm_stacks=1, clock_hz=1.0e9, tdp_w=150.0, sram_bytes=40 * 2**20)
    graphs = [build_step_graph(load_model("llama-3.1-8b"), half, tp=2, dtype="fp8")
              for half in split_batch(StepBatch.make(prefill_new=[1024, 1024, 1024]), 2)]
    small, large = (StepEngine(AsicDevice(dataclasses.replace(spec, sram_bytes=mib * 2**20), 2)).run_step(graphs)
                    for mib in (40, 96))
    assert large.memory_busy_s <= small.memory_busy_s and large.compute_busy_s <= small.compute_busy_s
    assert large.time_s <= small.time_s * (1 + 1e-9)


@settings(deadline=None, max_examples=80)
@given(area=st.floats(150.0, 900.0), share=st.floats(0.0, 0.9), rows=_shape, cols=_shape,
       node=st.sampled_from([7, 5, 4, 3]), stacks=st.integers(1, 12), sram_frac=st.floats(0.0, 0.6),
       clock_ghz=st.floats(0.5, 3.0), w_per_mm2=st.floats(0.3, 1.2))
def test_no_derived_point_exceeds_reticle_power_or_hbm_edge(sohu, area, share, rows, cols, node, stacks,
                                                            sram_frac, clock_ghz, w_per_mm2):
    tdp = w_per_mm2 * area
    try:
        s = derive_asic_spec(sohu, die_area_mm2=area, programmable_area_fraction=share, array_rows=rows,
                             array_cols=cols, process_node_nm=node, hbm_stacks=stacks, sram_area_fraction=sram_frac,
                             clock_hz=clock_ghz * 1e9, tdp_w=tdp)
    except InputError:
        return
    a = area_breakdown(s, check=False)
    assert a.total_mm2 <= min(s.die_area_mm2, RETICLE_MM2) * (1 + 1e-9)
    assert power_w(s, FULL_LOAD) <= s.tdp_w * (1 + 1e-9)
    assert s.tdp_w <= 1.1 * s.die_area_mm2  # area_energy.csv power_density_cap
    assert s.hbm_stacks <= hbm_edge_limit_stacks(s.die_area_mm2)


def test_derive_rejects_bad_parameters(sohu) -> None:
    with pytest.raises(InputError, match="reticle by 42.0 mm2"):
        derive_asic_spec(sohu, die_area_mm2=900)
    with pytest.raises(InputError, match="derived"):
        derive_asic_spec(sohu, array_count=3)
    with pytest.raises(InputError, match="unknown parameter"):
        derive_asic_spec(sohu, arrays=3)
    with pytest.raises(InputError, match="exceeds the 700 W TDP"):
        derive_asic_spec(sohu, clock_hz=2e9, fit_clock_to_power=False)
    assert derive_asic_spec(sohu, clock_hz=2e9).clock_hz == pytest.approx(1.528e9, rel=1e-3)  # docs section 4


# --- the CLI ------------------------------------------------------------------------------------------------

def test_cli_area_json(capsys) -> None:
    assert main(["area", "--hw", "h100-sxm", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["blocks"]) == set(BLOCKS)
    assert out["total_mm2"] == pytest.approx(sum(out["blocks"].values()))


def test_cli_area_table_shows_the_die_shot(capsys) -> None:
    assert main(["area", "--hw", "a100-sxm-80g"]) == 0
    assert "die shot" in capsys.readouterr().out


def test_cli_area_over_reticle_is_one_line_exit_2(tmp_path, capsys) -> None:
    text = (ROOT / "asicsim" / "specs" / "sohu.toml").read_text(encoding="utf-8")
    path = tmp_path / "huge.toml"
    path.write_text(re.sub(r"^array_count = .*$", "array_count = 20", text, flags=re.M), encoding="utf-8")
    assert main(["area", "--hw", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "reticle by" in err
