"""Timelines in Chrome trace event format (open in Perfetto or chrome://tracing).

One process per replica, one thread (track) per unit of its chips: compute arrays / SMs, HBM, links,
plus a "steps" track with each engine step. Only the first steps (ServingConfig.trace_steps) are drawn:
each is re-simulated with every layer and exact prices (`StepEngine.trace_step`), placed at its start in
the serving run. With pipeline micro-batches the first micro-batch's stage is drawn. Times in us.
"""

from __future__ import annotations

from typing import Sequence

from .device import Device
from .engine import StepEngine
from .serving import ReplicaRun, ServingConfig, split_batch

__all__ = ["chrome_trace", "TRACKS"]

TRACKS = ("steps", "compute", "memory", "link")
_LABEL = {"steps": "engine steps", "compute": "compute arrays", "memory": "HBM", "link": "chip links"}


def chrome_trace(device: Device, cfg: ServingConfig, runs: Sequence[ReplicaRun]) -> dict:
    """{"traceEvents": [...], "displayTimeUnit": "ms"} for the traced first steps of every replica."""
    from asicsim.workloads.graph import build_step_graph

    engine = StepEngine(device, exact=True)
    events: list[dict] = []
    for rep, run in enumerate(runs):
        events.append({"name": "process_name", "ph": "M", "pid": rep, "args": {"name": f"replica {rep} (chip 0)"}})
        for tid, track in enumerate(TRACKS):
            events.append({"name": "thread_name", "ph": "M", "pid": rep, "tid": tid, "args": {"name": _LABEL[track]}})
        for step, start_at, batch in run.traced:
            record = run.steps[step]
            events.append({"name": f"step {step}", "ph": "X", "pid": rep, "tid": 0, "ts": start_at * 1e6,
                           "dur": (record.end_at - record.start_at) * 1e6,
                           "args": {"prefill_tokens": record.prefill_tokens, "decode_tokens": record.decode_tokens,
                                    "batch_size": record.batch_size}})
            part = split_batch(batch, record.micro_batches)[0] if cfg.pp > 1 and record.micro_batches > 1 else batch
            graph = build_step_graph(cfg.model, part, tp=cfg.tp, pp=cfg.pp, dtype=cfg.dtype, kv_dtype=cfg.kv_dtype,
                                     act_dtype=cfg.act_dtype)
            for micro, unit, name, at, dur in engine.trace_step([graph]):
                events.append({"name": name, "ph": "X", "pid": rep, "tid": TRACKS.index(unit),
                               "ts": (start_at + at) * 1e6, "dur": dur * 1e6, "args": {"micro_batch": micro}})
    return {"traceEvents": events, "displayTimeUnit": "ms"}
