"""Device registry keyed by the spec's `kind`, and hardware name/path resolution.

Device classes are named by import string so that the front door never imports every device.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from asicsim.workloads.errors import RUN, InputError

from .specfile import read_toml

__all__ = ["DEVICE_KINDS", "SPEC_DIR", "device_class", "resolve_spec_path", "load_hardware", "builtin_specs"]

DEVICE_KINDS: dict[str, str] = {
    "asic": "asicsim.chip.device:AsicDevice",
    "gpu": "asicsim.gpusim.device:GpuDevice",
}

SPEC_DIR = Path(__file__).resolve().parent.parent / "specs"


def device_class(kind: str, source: str = "spec") -> type:
    """The device class registered for `kind` (imported on first use)."""
    try:
        target = DEVICE_KINDS[kind]
    except KeyError:
        raise InputError(source, "kind", f"unknown device kind {kind!r}; known: {sorted(DEVICE_KINDS)}") from None
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def builtin_specs() -> list[str]:
    """Names of the built-in hardware specs."""
    return sorted(p.stem for p in SPEC_DIR.glob("*.toml"))


def resolve_spec_path(name_or_path: str) -> Path:
    """A built-in spec name or a path to the user's own TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists() or "/" in name_or_path:
        if not candidate.is_file():
            raise InputError(name_or_path, "file", "not found")
        return candidate
    builtin = SPEC_DIR / f"{name_or_path}.toml"
    if not builtin.is_file():
        raise InputError(RUN, "hardware", f"unknown hardware {name_or_path!r}; built in: {', '.join(builtin_specs())}")
    return builtin


def load_hardware(name_or_path: str) -> Any:
    """Load and validate a hardware spec; the dataclass type is chosen by its `kind`."""
    path = resolve_spec_path(name_or_path)
    table = read_toml(path)
    kind = table.get("kind")
    if not isinstance(kind, str):
        raise InputError(str(path), "kind", f"missing or not a string; expected one of {sorted(DEVICE_KINDS)}")
    cls = device_class(kind, str(path))
    return cls.load_spec(table, str(path))
