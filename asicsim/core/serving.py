"""Serving loop: static batching with chunked prefill, over data-parallel replicas of a TP x PP group.

Static batching: requests are taken in arrival order in batches of up to `max_batch`. A batch first runs
its prompts through prefill steps of at most `max_tokens_per_step` tokens (a prompt may be split across
steps); a request's first output token comes out of the step that finishes its prompt. Then the batch
decodes one token per request per step until every request in it is done; only then does the next batch
start. Replicas are independent copies serving requests dealt round-robin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from workloads.errors import InputError
from workloads.graph import build_step_graph
from workloads.graph_types import StepBatch
from workloads.models import ModelConfig
from workloads.requests import Request

from .device import Device
from .engine import StepEngine, StepTiming
from .memory_plan import MemoryPlan, plan_memory
from .results import RequestRecord, StepRecord

__all__ = ["ServingConfig", "ReplicaRun", "simulate_static", "check_parallelism"]


@dataclass(frozen=True)
class ServingConfig:
    """How a model is laid out and batched. `max_batch` 0 means as many requests as memory holds."""

    model: ModelConfig
    dtype: str
    kv_dtype: str
    tp: int
    pp: int
    max_batch: int
    max_tokens_per_step: int
    act_dtype: str = "bf16"


@dataclass(frozen=True)
class ReplicaRun:
    """Records of one replica plus the memory plan it ran under."""

    requests: tuple[RequestRecord, ...]
    steps: tuple[StepRecord, ...]
    plan: MemoryPlan
    max_batch: int
    peak_kv_tokens: int


def check_parallelism(chips: int, cfg: ServingConfig) -> int:
    """Number of data-parallel replicas; InputError if tp x pp does not divide the chips."""
    for flag, value in (("--chips", chips), ("--tp", cfg.tp), ("--pp", cfg.pp),
                        ("--max-tokens-per-step", cfg.max_tokens_per_step)):
        if value < 1:
            raise InputError(flag, flag.lstrip("-"), f"must be >= 1, got {value}")
    if cfg.max_batch < 0:
        raise InputError("--max-batch", "max-batch", f"must be >= 0 (0 = as many as fit), got {cfg.max_batch}")
    if chips % (cfg.tp * cfg.pp):
        raise InputError("--tp", "tp", f"tp x pp = {cfg.tp * cfg.pp} must divide --chips {chips}")
    return chips // (cfg.tp * cfg.pp)


def simulate_static(device: Device, chips: int, requests: Sequence[Request], cfg: ServingConfig) -> list[ReplicaRun]:
    """Run the requests on `chips` chips with static batching; one ReplicaRun per replica."""
    replicas = check_parallelism(chips, cfg)
    longest = max(r.input_tokens + r.output_tokens for r in requests)
    plan = plan_memory(cfg.model, device.memory_bytes_per_chip, dtype=cfg.dtype, kv_dtype=cfg.kv_dtype,
                       tp=cfg.tp, pp=cfg.pp, tokens_per_request=longest,
                       max_tokens_per_step=cfg.max_tokens_per_step, act_dtype=cfg.act_dtype, chips=chips)
    max_batch = cfg.max_batch or plan.max_batch_fit
    if max_batch > plan.max_batch_fit:
        raise InputError("--max-batch", "max-batch",
                         f"{max_batch} requests of {longest} tokens need "
                         f"{plan.peak_bytes(max_batch * longest) / 1e9:.2f} GB per chip, the device has "
                         f"{plan.capacity_bytes / 1e9:.2f} GB; at most {plan.max_batch_fit} fit")
    engine = StepEngine(device)
    runner = _StepRunner(engine, cfg, device.overlap_collectives)
    ordered = sorted(requests, key=lambda r: (r.arrival_at, r.request_id))
    return [_run_replica(runner, ordered[rep::replicas], rep, plan, max_batch) for rep in range(replicas)]


class _StepRunner:
    """Builds a step's graph and times it, choosing split micro-batches when the device gains from it."""

    def __init__(self, engine: StepEngine, cfg: ServingConfig, overlap: bool) -> None:
        self.engine = engine
        self.cfg = cfg
        self.overlap = overlap and cfg.tp > 1

    def _graph(self, batch: StepBatch):
        c = self.cfg
        return build_step_graph(c.model, batch, tp=c.tp, pp=c.pp, dtype=c.dtype, kv_dtype=c.kv_dtype,
                                act_dtype=c.act_dtype)

    def run(self, batch: StepBatch) -> tuple[StepTiming, int]:
        """(timing of one pipeline stage, micro-batch count) for the step."""
        whole = self.engine.run_step([self._graph(batch)])
        if not self.overlap:
            return whole, 1
        halves = _split(batch)
        if halves is None:
            return whole, 1
        split = self.engine.run_step([self._graph(h) for h in halves])
        return (split, 2) if split.time_s < whole.time_s else (whole, 1)


def _split(batch: StepBatch) -> tuple[StepBatch, StepBatch] | None:
    """Two halves of a step by sequences (prefill and decode each halved); None if it cannot split."""
    n_pre, n_dec = batch.prefill_new_tokens.size, batch.decode_past_tokens.size
    if n_pre + n_dec < 2:
        return None
    a_pre, a_dec = (n_pre + 1) // 2, n_dec // 2 if n_pre % 2 else (n_dec + 1) // 2
    first = StepBatch(batch.prefill_new_tokens[:a_pre], batch.prefill_past_tokens[:a_pre],
                      batch.decode_past_tokens[:a_dec])
    second = StepBatch(batch.prefill_new_tokens[a_pre:], batch.prefill_past_tokens[a_pre:],
                       batch.decode_past_tokens[a_dec:])
    if first.tokens == 0 or second.tokens == 0:
        return None
    return first, second


def _run_replica(runner: _StepRunner, reqs: Sequence[Request], replica: int, plan: MemoryPlan,
                 max_batch: int) -> ReplicaRun:
    cfg = runner.cfg
    now = 0.0
    steps: list[StepRecord] = []
    records: list[RequestRecord] = []
    peak_kv = 0

    def step(batch: StepBatch) -> float:
        nonlocal now
        timing, micro = runner.run(batch)
        start, now = now, now + timing.time_s * cfg.pp
        steps.append(_step_record(len(steps), replica, start, now, batch, micro, timing))
        return now

    for first in range(0, len(reqs), max_batch):
        batch_reqs = reqs[first:first + max_batch]
        now = max(now, max(r.arrival_at for r in batch_reqs))
        first_token = _prefill(batch_reqs, cfg.max_tokens_per_step, step)
        generated = {r.request_id: 1 for r in batch_reqs}
        finish = {r.request_id: first_token[r.request_id] for r in batch_reqs if r.output_tokens <= 1}
        active = [r for r in batch_reqs if r.output_tokens > 1]
        while active:
            past = np.fromiter((r.input_tokens + generated[r.request_id] - 1 for r in active), np.int64, len(active))
            peak_kv = max(peak_kv, int(past.sum()) + len(active))
            end = step(StepBatch.make(decode_past=past))
            for r in active:
                generated[r.request_id] += 1
                if generated[r.request_id] == r.output_tokens:
                    finish[r.request_id] = end
            active = [r for r in active if generated[r.request_id] < r.output_tokens]
        peak_kv = max(peak_kv, sum(r.input_tokens + r.output_tokens for r in batch_reqs))
        records.extend(RequestRecord(r.request_id, replica, r.arrival_at, first_token[r.request_id],
                                     finish[r.request_id], r.input_tokens, r.output_tokens) for r in batch_reqs)
    return ReplicaRun(tuple(records), tuple(steps), plan, max_batch, peak_kv)


def _prefill(batch_reqs: Sequence[Request], budget: int, step) -> dict[int, float]:
    """Chunked prefill of a batch's prompts in steps of at most `budget` tokens; first-token times."""
    first_token: dict[int, float] = {}
    pending = [[r.request_id, r.input_tokens, 0] for r in batch_reqs]  # id, remaining, done
    while pending:
        room = budget
        ids, new, past = [], [], []
        for item in pending:
            if room == 0:
                break
            take = min(room, item[1])
            ids.append(item[0])
            new.append(take)
            past.append(item[2])
            item[1] -= take
            item[2] += take
            room -= take
        end = step(StepBatch.make(prefill_new=new, prefill_past=past))
        for item in pending:
            if item[1] == 0:
                first_token[item[0]] = end
        pending = [item for item in pending if item[1] > 0]
    return first_token


def _step_record(index: int, replica: int, start: float, end: float, batch: StepBatch, micro: int,
                 t: StepTiming) -> StepRecord:
    kinds = dict(t.by_kind_s)
    return StepRecord(
        step=index, replica=replica, start_at=start, end_at=end,
        prefill_tokens=batch.prefill_tokens, decode_tokens=batch.decode_tokens, micro_batches=micro,
        compute_busy_s=t.compute_busy_s, memory_busy_s=t.memory_busy_s, link_busy_s=t.link_busy_s,
        fixed_s=t.fixed_s, ideal_compute_s=t.ideal_compute_s, stall_s=t.stall_s, memory_wait_s=t.memory_wait_s,
        flops_per_chip=t.flops, memory_bytes_per_chip=t.memory_bytes,
        gemm_s=kinds.get("gemm", 0.0), attention_s=kinds.get("attention", 0.0),
        collective_s=kinds.get("collective", 0.0), other_s=kinds.get("other", 0.0),
    )
