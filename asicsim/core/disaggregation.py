"""Disaggregated serving: a prefill pool and a decode pool of chips, with the KV cache sent between them.

Both pools run the one serving loop (`serving.simulate`), each with its own resolved layout (`RunDescription.pools`):
1. The prefill pool serves every request's prompt and first output token.
2. Each request's KV cache then goes to the decode pool: every prefill chip of the request's group sends its shard
   at once, so a transfer lasts (KV bytes per chip of the prefill layout x prompt tokens) / link bandwidth + one
   link latency, and no faster than the decode group's chips can receive it. The link is the scale-up link when
   both pools fit one scale-up domain, else the scale-out NIC (`Device.cluster.scale_out_link`). Transfers from
   one prefill replica share its links: they leave one after another in the order their first tokens came out.
3. The decode pool receives each request when its transfer ends, already prefilled (`Request.prefilled`: KV blocks
   are taken at admission, no prefill step), and generates the remaining output tokens.
A request's record joins the two: arrival, queueing and first token from the prefill pool, the rest from the decode
pool; its TPOT therefore includes the transfer and the decode pool's queue before its second token.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asicsim.workloads.requests import Request

from .device import LinkLimits
from .results import RequestRecord
from .serving import Progress, ReplicaRun, simulate

__all__ = ["serve_disaggregated", "kv_link", "kv_transfer_s", "DisaggregatedRun"]


@dataclasses.dataclass(frozen=True)
class DisaggregatedRun:
    """Both pools' replica runs (decode replicas numbered after the prefill ones) and every request's transfer."""

    prefill: list[ReplicaRun]
    decode: list[ReplicaRun]
    records: tuple[RequestRecord, ...]
    transfer_s: np.ndarray  # per request, in request-id order of the joined records


def kv_link(device, prefill_chips: int, decode_chips: int) -> LinkLimits:
    """The link a KV transfer crosses: scale-up when both pools fit one domain, else the scale-out network."""
    cluster = device.cluster
    chips = prefill_chips + decode_chips
    return device.link_limits if not cluster.spans_domains(chips) else cluster.scale_out_link(chips)


def kv_transfer_s(kv_bytes_per_token_per_chip: float, tokens: int, senders: int, receivers: int,
                  link: LinkLimits) -> float:
    """Seconds to send one request's KV cache: each of `senders` chips sends its shard in parallel; `receivers`
    chips take the whole (fewer receivers than senders take longer)."""
    total = kv_bytes_per_token_per_chip * tokens * senders
    lanes = min(senders, receivers)
    return total / (lanes * link.bandwidth_bytes_per_s) + link.latency_s


def serve_disaggregated(prefill_d, decode_d, requests: tuple[Request, ...], prefill_cfg, decode_cfg,
                        progress: Progress | None = None, link: LinkLimits | None = None) -> DisaggregatedRun:
    """Serve `requests` on the two pools (module docstring). `link` overrides the KV link (tests: a free one)."""
    pre_device, dec_device = prefill_d.make_device(), decode_d.make_device()
    first = [Request(r.request_id, r.arrival_at, r.input_tokens, 1) for r in requests]
    pre_runs = simulate(pre_device, prefill_d.chips, first, prefill_cfg, progress=progress)
    link = link or kv_link(pre_device, prefill_d.chips, decode_d.chips)
    kv_token = pre_runs[0].plan.kv_bytes_per_token
    senders, receivers = prefill_cfg.tp * prefill_cfg.pp, decode_cfg.tp * decode_cfg.pp
    by_id = {r.request_id: r for r in requests}
    done_prefill = sorted((rec for run in pre_runs for rec in run.requests), key=lambda x: (x.first_token_at, x.request_id))
    link_free: dict[int, float] = {}
    arrivals, transfer = {}, {}
    for rec in done_prefill:
        seconds = kv_transfer_s(kv_token, rec.input_tokens, senders, receivers, link)
        start = max(rec.first_token_at, link_free.get(rec.replica, 0.0))
        link_free[rec.replica] = arrivals[rec.request_id] = start + seconds
        transfer[rec.request_id] = arrivals[rec.request_id] - rec.first_token_at
    second = [Request(rec.request_id, arrivals[rec.request_id], rec.input_tokens,
                      by_id[rec.request_id].output_tokens - 1, prefilled=True)
              for rec in done_prefill if by_id[rec.request_id].output_tokens > 1]
    dec_runs = simulate(dec_device, decode_d.chips, second, decode_cfg) if second else []
    offset = len(pre_runs)
    dec_runs = [_renumber(run, offset) for run in dec_runs]
    decoded = {rec.request_id: rec for run in dec_runs for rec in run.requests}
    records = []
    for rec in sorted((rec for run in pre_runs for rec in run.requests), key=lambda x: x.request_id):
        req = by_id[rec.request_id]
        tail = decoded.get(rec.request_id)
        records.append(RequestRecord(req.request_id, tail.replica if tail else rec.replica, req.arrival_at,
                                     rec.first_token_at, tail.finish_at if tail else rec.finish_at, req.input_tokens,
                                     req.output_tokens, rec.scheduled_at,
                                     rec.preemptions + (tail.preemptions if tail else 0)))
    return DisaggregatedRun(pre_runs, dec_runs, tuple(records),
                            np.array([transfer[r.request_id] for r in records]))


def _renumber(run: ReplicaRun, offset: int) -> ReplicaRun:
    """A decode replica's run with its replica index after the prefill pool's (records and step rows)."""
    steps = run.steps.with_replica_offset(offset)
    requests = tuple(dataclasses.replace(r, replica=r.replica + offset) for r in run.requests)
    return dataclasses.replace(run, steps=steps, requests=requests)
