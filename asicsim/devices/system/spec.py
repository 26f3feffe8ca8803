"""The system spec: which chip, how many per rack and per scale-up domain, and the rack's power around the chips.
Every field carries a source or an assumption note (the TOML)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SystemSpec"]


@dataclass(frozen=True)
class SystemSpec:
    """A rack of `chips_per_rack` chips of the built-in (or path) spec `chip`."""

    kind: str
    name: str
    description: str
    chip: str  # the chip's spec: a built-in name or a TOML path
    chips_per_rack: int
    chips_per_domain: int  # chips one scale-up fabric joins (the NVLink domain of an NVL72: the whole rack)
    rack_power_w: float  # the rack's power at full load (chips, hosts, switch trays, conversion); what is not the
    # chips' TDP is the rack's host power, charged per chip (`SystemDevice.cluster`)
    network: str  # the scale-out network between racks (asicsim/data/clusters.toml [networks])
    pue: float = field(default=0.0, metadata={"allow_zero": True})  # 0: the facility default of clusters.toml
    sources: tuple = ()
    assumed: frozenset = frozenset()
