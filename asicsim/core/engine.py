"""The step engine: runs one step's operator graph on one chip's units, as a static schedule.

Each chip has three units, each with its own clock: the compute unit (matrix arrays or SMs), the memory
unit (HBM) and the link unit (chip-to-chip interconnect). A device prices every op in cycles of those
units (`OpCost`); this module is the one place cycles become seconds.

How ops overlap (the hardware decides through the Device flags):
- Within an op, compute and its memory traffic run concurrently: the op ends when both are done.
- `prefetch_weights`: a weight-streaming engine loads the next op's weights into a double buffer while
  the current op runs, using only HBM time the running op does not need (its traffic pre-empts the
  prefetch); an op streams whatever part of its weights was not prefetched. Without it, an op's weights
  stream only while the op itself runs.
- `overlap_collectives`: the batch may run as two interleaved micro-batches, so one half's collective
  overlaps the other half's compute (the serving layer asks for this by passing two graphs).
- `fixed_s` (launch overhead) is serial and overlaps nothing.

The model is the simpy discrete-event simulation in `des` (units as processes and a preemptive HBM
resource); `_Schedule` computes the same times in one direct pass without an event queue, and is what
the fast path runs (tests/test_engine.py checks them equal on random op streams).

Units serve ops in a fixed order (`_Schedule`), as a compiled program does: with two micro-batches,
segment j (the ops up to and including a collective) of each before segment j + 1 of either. Event times
are then max-plus expressions of op durations, so a shorter op never lengthens the step; sharing units
first come, first served did not promise that (Graham's list-scheduling anomalies: more SRAM, so less
HBM traffic, made a split prefill step 23% slower). One op stream runs exactly as before.

All decoder layers are identical, so the engine schedules layer copies only until the schedule repeats
(after copy 2 in practice; checked, not assumed) and extrapolates: time(L layers) = t(c copies) +
(L - c) * span of the last copy. Identical priced steps (full prefill chunks) are scheduled once.

Accounting: per op the engine books StepTiming's fields as if the op ran alone (`_op_account`: its time
alone, its units' busy seconds, FLOPs, bytes, its time in its kind's bucket) and sums them over ops, layers
counted, as a tuple of StepTiming's fields (`_Account`, generated from StepTiming: a new field needs no
edit here beyond its per-op value). Units: a device prices in cycles of each unit (`OpCost`); `price`
converts them to seconds with each unit's clock; `OpCost.fixed_s` is already seconds (launch overhead is
wall time, not a unit's cycles) and `hbm_bytes` bytes. Past `price` every time is seconds.

Fast path (serving simulates 10^5+ steps an hour of traffic; `exact=False`, the default):
- Prices are memoised per op value (`Op.value_key`, the op's scalar fields, pickled): matmuls, norms and
  collectives are priced once per shape, a template's pre and layer ops once per layer key as one cost table
  (`_LayerPart`), and a serial step's array-free ops once per group of values (its pre and layer sums once per
  layer key, its post sums once per dense key). Attention ops carry the batch's
  per-sequence arrays: a prefill op of a few prompt chunks is priced once per value, arrays included
  (`_price_chunk`); decode ops afresh every step (their cached tokens grow). Exact either way.
- Serial devices (no weight prefetch, one micro-batch) need no schedule: with one op stream and nothing
  running ahead, every unit is free when an op starts, so an op lasts fixed + max(compute, memory +
  weights, link) and the step is the sum over ops, layers counted. This equals the schedule (to float
  rounding; tests/test_engine.py checks it on random batches).
- Devices that prefetch or interleave micro-batches are scheduled, memoised on the priced key with the
  attention ops' seconds rounded to `ATTENTION_KEY_BITS` significant bits (the schedule then uses the
  rounded seconds, so a cached value is a pure function of its key). Each attention op moves by at most
  2^-ATTENTION_KEY_BITS of its own time per layer; the step time moves by at most that share of the
  attention time (tested: within FAST_PATH_RTOL of the exact path).
`exact=True` prices every op and runs every step, every layer, through the simpy model (`des.simulate_step`),
as the reference; `direct_step` is the direct pass with the same exact prices and no caches.
"""

from __future__ import annotations

import functools
import math
import operator
from bisect import bisect_right
from collections import OrderedDict, namedtuple
from dataclasses import dataclass, fields, replace
from typing import Callable, NamedTuple, Sequence

import numpy as np

from asicsim.kernels.accounts import op_step_fields, part_sums, summed_accounts
from asicsim.kernels.schedule import schedule_step_s
from asicsim.workloads.graph_types import Op, OpKind, StepGraph, int_total

from .device import UNITS, Device, OpCost

__all__ = ["StepTiming", "TIMING_FIELDS", "StepEngine", "DecodeRunTerms", "ATTENTION_KEY_BITS", "FAST_PATH_RTOL"]


@dataclass(frozen=True, init=False)
class StepTiming:
    """One engine step on one chip (one pipeline stage), layers counted: its time, each unit's busy time and
    what its ops did. The engine's output; a StepRecord keeps every field but `time_s`.

    Every field is a float that adds over ops and micro-batches (`+`). The unit is in the name: `_s` is
    seconds, the others are counts (FLOPs, bytes). A new field here, with its per-op value in
    `_op_account`, flows through the engine's sums, micro-batch merging, the serving fast-forward,
    StepRecord and the steps DataFrame with no other edit (tests/test_records.py checks each path).
    """

    time_s: float = 0.0  # the step (scheduled; for a serial device the sum of its ops' times alone)
    compute_busy_s: float = 0.0  # compute unit busy, stalls included
    memory_busy_s: float = 0.0  # HBM busy: activations, KV cache and weights
    link_busy_s: float = 0.0  # chip-to-chip links busy
    fixed_s: float = 0.0  # serial launch overhead, overlapping nothing
    ideal_compute_s: float = 0.0  # compute unit time at 100% utilisation
    stall_s: float = 0.0  # compute lost to operands arriving late (part of compute_busy_s)
    memory_wait_s: float = 0.0  # compute ops waiting on memory beyond their fixed overhead and compute
    flops_per_chip: float = 0.0
    memory_bytes_per_chip: float = 0.0  # bytes that crossed HBM (less than the ops' bytes if kept on chip)
    gemm_s: float = 0.0  # matmuls' time as if each ran alone, launch overhead included
    attention_s: float = 0.0  # attention ops' time alone
    collective_s: float = 0.0  # all-reduces' and pipeline transfers' time alone
    other_s: float = 0.0  # every other op's time alone (norms, elementwise, embedding, Mamba scans)
    fallback_s: float = 0.0  # ops the datapath lacks, run on the fallback unit (not in the per-kind times above)
    op_energy_j: float = 0.0  # dynamic joules the device priced per op (OpCost.energy_j; 0 for most devices)

    def __init__(self, time_s: float = 0.0, compute_busy_s: float = 0.0, memory_busy_s: float = 0.0,
                 link_busy_s: float = 0.0, fixed_s: float = 0.0, ideal_compute_s: float = 0.0, stall_s: float = 0.0,
                 memory_wait_s: float = 0.0, flops_per_chip: float = 0.0, memory_bytes_per_chip: float = 0.0,
                 gemm_s: float = 0.0, attention_s: float = 0.0, collective_s: float = 0.0, other_s: float = 0.0,
                 fallback_s: float = 0.0, op_energy_j: float = 0.0) -> None:
        """The fields in one dict update instead of a frozen `object.__setattr__` each: every step timed makes one
        (tests/test_engine.py checks the signature against the field list)."""
        self.__dict__.update(time_s=time_s, compute_busy_s=compute_busy_s, memory_busy_s=memory_busy_s,
                             link_busy_s=link_busy_s, fixed_s=fixed_s, ideal_compute_s=ideal_compute_s,
                             stall_s=stall_s, memory_wait_s=memory_wait_s, flops_per_chip=flops_per_chip,
                             memory_bytes_per_chip=memory_bytes_per_chip, gemm_s=gemm_s, attention_s=attention_s,
                             collective_s=collective_s, other_s=other_s, fallback_s=fallback_s,
                             op_energy_j=op_energy_j)

    def __add__(self, other: StepTiming) -> StepTiming:
        """Field-wise sum: one step's micro-batches, run one after another."""
        if not isinstance(other, StepTiming):
            return NotImplemented
        return StepTiming(*map(operator.add, _timing_values(self), _timing_values(other)))


TIMING_FIELDS = tuple(f.name for f in fields(StepTiming))
_timing_values = operator.attrgetter(*TIMING_FIELDS)  # StepTiming -> its values, in field order
# The engine's running sums: StepTiming's fields as a plain tuple, cheap to build and add (several per step).
_Account = namedtuple("_Account", TIMING_FIELDS, defaults=(0.0,) * len(TIMING_FIELDS))  # type: ignore[misc]
_ZERO = _Account()


class DecodeRunTerms(NamedTuple):
    """What `kernels.decode_run.decode_run_values` takes to time a decode graph's steps as `StepEngine.decode_fields`
    does (its function's `run_terms`, where the device prices the op as the kernel does: `Device.
    systolic_attention_terms`): the attention op's new tokens per sequence, the device's terms (`decode_run.
    ATTENTION_TERMS`) and the op's weight, KV-write, activation-in and -out bytes, the leading `decode_run.STEP_TERMS`
    the graph and engine fix (FLOPs per score entry, KV bytes per cached token, seconds per cycle of each unit, the op's
    bucket, key bits, layers summed and scheduled), the template's sums (head, tail), the step's own schedule table
    and the attention op's row in it (scratch), and the schedule's prefetch flag and state tolerance."""

    seq_new: np.ndarray
    attention: np.ndarray
    op_bytes: np.ndarray
    steps: tuple
    head: np.ndarray
    tail: np.ndarray
    ops: np.ndarray
    collective: np.ndarray
    bounds: np.ndarray
    row_at: int
    prefetch: bool
    state_rtol: float


class _Priced:
    """An op with its cost in seconds per unit (`StepEngine.price`); `hbm_bytes` in bytes. Immutable by use."""

    __slots__ = ("op", "compute_s", "memory_s", "weight_s", "link_s", "fixed_s", "ideal_compute_s", "stall_s",
                 "hbm_bytes", "fallback_s", "energy_j", "account")

    def __init__(self, op: Op, compute_s: float, memory_s: float, weight_s: float, link_s: float, fixed_s: float,
                 ideal_compute_s: float, stall_s: float, hbm_bytes: float, fallback_s: float = 0.0,
                 energy_j: float = 0.0) -> None:
        self.op = op
        self.compute_s = compute_s
        self.memory_s = memory_s
        self.weight_s = weight_s
        self.link_s = link_s
        self.fixed_s = fixed_s
        self.ideal_compute_s = ideal_compute_s
        self.stall_s = stall_s
        self.hbm_bytes = hbm_bytes
        self.fallback_s = fallback_s
        self.energy_j = energy_j
        self.account = _op_account(self)  # its StepTiming fields, run alone

    @property
    def key(self) -> tuple[float, ...]:
        """What the simulation depends on (two ops with equal keys take equal time)."""
        return (self.compute_s, self.memory_s, self.weight_s, self.link_s, self.fixed_s)

    @property
    def alone_s(self) -> float:
        """Time if nothing else runs: fixed overhead then the slowest unit."""
        return self.fixed_s + max(self.compute_s, self.memory_s + self.weight_s, self.link_s)


class _LayerPart:
    """What a step graph's `layer_key` fixes: its pre ops and the layer's array-free ops priced as one cost table
    (`StepEngine._cost_table`), how many of each, the places of the layer's per-sequence ops, their summed account
    (`head`: pre ops + layers x the layer's array-free ops), their weights' and serial seconds, and their rows of the
    op table. Steps of one token count share it whatever their sampled tokens (the post ops)."""

    __slots__ = ("pre_count", "layer_count", "varying", "head", "weights_s", "serial_s", "_keys", "_flags",
                 "_rows", "_layers", "_terms")

    def __init__(self, engine: "StepEngine", pre_ops: Sequence[Op], layer_ops: Sequence[Op], layers_per_stage: int) -> None:
        """From a graph's pre ops, layer ops (of its per-sequence ops, only their places are read) and layers."""
        layers = float(layers_per_stage)
        self.varying = tuple(i for i, op in enumerate(layer_ops) if op.seq_new is not None)
        self.pre_count, self.layer_count = len(pre_ops), len(layer_ops)
        ops = [*pre_ops, *(op for op in layer_ops if op.seq_new is None)]
        c, m, lk = engine._unit_seconds
        buckets = np.array([_BUCKET_OF.get(op.kind, 3) for op in ops], dtype=np.int64)
        flops = np.array([op.flops for op in ops], dtype=np.float64)
        # The head's sums, each op's seconds (its `_Priced.key`), the weights' and serial seconds in one jitted pass
        head, self._keys, weights_s, serial_s = part_sums(engine._cost_table(ops), c, m, lk, buckets, flops,
                                                          len(pre_ops), layers, engine._prefetch)
        self.head = tuple(head.tolist())
        self._flags = [op.kind in _COLLECTIVES for op in ops]
        self.weights_s, self.serial_s = float(weights_s), float(serial_s)
        self._rows = None
        self._layers = layers
        self._terms = None

    def kernel_terms(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(op rows, collective flags, `kernels.mixed_step.PART_TERMS`) for a kernel that assembles a step's op table
        itself (`rows()`, and the head, layers, serial and weights' seconds, counts and per-sequence places), made
        once."""
        if self._terms is None:
            rows, flags = self.rows()
            places = (*self.varying, 0, 0)[:2]
            self._terms = (rows, flags, np.array((*self.head, self._layers, self.serial_s, self.weights_s,
                                                  self.pre_count, self.layer_count, len(self.varying), *places)))
        return self._terms

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(op rows, collective flags) of the pre ops then the layer's (per-sequence ops as zero rows, not collectives),
        built once."""
        if self._rows is None:
            table, flags = self._keys, np.array(self._flags, dtype=np.bool_)
            if self.varying:  # a zero row at each per-sequence op's place among the pre and layer ops
                kept = np.ones(len(table) + len(self.varying), dtype=np.bool_)
                kept[[self.pre_count + i for i in self.varying]] = False
                table, flags = np.zeros((len(kept), table.shape[1])), np.zeros(len(kept), dtype=np.bool_)
                table[kept], flags[kept] = self._keys, self._flags
            self._rows = (table, flags)
        return self._rows


class _PostPart:
    """A step graph's post and stage ops priced (none per-sequence), their summed account (`tail`) and their rows of
    the op table: shared by graphs whose post and stage ops have equal values (a step's sampled tokens and token
    count fix them; `StepEngine._post_part`)."""

    __slots__ = ("post", "tail", "serial_s", "_rows")

    def __init__(self, engine: "StepEngine", ops: Sequence[Op]) -> None:
        price = engine._price_cached
        self.post = [price(op) for op in ops]
        self.tail = tuple(_summed(self.post))
        self.serial_s = sum(_serial_s(p.key, engine._prefetch) for p in self.post)
        self._rows = None

    def rows(self) -> tuple[np.ndarray, np.ndarray]:
        """(op rows, collective flags) of the post ops, built once."""
        if self._rows is None:
            table, flags, _ = _pack([([], [], self.post)])
            self._rows = (table, flags)
        return self._rows


class _Template:
    """What a step graph's `dense_key` fixes: its array-free ops priced, the places of its per-sequence ops in
    the layer, and their summed accounts (`head`: pre ops + layers x the layer's array-free ops, from the graph's
    `_LayerPart`; `tail`: post, from its `_PostPart`)."""

    __slots__ = ("pre_count", "layer_count", "post", "varying", "head", "tail", "layers", "_part", "_post")

    def __init__(self, engine: "StepEngine", graph: StepGraph) -> None:
        self.layers = float(graph.layers_per_stage)
        part = engine._layer_part(graph)
        self.pre_count, self.layer_count, self.varying, self.head = part.pre_count, part.layer_count, part.varying, \
            part.head
        post = engine._post_part(graph)
        self.post, self.tail = post.post, post.tail
        self._part = part
        self._post = post

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The op table of `schedule_step_s` (per-sequence ops' rows are zeros; a step fills them in), from the layer
        part's rows and the post part's: the table `_pack` gives (`_join` of this template alone)."""
        return _join((self,))[:3]

    def usable(self, graph: StepGraph) -> bool:
        """Per-sequence ops only in the layer (where build_step_graph puts them)."""
        return all(op.seq_new is None for op in (*graph.pre_ops, *graph.post_ops, *graph.stage_ops))


class _Schedule:
    """The step's static schedule: op streams (one per micro-batch) over one chip's units, in a fixed order.

    The order is the one a compiler emits for two interleaved micro-batches: each stream's ops cut into
    segments after every collective (by op kind, never by cost), and segment j of every stream before
    segment j + 1 of any, so one micro-batch computes while the other's collective runs. Op i of stream k
    is ready when the stream's op before it has ended, plus its fixed overhead. Every unit then serves
    the ops in that order:
    - compute and link: the op's part starts when the op is ready and the unit has finished the part of
      the op before it in the order (one stream: the unit is always free by then);
    - HBM (`_Hbm`): a preemptive priority server with the order as priority. The op's traffic
      (activations from its ready time; its weights too, or, with `prefetch_weights`, from when the
      stream's op i - 2 ended: the double buffer) fills the HBM time that earlier ops' traffic leaves
      idle, so a later op's prefetch never delays an earlier op's traffic. Traffic retires in order: the
      op's HBM part is done when the traffic of every op up to it is (and not before the op is ready).
    The op ends when its parts are done; an op with compute waits (memory wait) for whatever of its time
    is beyond its fixed overhead and compute.

    Why it is monotone: by induction along the order, every release time is an op end earlier in the
    order; compute and link ends are max-plus (max(ready, unit free) + duration); the time HBM finishes
    all traffic of ops up to g is that of a work-conserving server, max over t of (t + the work released
    at or after t), nondecreasing in every release time and size; an op's end is the max of its parts.
    So no duration getting shorter makes any time later. A first-come-first-served unit (a greedy list
    schedule) cannot promise that (Graham's anomalies), nor could an op's own HBM completion under the
    priority server (earlier traffic released earlier can pre-empt it), hence the in-order retirement.
    With one stream the order is the stream's own and nothing changes: ops run one after another, and
    the prefetch fills idle HBM time op by op, exactly as the former event simulation did.
    """

    def __init__(self, streams: int, prefetch: bool, record: list | None = None) -> None:
        self.prefetch = prefetch
        self.record = record
        self.last = [[0.0, 0.0] for _ in range(streams)]  # per stream: ends of its last two ops, older first
        self.pending: list[list[_Priced]] = [[] for _ in range(streams)]  # ops after the last collective
        self.compute_free_at = self.link_free_at = self.hbm_done_at = 0.0
        self.hbm = _Hbm()
        self.wait_s = 0.0
        self.end_at = 0.0

    def run(self, blocks: Sequence[Sequence[_Priced]], final: bool = False) -> None:
        """Schedule the next block of ops of every stream (one sequence per stream).

        A stream's ops after its last collective in the block are held back to open the next block's first
        segment (the residual after a layer's last all-reduce goes with the next layer's first ops), unless
        `final` or the block has no collective.
        """
        prefetch, record, hbm = self.prefetch, self.record, self.hbm
        compute_free_at, link_free_at, hbm_done_at = self.compute_free_at, self.link_free_at, self.hbm_done_at
        wait_s, end = self.wait_s, self.end_at
        parts = []
        for k, ops in enumerate(blocks):
            segments = _segments([*self.pending[k], *ops])
            self.pending[k] = [] if final or len(segments) == 1 else segments.pop()
            parts.append(segments)
        for k, p in [(k, p) for j in range(max(map(len, parts), default=0))
                     for k, segments in enumerate(parts) if j < len(segments) for p in segments[j]]:
            last = self.last[k]
            ready_at = last[1] + p.fixed_s
            end_at = ready_at
            if p.compute_s > 0.0:
                start_at = compute_free_at if compute_free_at > ready_at else ready_at
                compute_free_at = end_at = start_at + p.compute_s
                if record is not None:
                    record.append((k, "compute", p.op.name, start_at, p.compute_s))
            if p.link_s > 0.0:
                start_at = link_free_at if link_free_at > ready_at else ready_at
                link_free_at = start_at + p.link_s
                if link_free_at > end_at:
                    end_at = link_free_at
                if record is not None:
                    record.append((k, "link", p.op.name, start_at, p.link_s))
            if p.memory_s + p.weight_s > 0.0:
                pieces = None if record is None else []
                if prefetch:
                    done_at = max(hbm.place(last[0], p.weight_s, pieces), hbm.place(ready_at, p.memory_s, pieces))
                else:
                    done_at = hbm.place(ready_at, p.memory_s + p.weight_s, pieces)
                if done_at > hbm_done_at:
                    hbm_done_at = done_at
                if hbm_done_at > end_at:
                    end_at = hbm_done_at
                if record is not None:
                    _record_memory(record, k, p.op.name, ready_at, pieces)
            if p.compute_s > 0.0 and end_at - ready_at > p.compute_s:
                wait_s += end_at - ready_at - p.compute_s
            last[0], last[1] = last[1], end_at
            if end_at > end:
                end = end_at
        self.compute_free_at, self.link_free_at, self.hbm_done_at = compute_free_at, link_free_at, hbm_done_at
        self.wait_s, self.end_at = wait_s, end
        hbm.forget_before(min(last[0] for last in self.last))

    def state(self) -> list[float]:
        """What the rest of the schedule depends on, relative to the earliest stream end.

        Later ops are ready no earlier than that end (f1) and release weights no earlier than the earliest
        second-to-last end (f2): unit free times below f1 and HBM busy time below f2 cannot matter.
        """
        f1 = min(last[1] for last in self.last)
        f2 = min(last[0] for last in self.last)
        values = [v - f1 for last in self.last for v in last]
        values += [max(v, f1) - f1 for v in (self.compute_free_at, self.link_free_at, self.hbm_done_at)]
        values += [max(v, f2) - f1 for pair in zip(self.hbm.starts, self.hbm.ends) for v in pair]
        values.append(f1)  # scale for the comparison
        return values


def schedule_step(priced, layers: int, prefetch: bool, record: list | None = None,
                  state_rtol: float | None = None) -> tuple[float, float]:
    """(step seconds, seconds compute ops spent waiting on memory) of op streams `priced` ((pre, layer, post)
    per stream), layers extrapolated; the Python pass (the jitted one's twin; with `record`, every layer).

    Schedules pre, then layer copies until the schedule repeats itself (`_Schedule.state` after a copy equals,
    shifted, the one after the copy before: usually after copy 2), then post; the last copy's span and waits
    stand for every layer not scheduled. So the result is that of scheduling every layer (to rounding), and
    inherits its monotonicity. With `record`, every layer is scheduled.
    """
    sched = _Schedule(len(priced), prefetch, record)
    sched.run([pre for pre, _, _ in priced])
    layer = [ops for _, ops, _ in priced]
    skipped, span_s, copy_wait_s, seen = 0, 0.0, 0.0, None
    for copy in range(1, layers + 1):
        wait_s, before = sched.wait_s, [last[1] for last in sched.last]
        sched.run(layer)
        if record is not None or copy == layers:
            continue
        state = sched.state()
        if seen is not None and _same_state(state, seen, STATE_RTOL if state_rtol is None else state_rtol):
            skipped = layers - copy
            span_s = max(last[1] - at for last, at in zip(sched.last, before))
            copy_wait_s = sched.wait_s - wait_s
            break
        seen = state
    sched.run([post for _, _, post in priced], final=True)
    return sched.end_at + skipped * span_s, sched.wait_s + skipped * copy_wait_s


def _pack(priced) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Op streams as `schedule_step_s` takes them: (ops (n, 5) seconds, collective flags, bounds per stream)."""
    rows: list = []
    flags: list = []
    bounds = np.zeros((len(priced), 6), dtype=np.int64)
    for k, blocks in enumerate(priced):
        for b, group in enumerate(blocks):
            bounds[k, 2 * b] = len(rows)
            rows += [p.key for p in group]
            flags += [p.op.kind in _COLLECTIVES for p in group]
            bounds[k, 2 * b + 1] = len(rows)
    return np.array(rows, dtype=np.float64).reshape(-1, 5), np.array(flags, dtype=np.bool_), bounds


class _Hbm:
    """HBM as a preemptive priority server: busy intervals of the traffic placed so far.

    Traffic is placed in priority order (the schedule's op order), so a transfer only sees the intervals
    of higher-priority ones and fills the idle time from its release on (preempt-resume).
    """

    def __init__(self) -> None:
        self.starts: list[float] = []  # disjoint, sorted busy intervals [starts[j], ends[j])
        self.ends: list[float] = []

    def place(self, at: float, seconds: float, pieces: list | None = None) -> float:
        """Place `seconds` of traffic released at `at`; return when it is done (`at` if nothing)."""
        if seconds <= 0.0:
            return at
        starts, ends = self.starts, self.ends
        n = len(ends)
        j = bisect_right(ends, at)  # first interval ending after `at`
        if j and ends[j - 1] == at:
            j -= 1  # touches on the left: merge
        lo = starts[j] if j < n and starts[j] < at else at
        t, left, k = at, seconds, j
        while True:
            if k < n and starts[k] <= t:
                t = ends[k] if ends[k] > t else t
                k += 1
                continue
            gap_s = (starts[k] if k < n else math.inf) - t
            if gap_s >= left:
                if pieces is not None:
                    pieces.append((t, left))
                t += left
                break
            if pieces is not None:
                pieces.append((t, gap_s))
            left -= gap_s
            t = starts[k]
        hi = t
        if k < n and starts[k] <= t:
            hi = ends[k]
            k += 1
        starts[j:k] = [lo]
        ends[j:k] = [hi]
        return t

    def forget_before(self, at: float) -> None:
        """Drop busy intervals ending by `at`: no later traffic is released before it."""
        j = bisect_right(self.ends, at)
        if j:
            del self.starts[:j], self.ends[:j]


def _segments(ops: list[_Priced]) -> list[list[_Priced]]:
    """Ops cut after each collective (by kind, not cost, so the order never depends on durations); the
    last segment holds the ops after the last collective (possibly none)."""
    cuts = [0] + [i + 1 for i, p in enumerate(ops) if p.op.kind in _COLLECTIVES] + [len(ops)]
    return [ops[a:b] for a, b in zip(cuts, cuts[1:])]


def _same_state(a: list[float], b: list[float], state_rtol: float) -> bool:
    """Two schedule states equal to rounding (the last entry is each one's time scale)."""
    if len(a) != len(b):
        return False
    tol_s = state_rtol * max(a[-1], b[-1])
    return all(abs(x - y) <= tol_s for x, y in zip(a[:-1], b[:-1]))


class StepEngine:
    """Prices and simulates step graphs on one device. Deterministic; no I/O; no global state."""

    def __init__(self, device: Device, *, exact: bool = False) -> None:
        self.device = device
        self.exact = exact
        clocks = device.clocks_hz
        self._seconds_per_cycle = {unit: 1.0 / float(clocks[unit]) for unit in UNITS}
        self._unit_seconds = tuple(self._seconds_per_cycle[u] for u in UNITS)  # compute, memory, link
        self._serial = not bool(device.prefetch_weights)
        self._cache: dict = {}  # identical priced steps (e.g. full prefill chunks) simulate once
        self._op_cache: dict[bytes, _Priced] = {}  # Op.value_key -> price
        self._chunk_cache: dict[tuple, _Priced] = {}  # a prefill op of a few chunks, by its whole value -> price
        self._group_cache: dict[tuple, tuple[float, ...]] = {}  # array-free ops' value keys -> summed account
        # Least recently used first (`_bounded`): a decode width's entries are used all hour, most mixed steps' once.
        self._templates: OrderedDict[object, _Template | None] = OrderedDict()  # StepGraph.dense_key -> its template
        self._layer_parts: OrderedDict[object, _LayerPart] = OrderedDict()  # StepGraph.layer_key -> pre, layer priced
        self._heads: OrderedDict[tuple, tuple] = OrderedDict()  # (layer_key, layers) -> a serial head (`_serial_head`)
        self._tails: OrderedDict[object, tuple] = OrderedDict()  # dense_key -> a serial step's post sums (`_serial_tail`)
        self._post_parts: OrderedDict[tuple, _PostPart] = OrderedDict()  # post and stage ops' value keys -> priced
        self._post_tables: dict[tuple, tuple] = {}  # post ops' value keys -> their rows for a kernel (`post_table`)
        self._varying_of: dict[int, tuple] = {}  # id(graph) -> (graph, its per-sequence ops priced), last few graphs
        self._tables: OrderedDict[tuple, tuple] = OrderedDict()  # graphs' dense keys -> their joined op table
        self._prefetch = bool(device.prefetch_weights)
        # Optional (Device): the costs of array-free ops as rows in one call, for a serial step's new sums.
        self._cost_rows = None if exact else getattr(device, "cost_rows", None)

    def price(self, op: Op) -> _Priced:
        """Ask the device for the op's cycles and convert them to seconds.

        Each unit's cycles times its own seconds per cycle (weights are HBM cycles); `OpCost.fixed_s` is
        seconds already and passes through; `hbm_bytes` stays bytes. Cost rows (`_cost_table`) are converted by the
        same products (`kernels.accounts.part_sums`, `summed_accounts` and `op_step_fields`).
        """
        cost: OpCost = self.device.cost(op)
        c, m, lk = self._unit_seconds
        # _Priced(op, compute_s, memory_s, weight_s, link_s, fixed_s, ideal_compute_s, stall_s, hbm_bytes,
        # fallback_s, energy_j), positionally: every priced op passes here.
        return _Priced(op, cost.compute_cycles * c, cost.memory_cycles * m, cost.weight_cycles * m,
                       cost.link_cycles * lk, cost.fixed_s, cost.ideal_compute_cycles * c, cost.stall_cycles * c,
                       op.memory_bytes if cost.hbm_bytes is None else cost.hbm_bytes, cost.fallback_s, cost.energy_j)

    def _price_cached(self, op: Op) -> _Priced:
        """Price of an op without per-sequence arrays, memoised on its value (`Op.value_key`)."""
        key = op.value_key
        if key is None:
            return self.price(op)
        return self._memoised(self._op_cache, key, op, _OP_CACHE_MAX)

    def _memoised(self, cache: dict, key, op: Op, most: int) -> _Priced:
        """cache[key], `price(op)` on a miss; a cache past `most` entries is emptied first."""
        hit = cache.get(key)
        if hit is None:
            if len(cache) > most:
                cache.clear()
            hit = cache[key] = self.price(op)
        return hit

    def _price_chunk(self, op: Op) -> _Priced:
        """Price of a prefill attention op of at most `_FEW_SEQUENCES` prompt chunks, memoised on its whole value (its
        scalar fields and its arrays): a prompt's chunk comes back beside other decodes (an hour prices ~2 x 10^4
        such ops of ~4 x 10^3 values). Other per-sequence ops are priced afresh: a decode op's cached tokens grow
        every step, so its value seldom comes back."""
        new, past = op.seq_new, op.seq_past
        if op.kind != OpKind.ATTENTION_PREFILL or new is None or past is None or new.size > _FEW_SEQUENCES:
            return self.price(op)
        key = (_scalar_values(op), new.dtype, new.tobytes(), past.dtype, past.tobytes())
        return self._memoised(self._chunk_cache, key, op, _CHUNK_CACHE_MAX)

    def run_step(self, graphs: Sequence[StepGraph]) -> StepTiming:
        """Simulate one step; several graphs are micro-batches of the same step sharing the units.

        `exact`: every op priced afresh and the step run through the simpy event model (`des`), every layer
        simulated. Otherwise the direct pass (the fast path), equal to it to rounding (tests/test_engine.py).
        """
        if any(g.more_groups for g in graphs):  # layers of several kinds: one single-kind graph per kind, summed
            return functools.reduce(operator.add, (self.run_step(part) for part in _split(graphs)))
        if self.exact:
            return self._event_step(graphs)
        if self._serial and len(graphs) == 1:
            return self._serial_step(graphs[0])
        templates = [self._template(g) for g in graphs]
        if None in templates:  # graphs not from build_step_graph: price every op
            priced = [self._price_graph(g) for g in graphs]
            layers = graphs[0].layers_per_stage
            return self._account(self._simulated(priced, layers), priced, layers)
        return self._scheduled_templated(graphs, templates)

    def floor_s(self, graphs: Sequence[StepGraph]) -> float:
        """A lower bound on `run_step(graphs).time_s` from the graphs' array-free ops alone (0.0 when a graph has
        no template): compute, HBM and links each serve their parts one at a time, so a step lasts at least each
        unit's summed busy seconds, and the per-sequence ops only add to them. (An extrapolated schedule repeats
        a layer's period, which holds at least that layer's work on every unit: the bound holds to the state
        tolerance, STATE_RTOL.) A split step whose floor exceeds the whole step need not be scheduled."""
        if self.exact or any(g.more_groups for g in graphs):
            return 0.0
        busy = [0.0, 0.0, 0.0]
        for g in graphs:
            t = self._template(g)
            if t is None:
                return 0.0
            for part in (t.head, t.tail):
                for u, i in enumerate(_BUSY_FIELDS):
                    busy[u] += part[i]
        return max(busy)

    def serial_floor_s(self, graph: StepGraph) -> float:
        """A lower bound on `run_step([graph]).time_s` for a scheduled engine (0.0 where not known: exact, serial,
        layer groups, no template): one op stream runs its ops one after another, each from the end of the one
        before plus its fixed overhead, and lasts at least its compute, its link time and the HBM traffic released
        when it is ready (its weights too, unless prefetched), so the step lasts at least the sum of that over its
        ops, layers counted (`_serial_s`; per-sequence ops at their rounded keys, as scheduled). An extrapolated
        layer lasts as long as the scheduled one it repeats: the bound holds to the state tolerance (STATE_RTOL).
        Prices the graph's per-sequence ops, kept for a `run_step` of the same graph that follows (`_varying`)."""
        if self.exact or self._serial or graph.more_groups:
            return 0.0
        t = self._template(graph)
        if t is None:
            return 0.0
        prefetch = self._prefetch
        per_layer = sum(_serial_s(_rounded_key(p), prefetch) for p in self._varying(graph, t))
        return t._part.serial_s + t.layers * per_layer + t._post.serial_s

    def _varying(self, graph: StepGraph, t: _Template) -> list[_Priced]:
        """The graph's per-sequence ops priced (at the template's places), kept for the last few graphs (a mixed
        step's whole graph is bounded by `serial_floor_s`, its halves scheduled, then maybe the whole). The entry
        holds the graph, so its id is not reused while kept."""
        hit = self._varying_of.get(id(graph))
        if hit is not None and hit[0] is graph:
            return hit[1]
        ops, price = graph.layer_ops, self._price_chunk
        priced = [price(ops[i]) for i in t.varying]
        kept = self._varying_of
        if len(kept) >= _VARYING_KEPT:
            del kept[next(iter(kept))]  # the oldest
        kept[id(graph)] = (graph, priced)
        return priced

    def halves_weights_floor_s(self, graph: StepGraph) -> float:
        """A lower bound on the step of the graph's batch split in two halves whose layer ops carry the graph's own
        weights (each half streams all of them): twice the HBM seconds of its layer ops' weights (`weight_s`,
        layers counted), from its template (0.0 without one). The HBM serves one part at a time (`floor_s`'s
        argument, of which this is a part), and it needs no half built."""
        if self.exact or graph.more_groups:
            return 0.0
        t = self._template(graph)
        return 0.0 if t is None else 2.0 * t._part.weights_s

    def _layer_part(self, graph: StepGraph) -> _LayerPart:
        """The graph's pre and layer ops priced, shared by graphs of one `layer_key` (None: the graph's own)."""
        parts = (graph.pre_ops, graph.layer_ops, graph.layers_per_stage)
        if graph.layer_key is None:
            return _LayerPart(self, *parts)
        return self.layer_part_of(graph.layer_key, *parts)

    def _post_part(self, graph: StepGraph) -> _PostPart:
        """The graph's post and stage ops priced, shared by graphs whose ops have equal values (`Op.value_key`; ops
        without one, as with per-sequence arrays, get a part of their own)."""
        ops = (*graph.post_ops, *graph.stage_ops)
        key = tuple([op.value_key for op in ops])
        if None in key:
            return _PostPart(self, ops)
        return _bounded(self._post_parts, key, lambda: _PostPart(self, ops))

    def _template(self, graph: StepGraph) -> _Template | None:
        key = graph.dense_key
        if key is None:
            return None
        templates = self._templates
        hit = templates.get(key, False)
        if hit is False:
            if len(templates) >= _TEMPLATE_CACHE_MAX:
                templates.popitem(last=False)
            t = _Template(self, graph)
            hit = templates[key] = t if t.usable(graph) else None
        else:
            templates.move_to_end(key)
        return hit

    def step_fields(self, graph: StepGraph) -> list[float] | None:
        """StepTiming's fields, in order, of `run_step([graph])` (the same sums in the same order, without the
        StepTiming): for callers that time one graph many times and want its values as numbers (the serving
        fast-forward's decode runs). None where run_step would take another path (exact, layer groups, a scheduled
        step without a template)."""
        if self.exact or graph.more_groups:
            return None
        if self._serial:
            return self._serial_step_fields(graph)
        t = self._template(graph)
        return None if t is None else self._scheduled_fields((graph,), (t,))

    def step_fields_with(self, graph: StepGraph, op: Op) -> list[float] | None:
        """`step_fields` of the graph with its one per-sequence op replaced by `op` (an op of its kind for other
        sequences: a decode run's attention, `workloads.graph.DecodeAttention.make`): the same sums in the same
        order, with no graph made. None where `step_fields` would take another path, or the graph has other than one
        per-sequence op (in its layer, by its layer key or template) or one of another kind."""
        if self.exact or graph.more_groups:
            return None
        if self._serial:
            head = self._serial_head(graph)
            if head is None or len(head[1]) != 1 or graph.layer_ops[head[1][0]].kind != op.kind:
                return None
            return self._serial_step_fields(graph, [self.price(op)])
        t = self._template(graph)
        if t is None or len(t.varying) != 1 or graph.layer_ops[t.varying[0]].kind != op.kind:
            return None
        return self._decode_fields((graph,), t, self.price(op))

    def fields_with(self, graph: StepGraph) -> Callable[[Op], list[float] | None]:
        """`step_fields_with(graph, ·)` as a function of the op: where the step is scheduled, the graph's checks and
        template are found once (a decode run times thousands of attention ops on one graph), then `_decode_fields`;
        elsewhere `step_fields_with` itself (a serial step's sums are found by key each time)."""
        if self.exact or graph.more_groups or self._serial:
            return functools.partial(self.step_fields_with, graph)
        t = self._template(graph)
        if t is None or len(t.varying) != 1:
            return lambda op: None
        kind, graphs, price = graph.layer_ops[t.varying[0]].kind, (graph,), self.price

        def fields_of(op: Op) -> list[float] | None:
            return self._decode_fields(graphs, t, price(op)) if op.kind == kind else None

        return fields_of

    def decode_fields(self, graph: StepGraph, attention) -> Callable[[np.ndarray], Sequence[float] | None]:
        """`fields_with(graph)` of the decode attention op for cached tokens `past`, as a function of `past` (an int64
        array, none negative; `attention`: the graph's `workloads.graph.DecodeAttention`). Where the step is scheduled
        and the device prices such ops from their cached tokens (`Device.decode_attention_pricer`), no op is built: the
        op's cost row, then the step's sums and the op's schedule key in one jitted call
        (`kernels.accounts.op_step_fields`), then the schedule memoised on the key as for `fields_with` (the same
        floats: tests/test_engine.py). Elsewhere `fields_with` of `attention.make(past)`."""
        t = None if self.exact or graph.more_groups or self._serial else self._template(graph)
        pricer = getattr(self.device, "decode_attention_pricer", None)
        price_row = None
        if t is not None and t.varying == (attention.place,) and pricer is not None \
                and graph.layer_ops[attention.place].kind == attention.op.kind:
            price_row = pricer(attention.op)
        if price_row is None:
            fields_of, make = self.fields_with(graph), attention.make
            return lambda past: fields_of(make(past))
        head, tail, count, layers = np.array(t.head), np.array(t.tail), t.layers, graph.layers_per_stage
        c, m, lk = self._unit_seconds
        bucket, bits, op_fields = _BUCKET_OF[attention.op.kind], ATTENTION_KEY_BITS, attention.fields
        dense_key, cache, schedule = graph.dense_key, self._cache, self._schedule
        table = self._joined_table((graph,), (t,))  # this engine's own (`_joined_table`): kept, its scratch rows too

        def fields(past: np.ndarray) -> np.ndarray:
            flops, kv_read_bytes = op_fields(int_total(past))
            row = price_row(past, flops, kv_read_bytes)
            out = op_step_fields(row, c, m, lk, bucket, flops, head, count, tail, bits)
            rounded = tuple(out[16:].tolist())
            skey = (layers, dense_key, rounded)  # `_decode_fields`' key
            hit = cache.get(skey)
            if hit is None:
                hit = schedule(skey, table, [[rounded]], layers)
            total = out[:16]
            total[_TIME], total[_MEMORY_WAIT] = hit
            return total

        terms_of = getattr(self.device, "systolic_attention_terms", None)
        terms = None if terms_of is None else terms_of(attention.op)
        if terms is not None:  # the op is priced as `kernels.decode_run` prices it: a run can be timed there
            op, (flops_per_entry, kv_bytes_per_token) = attention.op, attention.field_terms
            ops, collective, bounds, rows = table
            fields.run_terms = DecodeRunTerms(
                op.seq_new, terms, np.array((op.weight_bytes, op.kv_write_bytes, op.act_in_bytes, op.act_out_bytes)),
                (flops_per_entry, kv_bytes_per_token, c, m, lk, bucket, bits, count, layers), head, tail, ops,
                collective, bounds, rows[0], self._prefetch, STATE_RTOL)
        return fields

    def _scheduled_templated(self, graphs: Sequence[StepGraph], templates: list[_Template]) -> StepTiming:
        """The scheduled step with the array-free ops from templates: only per-sequence ops are priced; the
        schedule is memoised on the templates' keys and the per-sequence ops' rounded keys (`_simulated`)."""
        return StepTiming(*self._scheduled_fields(graphs, templates))

    def _scheduled_fields(self, graphs: Sequence[StepGraph], templates: Sequence[_Template]) -> list[float]:
        layers = graphs[0].layers_per_stage
        if len(graphs) == 1 and len(templates[0].varying) == 1:  # a decode-only step: the same sums, fewer lists
            return self._decode_fields(graphs, templates[0], self._varying(graphs[0], templates[0])[0])
        key: list = [layers]
        total: list[float] | None = None
        varying = []  # per graph: the rounded keys of its per-sequence ops
        for g, t in zip(graphs, templates):
            priced = self._varying(g, t)
            rounded = [_rounded_key(p) for p in priced]
            varying.append(rounded)
            key.append(g.dense_key)
            key += rounded
            # The first graph's head is the sums from zero (0.0 + head: the same floats, a head holds no -0.0).
            total = list(t.head) if total is None else [a + v for a, v in zip(total, t.head)]
            count = t.layers
            for p in priced:
                total = [a + count * v for a, v in zip(total, p.account)]
            total = [a + v for a, v in zip(total, t.tail)]
        return self._scheduled_time(total, tuple(key), graphs, templates, varying, layers)

    def _decode_fields(self, graphs: Sequence[StepGraph], t: _Template, p: _Priced) -> list[float]:
        """A scheduled step of one graph (`graphs`, its template `t`) whose one per-sequence op is priced `p`: every
        field head + layers x p's account + tail, added in that order, and the schedule's time and memory wait."""
        rounded = _rounded_key(p)
        count = t.layers
        total = [h + count * v + tl for h, v, tl in zip(t.head, p.account, t.tail)]  # (head + count v) + tail
        layers = graphs[0].layers_per_stage
        return self._scheduled_time(total, (layers, graphs[0].dense_key, rounded), graphs, (t,), [[rounded]], layers)

    def _scheduled_time(self, total: list[float], skey: tuple, graphs: Sequence[StepGraph],
                        templates: Sequence[_Template], varying: list, layers: int) -> list[float]:
        """`total` with the step's time and memory wait from the schedule, memoised on `skey` (layers, then each
        graph's key followed by its per-sequence ops' rounded keys); on a miss the rounded keys (`varying`, per graph)
        are filled into the joined table's per-sequence rows and it is scheduled."""
        hit = self._cache.get(skey)
        if hit is None:
            hit = self._schedule(skey, self._joined_table(graphs, templates), varying, layers)
        total[_TIME], total[_MEMORY_WAIT] = hit
        return total

    def _schedule(self, skey: tuple, table: tuple, varying: list, layers: int) -> tuple[float, float]:
        """(time, memory wait) of a joined table (`_joined_table`) with its per-sequence rows filled from `varying`,
        kept under `skey`."""
        ops, collective, bounds, rows = table
        i = 0
        for rounded in varying:  # the per-sequence rows are scratch: every schedule fills all of them first
            for r in rounded:
                ops[rows[i]] = r
                i += 1
        if len(self._cache) > _STEP_CACHE_MAX:
            self._cache.clear()
        time_s, wait_s = schedule_step_s(ops, collective, bounds, layers, self._prefetch, STATE_RTOL)
        hit = self._cache[skey] = (float(time_s), float(wait_s))
        return hit

    def _joined_table(self, graphs: Sequence[StepGraph], templates: Sequence[_Template]) -> tuple:
        """(op table, collective flags, bounds, rows of the per-sequence ops) of the templates' streams side by side,
        made once per tuple of graph keys: a scheduled step fills in its per-sequence rows (the same table the
        templates' own tables concatenated with those rows filled in give). The table is the engine's own (a new
        array, never a template's), so its per-sequence rows are scratch."""
        tkey = tuple([g.dense_key for g in graphs])
        return _bounded(self._tables, tkey, lambda: _join(templates))

    def layer_part(self, graph: StepGraph) -> _LayerPart:
        """The graph's pre and layer ops priced (`_LayerPart`, kept under its layer key)."""
        return self._layer_part(graph)

    def layer_part_of(self, layer_key, pre_ops: Sequence[Op], layer_ops: Sequence[Op], layers_per_stage: int) -> _LayerPart:
        """`layer_part` of a graph known by its layer key, pre ops, layer ops (its per-sequence ops stand for their
        places: a layer part does not read them) and layers per stage, without the graph (`StepRunner.mixed_step`)."""
        return _bounded(self._layer_parts, layer_key, lambda: _LayerPart(self, pre_ops, layer_ops, layers_per_stage))

    def kept_layer_part(self, layer_key) -> _LayerPart | None:
        """The layer part kept under a graph's layer key (an earlier graph of that key made it), None if none is: for a
        caller that prices a step without building its graphs (`StepRunner.mixed_step`, which makes a missing part with
        `layer_part_of`)."""
        parts = self._layer_parts
        hit = parts.get(layer_key)
        if hit is not None:
            parts.move_to_end(layer_key)
        return hit

    def post_table(self, ops: Sequence[Op]) -> tuple[np.ndarray, np.ndarray]:
        """Array-free post ops priced as rows of `kernels.mixed_step.POST_COLUMNS` (each op's key, then its account),
        with their collective flags, kept by the ops' values: a kernel's post part (`_PostPart`: its rows, `tail` the
        accounts summed in order, `serial_s` of the keys)."""
        key = tuple([op.value_key for op in ops])
        hit = self._post_tables.get(key)
        if hit is None:
            if len(self._post_tables) > _OP_CACHE_MAX:
                self._post_tables.clear()
            priced = [self._price_cached(op) for op in ops]
            hit = self._post_tables[key] = (np.array([(*p.key, *p.account) for p in priced], dtype=np.float64),
                                            np.array([p.op.kind in _COLLECTIVES for p in priced], dtype=np.bool_))
        return hit

    @property
    def unit_seconds(self) -> tuple[float, float, float]:
        """Seconds per cycle of the compute, memory and link units (`price`'s factors)."""
        return self._unit_seconds

    @property
    def key_bits(self) -> int:
        """Significant bits of an attention op's seconds in a schedule's memo key (`ATTENTION_KEY_BITS`, read now)."""
        return ATTENTION_KEY_BITS

    @property
    def scheduled(self) -> bool:
        """Whether `run_step` schedules even one graph (fast path, weights prefetched), as `kernels.mixed_step` does."""
        return not self.exact and self._prefetch

    def _event_step(self, graphs: Sequence[StepGraph]) -> StepTiming:
        """The step in the discrete-event model; busy seconds per unit as the simulation measured them."""
        priced = [self._price_exact(g) for g in graphs]
        layers = graphs[0].layers_per_stage
        streams = [tuple([_part(p) for p in group] for group in parts) for parts in priced]
        from .des import simulate_step  # simpy loads for the event model only

        sim = simulate_step(streams, layers, bool(self.device.prefetch_weights))
        t = self._account((sim.time_s, sim.memory_wait_s), priced, layers)
        return replace(t, compute_busy_s=sim.compute_busy_s, memory_busy_s=sim.memory_busy_s,
                       link_busy_s=sim.link_busy_s)

    def direct_step(self, graphs: Sequence[StepGraph]) -> StepTiming:
        """The step by the direct pass with exact prices and no caches (what `exact` is checked against)."""
        if any(g.more_groups for g in graphs):
            return functools.reduce(operator.add, (self.direct_step(part) for part in _split(graphs)))
        priced = [self._price_exact(g) for g in graphs]
        layers = graphs[0].layers_per_stage
        return self._account(self._step_time(priced, layers), priced, layers)

    def _simulated(self, priced, layers: int) -> tuple[float, float]:
        """(step s, memory wait s) by the direct pass, memoised on the priced key (attention rounded)."""
        priced = [tuple([_round_attention(p) for p in part] for part in parts) for parts in priced]
        key = (layers, tuple(tuple(p.key for part in parts for p in part) for parts in priced))
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > _STEP_CACHE_MAX:
                self._cache.clear()
            hit = self._cache[key] = self._step_time(priced, layers)
        return hit

    def _step_time(self, priced, layers: int, record: list | None = None) -> tuple[float, float]:
        """(step seconds, seconds compute ops spent waiting on memory), layers extrapolated: the jitted pass
        (`kernels.schedule.schedule_step_s`, equal to `schedule_step` to the bit); with `record`, the Python
        pass recording every layer."""
        prefetch = bool(self.device.prefetch_weights)
        if record is not None:
            return schedule_step(priced, layers, prefetch, record)
        ops, collective, bounds = _pack(priced)
        time_s, wait_s = schedule_step_s(ops, collective, bounds, layers, prefetch, STATE_RTOL)
        return float(time_s), float(wait_s)

    def _price_graph(self, graph: StepGraph) -> tuple[list[_Priced], list[_Priced], list[_Priced]]:
        def price(op):
            return self.price(op) if op.seq_new is not None else self._price_cached(op)
        pre = [price(op) for op in graph.pre_ops]
        layer = [price(op) for op in graph.layer_ops]
        post = [price(op) for op in (*graph.post_ops, *graph.stage_ops)]
        return pre, layer, post

    # --- serial fast path -------------------------------------------------------------------------
    def _group(self, ops: Sequence[Op]) -> tuple[Sequence[float], list[_Priced]]:
        """(summed account of a group's array-free ops, memoised on their values; the other ops priced)."""
        summed, count = self._group_sum(ops)
        varying = [self.price(op) for op in ops if op.seq_new is not None] if count != len(ops) else []
        return summed, varying

    def _group_sum(self, ops: Sequence[Op]) -> tuple[Sequence[float], int]:
        """(summed account of a group's array-free ops, memoised on their values; how many there are)."""
        key = tuple([op.value_key for op in ops if op.seq_new is None])
        summed = self._group_cache.get(key)
        if summed is None:
            summed = self._summed_rows(ops) if self._cost_rows is not None and len(key) > _SMALL_GROUP else None
            if summed is None:
                summed = _summed([self._price_cached(op) for op in ops if op.seq_new is None])
            if None not in key:  # an op without a value key (arrays) cannot stand for others
                if len(self._group_cache) > _OP_CACHE_MAX:
                    self._group_cache.clear()
                self._group_cache[key] = tuple(summed)
        return summed, len(key)

    def _summed_rows(self, ops: Sequence[Op]) -> list[float] | None:
        """`_group`'s summed account of the array-free ops from the device's cost rows (`Device.cost_rows`) in one
        pass (`_rows_summed`): the same floats in the same order; None where the device gives no rows for them."""
        dense = [op for op in ops if op.seq_new is None]
        rows = self._cost_rows(dense)
        return None if rows is None else self._rows_summed(rows, dense)

    def _rows_summed(self, rows: np.ndarray, ops: Sequence[Op]) -> list[float]:
        """The ops' accounts (`_op_account`) added in op order from zero, from their cost rows in one jitted pass
        (`kernels.accounts.summed_accounts`): the floats `_summed` gives from their prices."""
        c, m, lk = self._unit_seconds
        buckets = np.array([_BUCKET_OF.get(op.kind, 3) for op in ops], dtype=np.int64)
        flops = np.array([op.flops for op in ops], dtype=np.float64)
        return summed_accounts(rows, c, m, lk, buckets, flops).tolist()

    def _cost_table(self, ops: Sequence[Op]) -> np.ndarray:
        """The costs of array-free ops as rows of `kernels.accounts.COST_COLUMNS`: the device's own rows in one call
        where it gives them (`Device.cost_rows`), else `cost` op by op (hbm_bytes resolved as `price` resolves it)."""
        rows = None if self._cost_rows is None else self._cost_rows(ops)
        if rows is None:
            cost = self.device.cost
            rows = np.array([_cost_row(cost(op), op) for op in ops], dtype=np.float64).reshape(len(ops), 10)
        return rows

    def _serial_step(self, graph: StepGraph) -> StepTiming:
        """One op stream, no prefetch: every op runs alone, so the step is a sum (see module docstring)."""
        return StepTiming(*self._serial_step_fields(graph))  # time_s, memory_wait_s: the sums of the ops' own

    def _serial_step_fields(self, graph: StepGraph, priced: Sequence[_Priced] | None = None) -> Sequence[float]:
        """A serial step's StepTiming fields: its groups' sums (pre ops, layers x the layer's ops, post and stage ops)
        added in that order, each group's array-free ops summed once per group of values and its per-sequence ops
        after them. The pre and layer sums come from `_serial_head` and the post sums from `_serial_tail` where the
        graph has keys for them. `priced`: the layer's per-sequence ops priced, where the caller has them (one in
        place of the graph's own: `step_fields_with`; only with a layer key)."""
        head = self._serial_head(graph)
        if head is None:
            return self._grouped_fields(graph)
        total, places = head
        layers = float(graph.layers_per_stage)
        if priced is None:
            ops, price = graph.layer_ops, self._price_chunk
            priced = [price(ops[i]) for i in places]
        for p in priced:
            total = [t + layers * v for t, v in zip(total, p.account)]
        summed, varying = self._serial_tail(graph)
        if summed is not None:
            total = [t + v for t, v in zip(total, summed)]  # 1.0 x v is v: `_grouped_fields`' floats
        for p in varying:
            total = [t + v for t, v in zip(total, p.account)]
        return total

    def _serial_tail(self, graph: StepGraph) -> tuple[Sequence[float] | None, list[_Priced]]:
        """(`_group` of the graph's post and stage ops: their array-free ops' sum, None without any such ops; the
        others priced), the sum shared by graphs of one `dense_key` (which fixes those ops' values)."""
        post = graph.post_ops + graph.stage_ops
        if not post:
            return None, []
        key = graph.dense_key
        hit = None if key is None else self._tails.get(key)
        if hit is None:
            summed, count = self._group_sum(post)
            if key is None or count != len(post):
                return summed, [self.price(op) for op in post if op.seq_new is not None]
            hit = _bounded(self._tails, key, lambda: tuple(summed))
        return hit, []

    def _grouped_fields(self, graph: StepGraph) -> Sequence[float]:
        layers = float(graph.layers_per_stage)
        total: Sequence[float] = _ZERO
        for ops, count in ((graph.pre_ops, 1.0), (graph.layer_ops, layers), (graph.post_ops + graph.stage_ops, 1.0)):
            if not ops:
                continue
            summed, varying = self._group(ops)
            total = [t + count * v for t, v in zip(total, summed)]
            for p in varying:
                total = [t + count * v for t, v in zip(total, p.account)]
        return total

    def _serial_head(self, graph: StepGraph) -> tuple[tuple[float, ...], tuple[int, ...]] | None:
        """(`_grouped_fields`' sums after the pre ops and the layer's array-free ops, the places of the layer's
        per-sequence ops), shared by graphs of one `layer_key` (a mixed step's token count, whatever its sequence
        count: most of an hour's mixed steps repeat a token count with other sequences); None without a layer key
        or with per-sequence pre ops."""
        key = graph.layer_key
        if key is None:
            return None
        key = (key, graph.layers_per_stage)
        hit = self._heads.get(key)
        if hit is None:
            pre = graph.pre_ops
            total: Sequence[float] = _ZERO
            if pre:
                summed, count = self._group_sum(pre)
                if count != len(pre):
                    return None
                total = [t + 1.0 * v for t, v in zip(total, summed)]
            layers = float(graph.layers_per_stage)
            summed, _ = self._group_sum(graph.layer_ops)
            total = [t + layers * v for t, v in zip(total, summed)]
            places = tuple(i for i, op in enumerate(graph.layer_ops) if op.seq_new is not None)
            hit = _bounded(self._heads, key, lambda: (tuple(total), places))
        return hit

    def trace_step(self, graphs: Sequence[StepGraph]) -> list[tuple[int, str, str, float, float]]:
        """Unit busy intervals of one step with every layer simulated: (micro-batch, unit, op, start s, s).

        For timelines; exact pricing, no extrapolation, no caches.
        """
        record: list[tuple[int, str, str, float, float]] = []
        offset = 0.0
        for part in _split(graphs):
            first = len(record)
            time_s, _ = self._step_time([self._price_exact(g) for g in part], part[0].layers_per_stage, record)
            record[first:] = [(k, unit, name, start + offset, s) for k, unit, name, start, s in record[first:]]
            offset += time_s
        return record

    def _price_exact(self, graph: StepGraph):
        pre = [self.price(op) for op in graph.pre_ops]
        layer = [self.price(op) for op in graph.layer_ops]
        post = [self.price(op) for op in (*graph.post_ops, *graph.stage_ops)]
        return pre, layer, post

    @staticmethod
    def _account(sim: tuple[float, float], priced, layers: int) -> StepTiming:
        """The ops' accounts summed over all micro-batches, layers counted; time and memory wait simulated."""
        total: Sequence[float] = _ZERO
        for pre, layer, post in priced:
            for group, count in ((pre, 1.0), (layer, float(layers)), (post, 1.0)):
                for p in group:
                    total = [t + count * v for t, v in zip(total, p.account)]
        return StepTiming(*_Account._make(total)._replace(time_s=sim[0], memory_wait_s=sim[1]))


_COLLECTIVES = (OpKind.ALLREDUCE, OpKind.P2P, OpKind.ALL_TO_ALL)
_ATTENTION = (OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE)
_GEMMS = (OpKind.MATMUL, OpKind.MOE_MATMUL)
_FALLBACK = "fallback"  # an op priced on the fallback unit: its own StepTiming field
_TIME, _MEMORY_WAIT = TIMING_FIELDS.index("time_s"), TIMING_FIELDS.index("memory_wait_s")
_BUSY_FIELDS = tuple(TIMING_FIELDS.index(f"{unit}_busy_s") for unit in ("compute", "memory", "link"))
_OP_CACHE_MAX = 200_000
_FEW_SEQUENCES = 4  # `_price_chunk` memoises ops of at most this many sequences
_CHUNK_CACHE_MAX = 16_384  # ... and at most this many (~2 KB each)
# An op's scalar fields (every Op field but its arrays and value key), in field order: with its arrays, its value.
_scalar_values = operator.attrgetter(*(f.name for f in fields(Op) if f.name not in ("seq_new", "seq_past", "value_key")))
# Groups of at most this many array-free ops are summed from per-op prices (`_price_cached`, a post group's head
# ops priced once per sampled-token count); larger ones from the device's cost rows (`_summed_rows`) where it has them.
_SMALL_GROUP = 4
_STEP_CACHE_MAX = 32_768  # scheduled steps memoised (rounded key); more hardly adds hits, ~1 KB each
_VARYING_KEPT = 4  # graphs whose per-sequence ops' prices are kept (a mixed step's whole and two halves)
_TEMPLATE_CACHE_MAX = 4096  # a template holds its priced ops: mixed steps' token counts seldom repeat
ATTENTION_KEY_BITS = 10
STATE_RTOL = 1e-12  # schedule states this close (relative to the step so far) repeat
FAST_PATH_RTOL = 2.0 ** -ATTENTION_KEY_BITS


def _join(templates: Sequence[_Template]) -> tuple:
    """The templates' op tables side by side (`StepEngine._joined_table`): (table, collective flags, bounds, rows of
    the per-sequence ops), put together from their layer parts' and post parts' rows (built once per part) in one
    concatenation."""
    tables, flags, bounds, rows = [], [], [], []
    at = 0
    for t in templates:
        part, part_flags = t._part.rows()
        post, post_flags = t._post.rows()
        tables += (part, post)
        flags += (part_flags, post_flags)
        pre, layer = at + t.pre_count, at + t.pre_count + t.layer_count
        end = layer + len(t.post)
        bounds.append((at, pre, pre, layer, layer, end))
        rows += [pre + i for i in t.varying]
        at = end
    return np.concatenate(tables), np.concatenate(flags), np.array(bounds, dtype=np.int64), rows


def _bounded(cache: OrderedDict, key, make):
    """cache[key], made by `make()` on a miss, least recently used entries first: a cache holding
    _TEMPLATE_CACHE_MAX entries drops its least recently used one first (emptying it instead made an hour's Sohu run
    build 42% of its templates again)."""
    hit = cache.get(key)
    if hit is None:
        if len(cache) >= _TEMPLATE_CACHE_MAX:
            cache.popitem(last=False)
        hit = cache[key] = make()
    else:
        cache.move_to_end(key)
    return hit


def _split(graphs: Sequence[StepGraph]) -> list[list[StepGraph]]:
    """Micro-batch graphs with several layer groups as a list of steps of one group each (group j of every
    micro-batch together); layer groups run one after another, so the step is their sum."""
    return [list(parts) for parts in zip(*(g.split() for g in graphs))]


def _summed(priced: Sequence[_Priced | None]) -> Sequence[float]:
    """The accounts of priced ops (None skipped) added in op order from zero: the sums templates, post parts and
    serial groups keep (`kernels.accounts.summed_accounts` is the same from cost rows)."""
    total: Sequence[float] = _ZERO
    for p in priced:
        if p is not None:
            total = [a + v for a, v in zip(total, p.account)]
    return total


def _op_account(p: _Priced) -> _Account:
    """One op's StepTiming fields as if it ran alone: its time alone (a serial step is the sum), each unit's
    busy seconds, its compute's wait on memory, FLOPs, HBM bytes, and its time alone in its kind's field.
    Built positionally (`_ACCOUNT_ORDER` checks the order against StepTiming at import): every priced op makes one."""
    compute_s, fixed_s = p.compute_s, p.fixed_s
    memory_s = p.memory_s + p.weight_s
    alone_s = fixed_s + max(compute_s, memory_s, p.link_s)
    kind = _FALLBACK if p.fallback_s > 0.0 else p.op.kind
    bucket = _BUCKET_OF.get(kind, 3)  # its time alone goes to field 10 + bucket: gemm, attention, collective, other
    return _new_account(_Account, (
        alone_s, compute_s, memory_s, p.link_s, fixed_s, p.ideal_compute_s, p.stall_s,
        max(alone_s - fixed_s - compute_s, 0.0) if compute_s > 0.0 else 0.0, p.op.flops, p.hbm_bytes,
        alone_s if bucket == 0 else 0.0, alone_s if bucket == 1 else 0.0, alone_s if bucket == 2 else 0.0,
        alone_s if bucket == 3 else 0.0, alone_s if bucket == 4 else 0.0, p.energy_j))


_ACCOUNT_ORDER = ("time_s", "compute_busy_s", "memory_busy_s", "link_busy_s", "fixed_s", "ideal_compute_s", "stall_s",
                  "memory_wait_s", "flops_per_chip", "memory_bytes_per_chip", "gemm_s", "attention_s", "collective_s",
                  "other_s", "fallback_s", "op_energy_j")
assert _ACCOUNT_ORDER == TIMING_FIELDS, "_op_account builds its tuple in StepTiming's field order"
_new_account = tuple.__new__
# Op kind -> its bucket among the per-kind fields gemm_s, attention_s, collective_s, other_s (3: every kind not
# named here) and fallback_s.
_BUCKET_OF = {**{k: 0 for k in _GEMMS}, **{k: 1 for k in _ATTENTION}, **{k: 2 for k in _COLLECTIVES}, _FALLBACK: 4}


def _round_attention(p: _Priced) -> _Priced:
    """An attention op with its unit seconds rounded to ATTENTION_KEY_BITS significant bits; others as-is."""
    if p.op.seq_new is None:
        return p
    return _Priced(p.op, _round(p.compute_s), _round(p.memory_s), _round(p.weight_s), _round(p.link_s),
                   _round(p.fixed_s), p.ideal_compute_s, p.stall_s, p.hbm_bytes, p.fallback_s, p.energy_j)


def _rounded_key(p: _Priced) -> tuple[float, ...]:
    """`_round_attention(p).key` without building the op."""
    if p.op.seq_new is None:
        return p.key
    return (_round(p.compute_s), _round(p.memory_s), _round(p.weight_s), _round(p.link_s), _round(p.fixed_s))


def _cost_row(cost: OpCost, op: Op) -> tuple[float, ...]:
    """An OpCost as a row of `kernels.accounts.COST_COLUMNS` (hbm_bytes None resolved to the op's bytes, as `price`)."""
    return (cost.compute_cycles, cost.memory_cycles, cost.weight_cycles, cost.link_cycles, cost.fixed_s,
            cost.ideal_compute_cycles, cost.stall_cycles, op.memory_bytes if cost.hbm_bytes is None else cost.hbm_bytes,
            cost.fallback_s, cost.energy_j)


def _serial_s(key: tuple[float, ...], prefetch: bool) -> float:
    """The least an op of `key` (`_Priced.key`: compute, memory, weight, link, fixed seconds) lasts in one op stream,
    from the end of the op before: its fixed overhead, then its compute, its link time or its HBM traffic released
    when it is ready (its weights too, unless prefetched), whichever is longest (`StepEngine.serial_floor_s`)."""
    compute_s, memory_s, weight_s, link_s, fixed_s = key
    return fixed_s + max(compute_s, link_s, memory_s if prefetch else memory_s + weight_s)


def _round(x: float) -> float:
    if x == 0.0:
        return 0.0
    mant, exp = math.frexp(x)
    return math.ldexp(round(mant * (1 << ATTENTION_KEY_BITS)) / (1 << ATTENTION_KEY_BITS), exp)


def _record_memory(record: list, k: int, name: str, ready_at: float, pieces: list) -> None:
    """HBM busy pieces of one op for a trace; weight traffic before the op is ready is its prefetch."""
    for at, seconds in pieces:
        if at < ready_at:
            head_s = min(seconds, ready_at - at)
            record.append((k, "memory", f"prefetch {name}", at, head_s))
            at, seconds = ready_at, seconds - head_s
        if seconds > 0.0:
            record.append((k, "memory", name, at, seconds))


def _part(p: _Priced):
    from .des import Part

    return Part(p.compute_s, p.memory_s, p.weight_s, p.link_s, p.fixed_s, p.op.kind in _COLLECTIVES)

