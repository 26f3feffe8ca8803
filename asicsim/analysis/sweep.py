"""Design-space sweeps: a TOML study -> points (grid or random) -> one result row per point.

A point is a base ASIC spec, the spec parameters handed to
`asicsim.chip.programmability.derive_asic_spec`, and a workload (RunSpec fields). Its `point_id` is the
sha256 of the point's canonical JSON (sorted keys, whole floats written as integers, workload defaults
filled in), so the same point has the same id in every run and process.

Each point is one `asicsim run`: its workload becomes a RunSpec whose hardware is the derived spec, resolved
and served by the same engine and scheduler code (`runner.run_workload`), so a point and `asicsim run` with
the same settings give the same metrics. Infeasible points (over the reticle, power cap, HBM edge, or out of memory) become rows with
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

from asicsim.chip.spec import AsicSpec
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.runner import RUN_DTYPES, RunSpec, run_workload
from asicsim.core.specfile import read_toml, spec_meta_fields
from asicsim.workloads.errors import RUN, DoesNotFitError, Infeasible, InputError
from asicsim.workloads.models import load_model

__all__ = ["SweepConfig", "load_sweep_config", "sweep_config_from_table", "expand_points", "point_id",
           "evaluate_point", "evaluate_chunk", "point_run_spec", "silicon_cost", "check_parameter_names",
           "check_parameter_values",
           "default_derive", "default_area", "EXAMPLE_CONFIG", "WORKLOAD_DEFAULTS"]

EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "data" / "sweep_example.toml"
SILICON_COST_CSV = Path(__file__).resolve().parent.parent / "data" / "silicon_cost.csv"

# RunSpec fields a sweep may set (a burst of identical requests), with the values a point id is computed over
# (0 and "" mean "not given": resolved as `asicsim run` resolves them). The point id covers exactly these, so
# new RunSpec fields do not change ids.
WORKLOAD_DEFAULTS: dict[str, Any] = {"model": "llama-3-70b", "chips": 8, "dtype": "fp8", "kv_dtype": "", "tp": 0,
                                     "pp": 1, "isl": 2048, "osl": 128, "requests": 512, "max_batch": 0,
                                     "max_tokens_per_step": 8192}
# Workload keys a study may add; a point carries them only when the study sets them, so ids stay as they were.
WORKLOAD_OPTIONAL: dict[str, Any] = {"widen": False, "mix_model": "", "mix_share": 0.0, "link": ""}
# The workload-mix axis: `mix_share` of the output tokens come from `mix_model` (typically a model with ops a
# fixed-function chip lacks), the rest from `model`; not RunSpec fields.
MIX_KEYS = ("mix_model", "mix_share")
_TOP_KEYS = {"base", "sampling", "samples", "seed", "parameters", "workload"}


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
    return sweep_config_from_table(read_toml(Path(path)), str(path))


def sweep_config_from_table(table: dict, src: str = "sweep") -> SweepConfig:
    """Validate a sweep study given as a dict (the TOML's tables); errors name `src` and the field."""
    if not isinstance(table, dict):
        raise InputError(src, "config", f"must be a table of settings, got {type(table).__name__}")
    if "evaluation" in table:
        raise InputError(src, "evaluation", "no longer used: every point runs the full serving path of "
                                            "`asicsim run` (remove the [evaluation] table)")
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
    for name in ("parameters", "workload"):
        sec = table.get(name, {})
        if not isinstance(sec, dict):
            raise InputError(src, name, "must be a table")
        sections[name] = sec
    params = {k: _axis(src, f"parameters.{k}", v, sampling) for k, v in sections["parameters"].items()}
    known = set(WORKLOAD_DEFAULTS) | set(WORKLOAD_OPTIONAL)
    bad = sorted(set(sections["workload"]) - known)
    if bad:
        raise InputError(src, f"workload.{bad[0]}", f"unknown key (known: {', '.join(sorted(known))})")
    workload = {k: _axis(src, f"workload.{k}", v, "grid") for k, v in sections["workload"].items()}
    _check_workload(src, workload)
    both = sorted(set(params) & set(workload))
    if both:
        raise InputError(src, f"parameters.{both[0]}", "also set in [workload]; give it in one place")
    cfg = SweepConfig(src, base, sampling, samples, seed, params, workload)
    _check_names(cfg)
    return cfg


def _check_names(cfg: SweepConfig) -> None:
    """The base spec and every model must load: a typo is a config error (exit 2), not a column of
    infeasible rows."""
    try:
        load_hardware(cfg.base)
    except InputError as exc:
        raise InputError(cfg.source, "base", f"{cfg.base!r}: {exc.problem}") from None
    for model in cfg.workload.get("model", (WORKLOAD_DEFAULTS["model"],)):
        try:
            load_model(model)
        except InputError as exc:
            raise InputError(cfg.source, "workload.model", f"{model!r}: {exc.problem}") from None


def check_parameter_values(cfg: SweepConfig, derive: Callable) -> None:
    """Each parameter value alone must make a spec `derive` accepts as input; physics (reticle, power, die
    edge) may still rule a point out, which becomes an infeasible row. Random axes: their bounds."""
    base = load_hardware(cfg.base)
    try:
        derive(base)
    except Infeasible:
        pass
    except InputError as exc:
        raise InputError(cfg.source, "base", f"{cfg.base!r}: {exc.problem}") from None
    for name, axis in cfg.parameters.items():
        values = axis if isinstance(axis, tuple) else (axis["min"], axis["max"])
        for value in values:
            try:
                derive(base, **{name: value})
            except Infeasible:
                continue
            except InputError as exc:
                raise InputError(cfg.source, f"parameters.{name}", f"{value!r}: {exc.problem}") from None


def _check_workload(src: str, workload: dict) -> None:
    for key, values in workload.items():
        field = f"workload.{key}"
        for v in values:
            if key in ("model", "kv_dtype", "link"):
                if not isinstance(v, str):
                    raise InputError(src, field, f"must be a string, got {v!r}")
            elif key == "dtype":
                if v not in RUN_DTYPES:
                    raise InputError(src, field, f"must be one of {', '.join(RUN_DTYPES)}, got {v!r}")
            elif key == "mix_model":
                if not isinstance(v, str):
                    raise InputError(src, field, f"must be a model name or config path, got {v!r}")
            elif key == "mix_share":
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                    raise InputError(src, field, f"must be a share in [0, 1], got {v!r}")
            elif key in WORKLOAD_OPTIONAL:
                if not isinstance(v, bool):
                    raise InputError(src, field, f"must be true or false, got {v!r}")
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
    from asicsim.chip.programmability import derive_asic_spec

    return derive_asic_spec


# --- one point: the serving path of `asicsim run` -------------------------------------------------------------
@lru_cache(maxsize=8)
def _base_spec(name: str):
    return load_hardware(name)


def point_run_spec(point: dict, hardware: Any) -> RunSpec:
    """The RunSpec of a point's workload on `hardware` (the sweep's 0 and "" mean "not given", as in RunSpec).

    The default token budget (8192, the value point ids are computed over) is passed as not given, as `asicsim run`
    leaves it when no flag sets it: resolve may then halve it for a chip whose memory holds the model only with a
    smaller activation workspace."""
    work = {k: v for k, v in point["workload"].items() if k not in MIX_KEYS}
    if work.get("max_tokens_per_step") == WORKLOAD_DEFAULTS["max_tokens_per_step"]:
        work["max_tokens_per_step"] = None
    return RunSpec(hardware=hardware, seed=0, **work)


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


def evaluate_point(point: dict, *, derive: Callable | None = None, area: Callable | None = None) -> dict:
    """One result row: the point's parameters, the derived spec, area, performance, energy and cost.

    `derive` defaults to the chip package's `derive_asic_spec`, `area` to the device's own area model.
    """
    work = point["workload"]
    row: dict[str, Any] = {"point_id": point_id(point), "base": point["base"], **point["spec"], **work}
    share = float(work.get("mix_share", 0.0)) if work.get("mix_model") else 0.0
    try:
        derive = derive or default_derive()
        spec = derive(_base_spec(point["base"]), **point["spec"])
        result = _run_memo(point, spec)
        mixed = _run_memo(point, spec, work["mix_model"]) if share > 0.0 else None
    except (Infeasible, DoesNotFitError) as exc:  # a chip that breaks physics, or a model it cannot hold
        reason = f"workload.{exc.field}: {exc.problem}" if exc.source == RUN else str(exc)
        return row | {"feasible": False, "infeasible_reason": reason}
    except InputError as exc:
        if mixed_refusal(exc):  # a fixed-function chip without a fallback cannot serve the mix at all
            return row | {"feasible": False, "infeasible_reason": f"mix_model: {exc.problem}"}
        raise
    summary, run = result.summary, result.description
    if mixed is not None:
        summary = mix_summaries(summary, mixed.summary, share)
        row["base_model_output_tokens_per_s"] = result.summary["output_tokens_per_s"]
        row["mix_model_output_tokens_per_s"] = mixed.summary["output_tokens_per_s"]
        row["mix_fallback_time_share"] = mixed.summary.get("fallback_time_share", 0.0)
    row |= {"feasible": True, "infeasible_reason": ""}
    row |= {f"spec_{k}" if k in row else k: getattr(spec, k) for k in _SPEC_COLUMNS}
    row |= _area_columns(spec, area or default_area())
    row["peak_flops_per_s"] = spec.peak_flops_per_s(run.dtype)
    row |= {f"run_{k}" if k in row else k: summary.get(k, math.nan) for k in _SUMMARY_COLUMNS}
    chips_area = run.chips * spec.die_area_mm2
    tokens = summary["output_tokens_per_s"]
    energy = summary.get("energy_j_per_output_token", math.nan)
    row["power_w_per_chip"] = summary["avg_power_w_per_chip"]
    row["output_tokens_per_j"] = 1.0 / energy if energy > 0 else math.nan
    row["output_tokens_per_s_per_mm2"] = tokens / chips_area
    row |= silicon_cost(spec.die_area_mm2, spec.process_node_nm)
    row["output_tokens_per_s_per_usd"] = tokens / (run.chips * row["die_cost_usd"])
    return row


_RUNS: dict[tuple, Any] = {}  # (spec, workload without the mix, model) -> RunResult: mix shares share runs


def _run_memo(point: dict, spec: Any, model: str | None = None):
    """`run_workload` of the point's workload (with `model` instead of its own), memoised within a process so
    the points of a workload-mix axis run each model once per chip."""
    run_spec = point_run_spec(point, spec)
    if model is not None:
        run_spec = dataclasses.replace(run_spec, model=model)
    key = (spec, run_spec)
    hit = _RUNS.get(key)
    if hit is None:
        if len(_RUNS) > 64:
            _RUNS.clear()
        hit = _RUNS[key] = run_workload(run_spec)
    return hit


def mixed_refusal(exc: InputError) -> bool:
    """Whether an InputError is a fixed-function chip refusing a model it has no datapath or fallback for."""
    return exc.field == "model_type" and "fixed-function" in exc.problem


def mix_summaries(base: dict, mix: dict, share: float) -> dict:
    """A server time-sharing two models, `share` of output tokens from the second: tokens/s is the share-weighted
    harmonic mean (time per token adds), energy per token the share-weighted mean; latencies stay the base
    model's (each request is served as in its own run)."""
    out = dict(base)
    for key in ("output_tokens_per_s", "input_tokens_per_s", "total_tokens_per_s"):
        a, b = base[key], mix[key]
        out[key] = 1.0 / ((1.0 - share) / a + share / b) if a > 0 and b > 0 else 0.0
    out["energy_j_per_output_token"] = ((1.0 - share) * base["energy_j_per_output_token"]
                                        + share * mix["energy_j_per_output_token"])
    out["avg_power_w_per_chip"] = (out["energy_j_per_output_token"] * out["output_tokens_per_s"]
                                   / base["chips"])
    return out


def default_area() -> Callable:
    """Area through the device protocol (`Device.area()`), whatever the spec's kind."""
    return device_area


def device_area(spec) -> Any:
    """The checked area breakdown of one chip of `spec`."""
    return make_device(spec, 1).area()


def _area_columns(spec, area_breakdown: Callable) -> dict:
    """`area_<block>_mm2` per block of the area model, and its total."""
    area = area_breakdown(spec)
    if not isinstance(area, dict):
        area = area.to_dict()
    row = {"area_total_mm2": float(area["total_mm2"])} | {f"area_{k}_mm2": float(v) for k, v in area["blocks"].items()}
    if "programmable_share" in area:
        row["area_programmable_share"] = float(area["programmable_share"])
    return row


def evaluate_chunk(points: list[dict], derive: Callable | None = None, area: Callable | None = None) -> list[dict]:
    """Rows for a list of points (the unit of work an executor ships to a worker)."""
    return [evaluate_point(p, derive=derive, area=area) for p in points]
