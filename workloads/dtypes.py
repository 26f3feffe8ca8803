"""Bytes per element of the number formats the models run in."""

from .errors import InputError

__all__ = ["DTYPE_BYTES", "dtype_bytes"]

DTYPE_BYTES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}


def dtype_bytes(dtype: str, source: str = "--dtype") -> float:
    """Bytes per element of `dtype`; InputError naming `source` when unknown."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise InputError(source, "dtype", f"unknown dtype {dtype!r}; expected one of {sorted(DTYPE_BYTES)}") from None
