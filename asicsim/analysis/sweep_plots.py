"""Plots of a sweep results file: Pareto frontiers and the programmability curve.

Four panels: output tokens/s against tokens/J and against die area (every feasible point, the Pareto
frontier drawn as a line), and the programmability curve: the best tokens/s and tokens/J at each
programmable share (over all other parameters). The format follows the file extension (PNG or SVG).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from asicsim.workloads.errors import InputError, install_hint

__all__ = ["plot_sweep", "pareto_front", "load_results"]

SHARE = "programmable_area_fraction"
TOKENS = "output_tokens_per_s"


def load_results(path: str | Path) -> pd.DataFrame:
    """A sweep results file (.parquet or .csv) as a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "file", "not found")
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise InputError(str(path), "file", "reading parquet needs pyarrow (pip install pyarrow)") from None
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={"point_id": str, "infeasible_reason": str}, keep_default_na=False,
                           na_values=["", "nan", "NaN"])
    raise InputError(str(path), "file", "a sweep result must be .parquet or .csv")


def pareto_front(x: np.ndarray, y: np.ndarray, *, minimize_x: bool = False) -> np.ndarray:
    """Indices of the points no other point beats in both x and y (larger y better), sorted by x."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    key = x if minimize_x else -x
    order = np.lexsort((-y, key))  # best x first, ties by best y
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return np.array(sorted(front, key=lambda i: x[i]), dtype=int)


def plot_sweep(path: str | Path, out: str | Path) -> Path:
    """Draw the sweep at `path` into `out` (.png or .svg); returns `out`."""
    out = Path(out)
    if out.suffix not in (".png", ".svg"):
        raise InputError(str(out), "--out", "plot file must end in .png or .svg")
    frame = load_results(path)
    missing = [c for c in ("feasible", TOKENS, "area_total_mm2") if c not in frame.columns]
    if missing:
        raise InputError(str(path), missing[0], "missing: not a sweep results file")
    ok = frame[frame["feasible"].astype(bool)]
    if ok.empty:
        raise InputError(str(path), "feasible", "no feasible point to plot")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("plot", "matplotlib", f"not installed: {install_hint('plot')}") from None
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    title = _title(ok)
    _frontier(axes[0, 0], ok, "output_tokens_per_j", "output tokens per joule (server)", minimize_x=False)
    _frontier(axes[0, 1], ok, "area_total_mm2", "die area (mm$^2$)", minimize_x=True)
    _programmability(axes[1, 0], axes[1, 1], ok)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=130, metadata={"Date": None} if out.suffix == ".svg" else None)
    plt.close(fig)
    return out


def _title(ok: pd.DataFrame) -> str:
    parts = [f"{len(ok)} feasible points"]
    for col in ("model", "dtype", "isl", "osl"):
        if col in ok.columns:
            vals = sorted({str(v) for v in ok[col]})
            parts.append(f"{col} {'/'.join(vals)}")
    return "asicsim sweep: " + ", ".join(parts)


def _frontier(ax, ok: pd.DataFrame, xcol: str, xlabel: str, *, minimize_x: bool) -> None:
    data = ok[[xcol, TOKENS]].replace([np.inf, -np.inf], np.nan).dropna()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("output tokens/s (server)")
    if data.empty:
        ax.text(0.5, 0.5, f"no {xcol} values", ha="center", transform=ax.transAxes)
        return
    colour = ok.loc[data.index, SHARE] if SHARE in ok.columns else None
    sc = ax.scatter(data[xcol], data[TOKENS], s=8, c=colour, cmap="viridis", alpha=0.6)
    if colour is not None:
        ax.figure.colorbar(sc, ax=ax, label="programmable share")
    front = pareto_front(data[xcol].to_numpy(), data[TOKENS].to_numpy(), minimize_x=minimize_x)
    ax.plot(data[xcol].to_numpy()[front], data[TOKENS].to_numpy()[front], "r-", lw=1.5, label="Pareto frontier")
    ax.legend(loc="lower right" if not minimize_x else "upper left", fontsize=8)
    ax.grid(alpha=0.3)


def _curves(ok: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One programmability curve per dtype and, with a workload-mix axis, per share of traffic on the mix model."""
    keys = [c for c in ("dtype", "mix_share") if c in ok.columns and ok[c].nunique() > 1]
    if not keys:
        return [("all", ok)]
    curves = []
    for values, part in ok.groupby(keys, sort=True):
        values = values if isinstance(values, tuple) else (values,)
        curves.append((", ".join(f"{v:.0%} {_mix_name(ok)}" if k == "mix_share" else str(v)
                                 for k, v in zip(keys, values)), part))
    return curves


def _mix_name(ok: pd.DataFrame) -> str:
    names = sorted({str(v) for v in ok["mix_model"]}) if "mix_model" in ok.columns else []
    return ("traffic on " + "/".join(names)) if names else "mix"


def _programmability(ax_tps, ax_tpj, ok: pd.DataFrame) -> None:
    for ax, col, label in ((ax_tps, TOKENS, "best output tokens/s"),
                           (ax_tpj, "output_tokens_per_j", "best output tokens per joule")):
        ax.set_xlabel("programmable share of die area")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if SHARE not in ok.columns or col not in ok.columns or ok[col].isna().all():
            ax.text(0.5, 0.5, f"no {SHARE} / {col} in this sweep", ha="center", transform=ax.transAxes)
            continue
        styles = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."), ("v", (0, (5, 1))), ("x", (0, (1, 1))))
        for i, (label, part) in enumerate(_curves(ok)):
            best = part.groupby(SHARE)[col].max().sort_index()
            marker, line = styles[i % len(styles)]
            # distinct marker, dash and size per curve: curves that coincide (fp8 and fp4 where the arrays bound
            # neither) stay visible one over the other
            ax.plot(best.index, best.to_numpy(), marker=marker, linestyle=line, markersize=7 - i % 3 * 1.5,
                    markerfacecolor="none" if i % 2 else None, label=label)
        ax.legend(fontsize=8)
