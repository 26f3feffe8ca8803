"""The simpy discrete-event engine: runs one step's operator graph on one chip's units.

Each chip has three units, each a simpy resource with its own clock: the compute unit (matrix arrays or
SMs), the memory unit (HBM) and the link unit (chip-to-chip interconnect). A device prices every op in
cycles of those units (`OpCost`); this module is the one place cycles become seconds.

How ops overlap (the hardware decides through the Device flags):
- Within an op, compute and its memory traffic run concurrently: the op ends when both are done.
- `prefetch_weights`: a weight-streaming engine loads the next op's weights into a double buffer while
  the current op runs, using only HBM time the running op does not need (its traffic pre-empts the
  prefetch); an op streams whatever part of its weights was not prefetched. Without it, an op's weights
  stream only while the op itself runs.
- `overlap_collectives`: the batch may run as two interleaved micro-batches, so one half's collective
  overlaps the other half's compute (the serving layer asks for this by passing two graphs).
- `fixed_s` (launch overhead) is serial and overlaps nothing.

All decoder layers are identical, so the engine simulates the step with two layer copies and takes the
second copy's span (end of its last op minus end of the first copy's last op) as the steady-state layer
time: time(L layers) = t(2 copies) + (L - 2) * span. This keeps the event count per step small without
losing cross-layer prefetch. Identical priced steps (full prefill chunks) are simulated once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import simpy

from workloads.graph_types import Op, OpKind, StepGraph

from .device import UNITS, Device, OpCost

__all__ = ["StepTiming", "StepEngine"]


@dataclass(frozen=True)
class StepTiming:
    """Time of one engine step on one chip, and how busy each unit was (seconds, layers counted)."""

    time_s: float
    compute_busy_s: float
    memory_busy_s: float
    link_busy_s: float
    fixed_s: float
    ideal_compute_s: float
    stall_s: float
    memory_wait_s: float
    flops: float
    memory_bytes: float
    by_kind_s: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class _Priced:
    """An op with its cost converted to seconds."""

    op: Op
    compute_s: float
    memory_s: float
    weight_s: float
    link_s: float
    fixed_s: float
    ideal_s: float
    stall_s: float

    @property
    def key(self) -> tuple[float, ...]:
        """What the simulation depends on (two ops with equal keys take equal time)."""
        return (self.compute_s, self.memory_s, self.weight_s, self.link_s, self.fixed_s)

    @property
    def alone_s(self) -> float:
        """Time if nothing else runs: fixed overhead then the slowest unit."""
        return self.fixed_s + max(self.compute_s, self.memory_s + self.weight_s, self.link_s)


class _Prefetch:
    """Weight prefetch state of one op stream: seconds of weight traffic left per op, and who owns it."""

    def __init__(self, weight_s: list[float]) -> None:
        self.remaining_s = list(weight_s)
        self.taken = [False] * len(weight_s)
        self.current = -1
        self.started_at: float | None = None

    def take_over(self, env, i: int) -> float:
        """Op i starts: stop prefetching it and return the weight seconds it must stream itself."""
        self.taken[i] = True
        if self.current == i and self.started_at is not None:
            # Mid-transfer: the op's own demand request pre-empts the prefetcher, which then stops.
            self.remaining_s[i] -= env.now - self.started_at
        return max(self.remaining_s[i], 0.0)


class StepEngine:
    """Prices and simulates step graphs on one device. Deterministic; no I/O; no global state."""

    def __init__(self, device: Device) -> None:
        self.device = device
        clocks = device.clocks_hz
        self._seconds_per_cycle = {unit: 1.0 / float(clocks[unit]) for unit in UNITS}
        self._cache: dict = {}  # identical priced steps (e.g. full prefill chunks) simulate once

    def price(self, op: Op) -> _Priced:
        """Ask the device for the op's cycles and convert them to seconds (the only conversion)."""
        cost: OpCost = self.device.cost(op)
        c, m, lk = (self._seconds_per_cycle[u] for u in UNITS)
        return _Priced(
            op=op,
            compute_s=cost.compute_cycles * c,
            memory_s=cost.memory_cycles * m,
            weight_s=cost.weight_cycles * m,
            link_s=cost.link_cycles * lk,
            fixed_s=cost.fixed_s,
            ideal_s=cost.ideal_compute_cycles * c,
            stall_s=cost.stall_cycles * c,
        )

    def run_step(self, graphs: Sequence[StepGraph]) -> StepTiming:
        """Simulate one step; several graphs are micro-batches of the same step sharing the units."""
        priced = [self._price_graph(g) for g in graphs]
        layers = graphs[0].layers_per_stage
        key = (layers, tuple(tuple(p.key for part in parts for p in part) for parts in priced))
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._step_time(priced, layers)
        time_s, wait_s = hit
        return self._account(time_s, wait_s, priced, layers)

    def _step_time(self, priced, layers: int) -> tuple[float, float]:
        """(step seconds, seconds compute ops spent waiting on memory), layers extrapolated.

        Simulates pre + two layers + post; the second layer's span and waits stand for every further layer.
        """
        if layers == 1:
            total_s, _, wait_s, _ = self._simulate([(pre + layer + post, None) for pre, layer, post in priced])
            return total_s, wait_s
        streams = [(pre + layer + layer + post, (len(pre) + len(layer) - 1, len(pre) + 2 * len(layer) - 1))
                   for pre, layer, post in priced]
        total_s, layer_s, wait_s, layer_wait_s = self._simulate(streams)
        return total_s + (layers - 2) * layer_s, wait_s + (layers - 2) * layer_wait_s

    def _price_graph(self, graph: StepGraph) -> tuple[list[_Priced], list[_Priced], list[_Priced]]:
        pre = [self.price(op) for op in graph.pre_ops]
        layer = [self.price(op) for op in graph.layer_ops]
        post = [self.price(op) for op in (*graph.post_ops, *graph.stage_ops)]
        return pre, layer, post

    def _simulate(self, streams) -> tuple[float, float, float, float]:
        """Discrete-event run of op streams (one per micro-batch) over shared units.

        Each stream is (ops, marks): marks are the indices of the last op of the first and second layer
        copy. Returns seconds: (end time, latest span between the two marks, total memory wait of compute
        ops, that wait within the second layer copy). An op's memory wait is its duration beyond its own
        fixed overhead and compute time: the arrays sit idle for operands.
        """
        env = simpy.Environment()
        units = {"compute": simpy.Resource(env, capacity=1), "memory": simpy.PreemptiveResource(env, capacity=1),
                 "link": simpy.Resource(env, capacity=1)}
        prefetch = bool(self.device.prefetch_weights)
        ends: list[list[float]] = []
        waits: list[list[float]] = []
        for ops, marks in streams:
            ends.append([0.0] * len(ops))
            waits.append([0.0] * len(ops))
            env.process(self._stream(env, units, ops, prefetch, ends[-1], waits[-1]))
        env.run()
        layer_s = max((e[m[1]] - e[m[0]] for (_, m), e in zip(streams, ends) if m is not None), default=0.0)
        wait_s = sum(sum(w) for w in waits)
        layer_wait_s = sum(sum(w[m[0] + 1:m[1] + 1]) for (_, m), w in zip(streams, waits) if m is not None)
        return float(env.now), layer_s, wait_s, layer_wait_s

    def _stream(self, env, units, ops: list[_Priced], prefetch: bool, ends: list[float], waits: list[float]):
        """One micro-batch: ops run in order; an op streams whatever of its weights was not prefetched."""
        finished = [env.event() for _ in ops]
        pre = _Prefetch([p.weight_s for p in ops]) if prefetch else None
        if pre is not None:
            env.process(self._prefetcher(env, units["memory"], pre, finished))
        for i, p in enumerate(ops):
            if p.fixed_s > 0.0:
                yield env.timeout(p.fixed_s)
            weight_s = pre.take_over(env, i) if pre is not None else p.weight_s
            started = env.now
            parts = []
            if p.compute_s > 0.0:
                parts.append(env.process(self._hold(env, units["compute"], p.compute_s)))
            if p.memory_s + weight_s > 0.0:
                parts.append(env.process(self._demand(env, units["memory"], p.memory_s + weight_s)))
            if p.link_s > 0.0:
                parts.append(env.process(self._hold(env, units["link"], p.link_s)))
            if len(parts) == 1:
                yield parts[0]
            elif parts:
                yield env.all_of(parts)
            ends[i] = env.now
            if p.compute_s > 0.0:
                waits[i] = max(env.now - started - p.compute_s, 0.0)
            finished[i].succeed()

    @staticmethod
    def _prefetcher(env, memory, pre: "_Prefetch", finished):
        """Loads weights into a double buffer (op i once op i-2 is done) using only idle HBM time.

        Demand traffic pre-empts it; an op that starts takes over the rest of its own weights.
        """
        for i in range(len(pre.remaining_s)):
            if i >= 2:
                yield finished[i - 2]
            while pre.remaining_s[i] > 0.0 and not pre.taken[i]:
                pre.current, pre.started_at = i, None
                try:
                    with memory.request(priority=1, preempt=False) as req:
                        yield req
                        if pre.taken[i]:
                            break
                        pre.started_at = env.now
                        yield env.timeout(pre.remaining_s[i])
                        pre.remaining_s[i] = 0.0
                except simpy.Interrupt:
                    if pre.taken[i]:
                        break  # the op took over its remaining weights
                    if pre.started_at is not None:  # pre-empted mid-transfer by other demand traffic
                        pre.remaining_s[i] -= env.now - pre.started_at
                finally:
                    pre.current, pre.started_at = -1, None

    @staticmethod
    def _demand(env, memory, seconds: float):
        """The running op's own HBM traffic: pre-empts a prefetch in flight."""
        with memory.request(priority=0, preempt=True) as req:
            yield req
            yield env.timeout(seconds)

    @staticmethod
    def _hold(env, unit, seconds: float):
        with unit.request() as req:
            yield req
            yield env.timeout(seconds)

    @staticmethod
    def _account(time_s: float, wait_s: float, priced, layers: int) -> StepTiming:
        """Busy time per unit and per op kind, layers counted, over all micro-batches."""
        totals = dict(compute=0.0, memory=0.0, link=0.0, fixed=0.0, ideal=0.0, stall=0.0, flops=0.0, bytes=0.0)
        by_kind: dict[str, float] = {}
        for pre, layer, post in priced:
            for group, count in ((pre, 1), (layer, layers), (post, 1)):
                for p in group:
                    totals["compute"] += count * p.compute_s
                    totals["memory"] += count * (p.memory_s + p.weight_s)
                    totals["link"] += count * p.link_s
                    totals["fixed"] += count * p.fixed_s
                    totals["ideal"] += count * p.ideal_s
                    totals["stall"] += count * p.stall_s
                    totals["flops"] += count * p.op.flops
                    totals["bytes"] += count * p.op.memory_bytes
                    kind = _kind_label(p.op)
                    by_kind[kind] = by_kind.get(kind, 0.0) + count * p.alone_s
        return StepTiming(
            time_s=time_s,
            compute_busy_s=totals["compute"],
            memory_busy_s=totals["memory"],
            link_busy_s=totals["link"],
            fixed_s=totals["fixed"],
            ideal_compute_s=totals["ideal"],
            stall_s=totals["stall"],
            memory_wait_s=wait_s,
            flops=totals["flops"],
            memory_bytes=totals["bytes"],
            by_kind_s=tuple(sorted(by_kind.items())),
        )


def _kind_label(op: Op) -> str:
    """Coarse bucket for breakdowns: gemm, attention, collective, other."""
    if op.kind == OpKind.MATMUL:
        return "gemm"
    if op.kind in (OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE):
        return "attention"
    if op.kind in (OpKind.ALLREDUCE, OpKind.P2P):
        return "collective"
    return "other"
