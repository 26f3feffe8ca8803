"""Systolic-array accelerators run by a compiler (Google TPU v5e / v6e / v7, AWS Trainium2): MXUs or tensor engines
priced by `asicsim.kernels.systolic`, a vector unit, HBM, and ICI torus / NeuronLink all-reduces. Spec kind
"systolic"; see docs/accelerators/systolic.md."""
