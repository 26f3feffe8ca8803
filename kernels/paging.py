"""Paged KV cache block counts over a run of decode steps (the serving fast-forward books a run's blocks at once)."""

import numpy as np

from asicsim.kernels.jit import jit

__all__ = ["blocks_taken"]


@jit
def blocks_taken(cached_tokens, cap_tokens, block_tokens, steps):
    """Blocks the decoding sequences have taken beyond their `cap_tokens` by the end of each step 0..steps-1
    (int64, non-decreasing). Each step adds one token per sequence, so sequence i takes a block at step
    cap - cached (its first token past the cap) and every `block_tokens` steps after: by the end of step j it has
    taken max(0, (j - (cap - cached)) // block_tokens + 1) (blocks due before step 0, were any, count at step 0)."""
    taken = np.zeros(steps, dtype=np.int64)
    if steps <= 0:
        return taken
    for i in range(cached_tokens.shape[0]):
        at = cap_tokens[i] - cached_tokens[i]
        if at < 0:  # blocks due before step 0: all taken by its end
            due = (-at + block_tokens - 1) // block_tokens
            taken[0] += due
            at += due * block_tokens
        while at < steps:
            taken[at] += 1
            at += block_tokens
    for j in range(1, steps):
        taken[j] += taken[j - 1]
    return taken
