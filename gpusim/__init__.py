"""GPU device model: GEMM waves over SMs, memory-bound kernels, FlashAttention, NCCL collectives, launches."""

from .device import GpuDevice
from .options import GpuOptions
from .spec import GpuSpec, load_gpu_spec

__all__ = ["GpuDevice", "GpuOptions", "GpuSpec", "load_gpu_spec"]
