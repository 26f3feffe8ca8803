"""Slow links between the separate devices of a pipeline (`--link NAME`), from `asicsim/data/links.toml`.

A profile gives a hop's bandwidth per direction and the latency of one message as a distribution: fixed (wired
links) or log-normal fitted to a stated median and 99th percentile (a shared radio channel's heavy tail). The
serving loop adds, to every step of a run whose pipeline stages sit on separate devices, the time its hops take:
pp - 1 hops forward with the step's activations and one hop back with the sampled tokens (the next step's input
starts on the first device), each paying bytes / bandwidth plus a latency drawn from the profile (seeded).
`LinkedStageDevice` wraps each stage's device so that its own stage-to-stage send (priced on its scale-up links,
which do not join the separate devices) costs nothing: the hop is the link's, priced once, by the serving loop.
"""

from __future__ import annotations

import functools
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

import numpy as np

from asicsim.workloads.errors import RUN, InputError, did_you_mean
from asicsim.workloads.graph_types import Op, OpKind

from .device import DelegatingDevice, OpCost

__all__ = ["LinkProfile", "LinkedStageDevice", "link_names", "load_link", "Z99", "TOKEN_ID_BYTES"]

Z99 = 2.3263478740408408  # standard normal 99th percentile
TOKEN_ID_BYTES = 4  # a sampled token id sent back to the first stage


@dataclass(frozen=True)
class LinkProfile:
    """One hop between two devices: bandwidth per direction and per-message latency (median, 99th percentile)."""

    name: str
    description: str
    distribution: str  # "fixed" or "lognormal"
    bandwidth_bytes_per_s: float
    latency_median_s: float
    latency_p99_s: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def sigma(self) -> float:
        """Log-normal shape fitted to the two percentiles (0 for a fixed latency)."""
        if self.distribution == "fixed" or self.latency_p99_s <= self.latency_median_s:
            return 0.0
        return math.log(self.latency_p99_s / self.latency_median_s) / Z99

    def latencies_s(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """`n` per-message latencies (the median every time for a fixed link)."""
        if self.sigma == 0.0:
            return np.full(n, self.latency_median_s)
        return self.latency_median_s * np.exp(self.sigma * rng.standard_normal(n))

    def transfer_s(self, message_bytes: float) -> float:
        """Serialisation time of one message (its latency apart)."""
        return message_bytes / self.bandwidth_bytes_per_s


@functools.lru_cache(maxsize=1)
def _data() -> Mapping[str, Any]:
    with resources.files("asicsim").joinpath("data/links.toml").open("rb") as f:
        return tomllib.load(f)


def link_names() -> tuple[str, ...]:
    return tuple(_data())


def load_link(name: str) -> LinkProfile:
    """A profile of links.toml by name; InputError naming the `link` setting otherwise."""
    table = _data().get(name)
    if table is None:
        raise InputError(RUN, "link", f"unknown link {name!r}{did_you_mean(name, link_names())}; "
                                      f"known: {', '.join(link_names())}")
    values = {k: (v["value"] if isinstance(v, Mapping) else v) for k, v in table.items()}
    notes = {k: v.get("source", "") + (" (assumed)" if v.get("assumed") else "")
             for k, v in table.items() if isinstance(v, Mapping)}
    return LinkProfile(name=name, description=values["description"], distribution=values["distribution"],
                       bandwidth_bytes_per_s=float(values["bandwidth_bytes_per_s"]),
                       latency_median_s=float(values["latency_median_s"]),
                       latency_p99_s=float(values["latency_p99_s"]), sources=notes)


class LinkedStageDevice(DelegatingDevice):
    """`inner` as one stage of a pipeline over a slow link: its pipeline sends (P2P ops) cost nothing here, since
    the serving loop prices every hop on the link (`serving._Replica._link_s`). Every other member is inner's."""

    def _wrap(self, inner: Any) -> "LinkedStageDevice":
        return LinkedStageDevice(inner)

    def cost(self, op: Op) -> OpCost:
        return OpCost() if op.kind == OpKind.P2P else self.inner.cost(op)
