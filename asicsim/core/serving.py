"""Serving loop: requests arrive, a router deals them to data-parallel replicas of a TP x PP group, and
each replica's scheduler (`schedulers.py`) forms engine steps against its paged KV cache (`kvcache.py`).

Time: every replica has its own clock. The loop routes each arrival before any replica steps past its
arrival time, then advances the replica whose clock is earliest by one step; an idle replica jumps to
the arrival of its next request. So simulated time only moves forward on every replica.

A step's time: the scheduler's batch is timed on one chip of the last (most loaded) pipeline stage by the
step engine. With pp > 1 the batch runs as `micro_batches` micro-batches through the pp stages; with
micro-batch stage times t_i in order the pipeline finishes after sum(t_i) + (pp - 1) * max(t_i)
(identical stages: a proportionate flow shop), the second term being the fill/drain bubble. One
micro-batch gives pp x t, a single batch walking the stages. Devices that overlap collectives also try
each (micro-)batch as two interleaved halves and keep the faster.

Tokens: a step that finishes a prompt's prefill emits that request's next token (its first, or the next
one after a recompute pre-emption); a decode step emits one token per decoding request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from asicsim.kernels.chord import chord_fill, chord_rows, on_chord
from asicsim.kernels.decode_run import decode_run_values
from asicsim.kernels.jit import compiled
from asicsim.kernels.mixed_step import mixed_step_fields
from asicsim.kernels.steplog import book_run
from asicsim.workloads.errors import RUN, InputError
from asicsim.workloads.graph import (build_step_graph, decode_attention, decode_graph_maker, dense_attention,
                                     dense_path, step_graph_builder)
from asicsim.workloads.routing import DEFAULT_IMBALANCE
from asicsim.workloads.dtypes import DTYPE_BYTES
from asicsim.workloads.graph_types import StepBatch, int_total
from asicsim.workloads.memory import stage_layer_counts
from asicsim.workloads.models import ModelConfig
from asicsim.workloads.requests import Request

from .collector import collection_paused
from .device import Device
from .engine import FAST_PATH_RTOL, STATE_RTOL, StepEngine, StepTiming
from .kvcache import PagedKVCache
from .links import TOKEN_ID_BYTES, LinkProfile
from .memory_plan import MemoryPlan, plan_memory, serving_limits
from .results import (FIELD_INDEX, RECORDED_TIMING_FIELDS, STEP_FIELDS, RequestRecord, StepLog, StepRecord,
                      StepTable, recorded_timing_values, request_record, step_record_of)
from .router import make_router
from .schedulers import Scheduler, Seq, emitted_tokens, make_scheduler

__all__ = ["ServingConfig", "ReplicaRun", "simulate", "collection_paused", "check_parallelism", "Progress",
           "StepRunner", "split_batch", "step_record"]

Progress = Callable[[float, int, int], None]  # (simulated seconds, requests finished, requests in all)
PROGRESS_EVERY_STEPS = 2048
FAST_FORWARD_MIN_STEPS = 2
# Midpoint tolerance of fast-forward interpolation: serial engines (convex step time, exact to 2 x this),
# and engines that simulate overlap (the attention memo key's own resolution, engine.FAST_PATH_RTOL).
FAST_FORWARD_RTOL = 1e-9
_EMPTY = np.zeros(0, dtype=np.int64)
_STEP_MEMO_MAX = 4096  # timed batches a runner keeps
# How far a split step's floor (engine.floor_s) must exceed the whole step's seconds for the split to be passed
# over: far above the extrapolated schedule's own tolerance (engine.STATE_RTOL, 1e-12 relative).
SPLIT_FLOOR_MARGIN = 1e-9
_KERNEL_PARTS_MAX = 65_536  # `StepRunner._kernel_part`'s entries (an hour of Sohu traffic makes ~15,000)


@dataclass(frozen=True)
class ServingConfig:
    """How a model is laid out and batched. `max_batch` 0 means as many requests as memory holds.

    micro_batches 0: pp micro-batches for the iteration-level schedulers, one for static batching.
    kv_capacity_blocks 0: as many blocks as the memory plan leaves for the KV cache.
    trace_steps: keep the first N step batches of each replica for a timeline.
    fast_forward: book runs of decode-only steps at once (see `_Replica.fast_forward`); False steps one
    at a time (the reference the tests compare against).
    exact: time every step with the simpy event model and exact prices (`StepEngine(exact=True)`).
    host_s_per_sequence: the serving runtime's host work per running request per step; an overlap scheduler
    prepares step i+1 while the device runs step i, so a step lasts the longer of the two.
    """

    model: ModelConfig
    dtype: str
    kv_dtype: str
    tp: int
    pp: int
    max_batch: int
    max_tokens_per_step: int
    act_dtype: str = "bf16"
    scheduler: str = "static"
    router: str = "round-robin"
    kv_block_tokens: int = 16
    micro_batches: int = 0
    kv_capacity_blocks: int = 0
    trace_steps: int = 0
    fast_forward: bool = True
    exact: bool = False
    host_s_per_sequence: float = 0.0  # host work per running request per step, overlapped with device work
    ep: int = 1  # expert-parallel chips among the tp chips
    attention_dp: bool = False  # attention data parallel over the tp chips
    moe_imbalance: float = DEFAULT_IMBALANCE  # sigma of log expert popularity (workloads.routing)
    mtp_draft_tokens: int = 0  # multi-token prediction: draft tokens verified per decode step (0: off)
    mtp_acceptance: float = 0.0  # probability a draft token is accepted, given the ones before it were
    weight_format: str = ""  # mxfp4 / nvfp4: the fp4 weights' block-scaled format (scale bytes); "": dtype's
    expert_dtype: str = ""  # routed experts' weight dtype or format ("": as the other weights)
    link: LinkProfile | None = None  # pipeline stages on separate devices joined by this slow link (--link)
    seed: int = 0  # the link's latency draws (per replica)

    @property
    def tokens_per_decode(self) -> float:
        """Expected tokens a decode step emits: the verified token plus each draft accepted along with all before
        it, 1 + a + a^2 + ... + a^N."""
        return sum(self.mtp_acceptance ** i for i in range(self.mtp_draft_tokens + 1))

    @property
    def graph_by_totals(self) -> bool:
        """Whether a decode step's graph depends on its sequences' cached tokens only through their count and
        total: not with sliding-window or chunked layers (each sequence's cache is capped) or attention data
        parallelism (the first chip's share of the sequences)."""
        return not self.attention_dp and not any(k.kv_span for k in self.model.layers)

    @property
    def fixed_weights(self) -> bool:
        """Whether every step's layer ops carry the same weights whatever its batch (`graph.dense_path`), so each
        part of a split batch streams them all."""
        return dense_path(self.model, self.ep, self.attention_dp, self.mtp_draft_tokens)

    @property
    def weight_dtype(self) -> str:
        """The weights' dtype or format, for byte counts (ops run on `dtype`, the datapath)."""
        return self.weight_format or self.dtype

    def step_graph(self, batch: StepBatch, stage: int | None = None, trusted: bool = False):
        """The operator graph of one step of this layout (default: the last pipeline stage); `trusted`: a batch the
        serving loop made (`build_step_graph` skips its checks)."""
        return build_step_graph(self.model, batch, stage=stage, trusted=trusted, **self._layout())

    def graph_builder(self):
        """`step_graph` as a function of (batch, stage=None, trusted=False) with the layout resolved once
        (`workloads.graph.step_graph_builder`): the serving loop builds a graph per step."""
        return step_graph_builder(self.model, **self._layout())

    def _layout(self) -> dict[str, Any]:
        return dict(tp=self.tp, pp=self.pp, dtype=self.weight_dtype, kv_dtype=self.kv_dtype, act_dtype=self.act_dtype,
                    ep=self.ep, attention_dp=self.attention_dp, moe_imbalance=self.moe_imbalance,
                    expert_dtype=self.expert_dtype or None, mtp_draft_tokens=self.mtp_draft_tokens)


@dataclass(frozen=True)
class ReplicaRun:
    """Records of one replica plus the memory plan and KV cache it ran with."""

    requests: tuple[RequestRecord, ...]
    steps: StepTable
    plan: MemoryPlan
    max_batch: int
    peak_kv_tokens: int
    kv_capacity_blocks: int = 0
    kv_block_tokens: int = 16
    kv_peak_blocks: int = 0
    kv_mean_blocks: float = 0.0
    preemptions: int = 0
    traced: tuple[tuple[int, float, StepBatch], ...] = ()  # (step, start_at, batch) of the first steps


def check_parallelism(chips: int, cfg: ServingConfig) -> int:
    """Number of data-parallel replicas; InputError if tp x pp does not divide the chips."""
    for field, value in (("chips", chips), ("tp", cfg.tp), ("pp", cfg.pp),
                         ("max_tokens_per_step", cfg.max_tokens_per_step), ("kv_block_tokens", cfg.kv_block_tokens)):
        if value < 1:
            raise InputError(RUN, field, f"must be >= 1, got {value}")
    for field, value in (("max_batch", cfg.max_batch), ("micro_batches", cfg.micro_batches)):
        if value < 0:
            raise InputError(RUN, field, f"must be >= 0 (0 = automatic), got {value}")
    if chips % (cfg.tp * cfg.pp):
        raise InputError(RUN, "tp", f"tp x pp = {cfg.tp * cfg.pp} does not divide chips {chips}")
    return chips // (cfg.tp * cfg.pp)


def simulate(device: Device, chips: int, requests: Sequence[Request], cfg: ServingConfig,
             progress: Progress | None = None, engine: StepEngine | None = None) -> list[ReplicaRun]:
    """Serve `requests` on `chips` chips; one ReplicaRun per replica. Deterministic and quiet.

    Python's cyclic garbage collector is paused while the loop runs (`collection_paused`)."""
    with collection_paused():
        return _simulate(device, chips, requests, cfg, progress, engine)


def _simulate(device: Device, chips: int, requests: Sequence[Request], cfg: ServingConfig,
              progress: Progress | None, engine: StepEngine | None) -> list[ReplicaRun]:
    replicas = check_parallelism(chips, cfg)
    if not requests:
        raise InputError("requests", "count", "no requests to serve")
    longest = max(r.input_tokens + r.output_tokens for r in requests)
    plan = plan_memory(cfg.model, device.memory_bytes_per_chip, dtype=cfg.weight_dtype, kv_dtype=cfg.kv_dtype,
                       tp=cfg.tp, pp=cfg.pp, tokens_per_request=longest,
                       max_tokens_per_step=cfg.max_tokens_per_step, act_dtype=cfg.act_dtype, chips=chips,
                       ep=cfg.ep, attention_dp=cfg.attention_dp, expert_dtype=cfg.expert_dtype or None,
                       mtp=cfg.mtp_draft_tokens > 0)
    block = cfg.kv_block_tokens
    kv_bytes = cfg.kv_capacity_blocks * block * plan.kv_bytes_per_token if cfg.kv_capacity_blocks else None
    limits = serving_limits(plan, scheduler=cfg.scheduler, pp=cfg.pp, kv_block_tokens=block, longest_tokens=longest,
                            max_batch=cfg.max_batch or None, micro_batches=cfg.micro_batches or None,
                            kv_capacity_bytes=kv_bytes)
    blocks, max_batch, micro = cfg.kv_capacity_blocks or limits.kv_capacity_blocks, limits.max_batch, limits.micro_batches
    runner = StepRunner(engine or StepEngine(device, exact=cfg.exact), cfg, device.overlap_collectives, micro)
    reps = [_Replica(i, runner, make_scheduler(cfg.scheduler, PagedKVCache(blocks, block), max_batch,
                                               cfg.max_tokens_per_step, cfg.mtp_draft_tokens, cfg.tokens_per_decode),
                        cfg.trace_steps) for i in range(replicas)]
    router = make_router(cfg.router)
    ordered = sorted(requests, key=lambda r: (r.arrival_at, r.request_id))
    total, routed, steps = len(ordered), 0, 0
    fast = cfg.fast_forward and cfg.link is None  # a jittered link makes every step its own
    only = reps[0] if replicas == 1 else None
    while True:
        if only is not None:  # one replica: no earliest clock to find
            rep = only if only.sched.running or only.sched.waiting else None
        else:
            busy = [r for r in reps if r.sched.running or r.sched.waiting]
            rep = min(busy, key=lambda r: r.now) if busy else None
        if routed < total and (rep is None or ordered[routed].arrival_at <= rep.now):
            req = ordered[routed]
            routed += 1
            target = reps[router.pick([r.outstanding_tokens() for r in reps]) if replicas > 1 else 0]
            if not (target.sched.running or target.sched.waiting):
                target.now = max(target.now, req.arrival_at)
            target.sched.waiting.append(Seq(req))
            if replicas == 1:  # the next passes would route every arrival up to its clock, one each: take them now
                waiting, now = target.sched.waiting, target.now
                while routed < total and ordered[routed].arrival_at <= now:
                    waiting.append(Seq(ordered[routed]))
                    routed += 1
            continue
        if rep is None:
            break
        done = rep.fast_forward(ordered[routed].arrival_at if routed < total else math.inf) if fast else 0
        if not done:
            rep.step()
            done = 1
        if progress is not None and (steps + done) // PROGRESS_EVERY_STEPS > steps // PROGRESS_EVERY_STEPS:
            progress(max(r.now for r in reps), sum(len(r.records) for r in reps), total)
        steps += done
    if progress is not None:
        progress(max(r.now for r in reps), total, total)
    return [r.result(plan, max_batch) for r in reps]


class StepRunner:
    """Builds a step's graph and times it: micro-batches through the pipeline, optional split halves."""

    def __init__(self, engine: StepEngine, cfg: ServingConfig, overlap: bool, micro: int = 1) -> None:
        self.engine = engine
        self.cfg = cfg
        self._build = cfg.graph_builder()  # cfg.step_graph, its layout resolved once
        self.overlap = overlap and cfg.tp > 1
        self.micro = micro
        self._memo: dict[tuple[bytes, bytes, bytes], tuple[float, StepTiming, int, float]] = {}
        self._decode_graphs: dict[tuple, Any] = {}  # (sequences, stage) -> a decode-only graph of that size
        self._graph_makers: dict[tuple, Any] = {}  # (sequences, stage) -> its `decode_graph_maker`, where it has one
        self._floors: dict[tuple, float] | None = {} if cfg.graph_by_totals else None  # (sequences, stage) -> s
        self.weights_floor = cfg.fixed_weights  # `run`: split halves ruled out by their weights' HBM time
        serial = not engine.device.prefetch_weights and not self.overlap
        self.ff_rtol = FAST_FORWARD_RTOL if serial else FAST_PATH_RTOL
        # A decode-only step is a function of (sequences, total cached tokens) alone where the device prices
        # decode attention from its totals and nothing splits the batch (parts would have their own totals).
        by_totals = bool(getattr(engine.device, "decode_cost_by_totals", False)) and cfg.graph_by_totals
        split = cfg.pp > 1 and micro > 1
        self.curves = (_DecodeCurves(self.ff_rtol)
                       if serial and by_totals and not split and not engine.exact else None)
        # Devices that time each stage (optional Device member `times_each_stage`: an SRAM pipeline whose stages
        # differ, the first holding the embedding and the last the LM head): a single batch's step is the sum of
        # its stages' times, each stage but the last paying its transfer to the next. The stages before the last,
        # as (stage, how many stages like it).
        # A pipeline over separate devices joined by a slow link (cfg.link) is timed the same way: its few stages
        # differ as much, and the link's hops are added by the serving loop.
        self.stages_before_last: tuple[tuple[int, int], ...] = ()
        if cfg.pp > 1 and (getattr(engine.device, "times_each_stage", False) or cfg.link is not None):
            counts = stage_layer_counts(cfg.model, cfg.pp)
            kinds: dict[tuple[bool, int], list[int]] = {}
            for stage in range(cfg.pp - 1):
                kinds.setdefault((stage == 0, counts[stage]), []).append(stage)
            self.stages_before_last = tuple((members[0], len(members)) for members in kinds.values())
        # `decode_values`' short path: a step that is one graph of the last stage (no micro-batch parts, no stages
        # timed one by one) on the engine's templates; per batch size, (its first graph, the function making its
        # attention op for other cached tokens), or None.
        self._direct = not engine.exact and not split and not self.stages_before_last
        self._decode_makers: dict[int, Any] = {}
        # `mixed_step`'s terms, found on the first prefilling graph (False: not yet; None: this runner has none), and
        # its graphs' parts by (tokens, prefilling and decoding sequences); `decode_run`'s arguments by batch size.
        self._kernels = compiled()  # the paths of one large kernel each (`kernels.jit.compiled`)
        self._mixed: _MixedTerms | None | bool = False if self._kernels and self._direct and engine.scheduled else None
        self._kernel_parts: dict[tuple[int, int, int], tuple] = {}
        self._norm_rows: dict[int, tuple] = {}  # `_post_rows`' parts by token count and by sequence count
        self._head_rows: dict[int, tuple] = {}
        self._run_args: dict[int, tuple] = {}
        self._ones = np.ones(1024, dtype=np.int64)  # `decode_run`'s micro-batch counts (read, never written)

    def graph(self, batch: StepBatch, stage: int | None = None):
        """The step's operator graph (`ServingConfig.step_graph`); a decode-only batch's is made from the first one
        of its size (`decode_graph_maker`: only the attention op is new). Batches come from the serving loop (its
        scheduler's steps, their split parts and decode runs), so the graph builder's checks are skipped."""
        if batch.prefill_new_tokens.size:
            graph = self._build(batch, stage, True)
            if self._mixed is False and stage is None:
                self._mixed = self._mixed_terms(graph)
            return graph
        key = (batch.decode_past_tokens.size, stage)
        make = self._graph_makers.get(key)
        if make is not None:
            return make(batch)
        graph = self._decode_graphs[key] = self._build(batch, stage, True)
        make = decode_graph_maker(graph)
        if make is not None:
            self._graph_makers[key] = make
        return graph

    def run(self, batch: StepBatch, stage: int | None = None) -> tuple[StepTiming, int]:
        """(timing of one pipeline stage, default the last; interleaved halves used: 1 or 2): the whole step, or its
        two interleaved halves where they are faster. A prefilling step on an engine and device that `kernels.
        mixed_step` serves is timed there in one jitted call (`mixed_step`), the same floats."""
        if self._mixed and stage is None and batch.prefill_new_tokens.size:
            return self.mixed_step(batch)
        whole_graph = self.graph(batch, stage)
        if not self.overlap or batch.prefill_new_tokens.size + batch.decode_past_tokens.size < 2:
            return self.engine.run_step([whole_graph]), 1  # nothing to overlap, or split_batch gives one part
        # The split halves are scheduled only if their floor (engine.floor_s) leaves them a chance to be faster:
        # decode steps streaming weights twice never are. A decode-only batch's floor depends on its size alone
        # where its graph depends on its sequences' count and total (`graph_by_totals`): memoised on the size.
        key = (batch.decode_past_tokens.size, stage) if self._floors is not None and not batch.prefill_new_tokens.size \
            else None
        floor = self._floors.get(key) if key is not None else None
        # A mixed step's whole is scheduled only when needed: a lower bound on it (engine.serial_floor_s, its ops one
        # after another) decides the comparisons below that it can, and a split faster than the bound wins outright.
        # Each comparison that the bound leaves open is made on the whole step's time, as it would be without it.
        lower_s = self.engine.serial_floor_s(whole_graph) if key is None else 0.0
        margin = 1.0 + SPLIT_FLOOR_MARGIN
        whole = None if lower_s > 0.0 else self.engine.run_step([whole_graph])

        def whole_step() -> StepTiming:
            nonlocal whole
            if whole is None:
                whole = self.engine.run_step([whole_graph])
            return whole
        if floor is None and key is None and self.weights_floor:
            # Each half streams every layer's weights (`ServingConfig.fixed_weights`): a floor below `engine.floor_s`
            # that needs no half built (mixed steps bound by their weights, on TPU and Trainium; a decode batch's
            # floor is memoised per size instead, which `decode_values` reads).
            halves_floor = self.engine.halves_weights_floor_s(whole_graph)
            if halves_floor > lower_s * margin and halves_floor > whole_step().time_s * margin:
                return whole_step(), 1
        graphs = None
        if floor is None:
            graphs = [self.graph(h, stage) for h in split_batch(batch, 2)]
            floor = self.engine.floor_s(graphs)
            if key is not None:
                self._floors[key] = floor
        if floor > lower_s * margin and floor > whole_step().time_s * margin:
            return whole_step(), 1
        split = self.engine.run_step(graphs or [self.graph(h, stage) for h in split_batch(batch, 2)])
        if whole is None and split.time_s * margin < lower_s:
            return split, 2  # faster than any schedule of the whole step
        return (split, 2) if split.time_s < whole_step().time_s else (whole_step(), 1)

    def decode_values(self, past: np.ndarray) -> tuple[np.ndarray, int]:
        """(values in `_FF_FIELDS` order, micro-batches) of the decode-only step caching `past` tokens per sequence
        (none negative): `time_step`'s values, the same floats, by a shorter path (no memo key, no StepTiming, no
        graph: the first graph of its size, its attention op as a function of the cached tokens, `decode_attention`,
        `StepEngine.decode_fields`) where the step is the last stage's one graph on the engine's templated path with
        no split to try (its floor, memoised per batch size, rules the split out); else by `time_step`.
        A decode run times thousands of such steps."""
        width = past.size
        made = self._decode_fields(width)
        fields = made(past) if made is not None else None
        if fields is not None:  # `run`: the split is passed over on its floor alone
            floor = self._decode_floor(width)
            if floor is None or (floor >= 0.0 and not floor > fields[0] * (1.0 + SPLIT_FLOOR_MARGIN)):
                fields = None
        if fields is None:
            step_s, t, micro, bubble_s = self.time_step(StepBatch(_EMPTY, _EMPTY, past))
            return np.array((step_s, bubble_s, *recorded_timing_values(t))), micro
        time_s, pp = fields[0], self.cfg.pp  # `_device_step` and `_time_step` on the one timing
        values = np.empty(len(_FF_FIELDS))
        values[0] = max(time_s * pp, self.cfg.host_s_per_sequence * width)
        values[1] = (pp - 1) * time_s
        values[2:] = fields[1:]
        return values, 1

    def _mixed_terms(self, graph) -> _MixedTerms | None:
        """`mixed_step`'s terms from a prefilling graph of the last stage: its plan's attention fields
        (`workloads.graph.dense_attention`) and the device's terms for its attention ops (`Device.
        systolic_attention_terms`); None where either is missing."""
        dense = dense_attention(graph)
        terms_of = getattr(self.engine.device, "systolic_attention_terms", None)
        if dense is None or terms_of is None:
            return None
        prefill, decode = terms_of(dense.prefill_op), terms_of(dense.decode_op)
        if prefill is None or decode is None:
            return None
        c, m, lk = self.engine.unit_seconds
        graph_terms = np.array((dense.flops_per_entry, dense.kv_bytes_per_token, dense.qkv_width, dense.q_width,
                                dense.act_bytes))
        engine_terms = np.array((c, m, lk, self.engine.key_bits, graph.layers_per_stage, 1.0 + SPLIT_FLOOR_MARGIN,
                                 1.0 if self.weights_floor else 0.0))
        return _MixedTerms(dense, prefill, decode, graph_terms, engine_terms)

    def mixed_step(self, batch: StepBatch) -> tuple[StepTiming, int]:
        """`run(batch)` of a prefilling batch on the last stage in one jitted call (`kernels.mixed_step.
        mixed_step_fields`) from the layer parts and post ops of the step's graph and its halves' (found by their keys
        from the batch; no graph is built: a missing layer part comes from the plan's layer ops). The same floats
        (tests/test_split_floor.py)."""
        m = self._mixed
        new, past, dec = batch.prefill_new_tokens, batch.prefill_past_tokens, batch.decode_past_tokens
        whole = self._kernel_part(new, dec)
        if self.overlap and new.size + dec.size >= 2:
            halves = 2
            new1, past1, dec1, new2, past2, dec2 = two_halves(new, past, dec)
            part1, part2 = self._kernel_part(new1, dec1), self._kernel_part(new2, dec2)
        else:
            halves = 0
            new1 = new2 = new
            past1 = past2 = past
            dec1 = dec2 = dec
            part1 = part2 = whole
        fields, used = mixed_step_fields(new, past, dec, halves, new1, past1, dec1, new2, past2, dec2, *whole, *part1,
                                         *part2, m.prefill, m.decode, m.graph, m.engine, True, STATE_RTOL)
        return StepTiming(*fields.tolist()), used

    def _kernel_part(self, new: np.ndarray, dec: np.ndarray) -> tuple:
        """(op rows, flags and terms of its layer part, its post ops' rows and flags) of the last stage's graph of a
        batch prefilling `new` tokens per sequence and decoding `dec.size` sequences, for `kernels.mixed_step`; the
        layer part from the plan's layer ops (`DenseAttention.layer_ops`) where none is kept for its token count yet:
        no graph is built."""
        tokens = int_total(new) + dec.size
        key = (tokens, new.size, dec.size)
        hit = self._kernel_parts.get(key)
        if hit is None:
            dense, engine = self._mixed.dense, self.engine
            layer_key = dense.layer_key(tokens, new.size, dec.size)
            part = engine.kept_layer_part(layer_key)
            if part is None:
                part = engine.layer_part_of(layer_key, *dense.layer_ops(tokens, new.size, dec.size),
                                            dense.layers_per_stage)
            if len(self._kernel_parts) >= _KERNEL_PARTS_MAX:
                self._kernel_parts.clear()
            hit = self._kernel_parts[key] = (*part.kernel_terms(), *self._post_rows(tokens, new.size + dec.size))
        return hit

    def _post_rows(self, tokens: int, sequences: int) -> tuple[np.ndarray, np.ndarray]:
        """(op rows, collective flags) of the post ops of the last stage's graph of `tokens` tokens and `sequences`
        sequences (`StepEngine.post_table`): its final norm's rows, kept per token count, then its LM head's and
        sampling's, kept per sequence count."""
        dense, engine, norms, heads = self._mixed.dense, self.engine, self._norm_rows, self._head_rows
        norm = norms.get(tokens)
        if norm is None:
            if len(norms) >= _KERNEL_PARTS_MAX:
                norms.clear()
            norm = norms[tokens] = engine.post_table(dense.norm_ops(tokens))
        head = heads.get(sequences)
        if head is None:
            if len(heads) >= _KERNEL_PARTS_MAX:
                heads.clear()
            head = heads[sequences] = engine.post_table(dense.head_ops(sequences))
        return np.concatenate((norm[0], head[0])), np.concatenate((norm[1], head[1]))

    def _decode_fields(self, width: int):
        """`decode_values`' short path for `width` sequences (`StepEngine.decode_fields` of the first decode graph of that
        size), None where there is none (yet: until a step of that size has been timed, no graph is kept)."""
        made = self._decode_makers.get(width, False) if self._direct else None
        if made is False:
            last = self._decode_graphs.get((width, None))
            attention = None if last is None else decode_attention(last)
            made = None if attention is None else self.engine.decode_fields(last, attention)
            if last is not None:
                self._decode_makers[width] = made
        return made

    def decode_run(self, past0: np.ndarray, n: int, horizon_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(values, micro-batches) of a decode run's first n' <= n steps from cached tokens `past0`, as the fast-forward's
        Python path gives them (`decode_values` at the run's first step for the cap at `horizon_s`, then `_interpolate`),
        in one jitted call (`kernels.decode_run.decode_run_values`), where the short path's step is the kernel's (the
        device prices the attention op as the kernel does: `StepEngine.decode_fields`' `run_terms`); else None. The
        same floats (tests/test_split_floor.py)."""
        args = self._run_args.get(past0.size)
        if args is None:
            args = self._decode_run_args(past0.size)
            if args is None:
                return None
        ok, values = decode_run_values(past0, n, horizon_s, *args)
        if not ok:
            return None
        ones = self._ones
        if len(ones) < len(values):  # one micro-batch per step: views of one array of ones, grown as runs lengthen
            ones = self._ones = np.ones(max(len(values), 2 * len(ones)), dtype=np.int64)
        return values, ones[:len(values)]

    def _decode_floor(self, width: int) -> float | None:
        """The split floor a decode step of `width` sequences is tested against (`run` passes the split over on it
        alone): -1.0 where there is no split to rule out (no overlap, one sequence), None where it is not known yet
        (memoised per batch size when such a step is first timed)."""
        if not self.overlap or width < 2:
            return -1.0
        return self._floors.get((width, None)) if self._floors is not None else None

    def _decode_run_args(self, width: int) -> tuple | None:
        """`decode_run_values`' arguments after (past0, n, horizon_s) for `width` sequences, kept once found; None where
        the kernel does not serve them (yet: no graph of that size, or its split's floor, is known before a step of
        that size is timed)."""
        run_terms = getattr(self._decode_fields(width), "run_terms", None) if self._kernels else None
        if run_terms is None:
            return None
        floor_s = self._decode_floor(width)
        if floor_s is None:
            return None
        r = run_terms
        steps = np.array((*r.steps, self.cfg.pp, self.cfg.host_s_per_sequence, floor_s, 1.0 + SPLIT_FLOOR_MARGIN))
        args = self._run_args[width] = (r.seq_new, r.attention, r.op_bytes, steps, r.head, r.tail, r.ops, r.collective,
                                        r.bounds, r.row_at, r.prefetch, r.state_rtol, self.ff_rtol, _SECONDS_MASK,
                                        _STEP_S)
        return args

    def time_step(self, batch: StepBatch) -> tuple[float, StepTiming, int, float]:
        """(step seconds, summed stage timing, micro-batches, bubble seconds), memoised on the batch's values: a
        burst's prefill repeats the same chunks step after step, and equal batches time equally (the engine is
        deterministic and its caches are pure). A batch that both prefills and decodes is timed afresh: its decoding
        sequences' cached tokens grow every step, so it practically never comes again (none of ~18,000 in an hour
        of Azure traffic did), and its entry would only hold memory."""
        if batch.prefill_new_tokens.size and batch.decode_past_tokens.size:
            return self._time_step(batch)
        key = (batch.prefill_new_tokens.tobytes(), batch.prefill_past_tokens.tobytes(),
               batch.decode_past_tokens.tobytes())
        hit = self._memo.get(key)
        if hit is None:
            if len(self._memo) >= _STEP_MEMO_MAX:
                self._memo.clear()
            hit = self._memo[key] = self._time_step(batch)
        return hit

    def _time_step(self, batch: StepBatch) -> tuple[float, StepTiming, int, float]:
        step_s, timing, micro, bubble = self._device_step(batch)
        host_s = self.cfg.host_s_per_sequence * (batch.prefill_new_tokens.size + batch.decode_past_tokens.size)
        return max(step_s, host_s), timing, micro, bubble

    def _device_step(self, batch: StepBatch) -> tuple[float, StepTiming, int, float]:
        pp = self.cfg.pp
        parts = split_batch(batch, self.micro) if pp > 1 and self.micro > 1 else [batch]
        if len(parts) == 1:
            timing, halves = self.run(batch)
            if self.stages_before_last:
                before = sum(count * self.run(batch, stage)[0].time_s for stage, count in self.stages_before_last)
                return timing.time_s + before, timing, halves, before
            return timing.time_s * pp, timing, halves, (pp - 1) * timing.time_s
        timings = [self.run(p)[0] for p in parts]
        longest = max(t.time_s for t in timings)
        merged = _merge(timings)
        return merged.time_s + (pp - 1) * longest, merged, len(parts), (pp - 1) * longest


class _MixedTerms(NamedTuple):
    """`StepRunner.mixed_step`'s terms: the plan's attention fields, the device's terms for its prefill and decode
    attention ops (`kernels.decode_run.ATTENTION_TERMS`), and `kernels.mixed_step`'s GRAPH_TERMS and ENGINE_TERMS."""

    dense: Any
    prefill: np.ndarray
    decode: np.ndarray
    graph: np.ndarray
    engine: np.ndarray


def split_batch(batch: StepBatch, n: int) -> list[StepBatch]:
    """Up to n parts of a step, sequences dealt in contiguous runs; empty parts dropped."""
    new = _split(batch.prefill_new_tokens, n)
    past = _split(batch.prefill_past_tokens, n)
    # Deal decodes from the other end so a part with prefill work gets fewer decodes.
    dec = _split(batch.decode_past_tokens, n)[::-1]
    parts = [StepBatch(a, b, c) for a, b, c in zip(new, past, dec)]
    return [p for p in parts if p.prefill_new_tokens.size or p.decode_past_tokens.size]


def two_halves(new: np.ndarray, past: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, ...]:
    """`split_batch(StepBatch(new, past, dec), 2)`'s two parts' arrays (new, past, dec of the first, then of the
    second) for a batch of two sequences or more, whose halves are never empty: the first ceil(n / 2) prefilling
    sequences and the last floor(d / 2) decoding ones, then the rest. Views, without the parts' objects (a
    prefilling step's halves are priced once a step: `StepRunner.mixed_step`)."""
    at, cut = (new.size + 1) // 2, (dec.size + 1) // 2
    return new[:at], past[:at], dec[cut:], new[at:], past[at:], dec[:cut]


def _split(values: np.ndarray, n: int) -> list[np.ndarray]:
    """`np.array_split(values, n)` (the first len % n parts one longer), as views, without its overhead."""
    size, extra = divmod(len(values), n)
    out, at = [], 0
    for i in range(n):
        end = at + size + (i < extra)
        out.append(values[at:end])
        at = end
    return out


# What the fast-forward interpolates per step, by name (the columns of its value arrays): the step's seconds
# (start and end times), its pipeline bubble and every StepTiming field a StepRecord keeps. Fields named
# `_s` are seconds, checked against the step's seconds; the others (FLOPs, bytes) against themselves.
_FF_FIELDS = ("step_s", "bubble_s", *RECORDED_TIMING_FIELDS)
_SECONDS_MASK = np.array([name.endswith("_s") for name in _FF_FIELDS])
_STEP_S = _FF_FIELDS.index("step_s")
_FF_KEPT = np.array([i for i, name in enumerate(_FF_FIELDS) if i != _STEP_S])  # the columns a record keeps
_FF_COLUMNS = np.array([FIELD_INDEX[_FF_FIELDS[i]] for i in _FF_KEPT])


_FF_COPIED = np.stack((_FF_COLUMNS, _FF_KEPT), axis=1)  # (record column, values column) of the interpolated fields
# The other columns of a fast-forwarded run: equal on every step (in this order), and varying.
_RUN_CONSTANT = np.array([FIELD_INDEX[name] for name in ("replica", "prefill_tokens", "decode_tokens", "batch_size",
                                                           "waiting", "running", "tokens_out")])
_RUN_VARYING = np.array([FIELD_INDEX[name] for name in ("step", "start_at", "end_at", "micro_batches", "kv_blocks")])
_STEP_COLUMN, _START_COLUMN, _END_COLUMN, _TOKENS_OUT_COLUMN = (FIELD_INDEX[name] for name in
                                                                  ("step", "start_at", "end_at", "tokens_out"))


def _interpolate(timed, n: int, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """Values (columns `_FF_FIELDS`) and micro-batch counts of steps 0..n-1 from `timed(j) -> (values, micro)`,
    interpolating linearly over intervals whose midpoint lies on the chord of its ends (`kernels.chord.chord_fill`);
    others are split in two."""
    values = np.empty((n, len(_FF_FIELDS)))
    micro = np.empty(n, dtype=np.int64)
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        va, ma = timed(a)
        vb, mb = timed(b)
        values[a], micro[a], values[b], micro[b] = va, ma, vb, mb
        if b - a <= 1:
            continue
        m = (a + b) // 2
        vm, mm = timed(m)
        if ma == mb == mm:
            on_chord, rows = chord_fill(va, vb, vm, a, b, m, rtol, _SECONDS_MASK, _STEP_S)
            if on_chord:
                values[a + 1:b] = rows
                micro[a + 1:b] = ma
                continue
        stack += [(m, b), (a, m)]
    return values, micro


class _DecodeCurves:
    """Values (`_FF_FIELDS`) of decode-only steps of B sequences as a function of their total cached tokens S,
    kept as verified linear pieces per B, for runners whose decode step depends on (B, S) alone (`StepRunner.
    curves`: a serial engine, a device with `decode_cost_by_totals`, no micro-batch split).

    A decode run of n steps covers S0, S0 + B, ..., S0 + (n - 1) B. A run inside a piece is read off the piece
    (no step is built or priced); otherwise the piece nearest to it is grown over it, or a piece of the run alone
    is made. A piece [a, b] is accepted by the fast-forward's own test (`_interpolate`): its midpoint, and the
    ends of the piece it replaces, lie within `rtol` of the chord from f(a) to f(b) in every field (seconds
    relative to the step's seconds), with equal micro-batch counts. So the bound is the fast-forward's: for the
    step time, convex in S on a serial engine, within 2 x rtol everywhere on the piece. A run no piece covers
    falls back to `_interpolate` at the run's own points."""

    MAX_PIECES = 32  # per batch size

    def __init__(self, rtol: float) -> None:
        self.rtol = rtol
        self.pieces: dict[int, list[tuple[int, int, np.ndarray, np.ndarray, int]]] = {}
        self.hits = self.misses = 0

    @staticmethod
    def _at(time_step, width: int, total: int) -> tuple[np.ndarray, int]:
        """(values, micro-batches) of a decode step of `width` sequences caching `total` tokens in all."""
        base, extra = divmod(total, width)
        past = np.full(width, base, dtype=np.int64)
        past[:extra] += 1
        step_s, t, micro, bubble_s = time_step(StepBatch(_EMPTY, _EMPTY, past))
        return np.array((step_s, bubble_s, *recorded_timing_values(t))), micro

    def _linear(self, time_step, width: int, a: int, b: int, known: list) -> tuple | None:
        """The piece [a, b] if its midpoint and `known` points (total, values, micro) lie on its chord."""
        va, ma = self._at(time_step, width, a)
        vb, mb = self._at(time_step, width, b)
        if b - a > 1:
            m = (a + b) // 2
            known = [(m, *self._at(time_step, width, m)), *known]
        rtol = self.rtol
        for at, v, micro in known:
            if not ma == mb == micro:
                return None
            if not on_chord(va, vb, v, a, b, at, rtol, _SECONDS_MASK, _STEP_S):
                return None
        return (a, b, va, vb, ma)

    def _cover(self, time_step, width: int, lo: int, hi: int) -> tuple | None:
        pieces = self.pieces.setdefault(width, [])
        if pieces:
            near = min(pieces, key=lambda p: max(p[0] - hi, lo - p[1], 0))
            a, b = min(lo, near[0]), max(hi, near[1])
            piece = self._linear(time_step, width, a, b, [(near[0], near[2], near[4]), (near[1], near[3], near[4])])
            if piece is not None:
                pieces[:] = [p for p in pieces if not (a <= p[0] and p[1] <= b)]
                pieces.append(piece)
                return piece
        piece = self._linear(time_step, width, lo, hi, [])
        if piece is not None:
            if len(pieces) >= self.MAX_PIECES:
                pieces.pop(0)
            pieces.append(piece)
        return piece

    def run(self, time_step, past0: np.ndarray, n: int, horizon_s: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(values, micro-batches) of steps 0..n'-1 of a decode run from cached tokens `past0` (n' <= n: the steps
        that can start within `horizon_s`, as `_Replica.fast_forward` caps them), or None (no linear piece).
        `time_step`: the runner's (`StepRunner.time_step`; passed, not kept, so the runner and its curves hold no
        reference cycle)."""
        width, total = len(past0), int_total(past0)
        home = None
        for p in self.pieces.get(width, ()):  # the first piece holding `total` (a loop: ~2x a generator's speed)
            if p[0] <= total <= p[1]:
                home = p
                break
        if horizon_s < math.inf:
            if home is not None:
                a, b, va, vb, _ = home
                sa = va.item(_STEP_S)  # as a Python float: the same number, cheaper arithmetic
                first_s = sa + (vb.item(_STEP_S) - sa) * ((total - a) / (b - a)) if b > a else sa
            else:
                first_s = self._at(time_step, width, total)[0][_STEP_S]
            n = min(n, int(horizon_s / first_s * 1.25) + 2)
        last = total + (n - 1) * width
        piece = home if home is not None and last <= home[1] else None
        if piece is None:
            self.misses += 1
            piece = self._cover(time_step, width, total, last)
            if piece is None:
                return None
        else:
            self.hits += 1
        a, b, va, vb, micro = piece
        return chord_rows(va, vb, a, b, total, width, n), np.full(n, micro, dtype=np.int64)


def _prefill_chunk(s: Seq, tokens: int, start: float, end: float, done: list[Seq]) -> int:
    """Book a prefill chunk of `tokens` for `s` in the step from `start` to `end`: the token it emits when its
    prompt is done (1, else 0), and `s` appended to `done` if that was its last."""
    if s.scheduled_at < 0.0:
        s.scheduled_at = start
    s.prefilled += tokens
    s.cached += tokens
    if s.prefilled != s.prompt:
        return 0
    s.generated += 1
    if s.first_token_at < 0.0:
        s.first_token_at = end
    if s.generated >= s.req.output_tokens:
        done.append(s)
    return 1


def _merge(timings: list[StepTiming]) -> StepTiming:
    """Pipeline micro-batches of one step: every StepTiming field summed (they run one after another)."""
    return sum(timings[1:], timings[0])


class _Replica:
    """One data-parallel replica: its clock, scheduler, KV cache and records."""

    def __init__(self, index: int, runner: StepRunner, sched: Scheduler, trace_steps: int) -> None:
        self.index = index
        self.runner = runner
        self.sched = sched
        self.now = 0.0
        self.steps = StepLog()
        self.records: list[RequestRecord] = []
        self.trace_steps = trace_steps
        self.traced: list[tuple[int, float, StepBatch]] = []
        cfg = runner.cfg
        self.link_rng = np.random.default_rng([cfg.seed, index]) if cfg.link is not None else None

    def outstanding_tokens(self) -> int:
        """Prompt tokens still to prefill plus output tokens still to generate, over queued and running."""
        s = self.sched
        return sum(q.prompt - q.prefilled + q.req.output_tokens - q.generated
                   for group in (s.waiting, s.running) for q in group)

    def step(self) -> None:
        sched, kv = self.sched, self.sched.kv
        start = self.now
        kv.advance(start)
        plan = sched.plan(start)
        pre, dec = plan.prefill, plan.decode
        if not pre and not dec:  # cannot happen: an idle replica with work always admits one request
            raise RuntimeError(f"replica {self.index}: scheduler {sched.name} planned an empty step")
        batch = StepBatch(np.array([c for _, c in pre], dtype=np.int64),
                          np.array([s.prefilled for s, _ in pre], dtype=np.int64),
                          np.array([s.cached for s in dec], dtype=np.int64))
        step_s, timing, micro, bubble = self.runner.time_step(batch)
        link_s = self._link_s(batch) if self.link_rng is not None else 0.0
        end = start + step_s + link_s
        index = len(self.steps)
        if index < self.trace_steps:
            self.traced.append((index, start, batch))
        done: list[Seq] = []
        emitted = len(dec)
        for s, c in pre:
            emitted += _prefill_chunk(s, c, start, end, done)
        if sched.draft_tokens:  # speculative decoding: each sequence emits its accepted tokens
            emitted -= len(dec)
            for s in dec:
                k = emitted_tokens(s, sched.tokens_per_decode)
                s.decode_steps += 1
                s.cached += k
                s.generated += k
                emitted += k
                if s.first_token_at < 0.0:  # arrived prefilled: its first token here
                    s.first_token_at, s.scheduled_at = end, start
                if s.generated >= s.req.output_tokens:
                    done.append(s)
        else:
            for s in dec:
                s.cached += 1
                s.generated += 1
                if s.generated == 1:  # arrived prefilled (a prefill step emits every other first token)
                    s.first_token_at, s.scheduled_at = end, start
                if s.generated >= s.req.output_tokens:
                    done.append(s)
        self.now = end
        self.steps.append(step_row(index, self.index, start, end, batch, micro, timing, len(pre) + len(dec),
                                   len(sched.waiting), kv.used_blocks, bubble, len(sched.running), emitted, link_s))
        if done:
            self._finish(done, end)

    def _link_s(self, batch: StepBatch) -> float:
        """Seconds a step spends on the slow links between its pipeline's devices (`asicsim.core.links`): pp - 1
        hops forward with the step's activations (one message per hop), one hop back with its sampled tokens, each
        paying its bytes at the link's bandwidth plus a latency drawn for it."""
        cfg = self.runner.cfg
        link = cfg.link
        tokens = int(batch.prefill_new_tokens.sum()) + batch.decode_past_tokens.size
        activations = tokens * cfg.model.hidden_size * DTYPE_BYTES[cfg.act_dtype]
        sampled = (batch.prefill_new_tokens.size + batch.decode_past_tokens.size) * TOKEN_ID_BYTES
        return float((cfg.pp - 1) * link.transfer_s(activations) + link.transfer_s(sampled)
                     + link.latencies_s(self.link_rng, cfg.pp).sum())

    def _finish(self, done: list[Seq], end: float) -> None:
        """Requests whose last token came out of the step ending at `end`: free their blocks, record them."""
        sched, kv = self.sched, self.sched.kv
        kv.advance(end)
        for s in done:
            kv.free(s.rid)
            s.active = False
            r = s.req
            self.records.append(request_record(r.request_id, self.index, r.arrival_at, s.first_token_at, end,
                                              r.input_tokens, r.output_tokens, s.scheduled_at, s.preemptions))
        sched.running = [s for s in sched.running if s.active]

    def fast_forward(self, until_at: float) -> int:
        """Book the coming run of decode-only steps at once; returns how many steps (0: none to book).

        The scheduler vouches (`Scheduler.decode_run`) that the next n steps decode exactly its running
        sequences; the run also ends before the first step starting at or after `until_at` (the next
        arrival), so membership, order and KV use are those of stepping one at a time. Step j's batch
        differs from step 0's only by j more cached tokens per sequence, so its timing is a function f(j):
        the engine times the ends and the midpoint of the run and the values in between are interpolated
        linearly where the midpoint lies on the chord (within `rtol`), else both halves are refined
        (`_interpolate`). For a device whose op seconds are convex in the cached tokens (the serial GPU
        engine: max of affine compute, memory and launch times) the step time is convex in j, so a
        midpoint within rtol of the chord bounds the error everywhere on the interval by 2 x rtol.
        """
        if len(self.steps) < self.trace_steps:
            return 0  # traced steps keep their batches: step them one at a time
        sched = self.sched
        seqs, n = sched.decode_run()
        if n < FAST_FORWARD_MIN_STEPS:
            return self._prefill_forward(until_at)
        runner, now = self.runner, self.now
        past0 = np.fromiter([s.cached for s in seqs], dtype=np.int64, count=len(seqs))
        evals: dict[int, tuple[np.ndarray, int]] = {}

        def timed(j: int) -> tuple[np.ndarray, int]:
            hit = evals.get(j)
            if hit is None:
                hit = evals[j] = runner.decode_values(past0 + j)  # _FF_FIELDS
            return hit

        if runner.curves is not None:
            piece = runner.curves.run(runner.time_step, past0, n, until_at - now)
        else:
            piece = runner.decode_run(past0, n, until_at - now)
        if piece is not None:
            values, micro = piece
            n = len(values)
        else:
            if until_at < math.inf:  # steps after the next arrival are not needed (steps seldom get faster)
                n = min(n, int((until_at - now) / timed(0)[0][_STEP_S] * 1.25) + 2)
            values, micro = _interpolate(timed, n, runner.ff_rtol)
        kv = sched.kv
        block = kv.block_tokens
        caps = np.fromiter([s.cap for s in seqs], dtype=np.int64, count=len(seqs))
        width = len(seqs)
        constants = np.array((self.index, 0, width, width, len(sched.waiting), len(sched.running), width), dtype=float)
        # The clock (the sums of stepping; the steps before the arrival), the blocks in use and the log's rows.
        clock, k, used, rows = book_run(values, _STEP_S, micro, now, until_at, past0, caps, block, kv.used_blocks,
                                        _FF_COPIED, _RUN_CONSTANT, constants, len(self.steps), _RUN_VARYING,
                                        len(STEP_FIELDS))
        if k < 1:
            return 0
        starts, ends = clock[:k], clock[1:k + 1]
        held: dict[int, int] = {}
        done: list[Seq] = []
        for s in seqs:
            s.cached += k
            s.generated += k
            if s.first_token_at < 0.0:  # arrived prefilled: its first token ends the run's first step
                s.first_token_at, s.scheduled_at = float(ends[0]), float(starts[0])
            if s.cached > s.cap:
                blocks = -(-s.cached // block)
                held[s.rid] = blocks
                s.cap = blocks * block
            if s.generated >= s.req.output_tokens:
                done.append(s)
        kv.bulk_decode(held, used, starts, ends)
        self.steps.extend(k)[:] = rows
        self.now = float(ends[-1])
        if done:
            self._finish(done, self.now)
        return k

    def _prefill_forward(self, until_at: float) -> int:
        """Book the coming prefill-only steps the scheduler vouches for (`Scheduler.prefill_run`: a static batch
        prefilling) at once. Equal batches (a burst's equal prompts) are timed and turned into a record once; the
        clock is the same sums as stepping, and every sequence gets the same updates, step by step. The run stops
        before a step starting at or after `until_at` (the next arrival lengthens the queue a record shows) and
        after a step that finishes a request (a one-token output frees blocks and leaves the running list)."""
        run = self.sched.prefill_run()
        if len(run) < FAST_FORWARD_MIN_STEPS or self.now >= until_at:
            return 0
        sched, time_step = self.sched, self.runner.time_step
        kv = sched.kv
        counts = (len(sched.waiting), kv.used_blocks, len(sched.running))  # fixed until the run's last step
        kinds: dict[tuple, int] = {}
        seconds: list[float] = []
        rows: list[np.ndarray] = []
        kind_of = np.empty(len(run), dtype=np.int64)
        for j, chunks in enumerate(run):
            key = tuple([(c, p) for _, c, p in chunks])
            i = kinds.get(key)
            if i is None:
                i = kinds[key] = len(rows)
                batch = StepBatch(np.array([c for c, _ in key], dtype=np.int64),
                                  np.array([p for _, p in key], dtype=np.int64), _EMPTY)
                step_s, timing, micro, bubble = time_step(batch)
                values = step_values(0, self.index, 0.0, 0.0, batch, micro, timing, batch_size=len(chunks),
                                     waiting=counts[0], kv_blocks=counts[1], bubble=bubble, running=counts[2])
                seconds.append(step_s)
                rows.append(np.array([values[name] for name in STEP_FIELDS], dtype=np.float64))
            kind_of[j] = i
        clock = np.cumsum(np.concatenate(([self.now], np.array(seconds)[kind_of])))  # the sums of stepping
        k = int(np.searchsorted(clock[:len(run)], until_at, "left"))  # steps that start before the next arrival
        emitted = np.zeros(k, dtype=np.int64)
        done: list[Seq] = []
        for j in range(k):
            start, end = float(clock[j]), float(clock[j + 1])
            kv.advance(start)
            for s, c, _ in run[j]:
                emitted[j] += _prefill_chunk(s, c, start, end, done)
            if done:
                k = j + 1
                break
        if k < 1:
            return 0
        first = len(self.steps)
        block = self.steps.extend(k)
        block[:] = np.array(rows)[kind_of[:k]]
        block[:, _STEP_COLUMN] = np.arange(first, first + k)
        block[:, _START_COLUMN] = clock[:k]
        block[:, _END_COLUMN] = clock[1:k + 1]
        block[:, _TOKENS_OUT_COLUMN] = emitted[:k]
        self.now = float(clock[k])
        if done:
            self._finish(done, self.now)
        return k

    def result(self, plan: MemoryPlan, max_batch: int) -> ReplicaRun:
        kv = self.sched.kv
        steps = self.steps.table()
        if not max_batch:
            max_batch = int(steps.column("batch_size").max()) if len(steps) else 0
        return ReplicaRun(
            requests=tuple(self.records), steps=steps, plan=plan, max_batch=max_batch,
            peak_kv_tokens=kv.peak_blocks * kv.block_tokens, kv_capacity_blocks=kv.capacity_blocks,
            kv_block_tokens=kv.block_tokens, kv_peak_blocks=kv.peak_blocks, kv_mean_blocks=kv.mean_blocks(self.now),
            preemptions=self.sched.preemptions, traced=tuple(self.traced))


def step_record(index: int, replica: int, start_at: float, end_at: float, batch: StepBatch, micro_batches: int,
                timing: StepTiming, *, batch_size: int = -1, waiting: int = 0, kv_blocks: int = 0,
                bubble: float = 0.0, running: int = 0, tokens_out: int = 0) -> StepRecord:
    """The record of step `index` of a replica: its times, batch, `timing`'s recorded fields by name, and the
    replica's counts. `bubble`: pipeline fill/drain seconds inside the step; batch_size -1: the batch's."""
    return step_record_of(step_values(index, replica, start_at, end_at, batch, micro_batches, timing,
                                      batch_size=batch_size, waiting=waiting, kv_blocks=kv_blocks, bubble=bubble,
                                      running=running, tokens_out=tokens_out))


def step_values(index: int, replica: int, start_at: float, end_at: float, batch: StepBatch, micro_batches: int,
                timing: StepTiming, *, batch_size: int = -1, waiting: int = 0, kv_blocks: int = 0,
                bubble: float = 0.0, running: int = 0, tokens_out: int = 0, link_s: float = 0.0) -> dict:
    """`step_record`'s field values by name."""
    return dict(zip(STEP_FIELDS, step_row(index, replica, start_at, end_at, batch, micro_batches, timing, batch_size,
                                          waiting, kv_blocks, bubble, running, tokens_out, link_s)))


def step_row(index: int, replica: int, start_at: float, end_at: float, batch: StepBatch, micro_batches: int,
             timing: StepTiming, batch_size: int = -1, waiting: int = 0, kv_blocks: int = 0, bubble: float = 0.0,
             running: int = 0, tokens_out: int = 0, link_s: float = 0.0) -> list:
    """`step_values` as a row, in STEP_FIELDS order (`_ROW_ORDER`, checked at import): the step log's append."""
    if batch_size < 0:
        batch_size = batch.prefill_new_tokens.size + batch.decode_past_tokens.size
    return [index, replica, start_at, end_at, int_total(batch.prefill_new_tokens), batch.decode_past_tokens.size,
            micro_batches, *recorded_timing_values(timing), batch_size, waiting, kv_blocks, bubble, running,
            tokens_out, link_s]


_ROW_ORDER = ("step", "replica", "start_at", "end_at", "prefill_tokens", "decode_tokens", "micro_batches",
              *RECORDED_TIMING_FIELDS, "batch_size", "waiting", "kv_blocks", "bubble_s", "running", "tokens_out",
              "link_s")
if _ROW_ORDER != STEP_FIELDS:  # pragma: no cover - a StepRecord field added without its place in step_row
    raise ImportError(f"step_row builds {_ROW_ORDER}, the step record has {STEP_FIELDS}")
