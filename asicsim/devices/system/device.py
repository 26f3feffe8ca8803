"""SystemDevice: a rack of one chip spec as a Device (docs/accelerators/racks.md).

The chip's own device (built from `spec.chip`) prices every op, power and dtype; the system changes only what a
rack changes: its name, its scale-up domain (`link_limits.chips_per_domain`) and its cluster (host power per chip
from the rack's power, its scale-out network, the facility PUE). Members the rack does not change are the chip's.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from asicsim.core.cluster import cluster_for, network_names
from asicsim.core.device import DelegatingDevice, LinkLimits
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.specfile import build_spec
from asicsim.workloads.errors import InputError

from .spec import SystemSpec

__all__ = ["SystemDevice", "DEVICE"]


class SystemDevice(DelegatingDevice):
    """The chip device of `spec.chip` for `chips` chips, seen as part of the rack `spec`."""

    def __init__(self, spec: SystemSpec, chips: int, inner: Any = None) -> None:
        super().__init__(inner if inner is not None else make_device(spec.chip, chips))
        self._spec = spec
        self._chips = chips

    def _wrap(self, inner: Any) -> "SystemDevice":
        return SystemDevice(self._spec, self._chips, inner)

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
    def spec(self) -> SystemSpec:
        return self._spec

    @property
    def chips(self) -> int:
        return self._chips

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def link_limits(self) -> LinkLimits:
        return dataclasses.replace(self.inner.link_limits, chips_per_domain=self._spec.chips_per_domain)

    @property
    def cluster(self) -> Any:
        spec = self._spec
        chip_tdp_w = self.inner.power_limits().tdp_w
        host_w = spec.rack_power_w / spec.chips_per_rack - chip_tdp_w
        note = (f"derived: rack power / chips - chip TDP = {spec.rack_power_w:.6g} W / {spec.chips_per_rack} "
                f"- {chip_tdp_w:.6g} W (rack power: {dict(spec.sources).get('rack_power_w', 'no source')})")
        system = {"system": spec.name, "chips_per_domain": spec.chips_per_domain,
                  "host_power_w_per_chip": {"value": host_w, "source": note}, "network": spec.network}
        if spec.pue:
            system["pue"] = {"value": spec.pue, "source": dict(spec.sources).get("pue", "")}
        return cluster_for(spec.name, spec.chips_per_domain, chip_tdp_w, system)

    def area(self, *, check: bool = True) -> Any:
        """The die of each of the rack's chips (the rack's name on it)."""
        return dataclasses.replace(self.inner.area(check=check), name=self._spec.name, kind=self._spec.kind)


DEVICE = SystemDevice
