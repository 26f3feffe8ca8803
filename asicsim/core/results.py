"""Frozen result records of a serving run, and their tidy DataFrames and JSON summary."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from operator import attrgetter
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .engine import StepTiming

__all__ = ["RequestRecord", "StepRecord", "RunResult", "percentile", "step_records", "RECORDED_TIMING_FIELDS",
           "recorded_timing", "recorded_timing_values", "step_record_of"]


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


# StepTiming's fields a step record keeps: all but `time_s` (one stage's time; a record has start_at and end_at,
# which with a pipeline span more than one stage's time).
RECORDED_TIMING_FIELDS = tuple(f.name for f in fields(StepTiming) if f.name != "time_s")
# StepTiming -> the values of RECORDED_TIMING_FIELDS, in that order (a tuple; fast).
recorded_timing_values = attrgetter(*RECORDED_TIMING_FIELDS)


def recorded_timing(timing: StepTiming) -> dict[str, float]:
    """The fields of `timing` a StepRecord keeps, by name."""
    return dict(zip(RECORDED_TIMING_FIELDS, recorded_timing_values(timing)))


def _timing_fields_after(anchor: str):
    """Class decorator (under @dataclass): StepTiming's recorded fields, as declared there, become fields of
    the class right after `anchor`. A field added to StepTiming is a StepRecord field, with no edit here."""

    def insert(cls):
        own = list(cls.__dict__["__annotations__"].items())
        timing = {f.name: f.type for f in fields(StepTiming) if f.name in RECORDED_TIMING_FIELDS}
        clash = timing.keys() & {name for name, _ in own}
        if clash:
            raise TypeError(f"{cls.__name__} declares StepTiming fields itself: {sorted(clash)}")
        at = [name for name, _ in own].index(anchor) + 1
        cls.__annotations__ = dict([*own[:at], *timing.items(), *own[at:]])
        for f in fields(StepTiming):
            if f.name in timing and f.default is not MISSING:
                setattr(cls, f.name, f.default)  # StepTiming's default (0.0): a new field breaks no caller
        return cls

    return insert


@dataclass(frozen=True)
@_timing_fields_after("micro_batches")
class StepRecord:
    """One engine step of one replica (all chips of the replica in lock-step).

    After `micro_batches` come StepTiming's fields but `time_s`, by name and in StepTiming's order
    (compute_busy_s ... other_s: busy seconds per unit, FLOPs and HBM bytes per chip, time per op kind),
    summed over the step's pipeline micro-batches; see `asicsim.core.engine.StepTiming`.
    """

    step: int
    replica: int
    start_at: float
    end_at: float
    prefill_tokens: int
    decode_tokens: int
    micro_batches: int
    # ... StepTiming's recorded fields (RECORDED_TIMING_FIELDS) are inserted here ...
    batch_size: int = 0  # sequences in the step
    waiting: int = 0  # requests queued at the replica when the step started
    kv_blocks: int = 0  # KV blocks held on the replica during the step
    bubble_s: float = 0.0  # pipeline fill/drain time inside the step
    running: int = 0  # requests admitted (holding KV) when the step started
    tokens_out: int = 0  # output tokens the step emitted


_STEP_FIELDS = tuple(f.name for f in fields(StepRecord))
_STEP_FIELD_SET = frozenset(_STEP_FIELDS)


def _check_names(names, what: str) -> None:
    if names != _STEP_FIELD_SET:
        missing, extra = _STEP_FIELD_SET - names, names - _STEP_FIELD_SET
        raise ValueError(f"step record {what}: missing {sorted(missing)}, unknown {sorted(extra)}")


def step_record_of(values: Mapping[str, object]) -> StepRecord:
    """A StepRecord from every field's value, by name (fast: no per-field frozen setattr; one per step)."""
    _check_names(values.keys(), "values")
    record = object.__new__(StepRecord)
    record.__dict__.update(values)
    return record


def step_records(columns: Mapping[str, Sequence]) -> list[StepRecord]:
    """StepRecords from one column per field, by field name (fast: no per-field frozen setattr).

    Every StepRecord field needs its column, and no other column is allowed.
    """
    _check_names(columns.keys(), "columns")
    new, names, out = object.__new__, _STEP_FIELDS, []
    for row in zip(*(columns[name] for name in names)):
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
