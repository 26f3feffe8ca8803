"""Protocol plumbing shared by device kinds that are one chip with no scale-up links and no switchable effects
(the edge NPU, the CIM chip): identity, one clock for every unit, serial op streams, dtype widening. Not a cost
model: each kind prices ops, power and area itself."""

from __future__ import annotations

from typing import Any, Mapping

from asicsim.core.device import MATMUL_DTYPES, WIDER_DATAPATHS, LinkLimits, SpecDevice
from asicsim.workloads.errors import RUN, InputError

__all__ = ["OneDevice"]


def check_static_below_tdp(spec: Any, source: str) -> None:
    """InputError unless the spec's static power leaves room under its TDP (both one-device kinds check it)."""
    if spec.static_power_w >= spec.tdp_w:
        raise InputError(source, "static_power_w", f"{spec.static_power_w:g} W is not below tdp_w {spec.tdp_w:g} W")


class OneDevice(SpecDevice):
    """A single device: `chips` must be 1. Subclasses give `_rate(dtype)` (dense matmul ops/s, 0 = no datapath),
    `what` (a phrase naming the device in refusals) and the cost, memory, power and area members."""

    what = "this device"

    def __init__(self, spec: Any, chips: int = 1) -> None:
        if chips != 1:
            raise InputError(RUN, "chips", f"{spec.name}: {self.what} is one device with no scale-up links; got "
                                           f"{chips} chips (to split a model over several, give pp and a slow link "
                                           f"between them: --pp {chips} --link usb4)")
        self.spec = spec
        self.chips = chips

    def _rate(self, dtype: str) -> float:
        raise NotImplementedError

    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        """Matmul dtypes with a non-zero rate, widest first."""
        return tuple(d for d in MATMUL_DTYPES if self._rate(d) > 0.0)

    def executed_dtype(self, dtype: str) -> str:
        """`dtype` if native, else the first datapath of its widening chain the device has (WIDER_DATAPATHS; only
        when the run asks to widen, `description.resolve` refuses it otherwise)."""
        if self._rate(dtype) > 0.0:
            return dtype
        if dtype not in WIDER_DATAPATHS:
            raise InputError(self.spec.name, "dtype", f"no matmul rate for {dtype!r}; known: {list(WIDER_DATAPATHS)}")
        return next(d for d in WIDER_DATAPATHS[dtype] if self._rate(d) > 0.0)

    def peak_flops_per_s(self, dtype: str) -> float:
        return self._rate(self.executed_dtype(dtype))

    def check_model(self, config: Mapping[str, Any], source: str) -> None:
        """Any model the workload layer builds runs; whether it fits is the memory plan's decision."""

    @property
    def link_limits(self) -> LinkLimits:
        """No scale-up links: a domain of one. The bandwidth is the device memory's (a copy inside the one device)."""
        return LinkLimits(self.memory_bandwidth_bytes_per_s, 0.0, 1)

    def die_floorplan(self) -> None:
        """None: the reticle-die envelope fills a die with systolic arrays, which this device is not."""
        return None
