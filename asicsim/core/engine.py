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

Fast path (serving simulates 10^5+ steps an hour of traffic; `exact=False`, the default):
- Prices are memoised per op object: the graph builder returns the same (cached) op objects for the same
  token count, so matmuls, norms and collectives are priced once per shape. Attention ops carry the
  batch's per-sequence arrays and are priced afresh every step (exact).
- Serial devices (no weight prefetch, one micro-batch) need no event simulation: with one op stream and
  nothing running ahead, every unit is free when an op starts, so an op lasts fixed + max(compute,
  memory + weights, link) and the step is the sum over ops, layers counted. This equals the simpy result
  (to float rounding; tests/test_engine.py checks it on random batches).
- Devices that prefetch or interleave micro-batches still run simpy, memoised on the priced key with the
  attention ops' seconds rounded to `ATTENTION_KEY_BITS` significant bits (the simulation then uses the
  rounded seconds, so a cached value is a pure function of its key). Each attention op moves by at most
  2^-ATTENTION_KEY_BITS of its own time per layer; the step time moves by at most that share of the
  attention time (tested: within FAST_PATH_RTOL of the exact path).
`exact=True` prices every op and simulates every step, as the reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import simpy

from workloads.graph_types import Op, OpKind, StepGraph

from .device import UNITS, Device, OpCost

__all__ = ["StepTiming", "StepEngine", "ATTENTION_KEY_BITS", "FAST_PATH_RTOL"]


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
    hbm_bytes: float

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

    def __init__(self, device: Device, *, exact: bool = False) -> None:
        self.device = device
        self.exact = exact
        clocks = device.clocks_hz
        self._seconds_per_cycle = {unit: 1.0 / float(clocks[unit]) for unit in UNITS}
        self._serial = not bool(device.prefetch_weights)
        self._cache: dict = {}  # identical priced steps (e.g. full prefill chunks) simulate once
        self._op_cache: dict[int, tuple[Op, _Priced]] = {}  # id(op) -> (op kept alive, price)
        self._group_cache: dict[tuple, tuple[list[float], tuple[Op, ...]]] = {}
        self._tuple_cache: dict[int, tuple[tuple[Op, ...], list[float]]] = {}  # id(op tuple) -> (tuple, vector)

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
            hbm_bytes=op.memory_bytes if cost.hbm_bytes is None else cost.hbm_bytes,
        )

    def _price_cached(self, op: Op) -> _Priced:
        """Price of an op without per-sequence arrays, memoised on the op object (ops are immutable)."""
        hit = self._op_cache.get(id(op))
        if hit is not None and hit[0] is op:
            return hit[1]
        if len(self._op_cache) > _OP_CACHE_MAX:
            self._op_cache.clear()
            self._group_cache.clear()
        priced = self.price(op)
        self._op_cache[id(op)] = (op, priced)
        return priced

    def run_step(self, graphs: Sequence[StepGraph]) -> StepTiming:
        """Simulate one step; several graphs are micro-batches of the same step sharing the units."""
        if self.exact:
            priced = [self._price_graph(g) for g in graphs]
            layers = graphs[0].layers_per_stage
            return self._account(self._simulated(priced, layers, exact=True), priced, layers)
        if self._serial and len(graphs) == 1:
            return self._serial_step(graphs[0])
        priced = [self._price_graph(g) for g in graphs]
        layers = graphs[0].layers_per_stage
        return self._account(self._simulated(priced, layers, exact=False), priced, layers)

    def _simulated(self, priced, layers: int, exact: bool) -> tuple[float, float]:
        """(step s, memory wait s), memoised on the priced key (attention rounded unless `exact`)."""
        if not exact:
            priced = [tuple([_round_attention(p) for p in part] for part in parts) for parts in priced]
        key = (layers, tuple(tuple(p.key for part in parts for p in part) for parts in priced))
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > _STEP_CACHE_MAX:
                self._cache.clear()
            hit = self._cache[key] = self._step_time(priced, layers)
        return hit

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
        if self.exact:
            price = self.price
        else:
            def price(op):
                return self.price(op) if op.seq_new is not None else self._price_cached(op)
        pre = [price(op) for op in graph.pre_ops]
        layer = [price(op) for op in graph.layer_ops]
        post = [price(op) for op in (*graph.post_ops, *graph.stage_ops)]
        return pre, layer, post

    # --- serial fast path -------------------------------------------------------------------------
    def _group(self, ops: Sequence[Op]) -> tuple[list[float], list[_Priced]]:  # (vector, varying ops priced)
        """Accounting vector of a group's array-free ops (memoised on their identities), and the rest priced."""
        fixed = tuple(op for op in ops if op.seq_new is None)
        key = tuple(map(id, fixed))
        hit = self._group_cache.get(key)
        if hit is None:  # ids are unique: every op in a key is kept alive by the entry itself
            vec = [0.0] * _VEC
            for op in fixed:
                _add(vec, _vector(self._price_cached(op)), 1.0)
            hit = (vec, fixed)
            self._group_cache[key] = hit
        varying = [self.price(op) for op in ops if op.seq_new is not None] if len(fixed) != len(ops) else []
        return hit[0], varying

    def _serial_step(self, graph: StepGraph) -> StepTiming:
        """One op stream, no prefetch: every op runs alone, so the step is a sum (see module docstring)."""
        layers = float(graph.layers_per_stage)
        total = [0.0] * _VEC
        for ops, count in ((graph.pre_ops, 1.0), (graph.layer_ops, layers), (graph.post_ops + graph.stage_ops, 1.0)):
            if not ops:
                continue
            hit = self._tuple_cache.get(id(ops))  # the builder hands out the same tuple for the same shape
            if hit is not None and hit[0] is ops:
                vec, varying = hit[1], ()
            else:
                vec, varying = self._group(ops)
                if not varying and len(self._tuple_cache) < _OP_CACHE_MAX:
                    self._tuple_cache[id(ops)] = (ops, vec)  # the entry keeps the tuple alive: ids stay unique
            total = [t + count * v for t, v in zip(total, vec)]
            for p in varying:
                total = [t + count * v for t, v in zip(total, _vector(p))]
        return _timing(total[_T], total[_W], total)

    def trace_step(self, graphs: Sequence[StepGraph]) -> list[tuple[int, str, str, float, float]]:
        """Unit busy intervals of one step with every layer simulated: (micro-batch, unit, op, start s, s).

        For timelines; exact pricing, no extrapolation, no caches.
        """
        streams = []
        for g in graphs:
            pre, layer, post = self._price_exact(g)
            streams.append((pre + layer * g.layers_per_stage + post, None))
        record: list[tuple[int, str, str, float, float]] = []
        self._simulate(streams, record)
        return record

    def _price_exact(self, graph: StepGraph):
        pre = [self.price(op) for op in graph.pre_ops]
        layer = [self.price(op) for op in graph.layer_ops]
        post = [self.price(op) for op in (*graph.post_ops, *graph.stage_ops)]
        return pre, layer, post

    def _simulate(self, streams, record: list | None = None) -> tuple[float, float, float, float]:
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
        for k, (ops, marks) in enumerate(streams):
            ends.append([0.0] * len(ops))
            waits.append([0.0] * len(ops))
            log = None if record is None else (record, k)
            env.process(self._stream(env, units, ops, prefetch, ends[-1], waits[-1], log))
        env.run()
        layer_s = max((e[m[1]] - e[m[0]] for (_, m), e in zip(streams, ends) if m is not None), default=0.0)
        wait_s = sum(sum(w) for w in waits)
        layer_wait_s = sum(sum(w[m[0] + 1:m[1] + 1]) for (_, m), w in zip(streams, waits) if m is not None)
        return float(env.now), layer_s, wait_s, layer_wait_s

    def _stream(self, env, units, ops: list[_Priced], prefetch: bool, ends: list[float], waits: list[float],
                log=None):
        """One micro-batch: ops run in order; an op streams whatever of its weights was not prefetched."""
        finished = [env.event() for _ in ops]
        pre = _Prefetch([p.weight_s for p in ops]) if prefetch else None
        if pre is not None:
            env.process(self._prefetcher(env, units["memory"], pre, finished, ops, log))
        for i, p in enumerate(ops):
            if p.fixed_s > 0.0:
                yield env.timeout(p.fixed_s)
            weight_s = pre.take_over(env, i) if pre is not None else p.weight_s
            started = env.now
            parts = []
            tag = None if log is None else (log, p.op.name)
            if p.compute_s > 0.0:
                parts.append(env.process(self._hold(env, units["compute"], p.compute_s, tag, "compute")))
            if p.memory_s + weight_s > 0.0:
                parts.append(env.process(self._demand(env, units["memory"], p.memory_s + weight_s, tag)))
            if p.link_s > 0.0:
                parts.append(env.process(self._hold(env, units["link"], p.link_s, tag, "link")))
            if len(parts) == 1:
                yield parts[0]
            elif parts:
                yield env.all_of(parts)
            ends[i] = env.now
            if p.compute_s > 0.0:
                waits[i] = max(env.now - started - p.compute_s, 0.0)
            finished[i].succeed()

    @staticmethod
    def _prefetcher(env, memory, pre: "_Prefetch", finished, ops=(), log=None):
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
                        if log is not None:
                            log[0].append((log[1], "memory", f"prefetch {ops[i].op.name}", pre.started_at,
                                           pre.remaining_s[i]))
                        pre.remaining_s[i] = 0.0
                except simpy.Interrupt:
                    if log is not None and pre.started_at is not None:
                        log[0].append((log[1], "memory", f"prefetch {ops[i].op.name}", pre.started_at,
                                       env.now - pre.started_at))
                    if pre.taken[i]:
                        break  # the op took over its remaining weights
                    if pre.started_at is not None:  # pre-empted mid-transfer by other demand traffic
                        pre.remaining_s[i] -= env.now - pre.started_at
                finally:
                    pre.current, pre.started_at = -1, None

    @staticmethod
    def _demand(env, memory, seconds: float, tag=None):
        """The running op's own HBM traffic: pre-empts a prefetch in flight."""
        with memory.request(priority=0, preempt=True) as req:
            yield req
            if tag is not None:
                tag[0][0].append((tag[0][1], "memory", tag[1], env.now, seconds))
            yield env.timeout(seconds)

    @staticmethod
    def _hold(env, unit, seconds: float, tag=None, name: str = ""):
        with unit.request() as req:
            yield req
            if tag is not None:
                tag[0][0].append((tag[0][1], name, tag[1], env.now, seconds))
            yield env.timeout(seconds)

    @staticmethod
    def _account(sim: tuple[float, float], priced, layers: int) -> StepTiming:
        """Busy time per unit and per op kind, layers counted, over all micro-batches."""
        total = [0.0] * _VEC
        for pre, layer, post in priced:
            for group, count in ((pre, 1.0), (layer, float(layers)), (post, 1.0)):
                for p in group:
                    _add(total, _vector(p), count)
        return _timing(sim[0], sim[1], total)


# Accounting vector layout: unit busy seconds, fixed, ideal, stall, flops, bytes, four kind buckets
# (op time as if alone), then serial step time and serial memory wait.
_KINDS = ("attention", "collective", "gemm", "other")
_VEC = 14
_T, _W = 12, 13
_OP_CACHE_MAX = 200_000
_STEP_CACHE_MAX = 200_000
ATTENTION_KEY_BITS = 10
FAST_PATH_RTOL = 2.0 ** -ATTENTION_KEY_BITS


def _vector(p: _Priced) -> list[float]:
    op = p.op
    alone = p.alone_s
    vec = [p.compute_s, p.memory_s + p.weight_s, p.link_s, p.fixed_s, p.ideal_s, p.stall_s, op.flops,
           p.hbm_bytes, 0.0, 0.0, 0.0, 0.0, alone, 0.0]
    vec[8 + _KINDS.index(_kind_label(op))] = alone
    if p.compute_s > 0.0:
        vec[_W] = max(alone - p.fixed_s - p.compute_s, 0.0)
    return vec


def _add(total: list[float], vec: list[float], count: float) -> None:
    for i in range(_VEC):
        total[i] += count * vec[i]


def _timing(time_s: float, wait_s: float, t: list[float]) -> StepTiming:
    return StepTiming(
        time_s=time_s, compute_busy_s=t[0], memory_busy_s=t[1], link_busy_s=t[2], fixed_s=t[3],
        ideal_compute_s=t[4], stall_s=t[5], memory_wait_s=wait_s, flops=t[6], memory_bytes=t[7],
        by_kind_s=tuple((k, t[8 + i]) for i, k in enumerate(_KINDS)),
    )


def _round_attention(p: _Priced) -> _Priced:
    """An attention op with its unit seconds rounded to ATTENTION_KEY_BITS significant bits; others as-is."""
    if p.op.seq_new is None:
        return p
    return _Priced(p.op, _round(p.compute_s), _round(p.memory_s), _round(p.weight_s), _round(p.link_s),
                   _round(p.fixed_s), p.ideal_s, p.stall_s, p.hbm_bytes)


def _round(x: float) -> float:
    if x == 0.0:
        return 0.0
    mant, exp = math.frexp(x)
    return math.ldexp(round(mant * (1 << ATTENTION_KEY_BITS)) / (1 << ATTENTION_KEY_BITS), exp)


def _kind_label(op: Op) -> str:
    """Coarse bucket for breakdowns: gemm, attention, collective, other."""
    if op.kind == OpKind.MATMUL:
        return "gemm"
    if op.kind in (OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE):
        return "attention"
    if op.kind in (OpKind.ALLREDUCE, OpKind.P2P):
        return "collective"
    return "other"
