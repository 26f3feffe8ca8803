"""Flags and formatting shared by `run` and `compare` (the output formats every command shares: `_output`)."""

from __future__ import annotations

import argparse
import math

from asicsim.core.description import RUN_DTYPES
from asicsim.core.harness import HARNESSES
from asicsim.core.router import ROUTERS
from asicsim.core.runner import DEFAULT_SLO_TPOT_S, DEFAULT_SLO_TTFT_S, SUMMARY_KEYS, RunSpec
from asicsim.core.schedulers import SCHEDULERS
from asicsim.workloads.dtypes import WEIGHT_FORMATS
from asicsim.workloads.traces import BUILTIN_TRACES

from ._output import add_output_flags, output_format, print_json, print_rows

__all__ = ["whole_at_least", "add_workload_flags", "spec_from_args", "print_json", "format_table", "ROWS", "FLAG_OF",
           "add_output_flags", "output_format", "print_rows"]

# RunSpec fields whose flag is not "--" + the field with dashes.
FLAG_OF = {"slo_ttft_s": "--slo-ttft", "slo_tpot_s": "--slo-tpot", "hardware": "--hw",
           "timeline_steps": "--timeline-steps", "effects": "--effect"}
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def flag_of(field: str) -> str:
    """The CLI flag that sets a RunSpec field."""
    return FLAG_OF.get(field, "--" + field.replace("_", "-"))


def effect_switch(text: str) -> tuple[str, bool]:
    """argparse type: NAME=on|off (one modelled effect of the device switched)."""
    name, sep, state = text.partition("=")
    if not sep or not name.strip() or state.strip().lower() not in _SWITCH:
        raise argparse.ArgumentTypeError(f"expected NAME=on or NAME=off, got {text!r}")
    return name.strip(), _SWITCH[state.strip().lower()]


def whole_at_least(low: int):
    """argparse type: a whole number >= `low`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


_positive = whole_at_least(1)


def _chips(text: str) -> int | str:
    """A chip count, or "auto" (the smallest count that holds the model)."""
    return "auto" if text == "auto" else _positive(text)
_non_negative = whole_at_least(0)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def add_workload_flags(p: argparse.ArgumentParser, *, chips_default: int | None, dtype_default: str | None = "fp8",
                       dtype_help: str = "weight and matmul dtype (default: fp8); mxfp4 / nvfp4: fp4 with their block "
                                         "scales") -> None:
    """Workload flags; defaults are the conditions Etched published (Llama-3-70B fp8, 2048 in / 128 out)."""
    p.add_argument("--chips", type=_chips, default=chips_default, required=chips_default is None,
                   help="chips in the server, or auto: the smallest count (doublings of tp x pp) that holds the model"
                        + ("" if chips_default is None else " (default: %(default)s)"))
    p.add_argument("--model", default="llama-3-70b", help="model name or path to a config.json")
    p.add_argument("--dtype", default=dtype_default, choices=(*RUN_DTYPES, *WEIGHT_FORMATS), help=dtype_help)
    p.add_argument("--expert-dtype", default=None, choices=(*RUN_DTYPES, *WEIGHT_FORMATS),
                   help="routed experts' weights of an MoE model (default: --dtype), e.g. --dtype bf16 "
                        "--expert-dtype mxfp4 as gpt-oss ships")
    p.add_argument("--widen", action="store_true",
                   help="run a dtype the hardware lacks (e.g. fp4 on H100) on its next wider datapath: fewer weight "
                        "bytes, the wider format's FLOP/s (refused without this flag)")
    p.add_argument("--kv-dtype", default=None, choices=RUN_DTYPES,
                   help="KV-cache dtype (default: the weight dtype; fp8 for fp4)")
    p.add_argument("--tp", type=_positive, default=None,
                   help="tensor-parallel degree (default: chips / (pp x replicas))")
    p.add_argument("--pp", type=_positive, default=1, help="pipeline stages (default: 1)")
    p.add_argument("--replicas", type=_positive, default=None,
                   help="data-parallel replicas of the tp x pp group (default: chips / (tp x pp), 1 without --tp)")
    p.add_argument("--ep", type=_positive, default=None,
                   help="expert-parallel chips among the tp chips for MoE models (default: tp with --attention-dp, "
                        "else 1: every expert split over tp)")
    p.add_argument("--attention-dp", action="store_true",
                   help="attention data parallel over the tp chips, experts over ep = tp (the DEP layout)")
    p.add_argument("--mtp", type=_positive, default=None,
                   help="multi-token prediction: draft tokens each decode step verifies (models with an MTP module, "
                        "DeepSeek-V3/R1; default: off)")
    p.add_argument("--mtp-acceptance", type=_non_negative_float, default=None,
                   help="probability a draft token is accepted given the ones before it (default 0.85, DeepSeek-V3 "
                        "report's second-token rate)")
    p.add_argument("--moe-imbalance", type=_non_negative_float, default=None,
                   help="sigma of log expert popularity in the seeded routing model (0: uniform; default 0.3)")
    p.add_argument("--harness", default="default", choices=tuple(HARNESSES),
                   help="reproduce how a benchmark measured: " + "; ".join(
                       f"{h.name}: {h.description.split(':')[0]}" for h in HARNESSES.values() if h.name != "default"))
    p.add_argument("--isl", type=_positive, default=2048, help="input (prompt) tokens per request")
    p.add_argument("--osl", type=_positive, default=128, help="output tokens per request")
    p.add_argument("--requests", type=_positive, default=None,
                   help="requests: a burst at t=0 (default 512, or the harness's count), Poisson arrivals with "
                        "--rate, or the first N of a --trace (default: all)")
    p.add_argument("--max-batch", type=_positive, default=None,
                   help="most requests running at once (default: as many as memory holds: the memory plan for "
                        "static batching, the KV cache's blocks for in-flight schedulers)")
    p.add_argument("--max-tokens-per-step", type=_positive, default=None,
                   help="token budget per engine step (default 8192, TensorRT-LLM's max_num_tokens)")
    p.add_argument("--seed", type=int, default=0, help="random seed (runs are deterministic)")
    g = p.add_argument_group("serving")
    g.add_argument("--rate", type=_non_negative_float, default=0.0,
                   help="Poisson arrivals at this many requests/s (0: all at t=0)")
    g.add_argument("--isl-dist", default="fixed",
                   help="prompt lengths with --rate: fixed[:N], uniform:LO:HI, lognormal:MEDIAN:SIGMA or fit:TRACE")
    g.add_argument("--osl-dist", default="fixed", help="output lengths with --rate (same forms as --isl-dist)")
    g.add_argument("--trace", default="",
                   help=f"replay a CSV trace: {', '.join(BUILTIN_TRACES)} or a path (Azure or three-column format)")
    g.add_argument("--time-scale", type=_positive_float, default=1.0,
                   help="multiply arrival times (0.5: twice the rate)")
    g.add_argument("--scheduler", default="auto", choices=("auto", *SCHEDULERS),
                   help="batching (auto: static for a burst, chunked-prefill for arrivals)")
    g.add_argument("--router", default="round-robin", choices=tuple(ROUTERS), help="replica router")
    g.add_argument("--link", default=None, metavar="NAME",
                   help="pipeline stages on separate devices joined by a slow link (pcie4-x4, usb4, tb5-rdma, 10gbe, "
                        "wifi6: asicsim/data/links.toml); needs --pp 2 or more, tp within one device's own links")
    g.add_argument("--network", default=None, metavar="NAME",
                   help="scale-out network between scale-up domains (ib-ndr-400, ib-xdr-800, ethernet-400: "
                        "asicsim/data/clusters.toml; default: the spec's)")
    g.add_argument("--disaggregate", default=None, metavar="P:D",
                   help="disaggregated serving: P prefill chips and D decode chips (P + D = --chips), the KV cache "
                        "sent between the pools over the scale-up link (or the scale-out network beyond one domain)")
    g.add_argument("--micro-batches", type=_positive, default=None,
                   help="pipeline micro-batches per step (default: pp, or 1 for static batching)")
    g.add_argument("--kv-block-tokens", type=_positive, default=None,
                   help="tokens per paged KV-cache block (default 16)")
    g.add_argument("--slo-ttft", type=_non_negative_float, default=DEFAULT_SLO_TTFT_S,
                   help="TTFT SLO in s for goodput (0: none; default: MLPerf Llama-2-70B server, %(default)s)")
    g.add_argument("--slo-tpot", type=_non_negative_float, default=DEFAULT_SLO_TPOT_S,
                   help="TPOT SLO in s for goodput (0: none; default: MLPerf Llama-2-70B server, %(default)s)")
    p.add_argument("--effect", type=effect_switch, action="append", default=[], metavar="NAME=on|off",
                   help="switch one modelled effect of the device (repeatable; names: `asicsim validate --explain`, "
                        "e.g. stack_attention=off prices the bare attention kernel)")
    p.add_argument("--exact", action="store_true",
                   help="time every step with the simpy discrete-event model and exact prices (slower; the "
                        "default direct pass equals it to rounding, attention memo keys to 2^-10)")
    add_output_flags(p, "print JSON instead of a table (one object per run)")


def table_cells(summaries: list[dict]) -> list[list[str]]:
    """The run/compare table's cells: a row per metric (the first: hardware), a column per run; rows that only some
    runs have (a disaggregated run's KV transfer) are left out when no run has them."""
    cells = [[label] + [_cell(s, label, key, scale, fmt) for s in summaries] for label, key, scale, fmt in ROWS]
    return [row for row in cells if row[0] not in _OPTIONAL_ROWS or any(c != "-" for c in row[1:])]


def table_markdown(summaries: list[dict]) -> str:
    """The run/compare table (metrics as rows, one column per run) as markdown."""
    cells = table_cells(summaries)
    head, body = cells[0], cells[1:]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def emit_summaries(summaries: list[dict], fmt: str) -> bool:
    """Print run summaries as json, csv (one row per run, every key) or md (the table); False for table (the caller
    prints its own table and notes)."""
    if fmt == "json":
        print_json([json_summary(s) for s in summaries])
    elif fmt == "csv":
        print_rows([json_summary(s) for s in summaries], "csv")
    elif fmt == "md":
        print(table_markdown(summaries))
    return fmt != "table"


def spec_from_args(args: argparse.Namespace, hardware: str) -> RunSpec:
    """The user's flags as a RunSpec, unresolved: what was not given stays None (resolve decides)."""
    return RunSpec(hardware=hardware, chips=args.chips, model=args.model, dtype=args.dtype, kv_dtype=args.kv_dtype,
                   tp=args.tp, pp=args.pp, replicas=args.replicas, isl=args.isl, osl=args.osl,
                   requests=args.requests, max_batch=args.max_batch, max_tokens_per_step=args.max_tokens_per_step,
                   seed=args.seed, scheduler=args.scheduler, router=args.router, rate=args.rate, trace=args.trace,
                   time_scale=args.time_scale, isl_dist=args.isl_dist, osl_dist=args.osl_dist,
                   slo_ttft_s=args.slo_ttft, slo_tpot_s=args.slo_tpot, kv_block_tokens=args.kv_block_tokens,
                   micro_batches=args.micro_batches, exact=getattr(args, "exact", False), harness=args.harness,
                   widen=args.widen, effects=tuple(getattr(args, "effect", ()) or ()), ep=args.ep,
                   attention_dp=args.attention_dp, moe_imbalance=args.moe_imbalance, expert_dtype=args.expert_dtype,
                   mtp=args.mtp, mtp_acceptance=args.mtp_acceptance, disaggregate=getattr(args, "disaggregate", None),
                   link=getattr(args, "link", None), network=getattr(args, "network", None),
                   timeline_steps=getattr(args, "timeline_steps", 0) if getattr(args, "out", None) else 0)


# (label, key, scale, format) for the human-readable tables.
ROWS = (
    ("hardware", "hardware", None, "{}"),
    ("chips x tp x pp", None, None, "{}"),
    ("model / dtype", None, None, "{}"),
    ("isl / osl", None, None, "{}"),
    ("requests / batch cap / peak", None, None, "{}"),
    ("request throughput (req/s)", "request_throughput", 1, "{:,.2f}"),
    ("output tokens/s", "output_tokens_per_s", 1, "{:,.0f}"),
    ("input tokens/s", "input_tokens_per_s", 1, "{:,.0f}"),
    ("total tokens/s", "total_tokens_per_s", 1, "{:,.0f}"),
    ("TTFT mean / median / p99 (ms)", None, None, "{}"),
    ("TPOT mean / median / p99 (ms)", None, None, "{}"),
    ("ITL mean / median / p99 (ms)", None, None, "{}"),
    ("E2E latency mean / median / p99 (ms)", None, None, "{}"),
    ("makespan (s)", "makespan_s", 1, "{:.2f}"),
    ("scheduler", "scheduler", None, "{}"),
    ("mean batch size", "mean_batch_size", 1, "{:.1f}"),
    ("SLO attainment", "slo_attainment", 100, "{:.1f}%"),
    ("goodput (req/s within SLOs)", "request_goodput", 1, "{:,.2f}"),
    ("preemptions", "preemptions", None, "{}"),
    ("KV peak/chip (GB)", "kv_peak_bytes_per_chip", 1e-9, "{:.1f}"),
    ("MFU", "mfu", 100, "{:.1f}%"),
    ("MBU", "mbu", 100, "{:.1f}%"),
    ("compute utilization", "compute_utilization", 100, "{:.1f}%"),
    ("stall share (compute waits)", "stall_share", 100, "{:.1f}%"),
    ("peak memory/chip (GB)", "peak_memory_bytes_per_chip", 1e-9, "{:.1f}"),
    ("ops on fallback (time share)", None, None, "{}"),
    ("energy/output token (J)", "energy_j_per_output_token", 1, "{:.3f}"),
    ("avg power/chip (W)", "avg_power_w_per_chip", 1, "{:.0f}"),
    ("deployment power (kW)", "power_w", 1e-3, "{:,.1f}"),
    ("output tokens/s per W", "tokens_per_s_per_w", 1, "{:.3f}"),
    ("KV transfer p50 / p99 (ms)", None, None, "{}"),
)
_OPTIONAL_ROWS = frozenset({"KV transfer p50 / p99 (ms)"})


def _cell(summary: dict, label: str, key, scale, fmt) -> str:
    s = summary
    if key is not None:
        if key not in s:
            return "-"
        value = s[key]
        return fmt.format(value * scale) if scale is not None else fmt.format(value)
    return _PAIRED[label.split()[0]](s)


# Rows that show several summary values in one cell, by the first word of their label.
_PAIRED = {
    "chips": lambda s: (f"{s['chips']} x {s['tp']} x {s['pp']}" if not s.get("disaggregate") else
                        f"{s['chips']}: prefill {s['disaggregate'].split(':')[0]} x tp{s['prefill_tp']}, decode "
                        f"{s['disaggregate'].split(':')[1]} x tp{s['decode_tp']}"),
    "KV": lambda s: (f"{1e3 * s['kv_transfer_p50_s']:.2f} / {1e3 * s['kv_transfer_p99_s']:.2f}"
                     if "kv_transfer_p50_s" in s else "-"),
    "model": lambda s: f"{s['model']} / {s['dtype']}",
    "isl": lambda s: f"{s['isl']} / {s['osl']}",
    "requests": lambda s: f"{s['requests_completed']} / {s['max_batch']} / {s['peak_batch_size']}",
    "TTFT": lambda s: _ms3(s, "ttft"),
    "TPOT": lambda s: _ms3(s, "tpot"),
    "ITL": lambda s: _ms3(s, "itl"),
    "E2E": lambda s: _ms3(s, "e2el"),
    "ops": lambda s: (f"{len(s['fallback_features'])} ({s['fallback_time_share']:.0%})"
                      if s.get("fallback_features") else "none"),
}


def _ms3(summary: dict, name: str) -> str:
    """mean / median / p99 of a vLLM-named latency, in ms ('-' where the summary predates the key)."""
    keys = [f"{stat}_{name}_ms" for stat in ("mean", "median", "p99")]
    if not all(k in summary for k in keys):
        return "-"
    top = max(summary[k] for k in keys)
    digits = 0 if top >= 1e3 else 1 if top >= 100 else 2
    return " / ".join(f"{summary[k]:,.{digits}f}" for k in keys)


def print_fallback_notes(summaries: list[dict]) -> None:
    """One line per run whose chip lacks a datapath for some of the model's ops: which, and what they cost."""
    for s in summaries:
        if s.get("fallback_features"):
            print(f"{s['hardware']}: no native datapath for {', '.join(s['fallback_features'])}; those ops run on its "
                  f"fallback unit and take {s['fallback_time_share']:.1%} of step time")


def format_table(summaries: list[dict]) -> str:
    """Metrics as rows, one column per run."""
    cells = table_cells(summaries)
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        if n == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def json_summary(summary: dict) -> dict:
    """Summary with the documented keys first, non-finite numbers as null."""
    ordered = {k: summary[k] for k in SUMMARY_KEYS if k in summary}
    ordered.update({k: v for k, v in summary.items() if k not in ordered})
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in ordered.items()}
