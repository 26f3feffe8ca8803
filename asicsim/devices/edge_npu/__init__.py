"""A phone-class SoC NPU with LPDDR5X (`kind = "edge-npu"`): matmuls at the NPU's rate, weights streamed from
LPDDR, attention and elementwise work on the NPU's vector units, one device and no scale-up links."""
