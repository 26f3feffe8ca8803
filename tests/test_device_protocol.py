"""Every registered device kind implements the whole Device protocol on every built-in spec, the registry finds
device packages by kind, and nothing above the devices branches on a device kind (docs/architecture.md,
"Devices")."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from asicsim.core import registry
from asicsim.core.device import (MATMUL_DTYPES, UNITS, AreaBreakdown, DieFloorplan, Device, LinkLimits, OpCost,
                                 PowerLimits)
from asicsim.core.registry import DEVICE_KINDS, builtin_specs, device_class, load_hardware, make_device
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind

ROOT = Path(__file__).resolve().parent.parent
# The protocol's members, read from the class body so that a member added there is checked here too.
MEMBERS = sorted({n for n in vars(Device) if not n.startswith("_")} | set(Device.__annotations__))
# Built-in specs a device cannot price the area of yet (docs/area-model.md: B200 and GB200 have no die description;
# the AMD and Intel chiplet packages have no published die area: docs/accelerators/gpulike.md).
NO_AREA_MODEL = {"b200": "no physical die description", "gb200": "no physical die description",
                 **{n: "no physical die description" for n in ("mi300x", "mi325x", "mi355x", "gaudi3")},
                 **{n: "no area model" for n in ("tpu-v5e", "tpu-v6e", "tpu-v7", "trainium2")},
                 "groq-lpu": "no area model", "cerebras-wse3": "no area model", "sn40l": "no area model", "edge-npu": "no area model",
                 "gb300": "no physical die description", "gb200-nvl72": "no physical die description",
                 "gb300-nvl72": "no physical die description"}


@pytest.fixture(scope="module", params=builtin_specs())
def device(request):
    return make_device(request.param, 1)


def test_the_protocol_covers_cost_power_area_links_dtypes_and_op_kinds() -> None:
    expected = {"spec", "chips", "load_spec", "name", "compute_unit_name", "clocks_hz", "memory_bytes_per_chip",
                "memory_bandwidth_bytes_per_s", "peak_flops_per_s", "prefetch_weights", "overlap_collectives",
                "cost", "check_model", "step_energy_j", "supported_dtypes", "op_kinds", "link_limits",
                "power_limits", "area", "die_floorplan", "effects", "with_effects", "missing_features", "cluster"}
    assert set(MEMBERS) == expected


@pytest.mark.parametrize("kind", sorted(DEVICE_KINDS))
def test_every_registered_package_exposes_a_device_class_with_every_member(kind: str) -> None:
    package = DEVICE_KINDS[kind]
    cls = device_class(kind)
    assert cls is importlib.import_module(f"{package}.device").DEVICE
    missing = [m for m in MEMBERS if m not in ("spec", "chips") and not hasattr(cls, m)]
    assert not missing, f"{cls.__name__} lacks {missing}"


def test_every_builtin_spec_is_a_device(device) -> None:
    assert isinstance(device, Device)
    missing = [m for m in MEMBERS if not hasattr(device, m)]
    assert not missing, missing
    assert device.chips == 1 and device.name == device.spec.name
    for field in ("kind", "name", "description", "sources", "assumed"):  # what every spec carries
        assert hasattr(device.spec, field), field
    assert device_class(device.spec.kind) is type(device)


def test_step_cost_members(device) -> None:
    assert set(device.clocks_hz) == set(UNITS) and all(c > 0 for c in device.clocks_hz.values())
    assert device.memory_bytes_per_chip > 0 and device.memory_bandwidth_bytes_per_s > 0
    assert isinstance(device.prefetch_weights, bool) and isinstance(device.overlap_collectives, bool)
    op = Op("o_proj", OpKind.MATMUL, "bf16", flops=2.0 * 8 * 1024 * 1024, weight_bytes=2.0 * 1024 * 1024,
            act_in_bytes=2.0 * 8 * 1024, act_out_bytes=2.0 * 8 * 1024, m=8, k=1024, n=1024)
    cost = device.cost(op)
    assert isinstance(cost, OpCost) and cost.compute_cycles > 0


def test_supported_dtypes_and_op_kinds(device) -> None:
    dtypes = device.supported_dtypes
    assert isinstance(dtypes, tuple) and "bf16" in dtypes
    assert dtypes == tuple(d for d in MATMUL_DTYPES if d in dtypes)  # known names, widest first
    for d in dtypes:
        assert device.peak_flops_per_s(d) > 0
    # Data only for now: a dtype without a native rate still runs, at a wider native dtype's peak.
    native_peaks = {device.peak_flops_per_s(d) for d in dtypes}
    for d in set(MATMUL_DTYPES) - set(dtypes):
        assert device.peak_flops_per_s(d) in native_peaks, d
    assert isinstance(device.op_kinds, frozenset)
    assert device.op_kinds == frozenset(OpKind.ALL)  # both kinds price every op kind today


def test_link_limits(device) -> None:
    link = device.link_limits
    assert isinstance(link, LinkLimits)
    assert link.bandwidth_bytes_per_s > 0 and link.latency_s >= 0
    assert isinstance(link.chips_per_domain, int) and link.chips_per_domain >= 1


def test_power_limits(device) -> None:
    for dtype in (None, *device.supported_dtypes):
        power = device.power_limits(dtype)
        assert isinstance(power, PowerLimits)
        assert 0 < power.static_power_w < power.tdp_w and power.full_load_power_w > power.static_power_w
        assert 0 < power.capped_clock_hz <= power.clock_hz
        if power.full_load_power_w <= power.tdp_w:
            assert power.capped_clock_hz == power.clock_hz


def test_area_and_floorplan(device) -> None:
    name = device.name
    if name in NO_AREA_MODEL:
        with pytest.raises(InputError, match=NO_AREA_MODEL[name]):
            device.area(check=False)
    else:
        area = device.area()
        assert isinstance(area, AreaBreakdown) and area == device.area(check=False)  # built-ins fit their limits
        assert area.name == name and area.kind == device.spec.kind and area.total_mm2 > 0
    plan = device.die_floorplan()
    assert plan is None or isinstance(plan, DieFloorplan)
    if plan is not None:
        assert plan.tdp_w == device.power_limits().tdp_w
        assert plan.link_bandwidth_bytes_per_s == device.link_limits.bandwidth_bytes_per_s


# --- the registry -------------------------------------------------------------------------------------------

def test_registry_maps_kinds_to_packages_and_specs_to_devices() -> None:
    assert DEVICE_KINDS == {"asic": "asicsim.chip", "gpu": "asicsim.gpusim", "systolic": "asicsim.devices.systolic",
                            "sram-pipeline": "asicsim.devices.sram_pipeline", "edge-npu": "asicsim.devices.edge_npu", "cim": "asicsim.devices.cim",
                            "system": "asicsim.devices.system"}
    assert registry.SPEC_DIR in registry.spec_dirs()
    names = [p.stem for folder in registry.spec_dirs() for p in folder.glob("*.toml")]
    assert len(names) == len(set(names)), "a built-in spec name is defined twice"
    assert {load_hardware(n).kind for n in builtin_specs()} == set(DEVICE_KINDS)
    with pytest.raises(InputError, match="unknown device kind 'tpu'"):
        device_class("tpu")
    with pytest.raises(InputError, match="chips"):
        make_device("sohu", 0)


def test_runner_make_device_still_works() -> None:
    from asicsim.core.runner import make_device as runner_make_device

    assert type(runner_make_device("h100-sxm", 2)) is type(make_device("h100-sxm", 2))


# --- nothing above the devices branches on a device kind --------------------------------------------------------

# Being rewritten in other branches (the resolved-run work); their kind branches go when those land:
# analysis/sweep.py prices energy only `if spec.kind == "asic"`, analysis/validate.py imports gpusim directly.
ALLOWED = {"asicsim/analysis/sweep.py", "asicsim/analysis/validate.py"}


def _is_kind(node: ast.AST) -> bool:
    """`x.kind` or `getattr(x, "kind", ...)`."""
    if isinstance(node, ast.Attribute):
        return node.attr == "kind"
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value == "kind")


def _is_literal(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(_is_literal(e) for e in node.elts)


def kind_comparisons(source: str) -> list[int]:
    """Lines where `.kind` (or getattr(..., "kind")) is compared with a string literal (==, !=, in, not in)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_kind(s) for s in sides) and any(_is_literal(s) for s in sides):
                lines.append(node.lineno)
    return lines


def test_the_check_finds_kind_branches() -> None:
    assert kind_comparisons('if spec.kind == "gpu":\n    pass') == [1]
    assert kind_comparisons('ok = getattr(spec, "kind", "") != "asic"') == [1]
    assert kind_comparisons('ok = device.spec.kind in ("asic", "tpu")') == [1]
    assert kind_comparisons("ok = op.kind == OpKind.MATMUL") == []  # op kinds against the enum: fine


def test_no_kind_branches_in_commands_or_analysis() -> None:
    found = {}
    for folder in ("asicsim/commands", "asicsim/analysis"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in ALLOWED and (lines := kind_comparisons(path.read_text(encoding="utf-8"))):
                found[rel] = lines
    assert not found, f"branch on a device kind (use the Device protocol): {found}"


def test_a_view_gives_its_inner_devices_cost_rows_only_where_it_prices_as_the_inner_device() -> None:
    """Optional `cost_rows` through `DelegatingDevice`: a rack (same prices) gives its GPU's rows; a pipeline stage
    over a slow link, whose pipeline sends cost nothing (its own `cost`), gives None so each op goes through that
    `cost`; so for the ASIC and its rack."""
    import numpy as np

    from asicsim.core.links import LinkedStageDevice

    ops = [Op("send", OpKind.P2P, "bf16", act_in_bytes=1e6, comm_bytes=1e6, group=2),
           Op("proj", OpKind.MATMUL, "fp8", flops=2.0 * 64 * 8192 * 1280, weight_bytes=8192 * 1280, m=64, n=1280,
              k=8192)]
    rack = make_device("gb200-nvl72", 72)
    assert np.array_equal(rack.cost_rows(ops), rack.inner.cost_rows(ops))
    stage = LinkedStageDevice(make_device("h100-sxm", 8))
    assert stage.inner.cost_rows(ops) is not None and stage.cost_rows(ops) is None
    assert stage.cost(ops[0]) == OpCost()
    sohu_rack = make_device("sohu-rack", 8)  # the ASIC's rows (`kernels.asic_price`), through its rack
    assert np.array_equal(sohu_rack.cost_rows(ops), sohu_rack.inner.cost_rows(ops))
    assert LinkedStageDevice(make_device("sohu", 8)).cost_rows(ops) is None


@pytest.mark.parametrize("name", ["sohu", "h100-sxm", "b200", "tpu-v6e", "mi300x"])
@pytest.mark.parametrize("kind", [OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE])
def test_an_attention_price_does_not_depend_on_the_ops_priced_before(name, kind):
    """Devices keep what an attention op's dtype, features and window fix, once per such key: ops that differ only
    in window, sinks or MLA, priced one after another on one device, cost what each costs on a fresh one (a
    fixed-function chip prices the features it lacks on its fallback unit)."""
    import numpy as np

    from asicsim.workloads.graph_types import Feature

    new = np.array([300, 1] if kind == OpKind.ATTENTION_PREFILL else [1, 1], dtype=np.int64)
    past = np.array([2000, 5000], dtype=np.int64)
    variants = [((Feature.GQA_ATTENTION, Feature.ROPE), 0), ((Feature.GQA_ATTENTION, Feature.ROPE), 1024),
                ((Feature.GQA_ATTENTION, Feature.ROPE, Feature.ATTENTION_SINKS), 0), ((Feature.MLA,), 0)]
    ops = [Op(kind, kind, "fp8", flops=3.0e9 * (i + 1), act_in_bytes=1.0e6, act_out_bytes=5.0e5, kv_read_bytes=2.0e8,
              kv_write_bytes=4.0e5, q_heads=8, kv_heads=1, head_dim=128, features=features, window=window,
              seq_new=new, seq_past=past) for i, (features, window) in enumerate(variants)]
    shared = make_device(name, 8)  # a fixed-function chip prices features it lacks on its fallback unit
    for op in ops:
        assert shared.cost(op) == make_device(name, 8).cost(op)
    for op in reversed(ops):
        assert shared.cost(op) == make_device(name, 8).cost(op)


@pytest.mark.parametrize("name", ["sohu", "sohu-rack", "h100-sxm", "tpu-v6e"])
def test_a_decode_attention_pricer_gives_costs_bit_for_bit(name):
    """Optional `decode_attention_pricer(op)`: where a device gives one (the ASIC, and a rack of it that prices as its
    chip), its row for other cached tokens is `cost` of that op (OpCost's fields in order, hbm_bytes resolved) bit for
    bit, on the datapath's dtypes and with a boost clock (without boost the device gives its terms for `kernels.
    decode_run.attention_row`, whose row is the same floats); it gives None for an op `cost` prices another way (a window,
    MLA or sinks, a prefill, an op the fixed-function datapath lacks: its fallback), and a view that re-prices some
    ops (a pipeline stage over a slow link) gives None."""
    import dataclasses

    import numpy as np

    from asicsim.core.links import LinkedStageDevice
    from asicsim.kernels.decode_run import attention_row
    from asicsim.workloads.graph_types import Feature

    device = make_device(name, 8)
    pricer_of = getattr(device, "decode_attention_pricer", None)
    ones = np.ones(3, dtype=np.int64)
    base = Op("attention_decode", OpKind.ATTENTION_DECODE, "fp8", flops=1.0, act_in_bytes=3.0e4, act_out_bytes=2.0e4,
              kv_read_bytes=0.0, kv_write_bytes=6.0e3, q_heads=8, kv_heads=1, head_dim=128,
              features=(Feature.GQA_ATTENTION, Feature.ROPE), seq_new=ones, seq_past=ones)
    if name in ("h100-sxm", "tpu-v6e"):
        assert pricer_of is None or pricer_of(base) is None
        assert getattr(device, "systolic_attention_terms", lambda op: None)(base) is None
        return
    spec = load_hardware("sohu")
    boosted = make_device(dataclasses.replace(spec, max_clock_hz=1.2 * spec.clock_hz), 8) if name == "sohu" else None
    for dev in [d for d in (device, boosted) if d is not None]:
        for dtype, act_in in (("fp8", 3.0e4), ("bf16", 3.0e4), ("fp8", 6.0e7), ("fp8", 6.1234567e7)):  # on chip, in HBM
            op = dataclasses.replace(base, dtype=dtype, act_in_bytes=act_in)
            price = dev.decode_attention_pricer(op)
            for past in ([0, 0, 0], [1, 2048, 77], [5000, 3, 9000]):
                arr = np.array(past, dtype=np.int64)
                kv = 2.0e3 * sum(past)
                for flops in (4096.0 * (sum(past) + 3), 1.0e10, 3.0e11):  # with boost, the clock follows the joules
                    cost = dev.cost(dataclasses.replace(op, seq_past=arr, flops=flops, kv_read_bytes=kv))
                    assert price(arr, flops, kv) == dataclasses.astuple(cost)
                    terms = dev.systolic_attention_terms(op)  # at the base clock, the kernel's row: the same floats
                    assert (terms is None) == (dev is boosted)
                    if terms is not None:
                        row = attention_row(ones, arr, terms, flops, op.weight_bytes, kv, op.kv_write_bytes,
                                            op.act_in_bytes, op.act_out_bytes)
                        assert tuple(row.tolist()) == price(arr, flops, kv)
    for other in (dataclasses.replace(base, window=1024), dataclasses.replace(base, features=(Feature.MLA,)),
                  dataclasses.replace(base, kind=OpKind.ATTENTION_PREFILL),
                  dataclasses.replace(base, features=(*base.features, Feature.ATTENTION_SINKS))):
        assert device.decode_attention_pricer(other) is None
        # the kernel's terms: for plain causal attention only, prefill too (`StepRunner.mixed_step` prices its chunks)
        assert (device.systolic_attention_terms(other) is None) == (other.kind != OpKind.ATTENTION_PREFILL)
    assert LinkedStageDevice(make_device("sohu", 8)).decode_attention_pricer(base) is None
    assert LinkedStageDevice(make_device("sohu", 8)).systolic_attention_terms(base) is None
