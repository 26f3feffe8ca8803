"""The transformer ASIC: its spec dataclass and (in `device`) its Device implementation.

`AsicDevice` is not imported here so that importing the spec never pulls in the numba kernels; the registry
(`asicsim.core.registry`, kind "asic") finds it as `asicsim.chip.device.DEVICE` on first use.
"""

from .spec import ARRAY_DTYPES, DATAFLOWS, AsicSpec

__all__ = ["AsicSpec", "ARRAY_DTYPES", "DATAFLOWS"]
