"""`asicsim sweep CONFIG.toml --out results.parquet`: a design-space study, one row per point.

Rows are appended to a journal (`OUT.journal.jsonl`, one JSON object per line, flushed per finished
chunk) as points finish; at the end the journal is consolidated into OUT (parquet with pyarrow, else
CSV) and removed. `--resume` reads the journal (and OUT) back, drops a torn last line, and runs only
the points whose `point_id` is not there, so a killed sweep loses and repeats nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pandas as pd

from asicsim.analysis.executors import EXECUTORS, bind, chunked, run_chunks
from asicsim.analysis.sweep import (EXAMPLE_CONFIG, SweepConfig, check_parameter_names, check_parameter_values,
                                    default_derive, evaluate_chunk, expand_points, load_sweep_config, point_id)
from asicsim.analysis.sweep_plots import load_results, plot_sweep
from asicsim.workloads.errors import InputError, Interrupted

from ._common import whole_at_least

_positive = whole_at_least(1)

__all__ = ["register", "run", "run_sweep", "ResultStore", "Progress", "study_size", "MAX_POINTS"]

MAX_POINTS = 100_000  # a larger study needs --yes
SECONDS_PER_POINT = 0.07  # one point on one worker (benchmarks/bench_sweep.py), for the ETA line


def register(sub) -> None:
    p = sub.add_parser("sweep", help="sweep ASIC spec parameters and workloads (one row per point)",
                       description="A design-space study from a TOML file: ASIC spec parameters (programmable share, SRAM, arrays, clock, ...) and workloads swept together, every point run through the same serving path as `asicsim run`; results to Parquet/CSV, plots with --plot.")
    p.add_argument("config", nargs="?", help="sweep TOML (see --example)")
    p.add_argument("--out", help="results file: .parquet (needs pyarrow, else CSV next to it) or .csv")
    p.add_argument("--example", action="store_true",
                   help="the default study: with --out, run it; without, print its commented config")
    p.add_argument("--resume", action="store_true", help="continue a killed sweep of the same --out")
    p.add_argument("--executor", default="local", help=f"where points run: {', '.join(EXECUTORS)}")
    p.add_argument("--address", default=None, help="Dask scheduler, tcp://HOST:PORT (default: a local cluster)")
    p.add_argument("--workers", type=_positive, default=0, help="processes (default: one per CPU)")
    p.add_argument("--chunk", type=_positive, default=0, help="points per task (default: automatic)")
    p.add_argument("--yes", action="store_true",
                   help=f"run a study of more than {MAX_POINTS:,} points (refused without it)")
    p.add_argument("--plot", default=None, help="also draw the results to this .png or .svg (see asicsim plot)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.example and args.config:
        raise InputError("sweep", "--example", f"give a study file or --example, not both ({args.config})")
    if args.example and not args.out:
        sys.stdout.write(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
        print("sweep: that is the default study; run it with `asicsim sweep --example --out results.parquet`",
              file=sys.stderr)
        return 0
    if args.example:
        args.config = str(EXAMPLE_CONFIG)
    if not args.config:
        raise InputError("sweep", "config", "give a sweep TOML file (asicsim sweep --example prints one)")
    if not args.out:
        raise InputError("sweep", "--out", "give a results file (.parquet or .csv)")
    if args.plot and Path(args.plot).suffix not in (".png", ".svg"):
        raise InputError(args.plot, "--plot", "must end in .png or .svg")
    cfg = load_sweep_config(args.config)
    count = study_size(cfg)
    if count > MAX_POINTS and not args.yes:
        raise InputError(args.config, "parameters", f"the study has {count:,} points, over the {MAX_POINTS:,} a "
                                                    f"sweep runs without --yes (at ~{SECONDS_PER_POINT * 1e3:.0f} ms "
                                                    f"a point per worker)")
    progress = Progress(enabled=not args.quiet and sys.stderr.isatty())
    if not args.quiet:
        workers = args.workers or os.cpu_count() or 1
        eta_s = count * SECONDS_PER_POINT / workers
        print(f"sweep: {count:,} points on {workers} workers, about {_clock(eta_s)} (ETA)", file=sys.stderr)
    try:
        written, total, final = run_sweep(cfg, args.out, resume=args.resume, executor=args.executor,
                                          address=args.address, workers=args.workers, chunk=args.chunk,
                                          progress=progress)
    except KeyboardInterrupt:
        progress.finish()
        journal = Path(args.out).with_name(Path(args.out).name + ".journal.jsonl")
        raise Interrupted(f"finished points are kept in {journal}; rerun with --resume to continue") from None
    if not args.quiet:
        print(f"sweep: {total} points ({written} run now) -> {final}", file=sys.stderr)
    if args.plot:
        plot_sweep(final, args.plot)
    return 0


def _clock(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def study_size(cfg: SweepConfig) -> int:
    """Points in a study, counted before expanding it (a grid is the product of its axes)."""
    workloads = math.prod(len(v) for v in cfg.workload.values())
    if cfg.sampling == "random":
        return cfg.samples
    return math.prod(len(v) for v in cfg.parameters.values()) * workloads


def run_sweep(config: "str | SweepConfig", out: str, *, resume: bool = False, executor: str = "local", address: str | None = None,
              workers: int = 0, chunk: int = 0, progress: "Progress | None" = None, derive=None,
              area=None) -> tuple[int, int, Path]:
    """Run (or resume) a study; returns (points run now, points in the study, results path).

    `derive` and `area` replace the chip package's functions (tests pass stand-ins; picklable).
    """
    cfg = config if isinstance(config, SweepConfig) else load_sweep_config(config)
    derive = derive or default_derive()
    check_parameter_names(cfg, derive)
    check_parameter_values(cfg, derive)
    points = expand_points(cfg)
    store = ResultStore(Path(out), resume=resume)
    todo = [p for p in points if point_id(p) not in store.done]
    n_workers = workers or os.cpu_count() or 1
    size = chunk or max(1, min(16, len(todo) // (8 * n_workers)))
    fn = bind(evaluate_chunk, derive=derive, area=area)
    progress = progress or Progress(enabled=False)
    progress.start(len(todo))
    written = 0
    for rows in run_chunks(fn, chunked(todo, size), executor=executor, address=address, workers=workers):
        store.append(rows)
        written += len(rows)
        progress.update(len(rows))
    progress.finish()
    return written, len(points), store.finalize([point_id(p) for p in points])


class ResultStore:
    """Rows on disk: an append-only JSON-lines journal, consolidated into the results file at the end."""

    def __init__(self, out: Path, *, resume: bool) -> None:
        self.out = out
        self.journal = out.with_name(out.name + ".journal.jsonl")
        if out.suffix not in (".parquet", ".csv"):
            raise InputError(str(out), "--out", "must end in .parquet or .csv")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(str(out), "--out", f"cannot create the folder: {exc.strerror}") from None
        existing = [p for p in (self.journal, out, self._csv_fallback) if p.exists()]
        if existing and not resume:
            raise InputError(str(existing[0]), "file", "exists; pass --resume to continue that sweep or remove it")
        self.rows: dict[str, dict] = {}
        for path in (out, self._csv_fallback):
            if resume and path.exists():
                frame = load_results(path)
                if "point_id" not in frame.columns:
                    raise InputError(str(path), "point_id", "not a sweep results file (no point_id column); "
                                                            "remove it or choose another --out")
                for row in frame.to_dict("records"):
                    self.rows[row["point_id"]] = row
        if resume and self.journal.exists():
            self._read_journal()

    @property
    def _csv_fallback(self) -> Path:
        return self.out.with_suffix(".csv") if self.out.suffix == ".parquet" else self.out

    @property
    def done(self) -> set[str]:
        return set(self.rows)

    def _read_journal(self) -> None:
        data = self.journal.read_bytes()
        keep = data.rfind(b"\n") + 1  # a torn last line (killed mid-write) is dropped and its point re-run
        if keep < len(data):
            with self.journal.open("r+b") as fh:
                fh.truncate(keep)
        for number, line in enumerate(data[:keep].splitlines(), 1):
            try:
                row = json.loads(line)
                self.rows[row["point_id"]] = row
            except (ValueError, KeyError, TypeError):
                raise InputError(str(self.journal), f"line {number}", "not a sweep journal row (JSON with a "
                                                                      "point_id); remove the file to start over") from None

    def append(self, rows: list[dict]) -> None:
        """Write finished rows durably before anything else happens."""
        text = "".join(json.dumps(r, default=_plain) + "\n" for r in rows)
        with self.journal.open("a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        for r in rows:
            self.rows[r["point_id"]] = r

    def finalize(self, order: list[str]) -> Path:
        """Write the study's rows (in study order) to the results file; remove the journal."""
        frame = pd.DataFrame([self.rows[i] for i in order if i in self.rows])
        target = self.out
        tmp = target.with_name(target.name + ".tmp")
        if target.suffix == ".parquet":
            try:
                frame.to_parquet(tmp, index=False)
            except ImportError:
                target = self._csv_fallback
                tmp = target.with_name(target.name + ".tmp")
                print(f"sweep: pyarrow not installed; writing CSV to {target}", file=sys.stderr)
        if target.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        os.replace(tmp, target)
        self.journal.unlink(missing_ok=True)
        return target


def _plain(value):
    """JSON for numpy scalars."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")



def _screen() -> dict:
    """tqdm's ncols / nrows from the terminal, 100 x 20 where it reports 0 (tqdm then draws nothing)."""
    import shutil

    size = shutil.get_terminal_size((100, 20))
    return {"ncols": size.columns or 100, "nrows": size.lines or 20}


class Progress:
    """The sweep's progress bar on stderr (tqdm: points done, points/s, ETA); silent when disabled."""

    def __init__(self, *, enabled: bool, stream=None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._bar = None

    def start(self, total: int) -> None:
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, file=self.stream, desc="sweep", unit=" points", **_screen(),
                             bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} {percentage:3.0f}% {rate_fmt} "
                                        "ETA {remaining}")

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
