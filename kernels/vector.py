"""Vector-unit cost: softmax, norms and activations run on SIMD lanes beside the matrix arrays."""

from asicsim.kernels.jit import jit

__all__ = ["vector_cycles"]


@jit
def vector_cycles(elements, ops_per_element, lanes):
    """Cycles for `elements` x `ops_per_element` scalar ops on `lanes` lanes (one op per lane per cycle).

    Zero work costs zero cycles; fewer than one lane is treated as one lane.
    """
    work = max(elements, 0) * max(ops_per_element, 0)
    width = max(lanes, 1)
    return (work + width - 1) // width
