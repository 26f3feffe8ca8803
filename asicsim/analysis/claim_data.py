"""Vendor tokens/s claims as data: the Claim record, the built-in claims file, a user's claim table, and the
per-chip limits a claim is checked against. Shared by the throughput check (claims.py) and the per-user
check (per_user.py), which import it; it imports neither."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from asicsim.workloads.errors import InputError

from .roofline import ACCOUNTINGS, ChipLimits

__all__ = ["Claim", "CLAIMS_PATH", "DTYPE_ALIASES", "claim_from_table", "claims_config", "builtin_claims",
           "load_claim", "chip_limits", "claim_dict", "limits_dict"]

CLAIMS_PATH = Path(__file__).resolve().parent.parent / "data" / "claims.toml"
# Dtype names a claim may quote for a run dtype (none since int8 and int4 are run dtypes of their own).
DTYPE_ALIASES: dict[str, str] = {}


@dataclass(frozen=True)
class Claim:
    """A tokens/s claim with its conditions. `hardware` "" means no spec: `figures` holds per-chip numbers."""

    name: str
    tokens_per_s: float
    hardware: str
    chips: int
    model: str
    dtype: str = "fp8"
    isl: int = 2048
    osl: int = 128
    per_user: bool = False
    accounting: str = "auto"
    tp: int = 0
    kv_dtype: str = ""
    vendor: str = ""
    system: str = ""
    kind: str = ""
    source: str = ""
    accounting_note: str = ""
    conditions_note: str = ""
    baseline: str = ""
    measured_output_tokens_per_s: float = 0.0
    measured_source: str = ""
    claimed_flops_utilization: float = 0.0
    figures: dict = field(default_factory=dict)


_NUMBERS = {"tokens_per_s": float, "chips": int, "isl": int, "osl": int, "tp": int,
            "measured_output_tokens_per_s": float, "claimed_flops_utilization": float}


def claim_from_table(name: str, table: dict[str, Any], source: str) -> Claim:
    """Validate one claim table (TOML) into a Claim; InputError naming the file and field."""
    known = {f.name for f in dataclasses.fields(Claim)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(source, unknown[0], f"unknown claim field; known: {', '.join(sorted(known - {'name'}))}")
    values = dict(table)
    for key in ("tokens_per_s", "hardware", "chips", "model"):
        if key not in values:
            raise InputError(source, key, "missing")
    for key, kind in _NUMBERS.items():
        if key in values:
            v = values[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or (kind is int and v != int(v)):
                raise InputError(source, key, f"must be a {'whole ' if kind is int else ''}number, got {v!r}")
            if v < 0 or (key in ("tokens_per_s", "isl", "osl") and v <= 0):
                raise InputError(source, key, f"must be positive, got {v!r}")
            values[key] = kind(v)
    if values.get("accounting", "auto") not in (*ACCOUNTINGS, "auto"):
        raise InputError(source, "accounting", f"must be output, total or auto, got {values['accounting']!r}")
    figures = values.get("figures", {})
    if not isinstance(figures, dict):
        raise InputError(source, "figures", "must be a table of per-chip numbers")
    if not values["hardware"] and not figures:
        raise InputError(source, "hardware", "give a spec name or path, or a [figures] table of per-chip numbers")
    if values["chips"] == 0 and not values.get("per_user"):
        raise InputError(source, "chips", "must be >= 1 for a throughput claim")
    values["name"] = str(values.get("name", name))
    return Claim(**values)


@lru_cache(maxsize=1)
def _claims_file() -> dict[str, Any]:
    with CLAIMS_PATH.open("rb") as fh:
        return tomllib.load(fh)


def claims_config() -> dict[str, Any]:
    """The [envelope] and [defaults] tables of claims.toml."""
    data = _claims_file()
    return {"envelope": data["envelope"], "defaults": {k: v["value"] for k, v in data["defaults"].items()}}


def builtin_claims() -> dict[str, Claim]:
    """The built-in claims by name, in file order."""
    return {name: claim_from_table(name, table, f"{CLAIMS_PATH.name}[{name}]")
            for name, table in _claims_file()["claims"].items()}


def load_claim(name_or_path: str) -> Claim:
    """A built-in claim by name, or a user's TOML file holding one claim table at top level."""
    claims = builtin_claims()
    if name_or_path in claims:
        return claims[name_or_path]
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        raise InputError("claim", name_or_path, f"unknown claim; built in: {', '.join(claims)} (or a .toml file)")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(str(path), "file", f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), "toml", f"malformed TOML: {exc}") from None
    return claim_from_table(path.stem, table, str(path))


def _figure(figures: dict, key: str) -> float | None:
    item = figures.get(key)
    if item is None:
        return None
    return float(item["value"] if isinstance(item, dict) else item)


def chip_limits(claim: Claim, device: Any | None, dtype: str) -> ChipLimits:
    """Per-chip peaks from the device (spec) or from the claim's published figures."""
    if device is None:
        f = claim.figures
        return ChipLimits(claim.system or claim.name, _figure(f, "peak_flops_per_s"),
                          _figure(f, "memory_bandwidth_bytes_per_s"), _figure(f, "memory_bytes_per_chip"),
                          _figure(f, "link_bandwidth_bytes_per_s"), _figure(f, "link_latency_s"))
    link = device.link_limits  # per direction per chip, whatever the device kind
    return ChipLimits(device.name, device.peak_flops_per_s(dtype), device.memory_bandwidth_bytes_per_s,
                      device.memory_bytes_per_chip, link.bandwidth_bytes_per_s, link.latency_s)



def claim_dict(c: Claim, dtype: str, kv_dtype: str) -> dict[str, Any]:
    d = {f.name: getattr(c, f.name) for f in dataclasses.fields(Claim) if f.name != "figures"}
    d.update(dtype=c.dtype, compute_dtype=dtype, kv_dtype=kv_dtype)
    return d


def limits_dict(chip: ChipLimits, device: Any | None) -> dict[str, Any]:
    out = dataclasses.asdict(chip)
    if device is not None:
        out["assumed_fields"] = sorted(getattr(device.spec, "assumed", ()))
    return out
