"""SRAM-resident pipelines (groq-lpu, cerebras-wse3, sn40l): specs, the capacity rule, --chips auto, pipeline hops,
memory tiers, per-user validation rows and claims."""

from __future__ import annotations

import dataclasses
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asicsim.analysis import validate
from asicsim.core.description import RunSpec, resolve
from asicsim.core.registry import load_hardware, make_device, resolve_spec_path
from asicsim.core.runner import run_workload
from asicsim.core.specfile import read_toml, spec_meta_fields
from asicsim.devices.sram_pipeline.device import SramPipelineDevice
from asicsim.workloads.errors import DoesNotFitError, InputError
from asicsim.workloads.graph_types import Op, OpKind
from asicsim.workloads.memory import weight_bytes_per_chip
from asicsim.workloads.models import load_model

SPECS = ("groq-lpu", "cerebras-wse3", "sn40l")
# Groq's per-user runs keep prefill chunks at 1024 tokens: 8192 tokens of workspace alone exceed 230 MB of SRAM.
GROQ_CHUNK = 1024


def _per_user(hardware: str, model: str, dtype: str, chips, tp=None, pp: int = 1, chunk=None, **more) -> RunSpec:
    return RunSpec(hardware=hardware, chips=chips, model=model, dtype=dtype, tp=tp, pp=pp, isl=256, osl=8,
                   harness="per-user", max_tokens_per_step=chunk, **more)


# --- specs ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SPECS)
def test_every_field_has_a_source_and_assumed_ones_say_so(name):
    table = read_toml(resolve_spec_path(name))
    spec = load_hardware(name)
    assert spec.kind == "sram-pipeline" and spec.name == name
    sources = dict(spec.sources)
    for key, value in table.items():
        if key in spec_meta_fields:
            continue
        assert isinstance(value, dict) and value.get("source", "").strip(), f"{name}.{key} has no source"
        assert sources[key] == value["source"]
    for key in spec.assumed:  # an assumed figure says how it was derived (a number or a reason in its note)
        assert len(sources[key]) > 40, f"{name}.{key}: assumed without a derivation"
    device = make_device(spec, 1)
    assert device.memory_bytes_per_chip == pytest.approx(sum(c for _, c, _ in spec.tiers))
    assert device.power_limits().static_power_w < device.power_limits().tdp_w
    with pytest.raises(InputError, match="no area model"):
        device.area()
    assert device.die_floorplan() is None


def test_a_tier_without_bandwidth_and_bad_numbers_are_input_errors():
    table = read_toml(resolve_spec_path("cerebras-wse3"))
    with pytest.raises(InputError, match="external_bandwidth_bytes_per_s"):
        SramPipelineDevice.load_spec({**table, "external_bandwidth_bytes_per_s": 0}, "t.toml")
    with pytest.raises(InputError, match="static_power_w"):
        SramPipelineDevice.load_spec({**table, "static_power_w": 1e9}, "t.toml")
    with pytest.raises(InputError, match="allreduce"):
        SramPipelineDevice.load_spec({**table, "allreduce": "tree"}, "t.toml")


def test_dtypes_follow_the_published_datapaths():
    assert make_device("groq-lpu", 1).supported_dtypes == ("bf16", "fp16", "int8")
    assert make_device("sn40l", 1).supported_dtypes == ("bf16", "fp16")
    with pytest.raises(InputError, match="no fp8 datapath"):
        resolve(_per_user("groq-lpu", "llama-3.2-1b", "fp8", 64, tp=8, pp=8, chunk=GROQ_CHUNK))
    widened = make_device("groq-lpu", 1)
    assert widened.peak_flops_per_s("fp8") == widened.peak_flops_per_s("bf16")  # fp8 widens to the 16-bit rate
    assert widened.peak_flops_per_s("int8") == 750e12


# --- the capacity rule ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int8", "fp8"])
def test_a_70b_model_on_groq_takes_hundreds_of_chips(dtype):
    """The order of the published 512-576 chips, from the spec: at least weights / SRAM per chip, and within a
    small factor of it (the layout's uneven stages and the LM head's stage cost the rest)."""
    spec = load_hardware("groq-lpu")
    d = resolve(_per_user("groq-lpu", "llama-2-70b", dtype, "auto", chunk=GROQ_CHUNK, widen=True))
    weights = weight_bytes_per_chip(load_model("llama-2-70b"), dtype, 1, 1)
    floor = weights / spec.sram_bytes
    assert 100 <= d.chips < 1000
    assert floor <= d.chips < 4 * floor
    assert d.weight_bytes_per_chip <= spec.sram_bytes


def test_a_count_that_cannot_hold_the_model_says_what_would():
    with pytest.raises(DoesNotFitError) as err:
        resolve(_per_user("groq-lpu", "llama-2-70b", "int8", 576, tp=8, pp=72, chunk=GROQ_CHUNK))
    problem = err.value.problem
    assert "does not fit" in problem and "GB missing" in problem
    hint = re.search(r"tp (\d+)(?: x pp (\d+))? would fit \((\d+) chips\)", problem)
    tp, pp, chips = int(hint[1]), int(hint[2] or 72), int(hint[3])
    assert tp * pp == chips
    assert resolve(_per_user("groq-lpu", "llama-2-70b", "int8", chips, tp=tp, pp=pp, chunk=GROQ_CHUNK)).chips == chips


def test_a_workspace_too_large_for_the_sram_is_refused_with_the_chunk_that_fits():
    """With 8,192 tokens per step (given) the activation workspace alone outgrows 230.7 MB at every layout; the
    refusal names a smaller step and the layout that then holds Llama-3.3-70B, and that layout resolves. Not given,
    the default step halves until the model fits."""
    with pytest.raises(DoesNotFitError, match="tokens per step") as err:
        resolve(_per_user("groq-lpu", "llama-3.3-70b", "int8", "auto", chunk=8192))
    hint = re.search(r"with (\d+) \(--max-tokens-per-step\), tp (\d+) x pp (\d+) would \((\d+) chips\)",
                     err.value.problem)
    chunk, tp, pp, chips = (int(x) for x in hint.groups())
    assert resolve(_per_user("groq-lpu", "llama-3.3-70b", "int8", chips, tp=tp, pp=pp, chunk=chunk)).chips == chips
    assert resolve(_per_user("groq-lpu", "llama-3.3-70b", "int8", "auto", chunk=chunk)).chips == chips
    default = resolve(_per_user("groq-lpu", "llama-3.3-70b", "int8", "auto"))
    assert default.max_tokens_per_step < 8192 and default.chips <= 2 * chips


@settings(deadline=None, max_examples=12, suppress_health_check=[HealthCheck.too_slow])
@given(hardware=st.sampled_from(SPECS), model=st.sampled_from(["llama-3.2-1b", "llama-3.1-8b", "qwen3-0.6b"]),
       dtype=st.sampled_from(["bf16", "int8", "fp8"]))
def test_auto_never_picks_a_count_that_does_not_fit(hardware, model, dtype):
    spec = _per_user(hardware, model, dtype, "auto", chunk=GROQ_CHUNK, widen=True)
    try:
        d = resolve(spec)
    except DoesNotFitError:
        return
    device = make_device(hardware, d.chips)
    assert d.weight_bytes_per_chip <= device.memory_bytes_per_chip
    assert d.tp * d.pp * d.replicas == d.chips
    # the same layout resolves as given, and no layout with fewer chips holds the run
    assert resolve(dataclasses.replace(spec, chips=d.chips, tp=d.tp, pp=d.pp)).chips == d.chips
    layers = load_model(model).num_hidden_layers
    for tp in (1, 2, 4, 8, 16, 32, 64):
        for pp in range(1, layers + 1):
            if tp * pp >= d.chips:
                break
            with pytest.raises(InputError):
                resolve(dataclasses.replace(spec, chips=tp * pp, tp=tp, pp=pp))


# --- pipeline hops and memory tiers --------------------------------------------------------------------------------
def _tpot(hardware, model, dtype, chips, tp, pp, spec=None, chunk=None) -> float:
    run = _per_user(spec or hardware, model, dtype, chips, tp=tp, pp=pp, chunk=chunk)
    return run_workload(run).summary["tpot_p50_s"]


@settings(deadline=None, max_examples=10)
@given(stages=st.lists(st.sampled_from([1, 2, 3, 4, 8, 16]), min_size=2, max_size=2, unique=True),
       latency=st.floats(1e-7, 1e-4))
def test_more_pipeline_hops_never_lower_batch_1_latency(stages, latency):
    spec = dataclasses.replace(load_hardware("cerebras-wse3"), link_latency_s=latency)
    few, many = sorted(stages)
    assert _tpot(None, "llama-3.1-8b", "bf16", many, 1, many, spec) >= _tpot(None, "llama-3.1-8b", "bf16", few, 1, few,
                                                                            spec) * (1 - 1e-9)


def test_each_hop_costs_its_latency():
    """Eight stages of one batch: the sum of the stages' times, seven transfers of one link latency each."""
    base = load_hardware("cerebras-wse3")
    slow = dataclasses.replace(base, link_latency_s=base.link_latency_s + 1e-3)
    extra = _tpot(None, "llama-3.1-8b", "bf16", 8, 1, 8, slow) - _tpot(None, "llama-3.1-8b", "bf16", 8, 1, 8, base)
    assert extra == pytest.approx(7 * 1e-3, rel=1e-6)


@settings(deadline=None, max_examples=40)
@given(hardware=st.sampled_from(["cerebras-wse3", "sn40l"]), small=st.floats(0.0, 4.0), more=st.floats(0.0, 4.0),
       k=st.integers(64, 16384), n=st.integers(64, 16384), m=st.integers(1, 64))
def test_streaming_from_an_external_tier_is_never_faster_than_sram(hardware, small, more, k, n, m):
    """Weights per chip as multiples of the SRAM: more of them spilling to slower tiers never makes an op faster,
    and none is faster than the same op with its weights in SRAM."""
    device = make_device(hardware, 1)
    sram = device.spec.sram_bytes
    op = Op("w", OpKind.MATMUL, "bf16", flops=2.0 * m * k * n, weight_bytes=2.0 * k * n, act_in_bytes=2.0 * m * k,
            act_out_bytes=2.0 * m * n, m=m, n=n, k=k)

    def seconds(dev):
        c = dev.cost(op)
        return c.fixed_s + max(c.compute_cycles, c.memory_cycles) / 1e9

    resident = seconds(device.with_resident_weights(0.5 * sram))
    lower = seconds(device.with_resident_weights(sram * (1 + small)))
    higher = seconds(device.with_resident_weights(sram * (1 + small + more)))
    assert resident <= lower * (1 + 1e-12) and lower <= higher * (1 + 1e-12)
    spilled = device.with_resident_weights(sram * (1 + small))
    assert spilled.memory_bandwidth_bytes_per_s <= device.spec.sram_bandwidth_bytes_per_s * (1 + 1e-12)


def test_a_model_over_the_wafer_streams_from_memoryx_and_is_slower():
    """Llama-3.1-70B on one CS-3 (141 GB over 44 GB of SRAM) reads the rest from MemoryX at 150 GB/s."""
    one = resolve(_per_user("cerebras-wse3", "llama-3.1-70b", "bf16", 1))
    assert one.make_device().weight_tiers[1][0] == "MemoryX"
    streamed = _tpot("cerebras-wse3", "llama-3.1-70b", "bf16", 1, 1, 1)
    resident = _tpot("cerebras-wse3", "llama-3.1-70b", "bf16", 4, 1, 4)
    assert streamed > 10 * resident
    # the MemoryX share of the weights a token reads (all but the embedding table, of which it reads one row) at
    # 150 GB/s bounds it: (141 - 44) / 141 of ~139 GB
    model = load_model("llama-3.1-70b")
    table = model.vocab_size * model.hidden_size * 2.0
    share = 1 - load_hardware("cerebras-wse3").sram_bytes / one.weight_bytes_per_chip
    assert streamed >= share * (one.weight_bytes_per_chip - table) / 150e9


# --- validation rows and claims ------------------------------------------------------------------------------------
def test_per_user_rows_run_on_their_chips_and_count_toward_no_target():
    table = validate._e2e_table()
    rows = table[(table["served"] == "per-user") & table["hardware"].isin(SPECS)]
    assert set(rows["hardware"]) == set(SPECS) and len(rows) == 5
    for row in rows.itertuples(index=False):
        result = run_workload(validate._table_spec(row))
        assert result.description.chips == row.tp * row.pp and result.description.harness == "per-user"
        predicted = validate.predicted_metric(result, row.metric)
        assert predicted == pytest.approx(1 / result.summary["tpot_p50_s"]) and predicted > 0
    fake = [validate.ValidationRow("per-user (SRAM pipelines)", "x", "groq-lpu", "tok/s", 300.0, 3000.0, "s")]
    assert validate.check_targets(fake) == []


def test_groq_per_user_claim_is_simulated_with_chips_and_power():
    from asicsim.analysis.claims import check_claim, load_claim

    r = check_claim(load_claim("groq-llama-2-70b"))
    i = r["interpretations"][0]
    assert i["simulated_chips"] >= 576 and i["simulated_power_w"] > 0
    assert math.isfinite(i["roofline_tokens_per_s"]) and i["roofline_tokens_per_s"] < 1e4
    assert i["simulated_tokens_per_s"] <= i["roofline_tokens_per_s"]


def test_step_energy_is_static_power_plus_busy_time():
    device = make_device("groq-lpu", 1)
    cols = type("Cols", (), {"start_at": np.array([0.0, 1.0]), "end_at": np.array([1.0, 3.0]),
                             "compute_busy_s": np.array([0.2, 0.0]), "memory_busy_s": np.array([0.5, 9.0])})
    joules = device.step_energy_j(cols, "int8")
    s = device.spec
    assert joules == pytest.approx([s.static_power_w + 0.5 * (s.power_w - s.static_power_w), 2 * s.power_w])
