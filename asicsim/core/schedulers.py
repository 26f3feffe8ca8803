"""Batch schedulers (a registry): which sequences run in the next engine step, and how many tokens each.

A scheduler sees one replica's queue (`waiting`, FCFS, arrived requests) and its `running` list (admitted
requests holding KV blocks, in admission order), and returns the step's prefill chunks and decode list.
It admits requests only when the paged KV cache has room (admission control) and, when a running
request needs a block and none is free, pre-empts the most recently admitted one by recompute: its blocks
are freed and it re-enters the front of the queue to prefill its prompt plus the tokens it has already
generated (vLLM's recompute pre-emption).

- `static`: a batch of up to `max_batch` queued requests, with KV blocks for their full length reserved
  up front; prompts run through prefill steps of at most `max_tokens_per_step` tokens, then the batch
  decodes until every request in it is done; only then does the next batch start.
- `continuous`: iteration-level batching (Orca, vLLM v0): new requests join the running batch at any step
  (FCFS, up to `max_batch` running); a step either prefills prompts (up to `max_tokens_per_step` tokens,
  a prompt split across steps where it does not fit, as static batching does) or, when no prompt work is
  left, decodes every running request one token. Prefill steps stall the decodes.
- `chunked-prefill` (Sarathi-Serve, vLLM v1): every step decodes all running requests and fills the rest
  of a `max_tokens_per_step` token budget with prefill chunks (started prompts first, then new ones).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from workloads.requests import Request

from .kvcache import PagedKVCache

__all__ = ["Seq", "StepPlan", "SCHEDULERS", "scheduler_names", "make_scheduler", "Scheduler"]


class Seq:
    """Mutable serving state of one request on one replica."""

    __slots__ = ("req", "rid", "prompt", "prefilled", "generated", "cached", "cap", "first_token_at",
                 "scheduled_at", "preemptions", "admit_order", "active")

    def __init__(self, req: Request) -> None:
        self.req = req
        self.rid = req.request_id
        self.prompt = req.input_tokens  # tokens to prefill (input + generated after a pre-emption)
        self.prefilled = 0
        self.generated = 0
        self.cached = 0  # tokens in the KV cache
        self.cap = 0  # tokens the held blocks can take
        self.first_token_at = -1.0
        self.scheduled_at = -1.0
        self.preemptions = 0
        self.admit_order = 0
        self.active = False  # in the running list

    @property
    def prefilling(self) -> bool:
        return self.prefilled < self.prompt


@dataclass
class StepPlan:
    """One step: prefill chunks (seq, new tokens) in order, then the decoding sequences."""

    prefill: list[tuple[Seq, int]] = field(default_factory=list)
    decode: list[Seq] = field(default_factory=list)


class Scheduler:
    """Shared admission and pre-emption logic; subclasses implement `plan`."""

    name = ""

    def __init__(self, kv: PagedKVCache, max_batch: int, max_tokens_per_step: int) -> None:
        self.kv = kv
        self.max_batch = max_batch or 1 << 30
        self.budget = max_tokens_per_step
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        self.preemptions = 0
        self._order = 0

    def plan(self, now_at: float) -> StepPlan:  # pragma: no cover - interface
        raise NotImplementedError

    # --- helpers --------------------------------------------------------------------------------------
    def _reserve(self, s: Seq, tokens: int) -> bool:
        """Hold blocks for `tokens` cached tokens of `s` if they fit."""
        if tokens <= s.cap:
            return True
        kv = self.kv
        if not kv.can_grow(s.rid, tokens):
            return False
        kv.grow(s.rid, tokens)
        s.cap = kv.held(s.rid) * kv.block_tokens
        return True

    def _admit(self, s: Seq) -> None:
        self._order += 1
        s.admit_order = self._order
        s.active = True
        self.running.append(s)

    def _preempt(self, victim: Seq) -> None:
        """Recompute pre-emption: free the victim's blocks and requeue it at the front."""
        self.kv.free(victim.rid)
        self.running.remove(victim)
        victim.active = False
        victim.prompt = victim.req.input_tokens + victim.generated
        victim.prefilled = victim.cached = victim.cap = 0
        victim.preemptions += 1
        self.preemptions += 1
        self.waiting.appendleft(victim)

    def _grow_or_preempt(self, s: Seq, tokens: int, protected: set[int]) -> bool:
        """Give `s` room for `tokens`, pre-empting the newest running requests not in `protected`.

        False if `s` itself had to go (it was the newest left).
        """
        while not self._reserve(s, tokens):
            victims = [v for v in self.running if v.rid not in protected and v is not s]
            if not victims:
                self._preempt(s)
                return False
            self._preempt(max(victims, key=lambda v: v.admit_order))
        return True

    def _decodes(self, limit: int) -> list[Seq]:
        """Running requests past their prefill that get one token this step (room made for each)."""
        out: list[Seq] = []
        protected: set[int] = set()
        for s in list(self.running):
            if len(out) >= limit:
                break
            if s.prefilled < s.prompt or not s.active:
                continue
            if s.cached + 1 > s.cap and not self._grow_or_preempt(s, s.cached + 1, protected):
                continue
            protected.add(s.rid)
            out.append(s)
        return [s for s in out if s.active]


class StaticScheduler(Scheduler):
    name = "static"

    def plan(self, now_at: float) -> StepPlan:
        if not self.running:
            kv = self.kv
            while self.waiting and len(self.running) < self.max_batch:
                s = self.waiting[0]
                full = s.prompt + s.req.output_tokens - s.generated
                if kv.extra_blocks(s.rid, full) > kv.free_blocks:
                    break
                self.waiting.popleft()
                self._reserve(s, full)
                self._admit(s)
        plan = StepPlan()
        pending = [s for s in self.running if s.prefilled < s.prompt]
        if pending:
            room = self.budget
            for s in pending:
                if room == 0:
                    break
                take = min(room, s.prompt - s.prefilled)
                plan.prefill.append((s, take))
                room -= take
        else:
            plan.decode = list(self.running)
        return plan


class ContinuousScheduler(Scheduler):
    name = "continuous"
    watermark = 0.01  # share of blocks kept free at admission (vLLM's default watermark)

    def plan(self, now_at: float) -> StepPlan:
        plan = StepPlan()
        room = self._prefills(plan, self.budget, set())
        if not plan.prefill:
            plan.decode = self._decodes(self.budget)
        return plan

    def _prefills(self, plan: StepPlan, room: int, protected: set[int]) -> int:
        """Fill `room` tokens with prefill chunks: started prompts first, then newly admitted ones (FCFS)."""
        for s in list(self.running):
            if room <= 0:
                break
            if s.prefilled >= s.prompt or not s.active:
                continue
            take = min(room, s.prompt - s.prefilled)
            if not self._grow_or_preempt(s, s.prefilled + take, protected):
                continue
            protected.add(s.rid)
            plan.prefill.append((s, take))
            room -= take
        kv = self.kv
        keep = int(self.watermark * kv.capacity_blocks)
        while room > 0 and self.waiting and len(self.running) < self.max_batch:
            s = self.waiting[0]
            take = min(room, s.prompt)
            if kv.extra_blocks(s.rid, take) > kv.free_blocks - (keep if self.running else 0):
                break
            self.waiting.popleft()
            self._reserve(s, take)
            self._admit(s)
            plan.prefill.append((s, take))
            room -= take
        plan.prefill = [(s, c) for s, c in plan.prefill if s.active]
        return room


class ChunkedPrefillScheduler(ContinuousScheduler):
    name = "chunked-prefill"

    def plan(self, now_at: float) -> StepPlan:
        plan = StepPlan()
        plan.decode = self._decodes(self.budget)
        self._prefills(plan, self.budget - len(plan.decode), {s.rid for s in plan.decode})
        plan.decode = [s for s in plan.decode if s.active]
        return plan


SCHEDULERS = {cls.name: cls for cls in (StaticScheduler, ContinuousScheduler, ChunkedPrefillScheduler)}


def scheduler_names() -> tuple[str, ...]:
    return tuple(SCHEDULERS)


def make_scheduler(name: str, kv: PagedKVCache, max_batch: int, max_tokens_per_step: int) -> Scheduler:
    from workloads.errors import InputError

    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise InputError("--scheduler", "scheduler", f"must be one of {', '.join(SCHEDULERS)}, got {name!r}") from None
    return cls(kv, max_batch, max_tokens_per_step)
