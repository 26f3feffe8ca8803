"""Deployment size against tokens/s and tokens/s per watt (`asicsim scale`).

For one model and workload, every system is sized over a list of chip counts. A deployment of N chips is
data-parallel replicas of one model-parallel group (tp x pp chips: one scale-up domain at most, or up to
MAX_GROUP_CHIPS across domains, its tp/ep collectives then on the scale-out network); the replicas serve
independent request streams, so a size's throughput is the group's run times the replicas, exactly (the group
runs once through `run_workload` and is reused at every size it divides). What grows with N is the power around the
chips: each chip's host share, the scale-out network once the deployment spans more than one domain (its fat tree
gains tiers as N grows) and the facility's PUE on all of it (`Device.cluster`).

The workload per replica is one wave: `max_batch` requests of `isl` input and `osl` output tokens arriving
together. For each layout the wave is the largest power-of-two fraction of what memory allows (at most
`MAX_WAVE_PER_CHIP` requests per chip) whose median TTFT and median TPOT meet the SLOs; at each size the layout with
the most output tokens/s among those that meet them wins. A mixture-of-experts model also tries the DEP layouts
(attention data parallel, experts over ep = tp chips), the layout wide-EP deployments use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable

import pandas as pd

from asicsim.core.description import DEFAULT_SLO_TPOT_S, DEFAULT_SLO_TTFT_S, RunSpec, resolve
from asicsim.core.registry import make_device
from asicsim.core.runner import run_workload
from asicsim.workloads.errors import RUN, InputError
from asicsim.workloads.models import load_model

from .efficiency import serving_dtype

__all__ = ["ScaleWorkload", "GroupResult", "scale_rows", "scale_frame", "candidate_layouts", "group_result",
           "SCALE_COLUMNS"]

SCALE_COLUMNS = ("hardware", "chips", "layout", "tp", "pp", "attention_dp", "replicas", "group_chips", "max_batch", "dtype",
                 "output_tokens_per_s", "tokens_per_s_per_chip", "power_w", "power_chips_w", "power_host_w",
                 "power_network_w", "power_facility_overhead_w", "tokens_per_s_per_w", "ttft_p50_s", "tpot_p50_s",
                 "slo_met", "domains", "network", "network_tiers", "error")
MAX_PP = 8
# The most requests a wave puts on one chip: vLLM's max_num_seqs on >= 70 GiB GPUs (asicsim.core.harness
# vllm_batch_defaults); memory alone would allow far more for a small model or a wide expert-parallel group.
MAX_WAVE_PER_CHIP = 1024
# The widest model-parallel group searched: one scale-up domain, or up to 64 chips across domains where a domain is
# smaller (8-GPU servers: DeepSeek-class MoE models are served over 2-8 of them with wide expert parallelism; such a
# group's collectives cross the scale-out network, `asicsim.core.scale_out`).
MAX_GROUP_CHIPS = 64


@dataclass(frozen=True)
class ScaleWorkload:
    """What every deployment serves; dtype None: each system's serving dtype (`efficiency.serving_dtype`)."""

    model: str = "llama-3.3-70b"
    isl: int = 1024
    osl: int = 1024
    dtype: str | None = None
    slo_ttft_s: float = DEFAULT_SLO_TTFT_S
    slo_tpot_s: float = DEFAULT_SLO_TPOT_S
    network: str | None = None  # a clusters.toml network instead of each system's own
    seed: int = 0


@dataclass(frozen=True)
class GroupResult:
    """One model-parallel group's best wave: its run's per-group figures and whether the SLOs held."""

    hardware: str
    tp: int
    pp: int
    attention_dp: bool
    dtype: str
    max_batch: int
    output_tokens_per_s: float
    avg_power_w_per_chip: float
    ttft_p50_s: float
    tpot_p50_s: float
    slo_met: bool

    @property
    def chips(self) -> int:
        return self.tp * self.pp


def _pow2_up_to(n: int) -> list[int]:
    return [1 << i for i in range(int(math.log2(n)) + 1)] if n >= 1 else []


def candidate_layouts(hardware: str, work: "ScaleWorkload",
                      bound: int) -> tuple[list[tuple[int, int, bool]], list[str]]:
    """(tp, pp, attention_dp) groups of at most `bound` chips that hold the model: each power-of-two tp with the fewest
    pipeline stages (a power of two up to MAX_PP) that fit, and for a mixture-of-experts model the same with attention
    data parallelism (DEP); and the reasons the others cannot run."""
    dtype = work.dtype or serving_dtype(make_device(hardware, 1))
    moe = load_model(work.model).moe is not None
    layouts, reasons = [], []
    for dep in ((False, True) if moe else (False,)):
        for tp in _pow2_up_to(bound):
            if dep and tp == 1:
                continue
            for pp in _pow2_up_to(min(MAX_PP, bound // tp)):
                try:
                    resolve(_spec(hardware, work, dtype, tp, pp, None, dep))
                except InputError as exc:
                    reasons.append(f"{_name(tp, pp, dep)}: {exc.problem}")
                    continue
                layouts.append((tp, pp, dep))
                break
    return layouts, reasons


def _name(tp: int, pp: int, dep: bool) -> str:
    return f"{'dep' if dep else 'tp'}{tp} x pp{pp}"


def _spec(hardware: str, work: ScaleWorkload, dtype: str, tp: int, pp: int, batch: int | None,
          dep: bool = False) -> RunSpec:
    return RunSpec(hardware=hardware, chips=tp * pp, tp=tp, pp=pp, model=work.model, dtype=dtype, isl=work.isl,
                   osl=work.osl, requests=batch or 1, max_batch=batch, slo_ttft_s=work.slo_ttft_s,
                   slo_tpot_s=work.slo_tpot_s, seed=work.seed, attention_dp=dep, network=work.network)


def group_result(hardware: str, work: ScaleWorkload, tp: int, pp: int, dep: bool = False) -> GroupResult | str:
    """The largest wave (a power-of-two fraction of the memory's batch, at most MAX_WAVE_PER_CHIP a chip) whose
    median TTFT and TPOT meet the SLOs, run on one tp x pp group (DEP: attention data parallel); with none meeting
    them, the smallest wave, marked. A reason string where the layout cannot run (heads it does not divide, weights
    it cannot hold)."""
    device = make_device(hardware, 1)
    dtype = work.dtype or serving_dtype(device)
    try:
        largest = resolve(_spec(hardware, work, dtype, tp, pp, None, dep)).max_batch
    except InputError as exc:
        return exc.problem
    result = None
    batch = min(largest, MAX_WAVE_PER_CHIP * tp * pp)
    while batch >= 1:
        s = run_workload(_spec(hardware, work, dtype, tp, pp, batch, dep)).summary
        met = s["ttft_p50_s"] <= work.slo_ttft_s and s["tpot_p50_s"] <= work.slo_tpot_s
        result = GroupResult(hardware, tp, pp, dep, dtype, batch, s["output_tokens_per_s"], s["avg_power_w_per_chip"],
                             s["ttft_p50_s"], s["tpot_p50_s"], met)
        if met:
            break
        batch //= 2
    return result


def _size_row(hardware: str, chips: int, work: ScaleWorkload, groups: dict[tuple[int, int], GroupResult | str],
              reasons: list[str]) -> dict:
    device = make_device(hardware, 1)
    cluster = device.cluster
    if work.network:
        from asicsim.core.cluster import load_network

        cluster = cluster.with_network(load_network(work.network))
    fitting = [g for g in groups.values() if isinstance(g, GroupResult) and chips % g.chips == 0]
    row = {"hardware": hardware, "chips": chips, "domains": cluster.domains(chips), "network": cluster.network.name,
           "network_tiers": cluster.network.tiers(chips) if cluster.spans_domains(chips) else 0, "error": ""}
    if not fitting:
        runnable = sorted((g.chips, g.tp, g.pp, g.attention_dp) for g in groups.values() if isinstance(g, GroupResult))
        if runnable:
            row["error"] = (f"{chips} chips is no multiple of a layout that holds the model: "
                            + ", ".join(f"{_name(tp, pp, dep)} = {n} chips" for n, tp, pp, dep in runnable))
        else:
            bound = min(max(cluster.chips_per_domain, MAX_GROUP_CHIPS), chips)
            row["error"] = (f"no layout of at most {bound} chips holds the model"
                            + (f" ({reasons[-1]})" if reasons else ""))
        return row
    met = [g for g in fitting if g.slo_met]
    best = max(met or fitting, key=lambda g: (g.output_tokens_per_s / g.chips, -g.chips))
    replicas = chips // best.chips
    tokens = best.output_tokens_per_s * replicas
    power = cluster.power(chips, best.avg_power_w_per_chip)
    row.update({"layout": f"{_name(best.tp, best.pp, best.attention_dp)} x {replicas}", "tp": best.tp, "pp": best.pp,
                "attention_dp": best.attention_dp,
                "replicas": replicas, "group_chips": best.chips, "max_batch": best.max_batch, "dtype": best.dtype,
                "output_tokens_per_s": tokens, "tokens_per_s_per_chip": tokens / chips, **power.summary(),
                "tokens_per_s_per_w": tokens / power.total_w, "ttft_p50_s": best.ttft_p50_s,
                "tpot_p50_s": best.tpot_p50_s, "slo_met": best.slo_met})
    return row


def scale_rows(hardware: Iterable[str], chips: Iterable[int], work: ScaleWorkload = ScaleWorkload(),
               progress: Callable[[str], None] | None = None,
               map_groups: Callable[[Callable, list], list] | None = None) -> list[dict]:
    """One row per (system, size), in the order given. `map_groups(fn, tasks)` runs the group searches (default: in
    this process, one after another; the command passes a process pool or Dask)."""
    sizes = list(chips)
    for n in sizes:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(RUN, "chips", f"every size must be a whole number >= 1, got {n!r}")
    names = list(hardware)
    if work.network:
        from asicsim.core.cluster import load_network

        load_network(work.network)
    tasks, reasons = [], {}
    for name in names:
        domain = make_device(name, 1).link_limits.chips_per_domain
        layouts, reasons[name] = candidate_layouts(name, work, min(max(domain, MAX_GROUP_CHIPS), max(sizes)))
        tasks += [(name, *layout) for layout in layouts]
    run = _GroupTask(work, progress)
    results = (map_groups or (lambda fn, items: [fn(t) for t in items]))(run, tasks)
    by_system: dict[str, dict] = {name: {} for name in names}
    for (name, *layout), result in zip(tasks, results):
        by_system[name][tuple(layout)] = result
    return [_size_row(name, n, work, by_system[name], reasons[name]) for name in names for n in sizes]


class _GroupTask:
    """A picklable group search (for process pools and Dask)."""

    def __init__(self, work: ScaleWorkload, progress: Callable[[str], None] | None) -> None:
        self.work = work
        self.progress = progress

    def __call__(self, task: tuple[str, int, int, bool]) -> GroupResult | str:
        name, tp, pp, dep = task
        if self.progress is not None:
            self.progress(f"{name} {_name(tp, pp, dep)}")
        return group_result(name, self.work, tp, pp, dep)

    def __getstate__(self) -> dict:
        return {"work": self.work, "progress": None}


def scale_frame(hardware: Iterable[str], chips: Iterable[int], work: ScaleWorkload = ScaleWorkload(), **kw) -> pd.DataFrame:
    """`scale_rows` as a DataFrame with the columns of SCALE_COLUMNS (missing values where a size cannot run)."""
    rows = scale_rows(hardware, chips, work, **kw)
    return pd.DataFrame(rows, columns=list(SCALE_COLUMNS))
