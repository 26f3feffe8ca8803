"""The ASIC's ops without per-sequence arrays priced in one call (`AsicDevice.cost_rows`): matmuls on the systolic
arrays with the kernel's SRAM/HBM stall model, vector-unit ops and link collectives, as `AsicDevice.cost` prices them at
the base clock, the same floats. A step engine prices a new token count's pre and layer ops (a layer part) this way:
an hour of Sohu traffic prices ~4,000 of them, ~13 ops each."""

import math

import numpy as np

from asicsim.kernels.collectives import ring_allreduce_time_s
from asicsim.kernels.jit import jit
from asicsim.kernels.systolic import shared_gemm_cycles
from asicsim.kernels.vector import vector_cycles

__all__ = ["OP_COLUMNS", "CONSTANTS", "KIND_MATMUL", "KIND_VECTOR", "KIND_ALLREDUCE", "KIND_SEND", "dense_rows"]

# An op's row: its Op fields, how it is priced (KIND_*) and MACs a PE does per cycle in its dtype (matmuls).
OP_COLUMNS = ("flops", "weight_bytes", "act_in_bytes", "act_out_bytes", "kv_read_bytes", "kv_write_bytes",
              "comm_bytes", "group", "m", "n", "k", "kind", "pe_macs")
KIND_MATMUL, KIND_VECTOR, KIND_ALLREDUCE, KIND_SEND = 0, 1, 2, 3
# The chip's: arrays and their shape, dataflow and mode codes, HBM bytes per cycle, SRAM bytes per cycle per port, the
# SRAM bytes of each operand's pool, of the weight buffer and for resident activations, whether weights are
# prefetched (1.0), HBM bytes per cycle at the boost ceiling, vector lanes, base clock, link latency and bandwidth.
CONSTANTS = ("arrays", "rows", "cols", "dataflow", "mode", "hbm_bytes_per_cycle", "sram_bytes_per_cycle",
             "operand_pool_bytes", "weight_buffer_bytes", "act_resident_bytes", "prefetch_weights",
             "hbm_feed_bytes_per_cycle", "vector_lanes", "clock_hz", "link_latency_s", "link_bandwidth_bytes_per_s")


@jit
def _matmul(op, consts, out):
    """`AsicDevice._matmul` at the base clock into `out` (a cost row)."""
    weight_bytes, act_in, act_out = op[1], op[2], op[3]
    m, n, k, per_pe = np.int64(op[8]), np.int64(op[9]), np.int64(op[10]), np.int64(op[12])
    k_steps = -(-k // per_pe)
    hbm, sram = consts[5], consts[6]
    in_word = act_in / max(m * k_steps, 1)
    filter_word = weight_bytes / max(k_steps * n, 1)
    out_word = act_out / max(m * n, 1)
    pool_words = max(np.int64(consts[7] // max(in_word, filter_word, out_word, 1e-9)), 1)
    prefetched = consts[10] > 0.0 and weight_bytes <= consts[8]
    resident = act_in + act_out <= consts[9]
    filter_from_hbm = resident and not prefetched
    filter_feed = consts[11] if filter_from_hbm else sram
    r = shared_gemm_cycles(np.int64(consts[0]), np.int64(consts[1]), np.int64(consts[2]), np.int64(consts[3]), m, n,
                           k_steps, np.int64(consts[4]), pool_words, sram / in_word if in_word > 0.0 else 0.0,
                           filter_feed / filter_word if filter_word > 0.0 else 0.0,
                           sram / out_word if out_word > 0.0 else 0.0)
    cycles, stall, ideal, filter_words = r[0], r[1], r[2], r[4]
    if resident:
        streamed = float(filter_words) * filter_word if filter_from_hbm else 0.0
    else:
        blocks = 1 if prefetched else max(math.ceil(weight_bytes / consts[8]), 1)
        streamed = blocks * act_in + act_out + (0.0 if prefetched else weight_bytes)
    prefetch_bytes = weight_bytes if prefetched else 0.0
    out[0] = float(cycles) * 1.0
    out[1] = streamed / hbm
    out[2] = prefetch_bytes / hbm
    out[5] = float(ideal) * 1.0
    out[6] = float(stall) * 1.0
    out[7] = prefetch_bytes + streamed


@jit
def dense_rows(table, consts):
    """Cost rows (`accounts.COST_COLUMNS`) of ops (rows of `OP_COLUMNS`) on the chip (`CONSTANTS`): matmuls as
    `AsicDevice._matmul`, vector ops as `_vector` (a lane operation per FLOP; activations to HBM only where they do not
    fit the SRAM kept for them), all-reduces as a ring over the links and other sends as one hop (`_collective`)."""
    rows = np.zeros((table.shape[0], 10))
    hbm = consts[5]
    for i in range(table.shape[0]):
        op = table[i]
        kind = np.int64(op[11])
        if kind == KIND_MATMUL:
            _matmul(op, consts, rows[i])
        elif kind == KIND_VECTOR:
            act = op[2] + op[3]
            act_bytes = 0.0 if act <= consts[9] else act
            rows[i, 0] = float(vector_cycles(op[0], 1.0, np.int64(consts[12])))
            rows[i, 1] = act_bytes / hbm + op[1] / hbm
            rows[i, 7] = op[1] + op[4] + op[5] + act_bytes
        elif kind == KIND_ALLREDUCE:
            rows[i, 3] = ring_allreduce_time_s(op[6], np.int64(op[7]), consts[14], consts[15]) * consts[13]
        else:
            rows[i, 3] = (consts[14] + op[6] / consts[15]) * consts[13]
    return rows
