"""Load hardware spec TOML files into frozen, validated dataclasses.

A numeric field is written either as a bare number or as an inline table
`{ value = 3.35e12, source = "NVIDIA H100 datasheet", assumed = false }`. Sources and the set of assumed
fields are kept on the spec (`sources`, `assumed`) so every printed number can be traced back.
Validation names the file and the field: unknown keys, missing fields, wrong types, non-positive values.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
import typing
from pathlib import Path
from typing import Any

from asicsim.workloads.errors import InputError

__all__ = ["read_toml", "build_spec", "spec_meta_fields"]

# Fields every spec has that are metadata, not hardware numbers.
spec_meta_fields = ("name", "kind", "description", "sources", "assumed")

# Largest integer a numeric field accepts (TOML's own integers are 64-bit; Python callers may pass more).
_MAX_INT = 2**63 - 1


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; one-line InputError on a missing file or bad syntax."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), "file", "not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "file", f"cannot read: {exc}") from None
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer literal over Python's digit limit
        raise InputError(str(path), "toml", f"malformed TOML: {exc}") from None
    except RecursionError:
        raise InputError(str(path), "toml", "malformed TOML: arrays or tables nested too deeply") from None


def _show(value: Any) -> str:
    """A short repr for error messages; safe for integers of any size (repr can raise past 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # a huge integer inside a list, or absurd nesting
        return f"a {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def _unwrap(value: Any, source: str, key: str) -> tuple[Any, str, bool]:
    """(value, source note, assumed?) from a bare value or a {value, source, assumed} table."""
    if isinstance(value, dict):
        extra = set(value) - {"value", "source", "assumed"}
        if extra:
            first = sorted(extra, key=str)[0]
            raise InputError(source, f"{key}.{first}", "unknown key (allowed: value, source, assumed)")
        if "value" not in value:
            raise InputError(source, f"{key}.value", "missing")
        note = value.get("source", "")
        if not isinstance(note, str):
            raise InputError(source, f"{key}.source", "must be a string")
        assumed = value.get("assumed", False)
        if not isinstance(assumed, bool):
            raise InputError(source, f"{key}.assumed", "must be true or false")
        return value["value"], note, assumed
    return value, "", False


def _coerce(value: Any, typ: Any, meta: dict, source: str, key: str) -> Any:
    if typing.get_origin(typ) is tuple:  # a list of names, each from `choices` when given
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise InputError(source, key, f"must be a list of strings, got {_show(value)}")
        choices = meta.get("choices")
        bad = [v for v in value if choices and v not in choices]
        if bad:
            raise InputError(source, key, f"unknown entry {bad[0]!r}; known: {', '.join(choices)}")
        return tuple(value)
    if typ is bool:
        if not isinstance(value, bool):
            raise InputError(source, key, f"must be true or false, got {_show(value)}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise InputError(source, key, f"must be a string, got {_show(value)}")
        choices = meta.get("choices")
        if choices and value not in choices:
            raise InputError(source, key, f"must be one of {list(choices)}, got {_show(value)}")
        return value
    if typ in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(source, key, f"must be a number, got {_show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(source, key, f"must be finite, got {_show(value)}")
        if isinstance(value, int) and abs(value) > _MAX_INT:  # also keeps float(value) from overflowing
            raise InputError(source, key, f"out of range (|value| > {_MAX_INT:.3g}), got {_show(value)}")
        if typ is int:
            if isinstance(value, float) and not value.is_integer():
                raise InputError(source, key, f"must be a whole number, got {_show(value)}")
            if abs(value) > _MAX_INT:
                raise InputError(source, key, f"out of range (|value| > {_MAX_INT:.3g}), got {_show(value)}")
            value = int(value)  # exact for ints (no float round trip)
        else:
            value = float(value)
        low = meta.get("min", 0.0)
        if meta.get("allow_zero", False):
            if value < low:
                raise InputError(source, key, f"must be >= {low:g}, got {_show(value)}")
        elif value <= low:
            raise InputError(source, key, f"must be > {low:g}, got {_show(value)}")
        high = meta.get("max")
        if high is not None and value > high:
            raise InputError(source, key, f"must be <= {high:g}, got {_show(value)}")
        return value
    raise TypeError(f"unsupported spec field type {typ!r} for {key}")  # programming error, not input


@functools.lru_cache(maxsize=None)
def _schema(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """(type hints, fields but the provenance ones) of a spec dataclass, once per class: resolving the hints
    costs ~0.7 ms a spec, and a sweep builds one spec per point."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("sources", "assumed")}
    return typing.get_type_hints(cls), fields


def build_spec(cls: type, table: dict[str, Any], source: str) -> Any:
    """Validate `table` against dataclass `cls` and build it.

    Field metadata understood: `min` (exclusive lower bound, default 0), `allow_zero`, `max`, `choices`.
    """
    hints, fields = _schema(cls)
    unknown = sorted(set(table) - set(fields), key=str)
    if unknown:
        raise InputError(source, unknown[0], f"unknown key (known keys: {', '.join(sorted(fields))})")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    assumed: set[str] = set()
    for name, f in fields.items():
        if name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InputError(source, name, "missing")
            continue
        raw, note, is_assumed = _unwrap(table[name], source, name)
        values[name] = _coerce(raw, hints[name], dict(f.metadata), source, name)
        if note:
            sources[name] = note
        if is_assumed:
            assumed.add(name)
    return cls(**values, sources=tuple(sorted(sources.items())), assumed=frozenset(assumed))
