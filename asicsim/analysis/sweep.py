"""Design-space sweeps: a TOML study -> points (grid or random) -> one result row per point.

A point is a base ASIC spec, the spec parameters handed to
`asicsim.chip.programmability.derive_asic_spec`, and a workload (RunSpec fields). Its `point_id` is the
sha256 of the point's canonical JSON (sorted keys, whole floats written as integers, workload defaults
filled in), so the same point has the same id in every run and process.

Each point is evaluated by the simulator itself, reduced (see `reduced_summary`): the serving loop and
the engine price every distinct prefill step and a few sampled decode steps exactly; the other decode
steps are interpolated. `runner.summarize` then turns the rebuilt timeline into the usual summary.
Infeasible points (over the reticle, power cap, HBM edge, or out of memory) become rows with
`feasible = False` and the reason, so a resumed sweep does not retry them.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import inspect
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from pathlib import Path
from typing import Any, Callable

import numpy as np

from asicsim.chip.power import step_energy_j
from asicsim.chip.spec import AsicSpec
from asicsim.core.engine import StepEngine
from asicsim.core.memory_plan import plan_memory
from asicsim.core.registry import device_class, load_hardware
from asicsim.core.results import RequestRecord, StepRecord
from asicsim.core.runner import RUN_DTYPES, RunSpec, summarize
from asicsim.core.serving import (ReplicaRun, ServingConfig, StepRunner, check_parallelism, chunked_prefill,
                                  step_record)
from asicsim.core.specfile import read_toml, spec_meta_fields
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import StepBatch
from asicsim.workloads.models import load_model
from asicsim.workloads.requests import Request

__all__ = ["SweepConfig", "load_sweep_config", "expand_points", "point_id", "evaluate_point", "evaluate_chunk",
           "reduced_summary", "silicon_cost", "check_parameter_names", "default_derive", "default_area",
           "EXAMPLE_CONFIG", "WORKLOAD_DEFAULTS"]

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "data" / "sweep_example.toml"
SILICON_COST_CSV = Path(__file__).resolve().parent.parent / "data" / "silicon_cost.csv"

# RunSpec fields a sweep may set (a burst of identical requests under static batching), with defaults;
# the point id covers exactly these, so new RunSpec fields do not change ids.
_WORKLOAD_KEYS = ("model", "chips", "dtype", "kv_dtype", "tp", "pp", "isl", "osl", "requests", "max_batch",
                  "max_tokens_per_step")
WORKLOAD_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(RunSpec) if f.name in _WORKLOAD_KEYS}
WORKLOAD_DEFAULTS |= {"model": "llama-3-70b", "chips": 8}
_TOP_KEYS = {"base", "sampling", "samples", "seed", "parameters", "workload", "evaluation"}
_EVAL_DEFAULTS = {"decode_samples": 5}


@dataclass(frozen=True)
class SweepConfig:
    """A validated study: axes are name -> tuple of values (grid) or a value/range spec (random)."""

    source: str
    base: str
    sampling: str
    samples: int
    seed: int
    parameters: dict
    workload: dict
    decode_samples: int


# --- configuration ---------------------------------------------------------------------------------
def _scalar_ok(value: Any) -> bool:
    return isinstance(value, (bool, str)) or (isinstance(value, (int, float)) and math.isfinite(value))


def _axis(src: str, field: str, raw: Any, sampling: str) -> Any:
    """A list of values, a scalar (one value) or, for random sampling, {min, max[, log][, integer]}."""
    if isinstance(raw, dict):
        if sampling != "random":
            raise InputError(src, field, "a {min, max} range needs sampling = \"random\"; give a list for a grid")
        extra = set(raw) - {"min", "max", "log", "integer"}
        if extra:
            raise InputError(src, f"{field}.{sorted(extra)[0]}", "unknown key (allowed: min, max, log, integer)")
        for key in ("min", "max"):
            v = raw.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise InputError(src, f"{field}.{key}", f"must be a finite number, got {v!r}")
        if raw["min"] > raw["max"]:
            raise InputError(src, field, f"min {raw['min']} > max {raw['max']}")
        for key in ("log", "integer"):
            if not isinstance(raw.get(key, False), bool):
                raise InputError(src, f"{field}.{key}", "must be true or false")
        if raw.get("log") and raw["min"] <= 0:
            raise InputError(src, f"{field}.min", "must be > 0 for a log range")
        return dict(raw)
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise InputError(src, field, "empty list")
    for v in values:
        if not _scalar_ok(v):
            raise InputError(src, field, f"values must be numbers, strings or booleans, got {v!r}")
    return tuple(_canon(v) for v in values)


def _int_field(src: str, field: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(src, field, f"must be a whole number >= {low}, got {value!r}")
    return value


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep TOML; every error is one InputError naming the file and field."""
    src = str(path)
    table = read_toml(Path(path))
    unknown = sorted(set(table) - _TOP_KEYS)
    if unknown:
        raise InputError(src, unknown[0], f"unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    base = table.get("base", "sohu")
    if not isinstance(base, str) or not base:
        raise InputError(src, "base", f"must be a hardware spec name or path, got {base!r}")
    sampling = table.get("sampling", "grid")
    if sampling not in ("grid", "random"):
        raise InputError(src, "sampling", f"must be 'grid' or 'random', got {sampling!r}")
    samples = _int_field(src, "samples", table.get("samples", 1000), 1)
    seed = _int_field(src, "seed", table.get("seed", 0), 0)
    sections = {}
    for name in ("parameters", "workload", "evaluation"):
        sec = table.get(name, {})
        if not isinstance(sec, dict):
            raise InputError(src, name, "must be a table")
        sections[name] = sec
    params = {k: _axis(src, f"parameters.{k}", v, sampling) for k, v in sections["parameters"].items()}
    bad = sorted(set(sections["workload"]) - set(WORKLOAD_DEFAULTS))
    if bad:
        raise InputError(src, f"workload.{bad[0]}", f"unknown key (known: {', '.join(sorted(WORKLOAD_DEFAULTS))})")
    workload = {k: _axis(src, f"workload.{k}", v, "grid") for k, v in sections["workload"].items()}
    _check_workload(src, workload)
    both = sorted(set(params) & set(workload))
    if both:
        raise InputError(src, f"parameters.{both[0]}", "also set in [workload]; give it in one place")
    bad = sorted(set(sections["evaluation"]) - set(_EVAL_DEFAULTS))
    if bad:
        raise InputError(src, f"evaluation.{bad[0]}", f"unknown key (known: {', '.join(_EVAL_DEFAULTS)})")
    decode = _int_field(src, "evaluation.decode_samples",
                        sections["evaluation"].get("decode_samples", _EVAL_DEFAULTS["decode_samples"]), 2)
    return SweepConfig(src, base, sampling, samples, seed, params, workload, decode)


def _check_workload(src: str, workload: dict) -> None:
    for key, values in workload.items():
        field = f"workload.{key}"
        for v in values:
            if key in ("model", "kv_dtype"):
                if not isinstance(v, str):
                    raise InputError(src, field, f"must be a string, got {v!r}")
            elif key == "dtype":
                if v not in RUN_DTYPES:
                    raise InputError(src, field, f"must be one of {', '.join(RUN_DTYPES)}, got {v!r}")
            else:
                low = 0 if key in ("tp", "max_batch") else 1
                _int_field(src, field, v, low)
        if key == "kv_dtype" and any(v and v not in RUN_DTYPES for v in values):
            raise InputError(src, field, f"must be '' or one of {', '.join(RUN_DTYPES)}")


# --- points -----------------------------------------------------------------------------------------
def _canon(value: Any) -> Any:
    """Whole floats as ints, so 1.5e9 and 1500000000 name the same point."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _canon_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _canon_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon_tree(v) for v in value]
    return _canon(value)


def point_id(point: dict) -> str:
    """Stable id: first 16 hex digits of sha256 over the point's sorted, compact JSON (whole floats as ints)."""
    text = json.dumps(_canon_tree(point), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _draw(rng: np.random.Generator, axis: Any) -> Any:
    if isinstance(axis, tuple):
        return axis[int(rng.integers(len(axis)))]
    lo, hi = float(axis["min"]), float(axis["max"])
    x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if axis.get("log") else rng.uniform(lo, hi)
    return int(round(x)) if axis.get("integer") else _canon(float(f"{x:.6g}"))


def expand_points(cfg: SweepConfig) -> list[dict]:
    """Every point of the study, in a deterministic order, without duplicates."""
    work_names = sorted(cfg.workload)
    work_sets = [dict(WORKLOAD_DEFAULTS, **dict(zip(work_names, combo)))
                 for combo in product(*(cfg.workload[n] for n in work_names))]
    names = sorted(cfg.parameters)
    if cfg.sampling == "grid":
        spec_sets = [dict(zip(names, combo)) for combo in product(*(cfg.parameters[n] for n in names))]
        raw = [(s, w) for s in spec_sets for w in work_sets]
    else:
        rng = np.random.default_rng(cfg.seed)
        raw = []
        for _ in range(cfg.samples):
            spec = {n: _draw(rng, cfg.parameters[n]) for n in names}
            raw.append((spec, work_sets[int(rng.integers(len(work_sets)))]))
    points, seen = [], set()
    for spec, work in raw:
        point = {"base": cfg.base, "spec": spec, "workload": {k: _canon(v) for k, v in work.items()}}
        pid = point_id(point)
        if pid not in seen:
            seen.add(pid)
            points.append(point)
    return points


def check_parameter_names(cfg: SweepConfig, derive: Callable) -> None:
    """Unknown spec parameters are a config error, when derive_asic_spec names its keywords."""
    sig = inspect.signature(derive)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        # **params: AsicSpec fields plus the extras its module declares (asicsim.chip.programmability).
        extras = getattr(inspect.getmodule(derive), "DERIVE_PARAMS", None)
        if extras is None:
            return
        known = {f.name for f in dataclasses.fields(AsicSpec)} - set(spec_meta_fields) | set(extras)
    else:
        known = {n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
        known.discard(next(iter(sig.parameters), ""))  # the base spec
    bad = sorted(set(cfg.parameters) - known)
    if bad:
        raise InputError(cfg.source, f"parameters.{bad[0]}", f"not a spec parameter (known: {', '.join(sorted(known))})")


def default_derive() -> Callable:
    """The real `derive_asic_spec`, imported on first use."""
    try:
        from asicsim.chip.programmability import derive_asic_spec
    except ImportError as exc:
        raise InputError("asicsim.chip.programmability", "derive_asic_spec", f"not available: {exc}") from None
    return derive_asic_spec


# --- reduced evaluation ------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _model(name: str):
    return load_model(name)


@lru_cache(maxsize=8)
def _base_spec(name: str):
    return load_hardware(name)


def _kv_dtype(run: RunSpec) -> str:
    return run.kv_dtype or ("fp8" if run.dtype == "fp4" else run.dtype)


def reduced_summary(device, run: RunSpec, *, decode_samples: int = 5) -> dict:
    """`run_workload`'s summary from a reduced simulation of `run` under static batching.

    The requests are `run.requests` identical prompts arriving at t=0, dealt round-robin to replicas.
    Batches are admitted as the static scheduler does (memory plan, then whole KV blocks); prompts go
    through chunked prefill steps, each distinct one timed by the engine. A batch's decode steps differ
    only in the cached length (input + j for step j), so the engine times `decode_samples` of them
    (first, last, evenly between) and every step-record field is interpolated linearly in j. Replicas
    and batches of equal size share one timeline. `runner.summarize` turns the records into the summary.
    """
    cfg = ServingConfig(model=_model(run.model), dtype=run.dtype, kv_dtype=_kv_dtype(run), tp=run.tp or run.chips,
                        pp=run.pp, max_batch=run.max_batch, max_tokens_per_step=run.max_tokens_per_step)
    replicas = check_parallelism(run.chips, cfg)
    full = run.isl + run.osl
    plan = plan_memory(cfg.model, device.memory_bytes_per_chip, dtype=cfg.dtype, kv_dtype=cfg.kv_dtype, tp=cfg.tp,
                       pp=cfg.pp, tokens_per_request=full, max_tokens_per_step=cfg.max_tokens_per_step,
                       act_dtype=cfg.act_dtype, chips=run.chips)
    max_batch = cfg.max_batch or plan.max_batch_fit
    if max_batch > plan.max_batch_fit:
        raise InputError("--max-batch", "max-batch", f"{max_batch} requests do not fit; at most {plan.max_batch_fit}")
    admitted = max_batch
    block = getattr(cfg, "kv_block_tokens", 0)
    if block:  # a paged KV cache admits whole blocks per request
        blocks = int(plan.kv_capacity_bytes // (plan.kv_bytes_per_token * block))
        admitted = min(max_batch, blocks // -(-full // block))
    timer = _StepTimer(StepEngine(device), cfg, device.overlap_collectives)
    timelines: dict[int, tuple] = {}
    runs, chip_joules = [], 0.0
    for rep in range(replicas):
        ids = list(range(rep, run.requests, replicas))
        now, steps, records = 0.0, [], []
        for first in range(0, len(ids), admitted):
            size = min(admitted, len(ids) - first)
            if size not in timelines:
                timelines[size] = _batch_timeline(timer, size, run, decode_samples)
            durations, templates, first_step, joules = timelines[size]
            chip_joules += joules
            ends = now + np.cumsum(durations)
            starts = np.concatenate(([now], ends[:-1]))
            steps += [dataclasses.replace(t, step=len(steps) + k, replica=rep, start_at=float(s), end_at=float(e))
                      for k, (t, s, e) in enumerate(zip(templates, starts, ends))]
            finish = float(ends[-1])
            records += [RequestRecord(i, rep, 0.0, float(ends[first_step[k]]), finish, run.isl, run.osl)
                        for k, i in enumerate(ids[first:first + size])]
            now = finish
        runs.append(ReplicaRun(tuple(records), tuple(steps), plan, max_batch, admitted * full))
    summary = summarize(device, run, cfg, runs)
    if "energy_j_per_output_token" not in summary and timer.asic:
        # Every chip of a replica runs each step in lock-step: a step costs tp x pp times one chip's energy.
        joules = chip_joules * cfg.tp * cfg.pp
        summary["energy_j_per_output_token"] = joules / summary["output_tokens_total"]
        summary["power_w_per_chip"] = joules / (run.chips * summary["makespan_s"])
    return summary


class _StepTimer:
    """Times one step on one chip exactly as the serving loop does (`StepRunner`: the whole batch, or two
    interleaved halves when the device overlaps collectives and that is faster), and prices its energy."""

    def __init__(self, engine: StepEngine, cfg: ServingConfig, overlap: bool) -> None:
        self.cfg = cfg
        self.runner = StepRunner(engine, cfg, overlap)
        self.spec = getattr(engine.device, "spec", None)
        self.asic = getattr(self.spec, "kind", "") == "asic"  # asicsim.chip.power prices ASIC steps

    def energy_j(self, record: StepRecord) -> float:
        """One chip's joules in the step (0 where no power model applies)."""
        return step_energy_j(self.spec, record, self.cfg.dtype) if self.asic else 0.0

    def record(self, batch: StepBatch) -> StepRecord:
        """A step record template (start 0, end = step seconds) for `batch`."""
        timing, micro = self.runner.run(batch)
        pp = self.cfg.pp
        return step_record(0, 0, 0.0, timing.time_s * pp, batch, micro, timing, bubble=(pp - 1) * timing.time_s)


def _prefill_schedule(size: int, isl: int, budget: int) -> tuple[list[StepBatch], list[int]]:
    """Chunked prefill of `size` prompts as the serving loop plans it: the step batches, and the index of
    the step that finishes each prompt."""
    batches: list[StepBatch] = []

    def step(batch: StepBatch) -> int:
        batches.append(batch)
        return len(batches) - 1

    finish = chunked_prefill([Request(k, 0.0, isl, 1) for k in range(size)], budget, step)
    return batches, [int(finish[k]) for k in range(size)]


def _batch_timeline(timer: _StepTimer, size: int, run: RunSpec, samples: int):
    """(step durations, step record templates, per-request index of its first-token step) of one batch."""
    batches, first_step = _prefill_schedule(size, run.isl, run.max_tokens_per_step)
    timed: dict[tuple, tuple[StepRecord, float]] = {}
    templates, joules = [], 0.0
    for b in batches:
        key = (tuple(b.prefill_new_tokens), tuple(b.prefill_past_tokens))
        if key not in timed:
            rec = timer.record(b)
            timed[key] = rec, timer.energy_j(rec)
        templates.append(timed[key][0])
        joules += timed[key][1]
    n_dec = run.osl - 1
    if n_dec > 0:
        js = np.unique(np.round(np.linspace(0, n_dec - 1, min(samples, n_dec))).astype(int))
        sampled = [timer.record(StepBatch.make(decode_past=np.full(size, run.isl + j, dtype=np.int64))) for j in js]
        templates += _interpolate(sampled, js, n_dec)
        # Energy, like every other field, linear in j between the sampled steps.
        joules += float(np.interp(np.arange(n_dec), js, [timer.energy_j(r) for r in sampled]).sum())
    durations = np.array([t.end_at - t.start_at for t in templates])
    return durations, templates, first_step, joules


_INTERPOLATED = ("end_at", "compute_busy_s", "memory_busy_s", "link_busy_s", "fixed_s", "ideal_compute_s", "stall_s",
                 "memory_wait_s", "flops_per_chip", "memory_bytes_per_chip", "gemm_s", "attention_s",
                 "collective_s", "other_s")


def _interpolate(sampled: list[StepRecord], js: np.ndarray, n: int) -> list[StepRecord]:
    """Step records for decode steps 0..n-1, each numeric field linear in j between the sampled steps."""
    grid = np.arange(n)
    cols = {f: np.interp(grid, js, [getattr(s, f) for s in sampled]) for f in _INTERPOLATED}
    nearest = np.searchsorted(js, grid).clip(0, len(js) - 1)
    return [dataclasses.replace(sampled[nearest[j]], **{f: float(cols[f][j]) for f in _INTERPOLATED})
            for j in range(n)]


# --- silicon cost ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _cost_table() -> dict:
    table: dict = {}
    with SILICON_COST_CSV.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            table[(row["quantity"], row["node"])] = float(row["value"])
    return table


def silicon_cost(die_area_mm2: float, node_nm: float) -> dict:
    """Gross dies per wafer, Murphy yield and cost per good die (data/silicon_cost.csv).

    Dies per wafer = pi (d/2)^2 / A - pi d / sqrt(2 A) (wafer area over die area, less the partial dies
    at the edge); yield = ((1 - exp(-A D0)) / (A D0))^2 (Murphy 1964, defects clustered across a wafer).
    """
    table = _cost_table()
    node = f"{node_nm:g}"
    if ("wafer_cost", node) not in table:
        known = sorted({n for q, n in table if q == "wafer_cost"}, key=float)
        raise InputError(str(SILICON_COST_CSV), "wafer_cost", f"no figure for {node} nm (known: {', '.join(known)})")
    d = table[("wafer_diameter", "any")]
    dies = math.floor(math.pi * (d / 2) ** 2 / die_area_mm2 - math.pi * d / math.sqrt(2 * die_area_mm2))
    ad = die_area_mm2 / 100.0 * table[("defect_density", node)]
    good = (-math.expm1(-ad) / ad) ** 2 if ad > 0 else 1.0
    wafer = table[("wafer_cost", node)]
    return {"dies_per_wafer": dies, "die_yield": good, "wafer_cost_usd": wafer,
            "die_cost_usd": wafer / (dies * good) if dies > 0 else math.inf}


# --- one point -------------------------------------------------------------------------------------------
_SPEC_COLUMNS = ("process_node_nm", "die_area_mm2", "clock_hz", "array_count", "array_rows", "array_cols",
                 "sram_bytes", "hbm_stacks", "hbm_capacity_bytes", "hbm_bandwidth_bytes_per_s", "vector_lanes",
                 "tdp_w")
_SUMMARY_COLUMNS = ("output_tokens_per_s", "input_tokens_per_s", "total_tokens_per_s", "ttft_p50_s", "ttft_p99_s",
                    "tpot_p50_s", "tpot_p99_s", "e2e_p50_s", "makespan_s", "max_batch", "mfu", "mbu",
                    "compute_utilization", "energy_j_per_output_token")


def evaluate_point(point: dict, *, derive: Callable | None = None, area: Callable | None = None,
                   decode_samples: int = 5) -> dict:
    """One result row: the point's parameters, the derived spec, area, performance, energy and cost.

    `derive` and `area` default to the chip package's `derive_asic_spec` and `area_breakdown`.
    """
    work = point["workload"]
    row: dict[str, Any] = {"point_id": point_id(point), "base": point["base"], **point["spec"], **work}
    run = RunSpec(hardware=point["base"], seed=0, **work)
    try:
        derive = derive or default_derive()
        spec = derive(_base_spec(point["base"]), **point["spec"])
        device = device_class(spec.kind)(spec, run.chips)
        summary = reduced_summary(device, dataclasses.replace(run, tp=run.tp or run.chips),
                                  decode_samples=decode_samples)
    except InputError as exc:  # DoesNotFitError included: a point the chip cannot hold
        if exc.source in ("asicsim.chip.programmability", "asicsim.chip.area"):
            raise
        return row | {"feasible": False, "infeasible_reason": str(exc)}
    row |= {"feasible": True, "infeasible_reason": ""}
    row |= {f"spec_{k}" if k in row else k: getattr(spec, k) for k in _SPEC_COLUMNS}
    row |= _area_columns(spec, area or default_area())
    row["peak_flops_per_s"] = spec.peak_flops_per_s(run.dtype)
    row |= {f"run_{k}" if k in row else k: summary.get(k, math.nan) for k in _SUMMARY_COLUMNS}
    chips_area = run.chips * spec.die_area_mm2
    tokens = summary["output_tokens_per_s"]
    energy = summary.get("energy_j_per_output_token", math.nan)
    row["power_w_per_chip"] = summary.get("power_w_per_chip", energy * tokens / run.chips)
    row["output_tokens_per_j"] = 1.0 / energy if energy > 0 else math.nan
    row["output_tokens_per_s_per_mm2"] = tokens / chips_area
    row |= silicon_cost(spec.die_area_mm2, spec.process_node_nm)
    row["output_tokens_per_s_per_usd"] = tokens / (run.chips * row["die_cost_usd"])
    return row


def default_area() -> Callable:
    """The real `area_breakdown`, imported on first use."""
    try:
        from asicsim.chip.area import area_breakdown
    except ImportError as exc:
        raise InputError("asicsim.chip.area", "area_breakdown", f"not available: {exc}") from None
    return area_breakdown


def _area_columns(spec, area_breakdown: Callable) -> dict:
    """`area_<block>_mm2` per block of the area model, and its total."""
    area = area_breakdown(spec)
    if not isinstance(area, dict):
        area = area.to_dict()
    row = {"area_total_mm2": float(area["total_mm2"])} | {f"area_{k}_mm2": float(v) for k, v in area["blocks"].items()}
    if "programmable_share" in area:
        row["area_programmable_share"] = float(area["programmable_share"])
    return row


def evaluate_chunk(points: list[dict], decode_samples: int = 5, derive: Callable | None = None,
                   area: Callable | None = None) -> list[dict]:
    """Rows for a list of points (the unit of work an executor ships to a worker)."""
    return [evaluate_point(p, derive=derive, area=area, decode_samples=decode_samples) for p in points]
