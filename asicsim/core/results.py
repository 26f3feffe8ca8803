"""Frozen result records of a serving run, and their tidy DataFrames and JSON summary."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

__all__ = ["RequestRecord", "StepRecord", "RunResult", "percentile", "step_records"]


@dataclass(frozen=True)
class RequestRecord:
    """One request's life: times in simulated seconds from the start of the run."""

    request_id: int
    replica: int
    arrival_at: float
    first_token_at: float
    finish_at: float
    input_tokens: int
    output_tokens: int
    scheduled_at: float = -1.0  # first step that ran any of it (-1: not recorded)
    preemptions: int = 0

    @property
    def queueing_delay_s(self) -> float:
        """Time from arrival to the first step that worked on the request."""
        return (self.scheduled_at if self.scheduled_at >= 0.0 else self.first_token_at) - self.arrival_at

    @property
    def ttft_s(self) -> float:
        return self.first_token_at - self.arrival_at

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first (0 for one-token outputs)."""
        if self.output_tokens <= 1:
            return 0.0
        return (self.finish_at - self.first_token_at) / (self.output_tokens - 1)

    @property
    def e2e_s(self) -> float:
        return self.finish_at - self.arrival_at


@dataclass(frozen=True)
class StepRecord:
    """One engine step of one replica (all chips of the replica in lock-step)."""

    step: int
    replica: int
    start_at: float
    end_at: float
    prefill_tokens: int
    decode_tokens: int
    micro_batches: int
    compute_busy_s: float
    memory_busy_s: float
    link_busy_s: float
    fixed_s: float
    ideal_compute_s: float
    stall_s: float
    memory_wait_s: float
    flops_per_chip: float
    memory_bytes_per_chip: float
    gemm_s: float
    attention_s: float
    collective_s: float
    other_s: float
    batch_size: int = 0  # sequences in the step
    waiting: int = 0  # requests queued at the replica when the step started
    kv_blocks: int = 0  # KV blocks held on the replica during the step
    bubble_s: float = 0.0  # pipeline fill/drain time inside the step
    running: int = 0  # requests admitted (holding KV) when the step started
    tokens_out: int = 0  # output tokens the step emitted


_STEP_FIELDS = tuple(f.name for f in fields(StepRecord))


def step_records(columns) -> list[StepRecord]:
    """StepRecords from one column per field, in field order (fast: no per-field frozen setattr)."""
    new, names, out = object.__new__, _STEP_FIELDS, []
    for row in zip(*columns):
        record = new(StepRecord)
        record.__dict__.update(zip(names, row))
        out.append(record)
    return out


def percentile(values: np.ndarray, q: float) -> float:
    """Percentile with linear interpolation; 0.0 for an empty array."""
    return float(np.percentile(values, q)) if len(values) else 0.0


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced: its inputs, per-request and per-step records, and the summary."""

    summary: dict
    requests: tuple[RequestRecord, ...]
    steps: tuple[StepRecord, ...]
    timeline: dict | None = None  # Chrome trace events of the first steps, when asked for
    description: object = None  # the resolved RunDescription the run served

    def requests_frame(self) -> pd.DataFrame:
        """One row per request, with TTFT, TPOT and end-to-end latency."""
        frame = _frame(RequestRecord, self.requests)
        for name in ("ttft_s", "tpot_s", "e2e_s", "queueing_delay_s"):
            frame[name] = [getattr(r, name) for r in self.requests]
        return frame

    def steps_frame(self) -> pd.DataFrame:
        """One row per engine step."""
        return _frame(StepRecord, self.steps)


def _frame(cls, records) -> pd.DataFrame:
    names = [f.name for f in fields(cls)]
    return pd.DataFrame({n: [getattr(r, n) for r in records] for n in names}, columns=names)
