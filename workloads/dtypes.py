"""Bytes per element of the number formats the models run in."""

from .errors import RUN, InputError

__all__ = ["DTYPE_BYTES", "dtype_bytes"]

DTYPE_BYTES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5}


def dtype_bytes(dtype: str, field: str = "dtype") -> float:
    """Bytes per element of `dtype`; InputError naming the run setting `field` when unknown."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise InputError(RUN, field, f"unknown dtype {dtype!r}; expected one of {sorted(DTYPE_BYTES)}") from None
