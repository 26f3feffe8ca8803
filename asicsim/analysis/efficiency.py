"""Peak TOPS/W against delivered tokens/J: every spec on one stated serving workload.

A datasheet's peak TOPS/W (dense peak of the datapath over the chip's TDP) is what vendor tables and lectures
compare. What a deployment gets is tokens per joule: the same chip serving a real workload spends energy on
memory traffic, links, idle time and static power, and keeps its arrays busy only a fraction of the time. This
study runs each spec through the one serving path (`runner.run_workload`) on the same workload, at the smallest
chip count that holds the model (`chips = "auto"`), and states per spec:

- `peak_tops_per_w`: dense peak ops/s of the run's dtype / TDP (the datasheet view);
- `peak_tops_per_w_best`: the same at the chip's narrowest native datapath (what a vendor headline quotes,
  dense; sparsity is never counted);
- `effective_tops_per_w`: the ops the run really did per second (MFU x peak) / the average power it drew;
- `output_tokens_per_j` and `delivered_share` (effective / peak).

A spec that cannot serve the workload (no datapath, or no chip count holds the model) keeps a row with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from asicsim.core.description import RunSpec
from asicsim.core.registry import builtin_specs, make_device
from asicsim.core.runner import run_workload
from asicsim.workloads.errors import InputError

__all__ = ["EfficiencyWorkload", "DEFAULT_WORKLOAD", "SERVING_DTYPES", "serving_dtype", "efficiency_row",
           "efficiency_rows"]

# The dtype a spec serves in when none is given: the first of these it has a datapath for (8-bit weights are
# what production stacks serve with; integer-only NPUs get int8; a chip with neither serves bf16).
SERVING_DTYPES = ("fp8", "int8", "bf16")


@dataclass(frozen=True)
class EfficiencyWorkload:
    """The stated workload: a model, request shape and count at full load (all requests at t = 0)."""

    model: str = "llama-3.1-8b"
    isl: int = 1024
    osl: int = 256
    requests: int = 64
    dtype: str | None = None  # None: each spec's `serving_dtype`

    def describe(self) -> str:
        dtype = self.dtype or "fp8 where native, else int8, else bf16"
        return (f"{self.model}, {self.requests} requests of {self.isl} in / {self.osl} out at once, {dtype}, "
                f"smallest chip count that holds it")


DEFAULT_WORKLOAD = EfficiencyWorkload()


def serving_dtype(device) -> str:
    """The first of SERVING_DTYPES the device has a native datapath for."""
    native = device.supported_dtypes
    return next((d for d in SERVING_DTYPES if d in native), native[0])


def _best_peak_tops_per_w(device) -> tuple[str, float]:
    """(narrowest native dtype, its dense peak ops/s per TDP watt, in TOPS/W)."""
    tdp_w = device.power_limits().tdp_w
    dtype = max(device.supported_dtypes, key=device.peak_flops_per_s)
    return dtype, device.peak_flops_per_s(dtype) / tdp_w / 1e12


def efficiency_row(hardware: str, workload: EfficiencyWorkload = DEFAULT_WORKLOAD) -> dict:
    """One spec's row (see the module docstring); `error` holds why a spec could not serve the workload."""
    device = make_device(hardware, 1)
    dtype = workload.dtype or serving_dtype(device)
    tdp_w = device.power_limits().tdp_w
    best_dtype, best = _best_peak_tops_per_w(device)
    row = {"name": device.name, "kind": device.spec.kind, "dtype": dtype, "tdp_w": tdp_w,
           "peak_tops_per_w": device.peak_flops_per_s(dtype) / tdp_w / 1e12,
           "peak_dtype_best": best_dtype, "peak_tops_per_w_best": best, "chips": None,
           "output_tokens_per_s": None, "output_tokens_per_j": None, "effective_tops_per_w": None,
           "delivered_share": None, "mfu": None, "avg_power_w_per_chip": None, "error": ""}
    try:
        result = run_workload(RunSpec(hardware=hardware, chips="auto", model=workload.model, dtype=dtype,
                                      isl=workload.isl, osl=workload.osl, requests=workload.requests))
    except InputError as exc:
        row["error"] = exc.problem
        return row
    s = result.summary
    achieved_ops_per_s_per_chip = s["mfu"] * device.peak_flops_per_s(dtype)
    effective = achieved_ops_per_s_per_chip / s["avg_power_w_per_chip"] / 1e12
    row.update(chips=s["chips"], output_tokens_per_s=s["output_tokens_per_s"],
               output_tokens_per_j=1.0 / s["energy_j_per_output_token"], effective_tops_per_w=effective,
               delivered_share=effective / row["peak_tops_per_w"], mfu=s["mfu"],
               avg_power_w_per_chip=s["avg_power_w_per_chip"])
    return row


def efficiency_rows(hardware: Iterable[str] | None = None, workload: EfficiencyWorkload = DEFAULT_WORKLOAD,
                    progress: Callable[[str], None] | None = None) -> list[dict]:
    """Rows for `hardware` (default: every built-in spec), in that order."""
    rows = []
    for name in list(hardware) if hardware is not None else builtin_specs():
        if progress is not None:
            progress(name)
        rows.append(efficiency_row(name, workload))
    return rows
