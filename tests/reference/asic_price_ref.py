"""Twin of kernels/asic_price.py: each op priced as `AsicDevice` prices it (`_matmul`, `_vector`, `_collective` at the
base clock), written out once more in plain Python over the other kernels' twins."""

import math

from .gpu_ref import ring_allreduce_time_s
from .systolic_ref import shared_gemm_cycles_ref, vector_cycles_ref


def dense_rows(table, consts):
    (arrays, rows_, cols, df, mode, hbm, sram, pool, buffer, resident_bytes, prefetch, hbm_feed, lanes, clock, latency,
     bandwidth) = (float(x) for x in consts)
    out = []
    for flops, weight, act_in, act_out, kv_read, kv_write, comm, group, m, n, k, kind, per_pe in table.tolist():
        row = [0.0] * 10
        if kind == 0:
            m, n, k = int(m), int(n), int(k)
            k_steps = math.ceil(k / int(per_pe))
            words = (act_in / max(m * k_steps, 1), weight / max(k_steps * n, 1), act_out / max(m * n, 1))
            pool_words = max(int(pool // max(*words, 1e-9)), 1)
            prefetched = prefetch > 0.0 and weight <= buffer
            resident = act_in + act_out <= resident_bytes
            from_hbm = resident and not prefetched
            feeds = (sram, hbm_feed if from_hbm else sram, sram)
            cycles, stall, ideal, _, filter_words, _ = shared_gemm_cycles_ref(
                int(arrays), int(rows_), int(cols), int(df), m, n, k_steps, int(mode), pool_words,
                *(f / w if w > 0.0 else 0.0 for f, w in zip(feeds, words)))
            if resident:
                streamed = filter_words * words[1] if from_hbm else 0.0
            else:
                blocks = 1 if prefetched else max(math.ceil(weight / buffer), 1)
                streamed = blocks * act_in + act_out + (0.0 if prefetched else weight)
            fetched = weight if prefetched else 0.0
            row[0], row[1], row[2] = float(cycles), streamed / hbm, fetched / hbm
            row[5], row[6], row[7] = float(ideal), float(stall), fetched + streamed
        elif kind == 1:
            act = act_in + act_out if act_in + act_out > resident_bytes else 0.0
            row[0] = float(vector_cycles_ref(flops, 1.0, int(lanes)))
            row[1], row[7] = act / hbm + weight / hbm, weight + kv_read + kv_write + act
        elif kind == 2:
            row[3] = ring_allreduce_time_s(comm, int(group), latency, bandwidth) * clock
        else:
            row[3] = (latency + comm / bandwidth) * clock
        out.append(row)
    return out
