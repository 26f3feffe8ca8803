"""`asicsim plot`: PNG plots of a `run --out DIR` folder, or of a sweep results file.

A run folder gets TTFT and TPOT distributions (CDFs) and batch size over simulated time. A file
(.parquet/.csv) with a `point_id` column is a sweep: `asicsim.analysis.sweep_plots.plot_sweep` draws it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from asicsim.workloads.errors import InputError, install_hint

__all__ = ["register", "run", "plot_run_dir"]


def register(sub) -> None:
    p = sub.add_parser("plot", help="plot a `run --out` folder (latency CDFs, batch size) or a sweep results file")
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


def plot_run_dir(folder: Path, out: Path) -> list[Path]:
    """latency.png (TTFT and TPOT CDFs) and batch.png (batch size per step over time); returns the paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plot", "matplotlib", f"plots need matplotlib ({install_hint('plot')})") from None
    reqs, steps = _table(folder, "requests"), _table(folder, "steps")
    out.mkdir(parents=True, exist_ok=True)
    made = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, col, scale, label in ((axes[0], "ttft_s", 1.0, "TTFT (s)"), (axes[1], "tpot_s", 1e3, "TPOT (ms)")):
        values = reqs.loc[reqs["output_tokens"] > 1, col] if col == "tpot_s" else reqs[col]
        values = values.sort_values().to_numpy() * scale
        if len(values):
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))])
        ax.set_xlabel(label)
        ax.set_ylabel("share of requests")
        ax.grid(alpha=0.3)
    fig.suptitle(f"latency distributions ({len(reqs)} requests)")
    fig.tight_layout()
    made.append(out / "latency.png")
    fig.savefig(made[-1], dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(10, 4))
    for replica, group in steps.groupby("replica"):
        ax.step(group["start_at"], group["batch_size"], where="post", label=f"replica {replica}", linewidth=0.8)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("sequences per step")
    if steps["replica"].nunique() > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    made.append(out / "batch.png")
    fig.savefig(made[-1], dpi=120)
    plt.close(fig)
    return made
