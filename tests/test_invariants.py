"""Invariants over hundreds of random workloads: requests and tokens conserved, KV cache never above its capacity, time
ordered per request, Little's law on loaded runs. (Energy bounds: tests/test_energy.py; monotonicity in chip
speed: tests/test_run.py and tests/test_engine.py.)"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.core.description import build_requests, resolve_run
from asicsim.core.runner import run_workload

WORKLOADS = st.fixed_dictionaries({
    "hardware": st.sampled_from(["sohu", "h100-sxm"]),
    "chips": st.sampled_from([1, 2]),
    "scheduler": st.sampled_from(["static", "continuous", "chunked-prefill", "inflight", "inflight-chunked"]),
    "rate": st.sampled_from([0.0, 2.0, 50.0]),
    "requests": st.integers(1, 24),
    "isl_dist": st.sampled_from(["fixed", "uniform:16:900", "lognormal:200:0.8"]),
    "osl_dist": st.sampled_from(["fixed", "uniform:1:60"]),
    "isl": st.integers(8, 600),
    "osl": st.integers(1, 40),
    "max_batch": st.sampled_from([None, 1, 3, 16]),
    "max_tokens_per_step": st.sampled_from([None, 256, 2048]),
    "seed": st.integers(0, 50),
})


@settings(deadline=None, max_examples=200)
@given(work=WORKLOADS)
def test_requests_and_tokens_are_conserved_and_kv_stays_within_capacity(work):
    d = resolve_run(model="llama-3.1-8b", kv_block_tokens=16, **work)
    served = build_requests(d)
    result = run_workload(d)
    s = result.summary
    assert s["requests_completed"] == len(served) == d.requests
    assert s["input_tokens_total"] == sum(r.input_tokens for r in served)
    assert s["output_tokens_total"] == sum(r.output_tokens for r in served)
    assert sum(step.tokens_out for step in result.steps) == s["output_tokens_total"]  # each token emitted once
    assert sorted(r.request_id for r in result.requests) == sorted(r.request_id for r in served)
    for r in result.requests:
        assert r.arrival_at <= r.first_token_at <= r.finish_at
    assert max(step.kv_blocks for step in result.steps) <= d.kv_capacity_blocks
    assert s["kv_peak_bytes_per_chip"] <= s["kv_capacity_bytes_per_chip"] * (1 + 1e-12)
    for rep in {step.replica for step in result.steps}:  # a replica's steps never overlap in time
        ends = [(st_.start_at, st_.end_at) for st_ in result.steps if st_.replica == rep]
        assert all(a_end <= b_start + 1e-12 for (_, a_end), (b_start, _) in zip(ends, ends[1:]))


@settings(deadline=None, max_examples=6)
@given(rate=st.sampled_from([10.0, 20.0, 30.0]), seed=st.integers(0, 100))
def test_littles_law_holds_on_loaded_poisson_runs(rate, seed):
    """Time-average of requests in the system (scheduler counts at each step) = arrival rate x mean time in
    system (request records), within 10% on runs of 600 requests."""
    result = run_workload(resolve_run(hardware="h100-sxm", chips=1, model="llama-3.1-8b", rate=rate, requests=600,
                                      isl_dist="uniform:50:400", osl_dist="uniform:10:60", seed=seed))
    horizon = max(r.finish_at for r in result.requests)
    occupancy = sum((s.waiting + s.running) * (s.end_at - s.start_at) for s in result.steps) / horizon
    lam = len(result.requests) / horizon
    mean_w = float(np.mean([r.e2e_s for r in result.requests]))
    assert occupancy > 1.0
    assert occupancy == pytest.approx(lam * mean_w, rel=0.10)
