"""Collectives whose group spans more than one scale-up domain, priced on the scale-out network.

A run whose tensor-parallel (or expert-parallel) group is larger than the chips one scale-up domain joins (tp 16 on
8-GPU servers; wide expert parallelism with attention data parallelism over several servers) places the group's
chips domain by domain. `ScaleOutDevice` wraps the chip's device and re-prices those collectives:

- all-reduce (hierarchical, as NCCL runs it across nodes): the chip's own in-domain all-reduce over `domain`
  chips (its reduce-scatter and all-gather), plus a ring over the `d` domains on the NIC for the domain's shard of
  the message: 2 (d - 1) / d x bytes / domain at the NIC's bandwidth, and 2 (d - 1) message latencies;
- all-to-all: each chip's tokens for experts in its own domain go over the scale-up links (the chip prices that
  share, bytes x domain / group), the rest over its NIC (bytes x (group - domain) / group at the NIC's bandwidth plus
  one latency across the fat tree); the two paths run at once, so the op lasts the longer.
Everything else is the chip's. Pipeline transfers are not re-priced: a step is timed as pp x the last stage, which
sends nothing (`serving.StepRunner`), so stages across domains cost what stages within one do.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from asicsim.workloads.graph_types import Op, OpKind

from .cluster import Cluster
from .device import DelegatingDevice, OpCost

__all__ = ["ScaleOutDevice"]


class ScaleOutDevice(DelegatingDevice):
    """`inner` (a device for `chips` chips) with collectives over more than one scale-up domain on `cluster`'s
    scale-out network (module docstring). Every other member is the inner device's; its cluster is `cluster`."""

    def __init__(self, inner: Any, cluster: Cluster, chips: int) -> None:
        super().__init__(inner)
        self._cluster = cluster
        self._chips = chips
        self.domain = max(cluster.chips_per_domain, 1)
        self._link = cluster.scale_out_link(chips)
        # A device whose own fabric already prices collectives beyond one domain (optional Device member
        # `prices_own_scale_out`: an SRAM pipeline's chip-to-chip routes) keeps its prices; only its cluster changes.
        self._reprice = not getattr(inner, "prices_own_scale_out", False)

    def _wrap(self, inner: Any) -> "ScaleOutDevice":
        return ScaleOutDevice(inner, self._cluster, self._chips)

    @property
    def cluster(self) -> Cluster:
        return self._cluster

    def cost(self, op: Op) -> OpCost:
        if (not self._reprice or op.kind not in (OpKind.ALLREDUCE, OpKind.ALL_TO_ALL)
                or not self._cluster.spans_domains(op.group)):
            return self.inner.cost(op)
        group, domain = int(op.group), self.domain
        nic_bytes_per_s, latency_s = self._link.bandwidth_bytes_per_s, self._link.latency_s
        clock = self.inner.clocks_hz["link"]
        if op.kind == OpKind.ALLREDUCE:
            inside = self.inner.cost(dataclasses.replace(op, group=domain))
            domains = math.ceil(group / domain)
            ring_bytes = 2.0 * (domains - 1) / domains * float(op.comm_bytes) / domain
            outside_s = ring_bytes / nic_bytes_per_s + 2 * (domains - 1) * latency_s
            link_s = inside.link_cycles / clock + outside_s
        else:
            local = float(op.comm_bytes) * domain / group
            inside = self.inner.cost(dataclasses.replace(op, group=domain, comm_bytes=local))
            remote = float(op.comm_bytes) - local
            link_s = max(inside.link_cycles / clock, remote / nic_bytes_per_s + latency_s)
        return dataclasses.replace(inside, link_cycles=link_s * clock)
