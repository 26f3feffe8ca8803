"""Costs of a GPU's array-free ops (GEMMs, memory-bound kernels, all-reduces, point-to-point sends) in one call: the
arithmetic of `gpusim.device.GpuDevice.cost` for those kinds, op by op, with the choices it makes from an op's name,
kind, dtype and group (fusions, gathered logits, the one-shot all-reduce's limit, ...) made beforehand and passed as
codes and values, one row per op. A serving hour prices ~10^4 such groups; one call replaces a dozen Python pricings.

Rows come out in `kernels.accounts.COST_COLUMNS` order, hbm_bytes as the op's own bytes (a GPU moves all of them).
"""

import numpy as np

from asicsim.kernels.collectives import curve_allreduce_time_s
from asicsim.kernels.gpu_gemm import gemm_compute
from asicsim.kernels.jit import jit

__all__ = ["dense_costs", "KIND_MATMUL", "KIND_STREAMED", "KIND_ALLREDUCE", "KIND_P2P", "FUSED", "EMBEDDING",
           "RESIDUAL_NORM", "GATHERED_SAMPLE", "REPLICATED", "GATHERED_ALLREDUCE", "QUANTIZE", "THROTTLED",
           "VALUE_COLUMNS", "STATIC_COLUMNS", "OP_COLUMNS", "CONSTANTS"]

# Kind codes (an op row's "kind").
KIND_MATMUL, KIND_STREAMED, KIND_ALLREDUCE, KIND_P2P = 0, 1, 2, 3
# Flag bits (an op row's "flags"): what the options make of this op.
FUSED = 1  # an elementwise op run inside a neighbouring kernel: only its ideal cycles
EMBEDDING = 2  # a streamed embedding: gathers only the rows it writes
RESIDUAL_NORM = 4  # a norm with the residual add fused in: reads the residual, writes the new stream
GATHERED_SAMPLE = 8  # sampling over gathered full-vocabulary logits
REPLICATED = 16  # an all-reduce a replicated embedding makes unnecessary: free
GATHERED_ALLREDUCE = 32  # the sampling all-reduce as an all-gather of full logits
QUANTIZE = 64  # a GEMM whose input is quantized by a kernel of its own
THROTTLED = 128  # a GEMM the sustained power cap slows
# The op's own fields, as an op row carries them.
VALUE_COLUMNS = ("flops", "weight_bytes", "act_in_bytes", "act_out_bytes", "kv_read_bytes", "kv_write_bytes",
                 "comm_bytes", "group", "m", "n", "k")
# What the device derives per op: its dtype's executed peak and GEMM efficiency, its element bytes,
# and for an all-reduce its group's bus-bandwidth cap and one-shot size limit.
STATIC_COLUMNS = ("peak_flops_per_s", "gemm_efficiency", "element_bytes", "busbw_cap_bytes_per_s",
                  "oneshot_limit_bytes")
# An op's row (ops[i, j]).
OP_COLUMNS = ("kind", "flags", *STATIC_COLUMNS, *VALUE_COLUMNS)
# The device's constants (consts[j]).
CONSTANTS = ("clock_hz", "launch_overhead_s", "gemm_latency_s", "memory_latency_s", "hbm_read_bytes_per_s",
             "hbm_write_bytes_per_s", "gemm_weight_bytes_per_s", "sm_count", "gemm_tile_m", "gemm_tile_n_wide",
             "gemm_tile_n_narrow", "gemm_narrow_tile_efficiency", "gemm_split_k_min_depth", "wave_quantization",
             "quantize_latency_s", "sustained_compute_fraction", "p2p_bytes_per_s", "p2p_latency_s",
             "oneshot_latency_s", "ring_busbw_bytes_per_s", "custom_allreduce", "onchip_path_pj_per_bit")
_ACT_BYTES = 2.0  # bf16 activations: what a separate quantize kernel reads per element
_LOGIT_READ_BYTES, _LOGIT_WRITE_BYTES, _LOGIT_WIRE_BYTES = 6.0, 4.0, 2.0  # per gathered logit


@jit
def _stream_s(read_bytes, write_bytes, latency_s, read_bytes_per_s, write_bytes_per_s):
    if read_bytes + write_bytes <= 0.0:
        return 0.0
    return latency_s + read_bytes / read_bytes_per_s + write_bytes / write_bytes_per_s


@jit
def dense_costs(ops, consts, nccl_sizes, nccl_busbw):
    """Cost rows (`COST_COLUMNS`) of ops given as rows of `OP_COLUMNS` (kind code, flags, STATIC_COLUMNS,
    VALUE_COLUMNS; codes and counts as whole floats), on a GPU (`consts`, CONSTANTS) with a measured NCCL
    bus-bandwidth curve."""
    n_ops = ops.shape[0]
    rows = np.zeros((n_ops, 10))
    clock, launch_s, gemm_latency_s, memory_latency_s = consts[0], consts[1], consts[2], consts[3]
    read_bps, write_bps = consts[4], consts[5]
    for i in range(n_ops):
        kind, flags = np.int64(ops[i, 0]), np.int64(ops[i, 1])
        peak, efficiency, elem, busbw_cap, oneshot_limit = ops[i, 2], ops[i, 3], ops[i, 4], ops[i, 5], ops[i, 6]
        flops, weight_bytes, act_in, act_out = ops[i, 7], ops[i, 8], ops[i, 9], ops[i, 10]
        kv_read, kv_write, comm = ops[i, 11], ops[i, 12], ops[i, 13]
        group, m, n, k = np.int64(ops[i, 14]), np.int64(ops[i, 15]), np.int64(ops[i, 16]), np.int64(ops[i, 17])
        memory_bytes = weight_bytes + act_in + act_out + kv_read + kv_write
        rows[i, 7] = memory_bytes
        ideal = flops / peak * clock if flops > 0.0 else 0.0
        if flags & REPLICATED:
            continue
        if flags & FUSED:
            rows[i, 5] = ideal
            continue
        compute_s = memory_s = weight_s = link_s = serial_s = 0.0
        if kind == KIND_MATMUL:
            tensor_s = gemm_compute(m, n, k, np.int64(consts[7]), peak, efficiency, np.int64(consts[8]),
                                    np.int64(consts[9]), np.int64(consts[10]), consts[11], np.int64(consts[12]),
                                    consts[13] > 0.0)[0]
            if tensor_s == 0.0 and flops > 0.0:
                tensor_s = flops / (peak * efficiency)
            compute_s = tensor_s + gemm_latency_s if tensor_s > 0.0 else 0.0
            if act_in + act_out + weight_bytes <= 0.0 and m > 0:
                act_in, act_out = float(m) * k * elem, float(m) * n * elem
                weight_bytes = float(k) * n * elem
            weight_s = weight_bytes / consts[6]
            if act_in + act_out > 0.0:
                memory_s = _stream_s(act_in, act_out, memory_latency_s, read_bps, write_bps)
            else:
                memory_s = memory_latency_s
            if flags & QUANTIZE and m > 0:
                serial_s = consts[14] + float(m) * k * (_ACT_BYTES + elem) / read_bps
        elif kind == KIND_STREAMED:
            if flags & EMBEDDING:
                read, written = act_in + min(weight_bytes, act_out), act_out
            else:
                read, written = weight_bytes + act_in + kv_read, act_out + kv_write
                if flags & RESIDUAL_NORM:
                    read, written = read + act_in, written + act_out
                elif flags & GATHERED_SAMPLE and m > 0:
                    logits = float(m) * float(n) * max(group, 1)
                    read, written = logits * _LOGIT_READ_BYTES, logits * _LOGIT_WRITE_BYTES + act_out
            memory_s = _stream_s(read, written, memory_latency_s, read_bps, write_bps)
        elif kind == KIND_ALLREDUCE:
            if flags & GATHERED_ALLREDUCE:
                logits = float(m) * float(n) * max(group, 1)
                link_s = curve_allreduce_time_s(logits * _LOGIT_WIRE_BYTES, group, nccl_sizes, nccl_busbw,
                                                consts[19]) / 2.0
            elif consts[20] > 0.0 and group > 1 and comm < oneshot_limit:
                if comm > 0.0:
                    link_s = (consts[18] + (group - 1) * comm / consts[16] + group * comm / read_bps)
            else:
                link_s = curve_allreduce_time_s(comm, group, nccl_sizes, nccl_busbw, busbw_cap)
        else:  # KIND_P2P
            link_s = consts[17] + comm / consts[16] if comm > 0.0 else 0.0
        if flags & THROTTLED and compute_s > 0.0:
            other_s = max(memory_s + weight_s, link_s)
            scale = 1.0
            if flops > 0.0:
                work_s = flops / peak / efficiency
                extra = 1.0 / consts[15] - 1.0
                scale = 1.0 + extra * min(1.0, work_s / compute_s)
                if not compute_s * scale >= other_s:
                    scale = 1.0 + extra * min(1.0, work_s / other_s)
            compute_s *= scale
        kernel_s = max(compute_s, memory_s + weight_s, link_s)
        rows[i, 0] = compute_s * clock
        rows[i, 1] = memory_s * clock
        rows[i, 2] = weight_s * clock
        rows[i, 3] = link_s * clock
        rows[i, 4] = max(0.0, launch_s - kernel_s) + serial_s
        rows[i, 5] = ideal
        if memory_bytes > 0.0:
            idle = 1.0 - min(compute_s / kernel_s, 1.0) if kernel_s > 0.0 else 1.0
            rows[i, 9] = memory_bytes * 8.0 * consts[21] * idle * 1e-12
    return rows
