"""vLLM-named serving metrics: weighted statistics equal numpy's on the expanded data, inter-token gaps conserve
each request's decode time, and the summary carries every key vLLM's benchmark prints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.core.results import VIDUR_REQUEST_COLUMNS
from asicsim.core.runner import RunSpec, run_workload
from asicsim.core.serving_metrics import LATENCIES, PERCENTILES, weighted_stats

finite = st.floats(min_value=0.0, max_value=1e3, allow_nan=False)


@given(st.lists(st.tuples(finite, st.integers(min_value=0, max_value=6)), min_size=1, max_size=30))
def test_weighted_stats_equal_numpy_on_the_expanded_values(pairs):
    values = np.array([v for v, _ in pairs])
    counts = np.array([c for _, c in pairs])
    expanded = np.repeat(values, counts)
    stats = weighted_stats(values, counts)
    if expanded.size == 0:
        assert all(v == 0.0 for v in stats.values())
        return
    assert stats["mean"] == pytest.approx(expanded.mean(), rel=1e-12, abs=1e-12)
    assert stats["std"] == pytest.approx(expanded.std(), rel=1e-9, abs=1e-9)
    assert stats["median"] == pytest.approx(np.percentile(expanded, 50), rel=1e-12, abs=1e-12)
    for q in PERCENTILES:
        assert stats[f"p{q}"] == pytest.approx(np.percentile(expanded, q), rel=1e-12, abs=1e-12)


SCHEDULERS = ["static", "continuous", "chunked-prefill", "inflight", "inflight-chunked"]


@settings(max_examples=12)
@given(scheduler=st.sampled_from(SCHEDULERS), hw=st.sampled_from(["h100-sxm", "sohu"]),
       rate=st.sampled_from([0.0, 5.0, 40.0]), seed=st.integers(0, 3))
def test_inter_token_gaps_add_up_to_each_requests_decode_time(scheduler, hw, rate, seed):
    spec = RunSpec(hardware=hw, chips=8, model="llama-3.1-8b", isl=512, osl=24, requests=24, rate=rate,
                   scheduler=scheduler, seed=seed, isl_dist="lognormal:400:0.5" if rate else "fixed",
                   osl_dist="lognormal:20:0.6" if rate else "fixed")
    result = run_workload(spec)
    s = result.summary
    decoding = [r for r in result.requests if r.output_tokens > 1]
    gaps = sum(r.output_tokens - 1 for r in decoding)
    # conservation: the mean ITL times the number of gaps is the decode time of every request together
    assert s["mean_itl_ms"] * 1e-3 * gaps == pytest.approx(sum(r.finish_at - r.first_token_at for r in decoding),
                                                           rel=1e-9)
    assert s["median_itl_ms"] <= s["p99_itl_ms"] + 1e-9


def test_summary_has_vllm_keys_and_burst_equal_lengths_make_mean_itl_mean_tpot():
    s = run_workload(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", isl=256, osl=32, requests=16)).summary
    for name in LATENCIES:
        for stat in ("mean", "median", "std", *(f"p{q}" for q in PERCENTILES)):
            assert f"{stat}_{name}_ms" in s
    assert s["mean_ttft_ms"] == pytest.approx(s["ttft_mean_s"] * 1e3)
    assert s["median_e2el_ms"] == pytest.approx(s["e2e_p50_s"] * 1e3)
    assert s["mean_itl_ms"] == pytest.approx(s["mean_tpot_ms"], rel=1e-9)  # every request has 31 gaps
    assert s["request_throughput"] == pytest.approx(s["completed"] / s["duration"])
    assert s["output_throughput"] == pytest.approx(s["output_tokens_per_s"])
    assert s["max_batch_capacity"] == s["max_batch"] and s["peak_batch_size"] <= s["max_batch_capacity"]
    assert s["request_goodput"] <= s["request_throughput"]


def test_requests_frame_carries_vidur_names():
    result = run_workload(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", isl=64, osl=8, requests=4))
    frame = result.requests_frame()
    for vidur, ours in VIDUR_REQUEST_COLUMNS.items():
        assert (frame[vidur] == frame[ours]).all()
