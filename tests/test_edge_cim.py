"""The phone NPU (`edge-npu`) and the compute-in-memory chip (`cim-chip`): sourced specs, physical floors on decode
time and energy, the CIM gap between system and macro efficiency, and refusals that say what fits."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.analysis.breakdown import energy_breakdown
from asicsim.core.engine import StepEngine
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.runner import RunSpec, run_workload
from asicsim.core.specfile import spec_meta_fields
from asicsim.workloads.errors import DoesNotFitError, InputError
from asicsim.workloads.graph import build_step_graph
from asicsim.workloads.graph_types import StepBatch
from asicsim.workloads.models import parse_config

SPECS = ("edge-npu", "cim-chip")
SMALL_MODELS = ("qwen3-0.6b", "llama-3.2-1b", "llama-3.2-3b")


def _per_user(hw: str, model: str, dtype: str, isl: int = 128, osl: int = 32, **kw):
    return run_workload(RunSpec(hardware=hw, chips=1, model=model, dtype=dtype, harness="per-user", isl=isl, osl=osl,
                                max_tokens_per_step=128, **kw))


@pytest.mark.parametrize("name", SPECS)
def test_every_field_has_a_source_and_every_assumption_its_derivation(name: str) -> None:
    spec = load_hardware(name)
    notes = dict(spec.sources)
    numbers = [f.name for f in dataclasses.fields(spec) if f.name not in spec_meta_fields]
    missing = [f for f in numbers if len(notes.get(f, "")) < 20]
    assert not missing, f"{name}: fields without a source note: {missing}"
    assert spec.assumed <= set(numbers) and spec.assumed  # public data is missing for some: said so, per field


@pytest.mark.parametrize("model", SMALL_MODELS)
@pytest.mark.parametrize("dtype", ("int4", "int8"))
def test_edge_decode_at_batch_1_is_no_faster_than_streaming_the_weights_from_lpddr(model: str, dtype: str) -> None:
    try:
        result = _per_user("edge-npu", model, dtype)
    except DoesNotFitError:
        pytest.skip(f"{model} {dtype} does not fit the phone's model memory")
    s = result.summary
    lpddr = load_hardware("edge-npu").lpddr_bandwidth_bytes_per_s
    assert s["tpot_p50_s"] >= s["weight_bytes_per_chip"] / lpddr


def test_int4_weights_decode_faster_than_int8_on_the_memory_bound_phone() -> None:
    int4, int8 = (_per_user("edge-npu", "llama-3.2-1b", d).summary for d in ("int4", "int8"))
    assert int8["weight_bytes_per_chip"] == pytest.approx(2 * int4["weight_bytes_per_chip"], rel=0.02)
    assert 1.5 < int8["tpot_p50_s"] / int4["tpot_p50_s"] <= 2.0 + 1e-9


@pytest.mark.parametrize("hw,dtype", [("edge-npu", "int4"), ("edge-npu", "int8"), ("cim-chip", "int8"),
                                      ("cim-chip", "bf16")])
@pytest.mark.parametrize("model", ("qwen3-0.6b", "llama-3.2-1b"))
def test_energy_per_token_is_at_least_static_power_times_time_per_token(hw: str, dtype: str, model: str) -> None:
    s = _per_user(hw, model, dtype).summary
    static_w = make_device(hw, 1).power_limits(dtype).static_power_w
    assert s["energy_j_per_output_token"] >= static_w * s["makespan_s"] / s["output_tokens_total"]
    assert s["energy_j_per_output_token"] >= static_w * s["tpot_p50_s"]
    assert s["energy_dynamic_j"] > 0.0


def test_edge_power_stays_within_the_phone_budget() -> None:
    s = _per_user("edge-npu", "llama-3.2-3b", "int4").summary
    spec = load_hardware("edge-npu")
    assert spec.static_power_w < s["avg_power_w_per_chip"] <= spec.tdp_w


def test_more_than_one_chip_is_refused() -> None:
    for name in SPECS:
        with pytest.raises(InputError, match=f"{name}: .*no scale-up links"):
            make_device(name, 2)


@pytest.mark.parametrize("hw,dtype", [("edge-npu", "int4"), ("cim-chip", "int8")])
def test_llama_70b_is_refused_with_the_models_that_fit(hw: str, dtype: str) -> None:
    with pytest.raises(DoesNotFitError) as err:
        _per_user(hw, "llama-3.3-70b", dtype)
    message = str(err.value)
    assert "llama-3.3-70b does not fit" in message and "these fit:" in message
    fits = message.split("these fit:")[1]
    assert "llama-3.2-1b" in fits and "llama-3.3-70b" not in fits and "tp 8" not in message
    for name in (n.strip() for n in fits.split(",")):  # every model it names does run
        assert _per_user(hw, name, dtype, osl=2).summary["output_tokens_total"] == 2


# --- the CIM chip: macro figures against the system ------------------------------------------------------------

def test_the_cim_macro_is_priced_from_its_published_figures() -> None:
    spec = load_hardware("cim-chip")
    assert spec.weights_per_macro == 1152 * 256 // 8
    assert spec.macro_mm2 == pytest.approx(36864 / 187e3)
    assert make_device("cim-chip", 1).peak_flops_per_s("int8") == pytest.approx(
        spec.macro_count * spec.macro_mm2 * spec.macro_ops_per_s_per_mm2)
    area = make_device("cim-chip", 1).area()
    assert area.blocks["mac_arrays"] == pytest.approx(spec.macro_count * spec.macro_mm2)


def _config(hidden: int, layers: int, heads: int, kv_heads: int, ffn: int, vocab: int) -> dict:
    return {"model_type": "llama", "hidden_size": hidden, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kv_heads, "intermediate_size": ffn,
            "vocab_size": vocab, "max_position_embeddings": 8192, "tie_word_embeddings": False}


@settings(max_examples=40, deadline=None)
@given(head_dim=st.sampled_from([64, 128]), heads=st.sampled_from([4, 8, 16, 32]), group=st.sampled_from([1, 2, 4]),
       layers=st.integers(1, 6), ffn_mult=st.integers(2, 5), vocab=st.integers(1000, 150_000),
       batch=st.integers(1, 64), context=st.integers(1, 4096), dtype=st.sampled_from(["int8", "int4"]))
def test_cim_system_efficiency_is_below_the_macro_for_every_model(head_dim, heads, group, layers, ffn_mult, vocab,
                                                                  batch, context, dtype) -> None:
    """Whatever the model's size and batch: joules per op of the whole chip (conversions per dot product, reload,
    data movement, digital work, static power over the step) exceed the macro's published joules per op."""
    device = make_device("cim-chip", 1)
    hidden = heads * head_dim
    model = parse_config(_config(hidden, layers, heads, max(heads // group, 1), ffn_mult * hidden, vocab), "t", "t")
    graph = build_step_graph(model, StepBatch.make(decode_past=[context] * batch), dtype=dtype, kv_dtype="bf16")
    step = StepEngine(device).run_step([graph])
    dynamic = sum(sum(device.energy_parts_j(op).values()) * n for op, n in graph.all_ops())
    assert step.op_energy_j == pytest.approx(dynamic, rel=1e-9)  # the engine books what the parts say
    joules = dynamic + device.spec.static_power_w * step.time_s
    assert graph.total("flops") / joules < device.spec.macro_ops_per_j


def test_cim_breakdown_shows_reload_dominating_batch_1_and_amortising_with_batch() -> None:
    one = _per_user("cim-chip", "llama-3.2-1b", "int8")
    parts = energy_breakdown(one)
    per_token = parts["j_per_output_token"]
    assert set(per_token) == {"mac", "adc_dac", "reload", "movement", "digital", "dram", "static"}
    assert sum(per_token.values()) == pytest.approx(one.summary["energy_j_per_output_token"], rel=1e-9)
    assert per_token["reload"] > 10 * (per_token["mac"] + per_token["adc_dac"])
    assert parts["delivered_ops_per_j"] < parts["reference_ops_per_j"]["macro peak (published)"] / 100
    device = make_device("cim-chip", 1)
    model = parse_config(_config(2048, 2, 32, 8, 8192, 128_256), "t", "t")

    def reload_per_token(batch: int) -> float:
        graph = build_step_graph(model, StepBatch.make(decode_past=[256] * batch), dtype="int8", kv_dtype="bf16")
        return sum(device.energy_parts_j(op)["reload"] * n for op, n in graph.all_ops()) / batch

    assert reload_per_token(16) == pytest.approx(reload_per_token(1) / 16, rel=1e-9)  # one reload per step


def test_devices_without_per_op_energy_have_no_energy_breakdown() -> None:
    assert energy_breakdown(_per_user("edge-npu", "qwen3-0.6b", "int4", osl=4)) is None


def test_cim_runs_int4_weights_only_widened_onto_its_8_bit_macros() -> None:
    with pytest.raises(InputError, match="no int4 datapath"):
        _per_user("cim-chip", "qwen3-0.6b", "int4")
    widened, int8 = (_per_user("cim-chip", "qwen3-0.6b", d, widen=d == "int4").summary for d in ("int4", "int8"))
    assert widened["weight_bytes_per_chip"] < int8["weight_bytes_per_chip"]  # fewer DRAM bytes to reload
    assert widened["tpot_p50_s"] < int8["tpot_p50_s"]


def test_chips_auto_on_a_one_device_kind_stops_at_the_refusal_that_says_what_fits() -> None:
    from asicsim.core.description import resolve

    with pytest.raises(DoesNotFitError, match="these fit: .*llama-3.2-1b"):
        resolve(RunSpec(hardware="edge-npu", chips="auto", model="llama-3.3-70b", dtype="int4", harness="per-user"))
    assert resolve(RunSpec(hardware="cim-chip", chips="auto", model="llama-3.2-1b", dtype="int8",
                           harness="per-user")).chips == 1


def test_the_cim_validation_statement_matches_the_data() -> None:
    """docs/accelerators/edge-cim.md says the `cim` kind has no validation row (its search log says why); a row on
    any `cim` spec added to validation.csv must come with that statement changed, and the statement must not stay
    once one exists."""
    from pathlib import Path

    import pandas as pd

    from asicsim.core.registry import builtin_specs, resolve_spec_path
    from asicsim.core.specfile import read_toml

    root = Path(__file__).resolve().parents[1]
    cim_specs = {n for n in builtin_specs() if read_toml(resolve_spec_path(n)).get("kind") == "cim"}
    assert "cim-chip" in cim_specs
    rows = pd.read_csv(root / "asicsim" / "data" / "validation.csv")
    cim_rows = rows[rows["hardware"].isin(cim_specs)]
    doc = (root / "docs" / "accelerators" / "edge-cim.md").read_text()
    says_none = "**CIM: no validation row.**" in doc and "CIM search log" in doc
    assert says_none == cim_rows.empty, f"cim rows: {sorted(set(cim_rows['hardware']))}; doc says none: {says_none}"
