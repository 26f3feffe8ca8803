"""The CIM spec: the macro (array size, weight bits, published TOPS/W, TOPS/mm2 and bit density), how many macros
the chip has, and the system around them (buffer, digital unit, DRAM, energies, power). Every field carries a
source or an assumption note (asicsim/specs/cim-chip.toml)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CimSpec"]

_ZERO_OK = {"allow_zero": True}
_FRACTION = {"max": 1.0}


@dataclass(frozen=True)
class CimSpec:
    """One compute-in-memory chip: `macro_count` SRAM CIM macros, a digital vector unit, a buffer and DRAM."""

    kind: str
    name: str
    description: str
    process_node_nm: int
    clock_hz: float  # the digital clock; the engine counts every unit in it
    # --- the macro (published operating point) ---
    macro_rows: int  # word lines summed in one analog dot product
    macro_cols: int  # bit lines (weight bits side by side)
    weight_bits: int  # bits per stored weight at the published operating point
    macro_ops_per_j: float  # peak ops (2 per MAC) per joule of the macro, converters included (TOPS/W x 1e12)
    macro_ops_per_s_per_mm2: float  # peak ops/s per mm2 of macro (TOPS/mm2 x 1e12)
    macro_bytes_per_mm2: float  # weight storage density of the macro
    adc_energy_share: float = field(metadata=_FRACTION)  # of the macro's energy per full dot product
    # --- the chip around the macros ---
    macro_count: int
    macro_write_bytes_per_s: float  # reload bandwidth into one macro
    macro_write_j_per_byte: float  # writing reloaded weights into the macros' bit cells
    buffer_bytes: float  # on-chip activation buffer; activations beyond it cross DRAM
    move_j_per_byte: float  # buffer <-> macro traffic (inputs, partial sums, reloaded weights)
    partial_sum_bytes: float  # bytes of one partial sum a row tile hands to the digital accumulators
    digital_ops_per_s: float  # softmax, norms, attention (dynamic operands), accumulation
    digital_j_per_op: float
    # --- memory and power ---
    dram_bandwidth_bytes_per_s: float
    dram_efficiency: float = field(metadata=_FRACTION)
    dram_capacity_bytes: float
    dram_j_per_byte: float
    static_power_w: float
    tdp_w: float
    other_mm2: float = field(default=0.0, metadata=_ZERO_OK)  # I/O, PLL, control: area beside macros and buffer
    sram_mm2_per_byte: float = field(default=0.0, metadata=_ZERO_OK)  # buffer density
    digital_mm2: float = field(default=0.0, metadata=_ZERO_OK)
    sources: tuple = ()
    assumed: frozenset = frozenset()

    @property
    def weights_per_macro(self) -> int:
        """Weights one macro holds: rows x (cols / weight_bits)."""
        return self.macro_rows * (self.macro_cols // self.weight_bits)

    @property
    def macro_mm2(self) -> float:
        """One macro's area from its bit density (weights_per_macro x weight_bits / 8 bytes)."""
        return self.weights_per_macro * self.weight_bits / 8 / self.macro_bytes_per_mm2

    @property
    def macro_macs_per_s(self) -> float:
        """Peak MACs/s of one macro: ops/s per mm2 x its area / 2."""
        return self.macro_ops_per_s_per_mm2 * self.macro_mm2 / 2.0

    @property
    def dot_product_s(self) -> float:
        """Time of one full-array matrix-vector product (every row and column of a macro), ADC included."""
        return self.weights_per_macro / self.macro_macs_per_s

    @property
    def dot_product_j(self) -> float:
        """Macro joules of one full-array matrix-vector product at the published TOPS/W."""
        return 2.0 * self.weights_per_macro / self.macro_ops_per_j

    @property
    def weight_capacity_bytes(self) -> float:
        """Weights all macros hold at once, in bytes."""
        return self.macro_count * self.weights_per_macro * self.weight_bits / 8
