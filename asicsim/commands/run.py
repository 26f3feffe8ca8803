"""`asicsim run`: one workload on one system; `--out DIR` keeps per-request and per-step records."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from asicsim.analysis.breakdown import energy_breakdown, format_breakdown, format_energy_breakdown, step_breakdown
from asicsim.core.runner import run_workload
from asicsim.workloads.errors import InputError, install_hint

from ._common import (add_workload_flags, emit_summaries, format_table, json_summary, output_format,
                      print_fallback_notes, print_json, spec_from_args, whole_at_least)

__all__ = ["register", "run", "write_outputs", "ProgressBar"]


def register(sub) -> None:
    p = sub.add_parser("run", help="simulate one workload on one system",
                       description="Simulate one workload (a burst, Poisson arrivals or a trace) on one system and print throughput (tokens/s), latency (TTFT, TPOT, ITL, end-to-end; ms), utilisation, memory and energy per token.")
    p.add_argument("--hw", required=True, help="hardware spec name (see `asicsim specs`) or path to a TOML file")
    add_workload_flags(p, chips_default=None)
    p.add_argument("--out", default="", help="write requests, steps, summary.json and timeline.json to this folder")
    p.add_argument("--timeline-steps", type=_steps, default=10,
                   help="first steps of each replica drawn in timeline.json with --out, or 'all' for the whole run "
                        "(default: %(default)s; a step of a 70B model is a few thousand events)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--breakdown", action="store_true",
                   help="where time goes: GEMM, attention, collectives, overhead, idle; compute- vs memory-bound")
    p.set_defaults(func=run)



def _screen() -> dict:
    """tqdm's ncols / nrows from the terminal, 100 x 20 where it reports 0 (tqdm then draws nothing)."""
    import shutil

    size = shutil.get_terminal_size((100, 20))
    return {"ncols": size.columns or 100, "nrows": size.lines or 20}


class ProgressBar:
    """The run's progress bar on stderr (tqdm: requests done, ETA, simulated seconds and speed), drawn only after
    `delay_s` of wall time; the CLI makes one only at a terminal."""

    def __init__(self, stream=None, delay_s: float = 2.0) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=None, file=stream or sys.stderr, delay=delay_s, unit=" requests", **_screen(),
                         bar_format="{n_fmt}/{total_fmt}{unit} |{bar}|{postfix}, ETA {remaining}")
        self.started = time.perf_counter()

    def __call__(self, sim_s: float, done: int, total: int) -> None:
        if self._bar.total != total:
            self._bar.total = total
        wall = time.perf_counter() - self.started
        speed = sim_s / wall if wall > 0 else 0.0
        self._bar.set_postfix_str(f"{sim_s:,.0f} s simulated, {speed:,.0f}x real time", refresh=False)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()


def _steps(text: str) -> int:
    """A step count >= 0, or 'all' (every step of the run)."""
    if text == "all":
        return 1 << 62
    try:
        return whole_at_least(0)(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or 'all')") from None


def run(args) -> int:
    bar = None if args.quiet or not sys.stderr.isatty() else ProgressBar()
    try:
        result = run_workload(spec_from_args(args, args.hw), progress=bar)
    finally:
        if bar is not None:
            bar.close()
    if args.out:
        note = write_outputs(result, Path(args.out))
        if note:
            print(note, file=sys.stderr)
    fmt = output_format(args)
    if fmt == "json":
        summary = json_summary(result.summary)
        if args.breakdown:
            summary["breakdown"] = step_breakdown(result)
            energy = energy_breakdown(result)
            if energy is not None:
                summary["energy_breakdown"] = energy
        print_json(summary)
    elif fmt in ("csv", "md"):
        emit_summaries([result.summary], fmt)
    else:
        print(format_table([result.summary]))
        print_fallback_notes([result.summary])
        if args.breakdown:
            print()
            print(format_breakdown(result))
            energy = format_energy_breakdown(result)
            if energy:
                print()
                print(energy)
    return 0


def write_outputs(result, out: Path) -> str:
    """requests and steps as Parquet (CSV without pyarrow), summary.json, timeline.json; returns a note or ''."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError("--out", "out", f"cannot create {out}: {exc.strerror}") from None
    note = ""
    frames = {"requests": result.requests_frame(), "steps": result.steps_frame()}
    try:
        import pyarrow  # noqa: F401

        for name, frame in frames.items():
            frame.to_parquet(out / f"{name}.parquet", index=False)
    except ImportError:
        for name, frame in frames.items():
            frame.to_csv(out / f"{name}.csv", index=False)
        note = f"note: pyarrow is not installed ({install_hint('parquet')}); wrote requests.csv and steps.csv"
    (out / "summary.json").write_text(json.dumps(json_summary(result.summary), indent=2, default=float) + "\n")
    if result.timeline is not None:
        (out / "timeline.json").write_text(json.dumps(result.timeline) + "\n")
    return note
