"""Timelines in Chrome trace event format (open in Perfetto or chrome://tracing).

One process per replica, one thread (track) per unit: "engine steps", the compute unit (systolic arrays on
an ASIC, SMs on a GPU: `Device.compute_unit_name`), HBM and chip links. Every chip of a replica runs the
same schedule in lock-step, so one chip (chip 0 of the replica's tp x pp) is drawn, and the process name
says so. Only the first steps of each replica are drawn (`ServingConfig.trace_steps`); each is re-simulated
with every layer and exact prices (`StepEngine.trace_step`) the way the serving loop timed it (one stream, or
the two interleaved halves it chose; with pp > 1 the first micro-batch's stage) and placed at its start.

Complete events nest on every track: unit slices of one step are disjoint (each unit serves one part at a
time) and lie inside their step; a slice the exact re-simulation ends after the step's recorded end (the
fast path rounds attention times to 2^-10, engine.FAST_PATH_RTOL) is clipped there and marked `clipped`.
Times in us.
"""

from __future__ import annotations

from typing import Sequence

from .device import Device
from .engine import StepEngine
from .serving import ReplicaRun, ServingConfig, split_batch

__all__ = ["chrome_trace", "TRACKS"]

TRACKS = ("steps", "compute", "memory", "link")
_LABEL = {"steps": "engine steps", "memory": "HBM", "link": "chip links"}


def chrome_trace(device: Device, cfg: ServingConfig, runs: Sequence[ReplicaRun]) -> dict:
    """{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}} for the traced first steps."""
    graph = cfg.step_graph

    engine = StepEngine(device, exact=True)
    labels = dict(_LABEL, compute=device.compute_unit_name)
    events: list[dict] = []
    for rep, run in enumerate(runs):
        events.append({"name": "process_name", "ph": "M", "pid": rep,
                       "args": {"name": f"replica {rep}: chip 0 of {cfg.tp * cfg.pp} (tp {cfg.tp} x pp {cfg.pp}, "
                                        "all in lock-step)"}})
        for tid, track in enumerate(TRACKS):
            events.append({"name": "thread_name", "ph": "M", "pid": rep, "tid": tid, "args": {"name": labels[track]}})
        for step, start_at, batch in run.traced:
            record = run.steps[step]
            end_at = record.end_at
            events.append({"name": f"step {step}", "ph": "X", "pid": rep, "tid": 0, "ts": start_at * 1e6,
                           "dur": (end_at - start_at) * 1e6,
                           "args": {"prefill_tokens": record.prefill_tokens, "decode_tokens": record.decode_tokens,
                                    "batch_size": record.batch_size, "micro_batches": record.micro_batches}})
            if cfg.pp > 1:
                parts = split_batch(batch, record.micro_batches)[:1] if record.micro_batches > 1 else [batch]
            else:  # the serving loop kept the whole batch or its two interleaved halves (record.micro_batches)
                parts = split_batch(batch, 2) if record.micro_batches == 2 else [batch]
            for micro, unit, name, at, dur in engine.trace_step([graph(p) for p in parts]):
                begin = start_at + at
                if begin >= end_at:
                    continue
                args = {"micro_batch": micro}
                if begin + dur > end_at:
                    dur, args["clipped"] = end_at - begin, True
                events.append({"name": name, "ph": "X", "pid": rep, "tid": TRACKS.index(unit), "ts": begin * 1e6,
                               "dur": dur * 1e6, "args": args})
    traced = sum(len(run.traced) for run in runs)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"traced_steps": traced, "steps": sum(len(run.steps) for run in runs),
                          "chips_drawn": "chip 0 of each replica (all chips of a replica run the same schedule)"}}
