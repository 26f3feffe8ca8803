"""A model split over more and more small devices joined by a slow link: per-token latency against memory per device.

Each device count n runs the model as an n-stage pipeline (one stage per device, `--pp n --link NAME`; one device:
no link) serving one request at a time through `run_workload`, so the numbers are batch-1 latency: the median and
99th percentile of the gaps between output tokens (vLLM's ITL), the share of the time spent on the link, and the
bytes each device holds. Splitting pays while it makes a model fit (or frees memory bandwidth per device, since each
device streams only its layers' weights); past that every hop adds its latency to every token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pandas as pd

from asicsim.core.description import RunSpec
from asicsim.core.runner import run_workload
from asicsim.workloads.errors import InputError

__all__ = ["EdgePipelineWorkload", "edge_pipeline_rows", "edge_pipeline_frame", "split_verdicts", "EDGE_COLUMNS"]

EDGE_COLUMNS = ("hardware", "model", "dtype", "link", "devices", "fits", "weight_bytes_per_device",
                "kv_peak_bytes_per_device", "peak_memory_bytes_per_device", "itl_p50_ms", "itl_p99_ms", "ttft_ms",
                "tokens_per_s", "link_time_share", "error")


@dataclass(frozen=True)
class EdgePipelineWorkload:
    """One request of `isl` prompt tokens and `osl` output tokens (its `osl` - 1 gaps give the percentiles)."""

    model: str = "qwen3-32b"
    dtype: str = "int4"
    isl: int = 256
    osl: int = 256
    requests: int = 1
    seed: int = 0


def _row(hardware: str, link: str, devices: int, work: EdgePipelineWorkload) -> dict:
    row = {"hardware": hardware, "model": work.model, "dtype": work.dtype, "link": link if devices > 1 else "",
           "devices": devices, "fits": False, "error": ""}
    spec = RunSpec(hardware=hardware, chips=devices, pp=devices, tp=1, model=work.model, dtype=work.dtype,
                   isl=work.isl, osl=work.osl, requests=work.requests, rate=0.0, max_batch=1, seed=work.seed,
                   link=link if devices > 1 else None)
    try:
        s = run_workload(spec).summary
    except InputError as exc:
        row["error"] = exc.problem
        return row
    row.update(fits=True, weight_bytes_per_device=s["weight_bytes_per_chip"],
               kv_peak_bytes_per_device=s["kv_peak_bytes_per_chip"],
               peak_memory_bytes_per_device=s["peak_memory_bytes_per_chip"], itl_p50_ms=s["median_itl_ms"],
               itl_p99_ms=s["p99_itl_ms"], ttft_ms=s["median_ttft_ms"], tokens_per_s=1e3 / s["mean_itl_ms"],
               link_time_share=s["link_time_share"])
    return row


def edge_pipeline_rows(hardware: str, links: Iterable[str], devices: Iterable[int],
                       work: EdgePipelineWorkload = EdgePipelineWorkload()) -> list[dict]:
    """One row per (link, device count); one device appears once per link (it uses no link)."""
    return [_row(hardware, link, n, work) for link in links for n in devices]


def edge_pipeline_frame(hardware: str, links: Iterable[str], devices: Iterable[int],
                        work: EdgePipelineWorkload = EdgePipelineWorkload()) -> pd.DataFrame:
    return pd.DataFrame(edge_pipeline_rows(hardware, links, devices, work), columns=list(EDGE_COLUMNS))


def split_verdicts(rows: Iterable[dict]) -> list[dict]:
    """Where splitting stops paying, per (model, link): the fewest devices that hold the model (splitting pays up to
    there, since below it the model does not run) and what each hop past it adds to the median and 99th-percentile
    token gap (the slope from there to the most devices that ran), against the memory it frees per device."""
    groups: dict[tuple[str, str], list[dict]] = {}
    single = {r["model"]: r for r in rows if r["devices"] == 1}
    for r in rows:
        if r["devices"] > 1:
            groups.setdefault((r["model"], r["link"]), [single.get(r["model"], r)]).append(r)
    out = []
    for (model, link), members in groups.items():
        ran = sorted((r for r in members if r["fits"]), key=lambda r: r["devices"])
        verdict = {"model": model, "link": link, "fewest_devices": ran[0]["devices"] if ran else None}
        if len(ran) >= 2:
            first, last = ran[0], ran[-1]
            hops = last["devices"] - first["devices"]
            verdict.update(p50_ms_per_extra_device=(last["itl_p50_ms"] - first["itl_p50_ms"]) / hops,
                           p99_ms_per_extra_device=(last["itl_p99_ms"] - first["itl_p99_ms"]) / hops,
                           weight_bytes_freed_per_extra_device=(first["weight_bytes_per_device"]
                                                                - last["weight_bytes_per_device"]) / hops)
        out.append(verdict)
    return out
