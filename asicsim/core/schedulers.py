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
- `inflight` (TensorRT-LLM in-flight batching with its default GUARANTEED_NO_EVICT capacity scheduler and
  context chunking off): a request is admitted (FCFS, up to `max_batch` in flight) only if KV blocks for its
  whole prompt + output can be reserved, so it is never pre-empted; every step decodes the running
  requests (one token each) and adds whole prompts while decode tokens + prompt tokens stay within
  `max_tokens_per_step` (`max_num_tokens`); the first prompt that does not fit ends the step's admissions.
  A prompt longer than the whole budget (TensorRT-LLM rejects it at build time) runs alone in a step.
- `inflight-chunked`: the same admission with context chunking on (TensorRT-LLM `enable_chunked_context`,
  FIRST_COME_FIRST_SERVED chunking policy): decodes first, then started prompts and new ones in order,
  each taking as much of the remaining token budget as it needs (chunks are not aligned to KV blocks).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field

from asicsim.workloads.requests import Request

from .kvcache import PagedKVCache, growth_steps

__all__ = ["Seq", "StepPlan", "SCHEDULERS", "scheduler_names", "make_scheduler", "Scheduler", "emitted_tokens"]


class Seq:
    """Mutable serving state of one request on one replica."""

    __slots__ = ("req", "rid", "prompt", "prefilled", "generated", "cached", "cap", "first_token_at",
                 "scheduled_at", "preemptions", "admit_order", "active", "decode_steps")

    def __init__(self, req: Request) -> None:
        self.req = req
        self.rid = req.request_id
        self.prompt = req.input_tokens  # tokens to prefill (input + generated after a pre-emption)
        # A request that arrives prefilled (its prompt's KV cache sent from a prefill pool) decodes at once.
        self.prefilled = req.input_tokens if req.prefilled else 0
        self.generated = 0
        self.cached = self.prefilled  # tokens in the KV cache
        self.cap = 0  # tokens the held blocks can take
        self.first_token_at = -1.0
        self.scheduled_at = -1.0
        self.preemptions = 0
        self.admit_order = 0
        self.active = False  # in the running list
        self.decode_steps = 0  # decode steps taken (the speculative-decoding emission pattern counts them)

    @property
    def prefilling(self) -> bool:
        return self.prefilled < self.prompt

    @property
    def arrived_prefilled(self) -> bool:
        """Waiting with its whole prompt already in KV (a disaggregated decode pool's arrival)."""
        return not self.active and self.prefilled >= self.prompt


@dataclass
class StepPlan:
    """One step: prefill chunks (seq, new tokens) in order, then the decoding sequences."""

    prefill: list[tuple[Seq, int]] = field(default_factory=list)
    decode: list[Seq] = field(default_factory=list)


class Scheduler:
    """Shared admission and pre-emption logic; subclasses implement `plan`."""

    name = ""

    def __init__(self, kv: PagedKVCache, max_batch: int, max_tokens_per_step: int, draft_tokens: int = 0,
                 tokens_per_decode: float = 1.0) -> None:
        self.kv = kv
        self.max_batch = max_batch or 1 << 30
        self.budget = max_tokens_per_step
        # Speculative decoding (multi-token prediction): each decode step verifies 1 + draft_tokens tokens per
        # sequence (room for all of them is held, vLLM's lookahead slots) and emits tokens_per_decode on average.
        self.draft_tokens = draft_tokens
        self.tokens_per_decode = tokens_per_decode
        self.waiting: deque[Seq] = deque()
        self.running: list[Seq] = []
        self.preemptions = 0
        self._order = 0

    def plan(self, now_at: float) -> StepPlan:  # pragma: no cover - interface
        raise NotImplementedError

    # --- fast-forward -----------------------------------------------------------------------------------
    decode_limit = 1 << 62  # most sequences one decode step takes

    def decode_run(self) -> tuple[list[Seq], int]:
        """(sequences, n) when the next n steps are certain to be decode-only steps of exactly the running
        sequences (in running order), with no admission, pre-emption or finish before the last, provided no
        request arrives meanwhile; ([], 0) otherwise. Every KV block those steps take is free now (the caller
        counts them: kvcache.blocks_taken).

        Why nothing else can happen: membership changes only by arrival, admission, pre-emption or finish.
        A finish first happens at step min(output - generated) - 1; a pre-emption only when a block is
        needed and none is free, which the growth events bound; admission is refused now and stays refused,
        because free blocks only fall during the run and the queue head, room and running count are fixed.
        """
        run = self.running
        if self.draft_tokens:  # a step emits a varying number of tokens: no run of identical steps
            return [], 0
        if not run or len(run) > self.decode_limit or run[-1].prefilled < run[-1].prompt:
            return [], 0  # the last admitted prompt is the last to finish prefill: checked first, O(1)
        kv = self.kv
        free = kv.free_blocks
        if self.waiting and not self._admission_refused(len(run), free, len(run)):
            # Admission only gets more refused as the step's decodes take more blocks (every scheduler's test
            # is monotone in them): admitted even if every decode took one, so admitted now. O(1), before O(n).
            return [], 0
        remaining = 1 << 62
        first_growth = 0  # blocks the first step takes
        for s in run:
            if s.prefilled < s.prompt or not s.active:
                return [], 0
            left = s.req.output_tokens - s.generated
            if left < remaining:
                remaining = left
            if s.cached >= s.cap:
                first_growth += 1
        if remaining < 1 or first_growth > free or not self._admission_refused(len(run), free, first_growth):
            return [], 0
        n = remaining
        block = kv.block_tokens
        if len(run) * ((n - 1) // block + 1) > free:  # more blocks than are free might be taken (each sequence takes
            # at most one every `block` steps): the run ends before the step that would need one beyond them
            growth = growth_steps([s.cached for s in run], [s.cap for s in run], block, n)
            if growth.size > free:
                n = int(growth[free])
        return (list(run), n) if n >= 1 else ([], 0)

    def _admission_refused(self, running: int, free: int, first_growth: int) -> bool:
        """Whether the next step admits nothing (with `first_growth` blocks taken by its decodes)."""
        return True

    def prefill_run(self) -> list[tuple[tuple[Seq, int, int], ...]]:
        """The chunks (sequence, new tokens, tokens cached before) of each of the coming steps, in order, when
        those steps are certain to be prefill-only whatever the clock brings; [] when they are not (the default:
        schedulers that admit arrivals or mix decodes into prefill steps decide step by step)."""
        return []

    # --- requests that arrive prefilled (a disaggregated decode pool) ------------------------------------
    def _prefilled_tokens(self, s: Seq) -> int:
        """Tokens whose blocks a prefilled arrival takes at admission: its cached prompt (growth as it decodes)."""
        return s.cached

    def _keep_blocks(self) -> int:
        """Blocks admission leaves free (a watermark); none by default."""
        return 0

    def _prefilled_head_refused(self, running: int, free: int) -> bool | None:
        """For a queue head that arrived prefilled, whether `_admit_prefilled` refuses it (None: no such head)."""
        if not self.waiting or not self.waiting[0].arrived_prefilled:
            return None
        s = self.waiting[0]
        return running >= self.max_batch or self.kv.extra_blocks(s.rid, self._prefilled_tokens(s)) > free - (
            self._keep_blocks() if running else 0)

    def _admit_prefilled(self) -> None:
        """Admit the queue heads that arrived prefilled (FCFS, up to max_batch, while blocks allow), before the step's
        decodes are chosen, so they decode in this step: no prefill chunk, no share of the token budget."""
        while self._prefilled_head_refused(len(self.running), self.kv.free_blocks) is False:
            s = self.waiting.popleft()
            self._reserve(s, self._prefilled_tokens(s))
            self._admit(s)

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
            need = s.cached + 1 + self.draft_tokens
            if need > s.cap and not self._grow_or_preempt(s, need, protected):
                continue
            protected.add(s.rid)
            out.append(s)
        return [s for s in out if s.active]


class StaticScheduler(Scheduler):
    name = "static"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The running sequences with prompt left to prefill, in running order: what the step's prefill walks
        # (a scan of the whole batch per step cost a 512-request sweep point ~14% of its time). Prefill takes
        # them in order and only the first ones complete, nothing pre-empts or finishes a static batch's
        # sequence before its prefill is done, so the done ones are always at the front.
        self._unprefilled: deque[Seq] = deque()

    def _admit(self, s: Seq) -> None:
        super()._admit(s)
        if s.prefilled < s.prompt:
            self._unprefilled.append(s)

    def prefill_run(self) -> list[tuple[tuple[Seq, int, int], ...]]:
        """While a batch prefills: the rest of its prefill steps, `plan`'s chunks step after step. The clock
        changes none of them: arrivals wait for the whole batch to finish, and nothing decodes, is pre-empted or
        is admitted before its last prompt is prefilled."""
        if not self.running:
            return []  # the next plan admits a batch
        pending = [s for s in self._unprefilled if s.active and s.prefilled < s.prompt]
        left = [s.prompt - s.prefilled for s in pending]
        steps, first, n = [], 0, len(pending)
        while first < n:
            room, chunks, j = self.budget, [], first
            while j < n and room != 0:
                take = min(room, left[j])
                chunks.append((pending[j], take, pending[j].prompt - left[j]))
                room -= take
                left[j] -= take
                j += 1
            while first < n and left[first] == 0:
                first += 1
            steps.append(tuple(chunks))
        return steps

    def _admit_batch(self) -> None:
        """Admit queue heads (FCFS, up to max_batch) while blocks for their whole length fit: the next batch.
        The blocks are sized in one pass and taken at once (a 512-request batch took 2.7 ms as a `_reserve` per
        request)."""
        kv, waiting, extra = self.kv, self.waiting, self.draft_tokens
        heads = itertools.islice(waiting, min(self.max_batch, len(waiting)))
        needs = kv.fitting_prefix((s.rid, s.prompt + s.req.output_tokens - s.generated + extra) for s in heads)
        if not needs:
            return
        batch = [waiting.popleft() for _ in needs]
        kv.take_blocks([(s.rid, need) for s, need in zip(batch, needs)])
        block = kv.block_tokens
        for s in batch:
            s.cap = max(s.cap, kv.held(s.rid) * block)  # `_reserve`: the fit is known
            self._admit(s)

    def plan(self, now_at: float) -> StepPlan:
        if not self.running:
            self._admit_batch()
        plan = StepPlan()
        pending = self._unprefilled
        while pending and not (pending[0].active and pending[0].prefilled < pending[0].prompt):
            pending.popleft()
        if pending:
            room = self.budget
            for s in pending:
                if room == 0:
                    break
                if not (s.active and s.prefilled < s.prompt):
                    continue
                take = min(room, s.prompt - s.prefilled)
                plan.prefill.append((s, take))
                room -= take
        else:
            plan.decode = list(self.running)
        return plan


class ContinuousScheduler(Scheduler):
    name = "continuous"
    watermark = 0.01  # share of blocks kept free at admission (vLLM's default watermark)

    @property
    def decode_limit(self) -> int:  # type: ignore[override]
        return self.budget

    def _admission_refused(self, running: int, free: int, first_growth: int) -> bool:
        # Prompts are admitted before the step's decodes grow: the whole budget, all free blocks.
        prefilled = self._prefilled_head_refused(running, free)
        return self._refused(self.budget, running, free) if prefilled is None else prefilled

    def _keep_blocks(self) -> int:
        return int(self.watermark * self.kv.capacity_blocks)

    def _refused(self, room: int, running: int, free: int) -> bool:
        """The admission test of `_prefills` for the queue head, with `free` blocks free."""
        if room <= 0 or not self.waiting or running >= self.max_batch:
            return True
        s = self.waiting[0]
        keep = int(self.watermark * self.kv.capacity_blocks) if running else 0
        return self.kv.extra_blocks(s.rid, min(room, s.prompt)) > free - keep

    def plan(self, now_at: float) -> StepPlan:
        self._admit_prefilled()
        plan = StepPlan()
        self._prefills(plan, self.budget, set())
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

    def _admission_refused(self, running: int, free: int, first_growth: int) -> bool:
        # Prefilled arrivals are admitted before the decodes; prompts fill the budget the decodes leave, after
        # the decodes grew.
        prefilled = self._prefilled_head_refused(running, free)
        if prefilled is not None:
            return prefilled
        return self._refused(self.budget - running, running, free - first_growth)

    def plan(self, now_at: float) -> StepPlan:
        self._admit_prefilled()
        plan = StepPlan()
        plan.decode = self._decodes(self.budget)
        self._prefills(plan, self.budget - len(plan.decode), {s.rid for s in plan.decode})
        plan.decode = [s for s in plan.decode if s.active]
        return plan


class InflightScheduler(Scheduler):
    """TensorRT-LLM in-flight batching: GUARANTEED_NO_EVICT admission, whole (unchunked) prompts.

    Sources: the capacity scheduler policy defaults to guaranteed_no_evict and `--enable_chunked_context`
    defaults to off in `trtllm-bench throughput` (NVIDIA/TensorRT-LLM tensorrt_llm/bench/benchmark/
    throughput.py); the micro-batch scheduler fills `max_num_tokens` with generation tokens and whole
    context requests in request order (TensorRT-LLM docs, "Tuning Max Batch Size and Max Num Tokens").
    """

    name = "inflight"

    @property
    def decode_limit(self) -> int:  # type: ignore[override]
        return self.budget

    def _full(self, s: Seq) -> int:
        """Tokens whose KV a request reserves at admission: its whole prompt and remaining output."""
        return s.prompt + s.req.output_tokens - s.generated

    def _prefilled_tokens(self, s: Seq) -> int:
        return self._full(s)  # GUARANTEED_NO_EVICT: its whole length, prefilled or not

    def _admission_refused(self, running: int, free: int, first_growth: int) -> bool:
        prefilled = self._prefilled_head_refused(running, free)
        if prefilled is not None:
            return prefilled
        if not self.waiting or running >= self.max_batch:
            return True
        s = self.waiting[0]
        if self.kv.extra_blocks(s.rid, self._full(s)) > free - first_growth:
            return True
        room = self.budget - min(running, self.budget)
        return room < s.prompt <= self.budget

    def plan(self, now_at: float) -> StepPlan:
        self._admit_prefilled()
        plan = StepPlan()
        plan.decode = self._decodes(self.budget)
        room = self.budget - len(plan.decode)
        while self.waiting and len(self.running) < self.max_batch:
            head = self.waiting[0]
            if head.prompt > room and (plan.prefill or head.prompt <= self.budget):
                break
            s = self._admit_head()
            if s is None:
                break
            plan.prefill.append((s, s.prompt))
            room -= s.prompt
        return plan

    def _admit_head(self):
        """Admit the first waiting request if KV for its whole length can be reserved (no eviction later)."""
        s = self.waiting[0]
        full = self._full(s)
        if self.kv.extra_blocks(s.rid, full) > self.kv.free_blocks:
            return None
        self.waiting.popleft()
        self._reserve(s, full)
        self._admit(s)
        return s


class InflightChunkedScheduler(InflightScheduler):
    """TensorRT-LLM in-flight batching with GUARANTEED_NO_EVICT admission and chunked context.

    Source: trtllm-bench's executor settings of the TensorRT-backend flow enable chunked context by default
    with the FIRST_COME_FIRST_SERVED chunking policy (NVIDIA/TensorRT-LLM tensorrt_llm/bench/run/
    dataclasses.py, `ExecutorSettingsConfig.chunking`).
    """

    name = "inflight-chunked"

    def _admission_refused(self, running: int, free: int, first_growth: int) -> bool:
        prefilled = self._prefilled_head_refused(running, free)
        if prefilled is not None:
            return prefilled
        if not self.waiting or running >= self.max_batch or running >= self.budget:
            return True
        s = self.waiting[0]
        return self.kv.extra_blocks(s.rid, self._full(s)) > free - first_growth

    def plan(self, now_at: float) -> StepPlan:
        self._admit_prefilled()
        plan = StepPlan()
        plan.decode = self._decodes(self.budget)
        room = self.budget - len(plan.decode)
        for s in self.running:
            if room <= 0:
                break
            if s.prefilled < s.prompt:
                take = min(room, s.prompt - s.prefilled)
                plan.prefill.append((s, take))
                room -= take
        while room > 0 and self.waiting and len(self.running) < self.max_batch:
            s = self._admit_head()
            if s is None:
                break
            take = min(room, s.prompt)
            plan.prefill.append((s, take))
            room -= take
        return plan


SCHEDULERS = {cls.name: cls for cls in (StaticScheduler, ContinuousScheduler, ChunkedPrefillScheduler,
                                        InflightScheduler, InflightChunkedScheduler)}


def scheduler_names() -> tuple[str, ...]:
    return tuple(SCHEDULERS)


def emitted_tokens(s: Seq, tokens_per_decode: float) -> int:
    """Tokens a decode step of `s` emits with speculative decoding: the deterministic pattern whose running total
    after j steps is floor(j x tokens_per_decode) (at least one a step), capped at the request's remaining output."""
    j = s.decode_steps
    due = math.floor((j + 1) * tokens_per_decode + 1e-9) - math.floor(j * tokens_per_decode + 1e-9)
    return max(1, min(due, s.req.output_tokens - s.generated))


def make_scheduler(name: str, kv: PagedKVCache, max_batch: int, max_tokens_per_step: int, draft_tokens: int = 0,
                   tokens_per_decode: float = 1.0) -> Scheduler:
    from asicsim.workloads.errors import RUN, InputError

    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise InputError(RUN, "scheduler", f"must be one of {', '.join(SCHEDULERS)}, got {name!r}") from None
    return cls(kv, max_batch, max_tokens_per_step, draft_tokens, tokens_per_decode)
