"""Step accounting as named records: every StepTiming field flows through every path that carries step
metrics (the engine's sums, micro-batch merging, StepRecord, the steps DataFrame, the serving fast-forward).

These tests enumerate StepTiming's fields by introspection, so a field added to StepTiming that one of those
paths drops (or books as zero) fails here. Adding a field itself cannot be tested directly; each path is
checked for every field there is."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields

import numpy as np
import pytest

from asicsim.core.device import OpCost
from asicsim.core.engine import TIMING_FIELDS, StepEngine, StepTiming
from asicsim.core.results import RECORDED_TIMING_FIELDS, RunResult, StepRecord, recorded_timing, step_records
from asicsim.core.runner import make_device
from asicsim.core.serving import ServingConfig, StepRunner, _merge, simulate, step_record
from asicsim.workloads.graph_types import Op, OpKind, StepBatch, StepGraph
from asicsim.workloads.models import load_model
from asicsim.workloads.requests import Request


def _distinct_timing(offset: float = 0.0) -> StepTiming:
    """A StepTiming whose every field has its own value."""
    return StepTiming(**{name: offset + i + 1.0 for i, name in enumerate(TIMING_FIELDS)})


def test_timing_fields_are_floats_with_their_unit_in_the_name():
    """`_s` is seconds (the fast-forward checks those against the step time); counts name what they count."""
    assert TIMING_FIELDS == tuple(f.name for f in fields(StepTiming)) and TIMING_FIELDS[0] == "time_s"
    for f in fields(StepTiming):
        assert f.type == "float" and f.default == 0.0, f.name
        assert {g.name: g for g in fields(StepRecord)}.get(f.name, f).default == 0.0, f.name
        assert (f.name.endswith(("_s", "_j")) or "flops" in f.name or "bytes" in f.name), f"{f.name}: no unit in the name"


def test_a_step_record_keeps_every_timing_field_but_the_stage_time():
    """Only `time_s` stays out (a record has start_at/end_at); every other field is a StepRecord field, filled
    by name by `step_record`, and a column of the steps DataFrame."""
    assert set(TIMING_FIELDS) - set(RECORDED_TIMING_FIELDS) == {"time_s"}
    record_fields = [f.name for f in fields(StepRecord)]
    assert set(RECORDED_TIMING_FIELDS) <= set(record_fields)
    timing = _distinct_timing()
    rec = step_record(4, 1, 2.0, 2.5, StepBatch.make(prefill_new=[7], decode_past=[3, 9]), 2, timing, bubble=0.125)
    assert (rec.step, rec.replica, rec.start_at, rec.end_at, rec.prefill_tokens, rec.decode_tokens,
            rec.micro_batches, rec.batch_size, rec.bubble_s) == (4, 1, 2.0, 2.5, 7, 2, 2, 3, 0.125)
    frame = RunResult(summary={}, requests=(), steps=(rec, rec)).steps_frame()
    assert list(frame.columns) == record_fields
    for name in RECORDED_TIMING_FIELDS:
        assert getattr(rec, name) == getattr(timing, name), name
        assert frame[name].tolist() == [getattr(timing, name)] * 2, name
    assert recorded_timing(timing) == {name: getattr(timing, name) for name in RECORDED_TIMING_FIELDS}


def test_step_records_take_every_field_by_name_and_nothing_else():
    timing = _distinct_timing()
    one = step_record(0, 0, 0.0, 1.0, StepBatch.make(decode_past=[5]), 1, timing)
    columns = {f.name: [getattr(one, f.name)] for f in fields(StepRecord)}
    assert step_records(dict(reversed(columns.items()))) == [one]  # by name, in any order
    with pytest.raises(ValueError, match="missing.*attention_s"):
        step_records({k: v for k, v in columns.items() if k != "attention_s"})
    with pytest.raises(ValueError, match="unknown.*time_s"):
        step_records(columns | {"time_s": [1.0]})


def test_micro_batch_merge_sums_every_field():
    a, b, c = _distinct_timing(), _distinct_timing(100.0), _distinct_timing(0.5)
    merged = _merge([a, b, c])
    for name in TIMING_FIELDS:
        assert getattr(merged, name) == getattr(a, name) + getattr(b, name) + getattr(c, name), name
    assert a + b == StepTiming(**{n: getattr(a, n) + getattr(b, n) for n in TIMING_FIELDS})


# --- the engine books every field -------------------------------------------------------------------------

@dataclass
class _Device:
    costs: dict
    prefetch_weights: bool = False
    overlap_collectives: bool = False
    clocks_hz: dict = field(default_factory=lambda: {"compute": 2.0, "memory": 4.0, "link": 8.0})

    def cost(self, op):
        return self.costs[op.kind]


# One op of every kind bucket, every unit busy, launch overhead, stalls, HBM bytes; the matmul waits on memory.
_COSTS = {
    OpKind.MATMUL: OpCost(compute_cycles=2, memory_cycles=3, weight_cycles=9, fixed_s=0.1, ideal_compute_cycles=1,
                          stall_cycles=0.5, hbm_bytes=64.0),
    OpKind.ATTENTION_DECODE: OpCost(compute_cycles=1, memory_cycles=6, fixed_s=0.1, ideal_compute_cycles=1),
    OpKind.ALLREDUCE: OpCost(link_cycles=4, memory_cycles=1, fixed_s=0.1),
    OpKind.NORM: OpCost(compute_cycles=1, memory_cycles=1, energy_j=0.5),  # a device that prices energy per op
    OpKind.SSM_SCAN: OpCost(fixed_s=0.3, fallback_s=0.3),  # an op the datapath lacks, on the fallback unit
}


def _step_graph(layers: int) -> StepGraph:
    seq = np.array([1, 1]), np.array([5, 9])
    layer = (Op("mm", OpKind.MATMUL, "fp8", flops=8.0, weight_bytes=32.0),
             Op("attn", OpKind.ATTENTION_DECODE, "fp8", flops=4.0, kv_read_bytes=16.0, seq_new=seq[0], seq_past=seq[1]),
             Op("ar", OpKind.ALLREDUCE, "bf16", flops=1.0, comm_bytes=8.0),
             Op("nm", OpKind.NORM, "bf16", flops=2.0, act_in_bytes=4.0),
             Op("scan", OpKind.SSM_SCAN, "bf16", flops=3.0, act_in_bytes=2.0))
    return StepGraph(StepBatch.make(decode_past=[5, 9]), 2, 1, (), layer, layers, ())


@pytest.mark.parametrize("path", ["serial", "scheduled", "two-halves", "exact", "direct"])
def test_the_engine_books_every_field_and_counts_layers(path):
    """On a step that uses every unit and op kind, every StepTiming field is nonzero, on every engine path; the
    fields that do not depend on the schedule equal the serial sum's, and every field but the scheduled
    time and memory wait is linear in the layer count."""
    prefetch = path != "serial"
    device = _Device(_COSTS, prefetch_weights=prefetch)
    serial = StepEngine(_Device(_COSTS)).run_step([_step_graph(3)])
    streams = 2 if path == "two-halves" else 1

    def run(layers):
        engine = StepEngine(device, exact=path == "exact")
        graphs = [_step_graph(layers)] * streams
        return engine.direct_step(graphs) if path == "direct" else engine.run_step(graphs)

    one, three = run(1), run(3)
    scheduled = ("time_s", "memory_wait_s") if prefetch else ()
    for name in TIMING_FIELDS:
        assert getattr(three, name) > 0.0, f"{path}: {name} not booked"
        if name not in scheduled:
            assert getattr(three, name) == pytest.approx(3 * getattr(one, name), rel=1e-12), name
            assert getattr(three, name) == pytest.approx(streams * getattr(serial, name), rel=1e-12), name


# --- the serving fast-forward interpolates every field ------------------------------------------------------

def test_fast_forward_interpolates_every_recorded_field(monkeypatch):
    """Every timing field of a (fake) step is its own affine function of the batch's tokens, so linear in the
    decode step index: the fast-forward's booked steps must equal stepping one at a time, field by field, and
    every field must vary over the run (a field the fast-forward left out would be missing or constant)."""
    calls = []

    def fake_time_step(self, batch):
        calls.append(batch)
        tokens = float(batch.prefill_new_tokens.sum() + batch.decode_past_tokens.sum())
        grow = 1.0 + 1e-3 * tokens
        timing = StepTiming(**{name: (i + 1) * (1e-4 if name.endswith("_s") else 1e9) * grow
                               for i, name in enumerate(TIMING_FIELDS)})
        return 1e-2 * grow, timing, 1, 1e-3 * grow

    monkeypatch.setattr(StepRunner, "time_step", fake_time_step)
    model = load_model("llama-3.1-8b")
    reqs = [Request(i, 0.01 * i, 30 + 7 * i, 40 + 9 * i) for i in range(6)]
    runs = {}
    for fast in (True, False):
        calls.clear()
        cfg = ServingConfig(model=model, dtype="fp8", kv_dtype="fp8", tp=1, pp=1, max_batch=0,
                            max_tokens_per_step=512, scheduler="continuous", fast_forward=fast)
        runs[fast] = simulate(make_device("h100-sxm", 1), 1, reqs, cfg)[0].steps, len(calls)
    (fast_steps, fast_calls), (slow_steps, slow_calls) = runs[True], runs[False]
    assert len(fast_steps) == len(slow_steps) == slow_calls and fast_calls < slow_calls / 2  # runs were booked
    for name in ("start_at", "end_at", "bubble_s", *RECORDED_TIMING_FIELDS):
        got = np.array([getattr(s, name) for s in fast_steps])
        want = np.array([getattr(s, name) for s in slow_steps])
        assert np.allclose(got, want, rtol=1e-9, atol=0.0), name
        assert len(set(want[-20:])) == 20, f"{name} does not vary with the step"
    assert [dataclasses.asdict(s).keys() for s in fast_steps[:1]] == [dataclasses.asdict(slow_steps[0]).keys()]


def test_request_record_fast_constructor_builds_the_same_frozen_record():
    import dataclasses

    from asicsim.core.results import RequestRecord, request_record

    args = (7, 1, 0.25, 0.5, 2.0, 100, 20, 0.3, 2)
    fast, slow = request_record(*args), RequestRecord(*args)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.astuple(fast) == args
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.finish_at = 3.0
