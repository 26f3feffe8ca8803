"""Device registry keyed by the spec's `kind`, hardware name/path resolution, and `make_device`.

A device kind is one package, named here by import string so that the front door never imports every device:
- `<package>.device` defines `DEVICE`, the class implementing `asicsim.core.device.Device`
  (its `load_spec` validates the kind's TOML table; its constructor takes `(spec, chips)`);
- `<package folder>/specs/*.toml`, if the folder exists, are built-in specs next to those of `SPEC_DIR`.
Adding a kind = that package, its TOML specs, and one line in `DEVICE_KINDS`.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from asicsim.workloads.errors import RUN, InputError, did_you_mean

from .specfile import read_toml

__all__ = ["DEVICE_KINDS", "DEVICE_ATTR", "SPEC_DIR", "device_class", "device_package", "spec_dirs",
           "resolve_spec_path", "load_hardware", "builtin_specs", "make_device"]

# kind -> device package (import name).
DEVICE_KINDS: dict[str, str] = {
    "asic": "asicsim.chip",
    "gpu": "asicsim.gpusim",
    "systolic": "asicsim.devices.systolic",
    "sram-pipeline": "asicsim.devices.sram_pipeline",
    "edge-npu": "asicsim.devices.edge_npu",
    "cim": "asicsim.devices.cim",
    "system": "asicsim.devices.system",
}
# Name of the device class in each package's `device` module.
DEVICE_ATTR = "DEVICE"

SPEC_DIR = Path(__file__).resolve().parent.parent / "specs"


def device_package(kind: str, source: str = "spec") -> str:
    """The package registered for `kind`; InputError naming `source` for an unknown kind."""
    try:
        return DEVICE_KINDS[kind]
    except KeyError:
        raise InputError(source, "kind", f"unknown device kind {kind!r}; known: {sorted(DEVICE_KINDS)}") from None


def device_class(kind: str, source: str = "spec") -> type:
    """The device class registered for `kind` (its package's `device.DEVICE`, imported on first use)."""
    package = device_package(kind, source)
    module = importlib.import_module(f"{package}.device")
    try:
        return getattr(module, DEVICE_ATTR)
    except AttributeError:
        raise TypeError(f"device package {package} (kind {kind!r}) has no {package}.device.{DEVICE_ATTR}") from None


def spec_dirs() -> tuple[Path, ...]:
    """Folders of built-in specs: the shared `SPEC_DIR`, then each device package's `specs/` (found without
    importing the package)."""
    dirs = [SPEC_DIR]
    for package in DEVICE_KINDS.values():
        found = importlib.util.find_spec(package)
        for location in (found.submodule_search_locations or []) if found else []:
            folder = Path(location) / "specs"
            if folder.is_dir() and folder not in dirs:
                dirs.append(folder)
    return tuple(dirs)


def builtin_specs() -> list[str]:
    """Names of the built-in hardware specs."""
    return sorted({p.stem for folder in spec_dirs() for p in folder.glob("*.toml")})


def resolve_spec_path(name_or_path: str) -> Path:
    """A built-in spec name or a path to the user's own TOML file."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists() or "/" in name_or_path:
        if not candidate.is_file():
            raise InputError(name_or_path, "file", "not found")
        return candidate
    for folder in spec_dirs():
        builtin = folder / f"{name_or_path}.toml"
        if builtin.is_file():
            return builtin
    raise InputError(RUN, "hardware", f"unknown hardware {name_or_path!r}{did_you_mean(name_or_path, builtin_specs())}; "
                                      f"built in: {', '.join(builtin_specs())}")


def load_hardware(name_or_path: str) -> Any:
    """Load and validate a hardware spec; the dataclass type is chosen by its `kind`."""
    path = resolve_spec_path(name_or_path)
    table = read_toml(path)
    kind = table.get("kind")
    if not isinstance(kind, str):
        raise InputError(str(path), "kind", f"missing or not a string; expected one of {sorted(DEVICE_KINDS)}")
    cls = device_class(kind, str(path))
    return cls.load_spec(table, str(path))


def make_device(hardware: Any, chips: int) -> Any:
    """The device registered for the spec's kind, for `chips` chips; `hardware` is a spec name, a TOML path or
    an already loaded spec."""
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise InputError(RUN, "chips", f"must be a whole number >= 1, got {chips!r}")
    spec = load_hardware(hardware) if isinstance(hardware, str) else hardware
    return device_class(spec.kind)(spec, chips)
