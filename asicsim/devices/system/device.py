"""SystemDevice: a rack of one chip spec as a Device (docs/accelerators/racks.md).

The chip's own device (built from `spec.chip`) prices every op, power and dtype; the system changes only what a
rack changes: its name, its scale-up domain (`link_limits.chips_per_domain`) and its cluster (host power per chip
from the rack's power, its scale-out network, the facility PUE). Members the rack does not change are the chip's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from asicsim.core.cluster import cluster_for, network_names
from asicsim.core.device import LinkLimits
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.specfile import build_spec
from asicsim.workloads.errors import InputError

from .spec import SystemSpec

__all__ = ["SystemDevice", "DEVICE"]


class SystemDevice:
    """The chip device of `spec.chip` for `chips` chips, seen as part of the rack `spec`."""

    def __init__(self, spec: SystemSpec, chips: int, inner: Any = None) -> None:
        self.spec = spec
        self.chips = chips
        self.inner = inner if inner is not None else make_device(spec.chip, chips)

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> SystemSpec:
        spec = build_spec(SystemSpec, dict(table), source)
        try:
            chip = load_hardware(spec.chip)
        except InputError as exc:
            raise InputError(source, "chip", f"{spec.chip!r}: {exc.problem}") from None
        if getattr(chip, "kind", "") == "system":
            raise InputError(source, "chip", f"{spec.chip!r} is itself a system; name a chip spec")
        if spec.chips_per_domain > spec.chips_per_rack:
            raise InputError(source, "chips_per_domain", f"{spec.chips_per_domain} exceeds chips_per_rack "
                                                         f"{spec.chips_per_rack}")
        if spec.network not in network_names():
            raise InputError(source, "network", f"unknown scale-out network {spec.network!r}; known: "
                                                f"{', '.join(network_names())}")
        if spec.pue and spec.pue < 1.0:
            raise InputError(source, "pue", f"must be >= 1 (facility power over IT power), got {spec.pue:g}")
        chip_tdp_w = make_device(chip, 1).power_limits().tdp_w
        chips_w = spec.chips_per_rack * chip_tdp_w
        if chips_w > spec.rack_power_w:
            raise InputError(source, "rack_power_w", f"{spec.rack_power_w:.4g} W is below its chips' TDP "
                                                     f"({spec.chips_per_rack} x {chip_tdp_w:.4g} W = {chips_w:.4g} W)")
        return spec

    # --- what the rack changes -------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def link_limits(self) -> LinkLimits:
        return dataclasses.replace(self.inner.link_limits, chips_per_domain=self.spec.chips_per_domain)

    @property
    def cluster(self) -> Any:
        chip_tdp_w = self.inner.power_limits().tdp_w
        host_w = self.spec.rack_power_w / self.spec.chips_per_rack - chip_tdp_w
        note = (f"derived: rack power / chips - chip TDP = {self.spec.rack_power_w:.6g} W / {self.spec.chips_per_rack} "
                f"- {chip_tdp_w:.6g} W (rack power: {dict(self.spec.sources).get('rack_power_w', 'no source')})")
        system = {"system": self.spec.name, "chips_per_domain": self.spec.chips_per_domain,
                  "host_power_w_per_chip": {"value": host_w, "source": note}, "network": self.spec.network}
        if self.spec.pue:
            system["pue"] = {"value": self.spec.pue, "source": dict(self.spec.sources).get("pue", "")}
        return cluster_for(self.spec.name, self.spec.chips_per_domain, chip_tdp_w, system)

    def with_effects(self, changes: Mapping[str, bool]) -> "SystemDevice":
        return SystemDevice(self.spec, self.chips, self.inner.with_effects(changes))

    def __getattr__(self, name: str) -> Any:
        """Optional members of the chip's device (`decode_cost_by_totals`, `times_each_stage`,
        `with_resident_weights`), kept inside the rack."""
        if name == "inner":
            raise AttributeError(name)
        value = getattr(self.inner, name)
        if name == "with_resident_weights":
            return lambda *args, **kw: SystemDevice(self.spec, self.chips, value(*args, **kw))
        return value

    # --- the chip's, unchanged ---------------------------------------------------------------------------
    @property
    def compute_unit_name(self) -> str:
        return self.inner.compute_unit_name

    @property
    def effects(self) -> Mapping[str, bool]:
        return self.inner.effects

    @property
    def clocks_hz(self) -> Mapping[str, float]:
        return self.inner.clocks_hz

    @property
    def memory_bytes_per_chip(self) -> float:
        return self.inner.memory_bytes_per_chip

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.inner.memory_bandwidth_bytes_per_s

    def peak_flops_per_s(self, dtype: str) -> float:
        return self.inner.peak_flops_per_s(dtype)

    @property
    def prefetch_weights(self) -> bool:
        return self.inner.prefetch_weights

    @property
    def overlap_collectives(self) -> bool:
        return self.inner.overlap_collectives

    def cost(self, op: Any) -> Any:
        return self.inner.cost(op)

    def check_model(self, config: Mapping[str, Any], source: str) -> None:
        self.inner.check_model(config, source)

    def step_energy_j(self, step: Any, dtype: str) -> Any:
        return self.inner.step_energy_j(step, dtype)

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        return self.inner.supported_dtypes

    @property
    def op_kinds(self) -> frozenset[str]:
        return self.inner.op_kinds

    def missing_features(self, model: Any) -> tuple[str, ...]:
        return self.inner.missing_features(model)

    def power_limits(self, dtype: str | None = None) -> Any:
        return self.inner.power_limits(dtype)

    def area(self, *, check: bool = True) -> Any:
        """The die of each of the rack's chips (the rack's name on it)."""
        return dataclasses.replace(self.inner.area(check=check), name=self.spec.name, kind=self.spec.kind)

    def die_floorplan(self) -> Any:
        return self.inner.die_floorplan()


DEVICE = SystemDevice
