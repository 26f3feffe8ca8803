"""The public Python API: the CLI's commands as functions that return records and DataFrames.

Keyword names are the CLI's flag names with underscores (`--max-batch` -> `max_batch`); every call goes
through the same run description (`asicsim.core.description.resolve`) and serving path as the CLI.

    import asicsim
    result = asicsim.run(hardware="h100-sxm", chips=8, pp=2, requests=16, isl=256, osl=32)
    result.summary["tp"]                       # 4: chips / (pp x replicas)
    table = asicsim.compare(["sohu", "h100-sxm"], chips=8)   # one row per system
    rows = asicsim.sweep({"base": "sohu", "parameters": {"clock_hz": [1.2e9, 1.5e9]}})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from .core.description import RunDescription, resolve_run
from .core.registry import load_hardware
from .core.results import RunResult
from .core.runner import run_workload
from .workloads.models import ModelConfig
from .workloads.models import load_model as _load_model

__all__ = ["load_spec", "load_model", "describe", "run", "compare", "sweep", "claim", "validate", "efficiency", "scale",
           "edge_pipeline"]

DEFAULT_SYSTEMS = ("sohu", "h100-sxm", "b200")


def load_spec(name_or_path: str) -> Any:
    """A hardware spec (built-in name or TOML path) as its frozen, validated dataclass."""
    return load_hardware(name_or_path)


def load_model(name_or_path: str) -> ModelConfig:
    """A model config (built-in name, config.json path or folder)."""
    return _load_model(name_or_path)


def describe(hardware: Any, chips: int, **settings: Any) -> RunDescription:
    """The resolved run description `run` would serve (every default filled in, every check passed)."""
    return resolve_run(hardware=hardware, chips=chips, **settings)


def run(hardware: Any, chips: int, **settings: Any) -> RunResult:
    """One workload on one system, as `asicsim run`: `.summary` has the keys of `run --json`; `.requests_frame()`
    and `.steps_frame()` give per-request and per-step DataFrames."""
    return run_workload(describe(hardware, chips, **settings))


def compare(hardware: Sequence[Any] | str = DEFAULT_SYSTEMS, chips: int = 8, **settings: Any) -> pd.DataFrame:
    """The same workload on several systems, one row per system (the columns of `run --json`)."""
    systems = [h.strip() for h in hardware.split(",")] if isinstance(hardware, str) else list(hardware)
    return pd.DataFrame([run(h, chips, **settings).summary for h in systems])


def sweep(config: dict | str | Path, *, out: str | Path | None = None, workers: int = 1, executor: str = "local",
          resume: bool = False) -> pd.DataFrame:
    """A design-space study from a dict (the sweep TOML's tables) or a TOML path; one row per point.

    With `out` the rows are journaled and written there as `asicsim sweep --out` does (`resume` continues a
    killed study); without it they stay in memory."""
    from .analysis.executors import bind, chunked, run_chunks
    from .analysis.sweep import (check_parameter_names, default_derive, evaluate_chunk, expand_points,
                                 load_sweep_config, point_id, sweep_config_from_table)
    from .analysis.sweep_plots import load_results
    from .commands.sweep import run_sweep

    cfg = sweep_config_from_table(config, "sweep") if isinstance(config, dict) else load_sweep_config(config)
    if out is not None:
        _, _, final = run_sweep(cfg, str(out), resume=resume, executor=executor, workers=workers)
        return load_results(final)
    check_parameter_names(cfg, default_derive())
    points = expand_points(cfg)
    rows: dict[str, dict] = {}
    for chunk in run_chunks(bind(evaluate_chunk), chunked(points, 8), executor=executor, workers=workers):
        rows.update((r["point_id"], r) for r in chunk)
    return pd.DataFrame([rows[point_id(p)] for p in points])


def claim(name_or_path: str | None = None, *, tokens_per_s: float | None = None, accounting: str | None = None,
          **conditions: Any) -> dict:
    """Check a vendor's tokens/s claim: a built-in name (`asicsim claim --list`), a claim TOML, or your own
    figure (`tokens_per_s=` with `hardware=`, `chips=`, `model=`, `dtype=`, `isl=`, `osl=`, `per_user=`)."""
    from .analysis.claims import check_claim, claim_from_table, load_claim

    if tokens_per_s is not None:
        table = {"tokens_per_s": tokens_per_s, "chips": 8, "model": "llama-3-70b", **conditions}
        table.setdefault("system", str(table.get("hardware", "")))
        the_claim = claim_from_table("user-claim", table, "api")
    elif name_or_path:
        the_claim = load_claim(name_or_path)
    else:
        raise TypeError("claim() needs a claim name or path, or tokens_per_s=...")
    return check_claim(the_claim, accounting)


def validate(requests: int = 0) -> pd.DataFrame:
    """Every shipped measurement predicted versus published (the table of `asicsim validate`), one row each."""
    from .analysis.validate import rows_as_dicts, validation_rows

    return pd.DataFrame(rows_as_dicts(validation_rows(requests)))


def efficiency(hardware: Sequence[str] | str | None = None, *, model: str = "llama-3.1-8b", isl: int = 1024,
               osl: int = 256, requests: int = 64, dtype: str | None = None) -> pd.DataFrame:
    """`asicsim efficiency` as a DataFrame: per spec (default every built-in one), the datasheet's peak TOPS/W next
    to the output tokens/J and effective TOPS/W the stated workload delivers (`analysis.efficiency`)."""
    from .analysis.efficiency import EfficiencyWorkload, efficiency_rows

    names = [h.strip() for h in hardware.split(",")] if isinstance(hardware, str) else hardware
    workload = EfficiencyWorkload(model=model, isl=isl, osl=osl, requests=requests, dtype=dtype)
    return pd.DataFrame(efficiency_rows(names, workload))


def scale(hardware: Sequence[str] | str = ("h100-sxm", "gb200-nvl72", "sohu"), chips: Sequence[int] = (8, 72, 576, 4608),
          *, model: str = "llama-3.3-70b", isl: int = 1024, osl: int = 1024, dtype: str | None = None,
          slo_ttft_s: float | None = None, slo_tpot_s: float | None = None, network: str | None = None) -> pd.DataFrame:
    """`asicsim scale` as a DataFrame: per system and deployment size, the best layout under the SLOs, its tokens/s,
    power (hosts, scale-out network, PUE) and tokens/s per watt (`analysis.scale`, docs/scale.md)."""
    from .analysis.scale import ScaleWorkload, scale_frame

    names = [h.strip() for h in hardware.split(",")] if isinstance(hardware, str) else list(hardware)
    slos = {k: v for k, v in (("slo_ttft_s", slo_ttft_s), ("slo_tpot_s", slo_tpot_s)) if v is not None}
    work = ScaleWorkload(model=model, isl=isl, osl=osl, dtype=dtype, network=network, **slos)
    return scale_frame(names, list(chips), work)


def edge_pipeline(hardware: str = "edge-npu", links: Sequence[str] | str = ("usb4", "wifi6"),
                  devices: Sequence[int] = (1, 2, 4, 8), *, model: str = "qwen3-32b", dtype: str = "int4",
                  isl: int = 256, osl: int = 256, seed: int = 0) -> pd.DataFrame:
    """A model split over 1..N devices joined by slow links: batch-1 time between tokens (p50, p99), memory per
    device, the link's share of the time (`analysis.edge_pipeline`)."""
    from .analysis.edge_pipeline import EdgePipelineWorkload, edge_pipeline_frame

    names = [h.strip() for h in links.split(",")] if isinstance(links, str) else list(links)
    work = EdgePipelineWorkload(model=model, dtype=dtype, isl=isl, osl=osl, seed=seed)
    return edge_pipeline_frame(hardware, names, list(devices), work)
