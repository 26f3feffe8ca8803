"""Bytes per element of the number formats the models run in."""

from .errors import RUN, InputError

__all__ = ["DTYPE_BYTES", "WEIGHT_FORMATS", "dtype_bytes", "datapath_dtype"]

# Block-scaled 4-bit weight formats: the fp4 datapath, plus one shared scale per block of weights.
# MXFP4 (OCP Microscaling Formats v1.0): 32 E2M1 values share one 8-bit E8M0 scale -> 4 + 8/32 = 4.25 bits.
# NVFP4 (NVIDIA Blackwell): 16 E2M1 values share one FP8 E4M3 scale -> 4 + 8/16 = 4.5 bits (the per-tensor
# FP32 scale is negligible).
WEIGHT_FORMATS: dict[str, str] = {"mxfp4": "fp4", "nvfp4": "fp4"}
DTYPE_BYTES: dict[str, float] = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0, "fp4": 0.5, "int4": 0.5,
                                 "mxfp4": 4.25 / 8, "nvfp4": 4.5 / 8}


def datapath_dtype(dtype: str) -> str:
    """The matmul datapath a weight format runs on (mxfp4/nvfp4 -> fp4; others as they are)."""
    return WEIGHT_FORMATS.get(dtype, dtype)


def dtype_bytes(dtype: str, field: str = "dtype") -> float:
    """Bytes per element of `dtype`; InputError naming the run setting `field` when unknown."""
    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise InputError(RUN, field, f"unknown dtype {dtype!r}; expected one of {sorted(DTYPE_BYTES)}") from None
