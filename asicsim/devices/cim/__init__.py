"""A compute-in-memory accelerator (`kind = "cim"`): matmuls priced from an SRAM CIM macro's published TOPS/W and
TOPS/mm2, plus the system overheads (ADC conversions, weight reload from DRAM, data movement, digital
post-processing, static power) that put system efficiency far below macro efficiency."""
