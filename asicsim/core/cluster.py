"""Deployments larger than one chip: scale-up domains, the scale-out network between them, the hosts around
the accelerators, and the facility around the IT load.

A `Cluster` says how chips of one spec are built into a deployment: `chips_per_domain` chips share a scale-up
domain (an HGX server's NVLink, an NVL72 rack); domains are joined by a scale-out `ScaleOutNetwork` (one NIC per
chip into a fat tree of switches); every chip brings `host_power_w_per_chip` of non-accelerator IT power (CPUs,
scale-up switches, NICs, fans, power conversion inside its server or rack); the facility multiplies IT power by
its PUE. The data lives in `asicsim/data/clusters.toml` (networks, per-spec systems, defaults), each figure with
its source; `Device.cluster` returns a spec's cluster.

Power of a deployment (`Cluster.power`): accelerators + hosts + scale-out network (switches and their optics;
zero while the deployment fits one domain) = IT power; facility = IT x PUE.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, Mapping

from asicsim.workloads.errors import InputError, did_you_mean

from .device import LinkLimits

__all__ = ["ScaleOutNetwork", "Cluster", "ClusterPower", "cluster_for", "network_names", "load_network",
           "CLUSTERS_FILE"]

CLUSTERS_FILE = "asicsim/data/clusters.toml"


@dataclass(frozen=True)
class ScaleOutNetwork:
    """A fat tree of identical switches joining one NIC per chip.

    nic_bandwidth_bytes_per_s: what one chip's NIC sends per direction.
    message_latency_s: one small message end to end through one switch (NIC, switch, software): what a
        collective or a KV transfer pays per hop at the lowest tier; every further switch on the path adds
        `switch_latency_s`.
    switch_radix: ports per switch at the NIC's speed. switch_power_w: one switch at load.
    transceiver_power_w: one optical transceiver (each link between tiers has two; NIC-to-leaf links too).
    """

    name: str
    nic_bandwidth_bytes_per_s: float
    message_latency_s: float
    switch_latency_s: float
    switch_radix: int
    switch_power_w: float
    transceiver_power_w: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def tiers(self, endpoints: int) -> int:
        """Switch tiers of a non-blocking fat tree for `endpoints` NICs: one switch takes `radix` endpoints,
        t tiers take 2 (radix / 2)^t (0 for one endpoint or none)."""
        if endpoints <= 1:
            return 0
        tiers, reach = 1, self.switch_radix
        while reach < endpoints:
            tiers += 1
            reach = 2 * (self.switch_radix // 2) ** tiers
        return tiers

    def switches(self, endpoints: int) -> int:
        """Switches of that fat tree: each lower tier has 2 E / radix switches (half their ports down), the top
        tier E / radix (every port down)."""
        tiers = self.tiers(endpoints)
        if not tiers:
            return 0
        if tiers == 1:
            return math.ceil(endpoints / self.switch_radix)
        return (tiers - 1) * math.ceil(2 * endpoints / self.switch_radix) + math.ceil(endpoints / self.switch_radix)

    def transceivers(self, endpoints: int) -> int:
        """Optical transceivers: E links per tier boundary (full bisection), NIC-to-leaf included, two ends each."""
        return 2 * endpoints * self.tiers(endpoints)

    def power_w(self, endpoints: int) -> float:
        """Switches plus optics (the NICs are in the hosts' power)."""
        return self.switches(endpoints) * self.switch_power_w + self.transceivers(endpoints) * self.transceiver_power_w

    def latency_s(self, endpoints: int) -> float:
        """One message across the tree's diameter: up to the top tier and down (2 t - 1 switches)."""
        tiers = self.tiers(endpoints)
        return self.message_latency_s + max(2 * tiers - 2, 0) * self.switch_latency_s if tiers else 0.0


@dataclass(frozen=True)
class ClusterPower:
    """Average power of a deployment, W: accelerators, their hosts, the scale-out network, and the facility's
    overhead on all of it (IT x (PUE - 1))."""

    chips_w: float
    host_w: float
    network_w: float
    facility_overhead_w: float

    @property
    def it_w(self) -> float:
        return self.chips_w + self.host_w + self.network_w

    @property
    def total_w(self) -> float:
        return self.it_w + self.facility_overhead_w

    def summary(self) -> dict[str, float]:
        return {"power_w": self.total_w, "power_chips_w": self.chips_w, "power_host_w": self.host_w,
                "power_network_w": self.network_w, "power_facility_overhead_w": self.facility_overhead_w}


@dataclass(frozen=True)
class Cluster:
    """How chips of one spec make a deployment (see the module docstring)."""

    system: str
    chips_per_domain: int
    host_power_w_per_chip: float
    network: ScaleOutNetwork
    pue: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def domains(self, chips: int) -> int:
        return math.ceil(chips / max(self.chips_per_domain, 1))

    def spans_domains(self, chips: int) -> bool:
        return chips > max(self.chips_per_domain, 1)

    def network_power_w(self, chips: int) -> float:
        """The scale-out fabric: none while the chips fit one domain, else one NIC port per chip."""
        return self.network.power_w(chips) if self.spans_domains(chips) else 0.0

    def power(self, chips: int, chip_power_w: float) -> ClusterPower:
        """`chips` chips each drawing `chip_power_w` on average, with their hosts, network and facility."""
        it_chips = chips * chip_power_w
        host = chips * self.host_power_w_per_chip
        network = self.network_power_w(chips)
        return ClusterPower(it_chips, host, network, (it_chips + host + network) * (self.pue - 1.0))

    def scale_out_link(self, chips: int) -> LinkLimits:
        """The link between two chips in different domains of a `chips`-chip deployment: the NIC's bandwidth and
        the message latency across the fat tree it needs."""
        return LinkLimits(self.network.nic_bandwidth_bytes_per_s, self.network.latency_s(max(chips, 2)),
                          self.chips_per_domain)

    def with_network(self, network: ScaleOutNetwork) -> "Cluster":
        return replace(self, network=network)


def _value(entry: Any) -> Any:
    return entry["value"] if isinstance(entry, Mapping) else entry


def _note(entry: Any) -> str:
    if not isinstance(entry, Mapping):
        return ""
    return entry.get("source", "") + (" (assumed)" if entry.get("assumed") else "")


@functools.lru_cache(maxsize=1)
def _data() -> Mapping[str, Any]:
    with resources.files("asicsim").joinpath("data/clusters.toml").open("rb") as f:
        return tomllib.load(f)


_NETWORK_FIELDS = ("nic_bandwidth_bytes_per_s", "message_latency_s", "switch_latency_s", "switch_radix",
                   "switch_power_w", "transceiver_power_w")


def network_names() -> tuple[str, ...]:
    return tuple(_data()["networks"])


def load_network(name: str, field_name: str = "network") -> ScaleOutNetwork:
    """A named scale-out network of `clusters.toml` (InputError naming `field_name` for an unknown name)."""
    networks = _data()["networks"]
    if name not in networks:
        raise InputError("run", field_name, f"unknown scale-out network {name!r}{did_you_mean(name, networks)}; "
                                            f"known: {', '.join(networks)}")
    table = networks[name]
    values = {k: _value(table[k]) for k in _NETWORK_FIELDS}
    values["switch_radix"] = int(values["switch_radix"])
    return ScaleOutNetwork(name=name, **values, sources={k: _note(table[k]) for k in _NETWORK_FIELDS})


def cluster_for(spec_name: str, chips_per_domain: int, tdp_w: float, system: Mapping[str, Any] | None = None) -> Cluster:
    """The cluster of a spec: its own `[systems.NAME]` entry of clusters.toml (or the `system` table a rack spec
    carries), else the defaults, whose host power is a stated fraction of the chip's TDP."""
    data = _data()
    defaults = data["defaults"]
    entry = dict(system) if system is not None else dict(data["systems"].get(spec_name, {}))
    sources = {}
    if "host_power_w_per_chip" in entry:
        host = float(_value(entry["host_power_w_per_chip"]))
        sources["host_power_w_per_chip"] = _note(entry["host_power_w_per_chip"])
    else:
        share = defaults["host_power_share_of_tdp"]
        host = float(_value(share)) * tdp_w
        sources["host_power_w_per_chip"] = f"default share of TDP: {_note(share)}"
    domain = int(_value(entry.get("chips_per_domain", chips_per_domain)))
    pue_entry = entry.get("pue", defaults["pue"])
    network = load_network(str(_value(entry.get("network", defaults["network"]))))
    return Cluster(system=str(entry.get("system", spec_name)), chips_per_domain=max(domain, 1),
                   host_power_w_per_chip=host, network=network, pue=float(_value(pue_entry)),
                   sources={**sources, "pue": _note(pue_entry), "network": network.name})
