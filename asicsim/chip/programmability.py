"""The programmability knob: what a fixed-function chip cannot run, and ASIC specs derived from design
parameters under the reticle, power and HBM-beachfront limits.

`programmable_area_fraction` (AsicSpec) is the share of die area given to programmable cores. At 0 the
chip runs natively only the op features its spec lists (`native_ops`, default the dense transformer graph);
ops outside them run on the spec's fallback unit (a host CPU, priced by its FLOP/s, bandwidth and hand-off
latency) or, without one, the model is refused with an InputError naming what it needs. Above 0 the cores run any operator, paid for in area (`asicsim.chip.area`) and instruction
energy (`asicsim.chip.power`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from asicsim.core.area import area_constants, node_scale
from asicsim.core.specfile import build_spec, spec_meta_fields
from asicsim.workloads.errors import Infeasible, InputError
from asicsim.workloads.graph import model_features
from asicsim.workloads.models import parse_config

from .area import area_breakdown, array_area_mm2, asic_fixed_blocks_mm2, sram_mm2_per_byte, vector_lane_mm2
from .power import FULL_LOAD, capped_clock_hz, power_w
from .spec import AsicSpec

__all__ = ["missing_features", "check_model_runs", "is_fixed_function", "derive_asic_spec", "DERIVE_PARAMS"]

def is_fixed_function(spec: Any) -> bool:
    """True for an ASIC with no programmable area (GPUs and programmable ASICs run any operator)."""
    return getattr(spec, "kind", "") == "asic" and getattr(spec, "programmable_area_fraction", 0.0) == 0.0


def missing_features(spec: Any, model: Any) -> list[str]:
    """Op features `model` needs that a fixed-function `spec`'s datapath lacks (empty: runs natively)."""
    if not is_fixed_function(spec):
        return []
    return sorted(model_features(model) - spec.native_features)


def check_model_runs(spec: Any, config: Mapping[str, Any], source: str) -> None:
    """InputError (naming `source`) when a fixed-function chip without a fallback unit is given a model whose
    ops need features outside its `native_ops`; with a fallback the model runs and those ops cost its time."""
    if not is_fixed_function(spec) or spec.has_fallback:
        return
    try:
        model = parse_config(dict(config), source, "model")
    except InputError:
        return  # the model loader refuses it with its own message
    missing = missing_features(spec, model)
    if missing:
        raise InputError(source, "model_type", f"{spec.name} is fixed-function (native_ops: "
                                               f"{', '.join(sorted(spec.native_features))}) with no fallback unit, "
                                               f"and this model needs {', '.join(missing)}; add them to native_ops, "
                                               "give the spec a fallback (fallback_flops_per_s, ...), use a spec "
                                               "with programmable_area_fraction > 0, or a GPU")


# --- derived specs -------------------------------------------------------------------------------------------

# Design parameters of `derive_asic_spec` beyond the AsicSpec fields it passes through.
DERIVE_PARAMS = ("sram_area_fraction", "fit_clock_to_power")
_DERIVED = ("array_count", "vector_lanes", "sram_bandwidth_bytes_per_cycle", "hbm_capacity_bytes",
            "hbm_bandwidth_bytes_per_s")


def _port_bytes(spec: AsicSpec) -> float:
    return (spec.array_rows + 2 * spec.array_cols) * area_constants()["energy"]["array_operand_bytes"]


def derive_asic_spec(base: AsicSpec, **params: Any) -> AsicSpec:
    """A consistent AsicSpec from `base` and design parameters; InputError when it cannot be built.

    Parameters: any AsicSpec field except the derived ones (typically die_area_mm2 as the area budget,
    programmable_area_fraction, array_rows, array_cols, sram_bytes, hbm_stacks, clock_hz, process_node_nm,
    tdp_w, macs_per_pe_per_cycle_*), plus `sram_area_fraction` (share of the array + SRAM area given to
    SRAM, instead of sram_bytes) and `fit_clock_to_power` (default True: lower the base clock_hz to what the
    TDP allows at full load and keep the requested clock as the boost ceiling max_clock_hz, which ops that
    keep fewer units busy may reach; False: InputError instead).

    Derived: the programmable cores get `programmable_area_fraction` x budget; NoC, HBM, links and other are
    fixed by the parameters; the arrays fill what is left after SRAM (array_count = whole arrays that fit,
    each with its share of vector lanes at base's lanes per PE); HBM capacity and bandwidth scale per stack
    from base; SRAM bandwidth per array port from base. Raises when the budget exceeds the reticle, no array
    fits, the HBM stacks exceed the die edge, TDP exceeds the power-density cap, or (with
    fit_clock_to_power False) the clock exceeds the power cap.
    """
    src = "derive_asic_spec"
    if not isinstance(base, AsicSpec):
        raise InputError(src, "base", f"{getattr(base, 'name', base)!r} is a {getattr(base, 'kind', '?')} spec; "
                                      "ASIC designs are derived from an ASIC spec (kind = \"asic\")")
    fields = {f.name for f in dataclasses.fields(AsicSpec)} - set(spec_meta_fields)
    unknown = sorted(set(params) - fields - set(DERIVE_PARAMS))
    if unknown:
        raise InputError(src, unknown[0], f"unknown parameter (AsicSpec fields or {', '.join(DERIVE_PARAMS)})")
    derived = sorted(set(params) & set(_DERIVED))
    if derived:
        raise InputError(src, derived[0], "derived from the area budget; do not set it")
    fit_clock = params.pop("fit_clock_to_power", True)
    sram_fraction = params.pop("sram_area_fraction", None)
    if sram_fraction is not None and "sram_bytes" in params:
        raise InputError(src, "sram_area_fraction", "give sram_bytes or sram_area_fraction, not both")
    if sram_fraction is not None and not 0.0 <= sram_fraction < 1.0:
        raise InputError(src, "sram_area_fraction", f"must be in [0, 1), got {sram_fraction!r}")

    d = area_constants()["die"]
    name = params.pop("name", base.name + "-derived")
    table = {f: getattr(base, f) for f in fields} | params | {"name": name, "kind": "asic"}
    table["description"] = params.get("description", f"derived from {base.name}")
    table["max_clock_hz"] = params.get("max_clock_hz", 0.0)  # base's boost ceiling does not carry over
    spec = build_spec(AsicSpec, table, src)  # validates every field (types, ranges, choices)
    budget = spec.die_area_mm2
    if budget > d["reticle_mm2"]:
        raise Infeasible(src, "die_area_mm2", f"{budget:g} mm2 exceeds the {d['reticle_mm2']:g} mm2 reticle by "
                                              f"{budget - d['reticle_mm2']:.1f} mm2")
    if spec.tdp_w > d["power_density_cap_w_per_mm2"] * budget:
        raise Infeasible(src, "tdp_w", f"{spec.tdp_w:g} W on {budget:g} mm2 exceeds the power-density cap "
                                       f"{d['power_density_cap_w_per_mm2']:g} W/mm2 "
                                       f"({d['power_density_cap_w_per_mm2'] * budget:.0f} W)")
    ns = node_scale(spec.process_node_nm, src)

    # Area: fixed blocks, programmable cores, then SRAM and arrays share the rest.
    compute_mm2 = budget * (1.0 - spec.programmable_area_fraction) - sum(asic_fixed_blocks_mm2(spec, ns).values())
    if sram_fraction is not None:
        sram_bytes = int(sram_fraction * compute_mm2 / sram_mm2_per_byte(ns)) if compute_mm2 > 0 else 0
        spec = dataclasses.replace(spec, sram_bytes=max(sram_bytes, 1))
    lanes_per_pe = base.vector_lanes / base.pe_count
    per_array_mm2 = array_area_mm2(spec, ns) + spec.array_rows * spec.array_cols * lanes_per_pe * vector_lane_mm2(ns)
    arrays = math.floor((compute_mm2 - spec.sram_bytes * sram_mm2_per_byte(ns)) / per_array_mm2 + 1e-9)
    if arrays < 1:
        raise Infeasible(src, "die_area_mm2",
                         f"{budget:g} mm2 leaves {compute_mm2 - spec.sram_bytes * sram_mm2_per_byte(ns):.1f} mm2 for "
                         f"arrays after SRAM, HBM, links, NoC and programmable logic; one "
                         f"{spec.array_rows}x{spec.array_cols} array needs {per_array_mm2:.2f} mm2")
    pes = arrays * spec.array_rows * spec.array_cols
    spec = dataclasses.replace(
        spec, array_count=arrays, vector_lanes=max(int(lanes_per_pe * pes), 1),
        sram_bandwidth_bytes_per_cycle=base.sram_bandwidth_bytes_per_cycle / (base.array_count * _port_bytes(base))
        * arrays * _port_bytes(spec),
        hbm_capacity_bytes=int(base.hbm_capacity_bytes / base.hbm_stacks * spec.hbm_stacks),
        hbm_bandwidth_bytes_per_s=base.hbm_bandwidth_bytes_per_s / base.hbm_stacks * spec.hbm_stacks)
    area_breakdown(spec)  # reticle and HBM beachfront (InputError saying by how much)

    # Power: the base clock may not exceed what the TDP allows with every unit at full rate; the requested
    # clock stays the boost ceiling for ops that keep fewer units busy (asicsim.chip.power.op_clock_hz).
    requested_hz = spec.clock_hz
    cap_hz = capped_clock_hz(spec, FULL_LOAD)
    if requested_hz > cap_hz * (1.0 + 1e-12):
        if not fit_clock:
            raise Infeasible(src, "clock_hz", f"full-load power {power_w(spec):.1f} W at {requested_hz / 1e9:g} GHz "
                                              f"exceeds the {spec.tdp_w:g} W TDP by {power_w(spec) - spec.tdp_w:.1f} W "
                                              f"(the cap allows {cap_hz / 1e9:.3f} GHz)")
        spec = dataclasses.replace(spec, clock_hz=cap_hz)
    spec = dataclasses.replace(spec, max_clock_hz=max(requested_hz, spec.max_clock_hz))
    extra = ("clock_hz", "max_clock_hz")
    notes = dict(base.sources) | {f: "derived by asicsim.chip.programmability.derive_asic_spec"
                                  for f in (*_DERIVED, *params, *extra)}
    return dataclasses.replace(spec, sources=tuple(sorted(notes.items())),
                               assumed=frozenset(base.assumed | set(_DERIVED) | set(params) | set(extra)))
