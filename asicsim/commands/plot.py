"""`asicsim plot`: PNG plots of a `run --out DIR` folder, or of a sweep results file.

A run folder gets latency.png (TTFT, TPOT and end-to-end CDFs with p50/p99 and SLO lines, titled with hardware, model,
dtype and workload; log axes where the tail is long) and steps.png (batch size, KV-cache use and queue over
simulated time as binned means). A file
(.parquet/.csv) with a `point_id` column is a sweep: `asicsim.analysis.sweep_plots.plot_sweep` draws it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from asicsim.workloads.errors import InputError, install_hint

__all__ = ["register", "run", "plot_run_dir"]


def register(sub) -> None:
    p = sub.add_parser("plot", help="plot a `run --out` folder (latency CDFs, batch / KV / queue over time) or a sweep results file",
                       description="PNG plots of a `run --out` folder (latency CDFs with p50/p99 and SLOs; batch, KV cache and queue over time) or of a sweep results file.")
    p.add_argument("path", help="folder written by `asicsim run --out`, or sweep results (.parquet/.csv)")
    p.add_argument("--out", default="", help="output: a folder for a run (default: the run folder), "
                                              "a .png/.svg file for a sweep (default: next to it)")
    p.set_defaults(func=run)


def run(args) -> int:
    path = Path(args.path)
    if path.is_dir():
        for made in plot_run_dir(path, Path(args.out) if args.out else path):
            print(made)
        return 0
    if not path.is_file():
        raise InputError(args.path, "path", "no such folder or file")
    if path.suffix not in (".parquet", ".csv"):
        raise InputError(args.path, "path", "expected a run folder or a sweep results file (.parquet or .csv)")
    columns = _read(path).columns
    if "point_id" not in columns:
        raise InputError(args.path, "point_id", "not a sweep results file (no point_id column)")
    from asicsim.analysis.sweep_plots import plot_sweep

    print(plot_sweep(path, Path(args.out) if args.out else path.with_suffix(".png")))
    return 0


def _read(path: Path) -> pd.DataFrame:
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except ImportError:
        raise InputError(str(path), "parquet", f"reading Parquet needs pyarrow ({install_hint('parquet')})") from None
    except (ValueError, OSError) as exc:
        raise InputError(str(path), "file", f"cannot read: {str(exc).splitlines()[0]}") from None


def _table(folder: Path, name: str) -> pd.DataFrame:
    for suffix in (".parquet", ".csv"):
        if (folder / f"{name}{suffix}").is_file():
            return _read(folder / f"{name}{suffix}")
    raise InputError(str(folder), name, f"no {name}.parquet or {name}.csv (write one with `asicsim run --out`)")


def _summary(folder: Path) -> dict:
    path = folder / "summary.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise InputError(str(path), "file", "not valid JSON") from None


def run_title(summary: dict) -> str:
    """'sohu x8 (tp 8 x pp 1), llama-3-70b fp8, burst 2048/128' from a run summary ('' without one)."""
    if not summary:
        return ""
    return (f"{summary.get('hardware', '?')} x{summary.get('chips', '?')} (tp {summary.get('tp', '?')} x pp "
            f"{summary.get('pp', '?')}), {summary.get('model', '?')} {summary.get('dtype', '')}, "
            f"{summary.get('workload', '')} {summary.get('isl', '')}/{summary.get('osl', '')}")


def _short(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _cdf_panel(ax, values, label: str, slo: float | None) -> None:
    """A latency CDF with p50 / p99 marked, the SLO as a line, and a log axis where the tail is long."""
    import numpy as np

    values = np.sort(np.asarray(values, dtype=float))
    if len(values) == 0:
        ax.set_title(f"{label}: no requests")
        return
    ax.plot(values, np.arange(1, len(values) + 1) / len(values), color="tab:blue", linewidth=1.5)
    for q, style in ((50, "--"), (99, ":")):
        v = float(np.percentile(values, q))
        ax.axvline(v, color="tab:gray", linestyle=style, linewidth=1)
        ax.annotate(f"p{q} {_short(v)}", (v, q / 100), textcoords="offset points", xytext=(4, -12), fontsize=8)
    if slo:
        ax.axvline(slo, color="tab:red", linewidth=1.2)
        ax.annotate(f"SLO {_short(slo)}", (slo, 0.05), textcoords="offset points", xytext=(4, 0), fontsize=8,
                    color="tab:red")
    positive = values[values > 0]
    if len(positive) and positive[-1] / max(np.percentile(positive, 50), 1e-300) > 10:
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("share of requests")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)


def _binned(time_s, values, bins: int):
    """Mean of `values` in up to `bins` equal time bins (a rolling mean for a per-step series of any length)."""
    import numpy as np

    time_s, values = np.asarray(time_s, dtype=float), np.asarray(values, dtype=float)
    if len(time_s) == 0:
        return time_s, values
    edges = np.linspace(time_s.min(), time_s.max() + 1e-12, min(bins, len(time_s)) + 1)
    index = np.clip(np.searchsorted(edges, time_s, side="right") - 1, 0, len(edges) - 2)
    sums = np.bincount(index, weights=values, minlength=len(edges) - 1)
    counts = np.bincount(index, minlength=len(edges) - 1)
    keep = counts > 0
    return ((edges[:-1] + edges[1:]) / 2)[keep], sums[keep] / counts[keep]


STEP_BINS = 600  # time bins of the per-step panels (a replica's hour has ~10^5 steps)


def plot_run_dir(folder: Path, out: Path) -> list[Path]:
    """latency.png (TTFT, TPOT and end-to-end CDFs with p50/p99 and the SLOs) and steps.png (batch size, KV-cache
    use and queue over simulated time, binned means per replica); returns the paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plot", "matplotlib", f"plots need matplotlib ({install_hint('plot')})") from None
    reqs, steps, summary = _table(folder, "requests"), _table(folder, "steps"), _summary(folder)
    title = run_title(summary)
    out.mkdir(parents=True, exist_ok=True)
    made = []
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    decoding = reqs["output_tokens"] > 1
    panels = ((reqs["ttft_s"] * 1e3, "TTFT (ms)", summary.get("slo_ttft_s")),
              (reqs.loc[decoding, "tpot_s"] * 1e3, "TPOT (ms)", summary.get("slo_tpot_s")),
              (reqs["e2e_s"] * 1e3, "end-to-end latency (ms)", None))
    for ax, (values, label, slo) in zip(axes, panels):
        _cdf_panel(ax, values.to_numpy(), label, slo * 1e3 if slo else None)
    fig.suptitle(f"{title}: latency of {len(reqs):,} requests" if title else f"latency of {len(reqs):,} requests")
    fig.tight_layout()
    made.append(out / "latency.png")
    fig.savefig(made[-1], dpi=120)
    plt.close(fig)
    capacity = None
    if summary.get("kv_capacity_bytes_per_chip") and summary.get("kv_bytes_per_token_per_chip"):
        capacity = summary["kv_capacity_bytes_per_chip"] / summary["kv_bytes_per_token_per_chip"]
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    block = float(summary.get("kv_block_tokens", 16) or 16)
    for replica, group in steps.groupby("replica"):
        t = group["start_at"].to_numpy()
        axes[0].plot(*_binned(t, group["batch_size"], STEP_BINS), linewidth=1, label=f"replica {replica}")
        kv = group["kv_blocks"].to_numpy() * block
        axes[1].plot(*_binned(t, 100 * kv / capacity if capacity else kv, STEP_BINS), linewidth=1)
        axes[2].plot(*_binned(t, group["waiting"], STEP_BINS), linewidth=1)
    axes[0].set_ylabel("sequences per step")
    axes[1].set_ylabel("KV cache used (%)" if capacity else "KV tokens held")
    axes[2].set_ylabel("requests queued")
    axes[2].set_xlabel("simulated time (s)")
    if steps["replica"].nunique() > 1:
        axes[0].legend(fontsize=8, ncol=4)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: {len(steps):,} steps, means over {STEP_BINS} time bins" if title
                 else f"{len(steps):,} steps, means over {STEP_BINS} time bins")
    fig.tight_layout()
    made.append(out / "steps.png")
    fig.savefig(made[-1], dpi=120)
    plt.close(fig)
    return made
