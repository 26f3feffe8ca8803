"""The transformer ASIC: its spec dataclass and (in `device`) its Device implementation.

`AsicDevice` is not imported here so that loading a spec never pulls in the numba kernels.
"""

from .spec import ARRAY_DTYPES, DATAFLOWS, AsicSpec

__all__ = ["AsicSpec", "ARRAY_DTYPES", "DATAFLOWS"]
