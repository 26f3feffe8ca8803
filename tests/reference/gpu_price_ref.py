"""Twin of kernels/gpu_price.py, op by op with named fields and the GPU twins of kernels/gpu_ref.py."""

from asicsim.kernels import gpu_price as g

from .gpu_ref import curve_allreduce_time_s, gemm_compute


def _stream(read, written, c):
    if read + written <= 0.0:
        return 0.0
    return c["memory_latency_s"] + read / c["hbm_read_bytes_per_s"] + written / c["hbm_write_bytes_per_s"]


def _one(code, flags, v, s, c, sizes, busbw):
    """((compute, memory, weight, link, fixed, ideal) seconds and cycles, energy) of one op as a cost row."""
    memory_bytes = v["weight_bytes"] + v["act_in_bytes"] + v["act_out_bytes"] + v["kv_read_bytes"] + v["kv_write_bytes"]
    ideal = v["flops"] / s["peak_flops_per_s"] * c["clock_hz"] if v["flops"] > 0.0 else 0.0
    row = [0.0] * 10
    row[7] = memory_bytes
    if flags & g.REPLICATED:
        return row
    if flags & g.FUSED:
        row[5] = ideal
        return row
    m, n, k, group = int(v["m"]), int(v["n"]), int(v["k"]), int(v["group"])
    compute = memory = weight = link = serial = 0.0
    if code == g.KIND_MATMUL:
        tensor = gemm_compute(m, n, k, int(c["sm_count"]), s["peak_flops_per_s"], s["gemm_efficiency"],
                              int(c["gemm_tile_m"]), int(c["gemm_tile_n_wide"]), int(c["gemm_tile_n_narrow"]),
                              c["gemm_narrow_tile_efficiency"], int(c["gemm_split_k_min_depth"]),
                              c["wave_quantization"] > 0.0)[0]
        if tensor == 0.0 and v["flops"] > 0.0:
            tensor = v["flops"] / (s["peak_flops_per_s"] * s["gemm_efficiency"])
        compute = tensor + c["gemm_latency_s"] if tensor > 0.0 else 0.0
        act_in, act_out, weights = v["act_in_bytes"], v["act_out_bytes"], v["weight_bytes"]
        if act_in + act_out + weights <= 0.0 and m > 0:
            elem = s["element_bytes"]
            act_in, act_out, weights = float(m) * k * elem, float(m) * n * elem, float(k) * n * elem
        weight = weights / c["gemm_weight_bytes_per_s"]
        memory = _stream(act_in, act_out, c) if act_in + act_out > 0.0 else c["memory_latency_s"]
        if flags & g.QUANTIZE and m > 0:
            serial = c["quantize_latency_s"] + float(m) * k * (2.0 + s["element_bytes"]) / c["hbm_read_bytes_per_s"]
    elif code == g.KIND_STREAMED:
        if flags & g.EMBEDDING:
            read, written = v["act_in_bytes"] + min(v["weight_bytes"], v["act_out_bytes"]), v["act_out_bytes"]
        else:
            read = v["weight_bytes"] + v["act_in_bytes"] + v["kv_read_bytes"]
            written = v["act_out_bytes"] + v["kv_write_bytes"]
            if flags & g.RESIDUAL_NORM:
                read, written = read + v["act_in_bytes"], written + v["act_out_bytes"]
            elif flags & g.GATHERED_SAMPLE and m > 0:
                logits = float(m) * float(n) * max(group, 1)
                read, written = logits * 6.0, logits * 4.0 + v["act_out_bytes"]
        memory = _stream(read, written, c)
    elif code == g.KIND_ALLREDUCE:
        size = v["comm_bytes"]
        if flags & g.GATHERED_ALLREDUCE:
            logits = float(m) * float(n) * max(group, 1)
            link = curve_allreduce_time_s(logits * 2.0, group, sizes, busbw, c["ring_busbw_bytes_per_s"]) / 2.0
        elif c["custom_allreduce"] > 0.0 and group > 1 and size < s["oneshot_limit_bytes"]:
            link = 0.0 if size <= 0.0 else (c["oneshot_latency_s"] + (group - 1) * size / c["p2p_bytes_per_s"]
                                            + group * size / c["hbm_read_bytes_per_s"])
        else:
            link = curve_allreduce_time_s(size, group, sizes, busbw, s["busbw_cap_bytes_per_s"])
    else:
        link = c["p2p_latency_s"] + v["comm_bytes"] / c["p2p_bytes_per_s"] if v["comm_bytes"] > 0.0 else 0.0
    if flags & g.THROTTLED and compute > 0.0 and v["flops"] > 0.0:
        other = max(memory + weight, link)
        work = v["flops"] / s["peak_flops_per_s"] / s["gemm_efficiency"]
        extra = 1.0 / c["sustained_compute_fraction"] - 1.0
        paced = 1.0 + extra * min(1.0, work / compute)
        compute *= paced if compute * paced >= other else 1.0 + extra * min(1.0, work / other)
    kernel = max(compute, memory + weight, link)
    clock = c["clock_hz"]
    row[:6] = [compute * clock, memory * clock, weight * clock, link * clock,
               max(0.0, c["launch_overhead_s"] - kernel) + serial, ideal]
    if memory_bytes > 0.0:
        idle = 1.0 - min(compute / kernel, 1.0) if kernel > 0.0 else 1.0
        row[9] = memory_bytes * 8.0 * c["onchip_path_pj_per_bit"] * idle * 1e-12
    return row


def dense_costs(ops, consts, nccl_sizes, nccl_busbw):
    c = dict(zip(g.CONSTANTS, consts.tolist()))
    rows = []
    for row in ops.tolist():
        op = dict(zip(g.OP_COLUMNS, row))
        rows.append(_one(int(op["kind"]), int(op["flags"]), op, op, c, nccl_sizes, nccl_busbw))
    return rows
