"""Latency and throughput metrics named and defined as vLLM's benchmark (`vllm bench serve`) reports them.

Keys (milliseconds for latencies, as vLLM prints them): `mean_`, `median_`, `std_`, `p90_`, `p95_`, `p99_` of
`ttft` (time to first token), `tpot` (per request: (latency - TTFT) / (output tokens - 1), requests with more than one
output token), `itl` (inter-token latency: every gap between two consecutive tokens of a request, pooled over all
requests) and `e2el` (end-to-end request latency); `completed`, `duration` (s), `total_input_tokens`,
`total_output_tokens`, `request_throughput` (requests/s), `output_throughput` and `total_token_throughput`
(tokens/s), `request_goodput` (requests/s meeting every SLO). Percentiles interpolate linearly (numpy's default, as
vLLM computes them).

ITL from the step and request records (`itl_gaps`): a decoding request gets its tokens at the ends of its replica's
decode steps, so its gaps are those steps' spacing, plus the wait from its first token to its first decode step (long
under static batching, where the batch's other prefills come first). Multi-token prediction emits several tokens in
one step: as vLLM does with speculative decoding, the gap is counted once per step. A pre-empted request (recomputed)
is counted as if it had stayed in every decode step.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PERCENTILES", "LATENCIES", "weighted_stats", "itl_gaps", "vllm_metrics"]

PERCENTILES = (90, 95, 99)
LATENCIES = ("ttft", "tpot", "itl", "e2el")


def weighted_stats(values: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """mean, median, std and PERCENTILES of `values` each repeated `counts` times, without repeating them: the
    same numbers as numpy on the expanded array (linear interpolation, population std). Empty: all 0.
    An hour's inter-token gaps are ~10^6 values: temporaries are made once and reused in place."""
    values = np.asarray(values, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.float64)
    keep = counts > 0
    if not keep.all():
        values, counts = values[keep], counts[keep]
    del keep
    out = {"mean": 0.0, "median": 0.0, "std": 0.0, **{f"p{q}": 0.0 for q in PERCENTILES}}
    total = counts.sum()
    if total <= 0:
        return out
    order = np.argsort(values, kind="stable")
    values, counts = values[order], counts[order]
    del order
    work = values * counts
    mean = float(work.sum() / total)
    out["mean"] = mean
    np.subtract(values, mean, out=work)
    np.multiply(work, work, out=work)  # (values - mean) ** 2, squared exactly as ** 2 squares
    np.multiply(counts, work, out=work)
    out["std"] = float(np.sqrt(max(work.sum() / total, 0.0)))
    ends = np.cumsum(counts, out=work)  # the expanded array's last index of each value is ends - 1

    def at(index: float) -> float:  # the expanded array's element at an integer index
        return float(values[np.searchsorted(ends, index, side="right")])

    for name, q in (("median", 50), *((f"p{q}", q) for q in PERCENTILES)):
        position = q / 100.0 * (total - 1)
        low = np.floor(position)
        out[name] = at(low) + (at(min(low + 1, total - 1)) - at(low)) * (position - low)
    return out


def itl_gaps(step_replica: np.ndarray, step_end_at: np.ndarray, decode_tokens: np.ndarray, request_replica: np.ndarray,
             first_token_at: np.ndarray, finish_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gap s, how many times it occurs): every gap between two consecutive tokens of every request.

    A request decoding on a replica gets its tokens at the ends of that replica's steps with decode work, from the
    first such step after its first token to the one that finishes it (schedulers never leave a running decoding
    sequence out of a decode step; steps with prefill only, as in static batching, pass it by). So its gaps are
    (first decode step end - first token) and the differences of consecutive decode-step ends up to its finish;
    they sum to finish - first token exactly. Counted per step gap with a difference array: O(steps + requests).
    Step arrays may be float columns of a step table (replica and decode counts as whole-number floats)."""
    values, counts = [], []
    step_replica = np.asarray(step_replica)
    request_replica = np.asarray(request_replica)
    replicas = np.unique(request_replica)
    decoding_steps = np.asarray(decode_tokens) > 0
    for replica in replicas:
        mine_steps = decoding_steps if len(replicas) == 1 and np.all(step_replica == replica) else \
            decoding_steps & (step_replica == replica)
        ends = np.asarray(step_end_at)[mine_steps]
        del mine_steps
        if len(ends) > 1 and not bool(np.all(ends[1:] >= ends[:-1])):  # a replica's steps end in time order
            ends.sort()
        mine = request_replica == replica
        first, finish = np.asarray(first_token_at)[mine], np.asarray(finish_at)[mine]
        slack = 1e-12 * np.maximum(np.abs(finish), 1.0)  # a finish is a step end: keep float noise inside
        k = np.searchsorted(ends, first + slack, side="right")  # first decode step after the first token
        m = np.searchsorted(ends, finish + slack, side="right")  # one past the step that finished the request
        decoding = m > k
        values.append(ends[k[decoding]] - first[decoding])
        counts.append(np.ones(int(decoding.sum())))
        if len(ends) > 1:  # gap j = ends[j + 1] - ends[j], used by requests with k <= j <= m - 2
            cover = np.zeros(len(ends))
            np.add.at(cover, k[decoding], 1.0)
            np.add.at(cover, m[decoding] - 1, -1.0)
            values.append(np.diff(ends))
            counts.append(np.cumsum(cover, out=cover)[:-1])
    if not values:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(values), np.concatenate(counts)


def vllm_metrics(ttft_s, tpot_s, e2el_s, itl_s, itl_counts, *, completed: int, good: int, duration_s: float,
                 input_tokens: int, output_tokens: int) -> dict:
    """The vLLM benchmark's summary keys (see the module docstring) from per-request seconds and ITL gaps."""
    out: dict = {"completed": completed, "duration": duration_s, "total_input_tokens": input_tokens,
                 "total_output_tokens": output_tokens,
                 "request_throughput": completed / duration_s if duration_s else 0.0,
                 "request_goodput": good / duration_s if duration_s else 0.0,
                 "output_throughput": output_tokens / duration_s if duration_s else 0.0,
                 "total_token_throughput": (input_tokens + output_tokens) / duration_s if duration_s else 0.0}
    series = {"ttft": (ttft_s, None), "tpot": (tpot_s, None), "itl": (itl_s, itl_counts), "e2el": (e2el_s, None)}
    for name in LATENCIES:
        values, counts = series[name]
        values = np.asarray(values, dtype=np.float64)
        stats = weighted_stats(values, np.ones(len(values)) if counts is None else counts)
        out.update({f"{stat}_{name}_ms": value * 1e3 for stat, value in stats.items()})
    return out
