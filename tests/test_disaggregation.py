"""Disaggregated prefill/decode serving (asicsim.core.disaggregation, `--disaggregate P:D`)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.cli import main
from asicsim.core.description import RunSpec, build_requests, resolve
from asicsim.core.device import LinkLimits
from asicsim.core.disaggregation import kv_transfer_s, serve_disaggregated
from asicsim.core.runner import run_workload, serving_config
from asicsim.core.schedulers import SCHEDULERS
from asicsim.core.serving import simulate
from asicsim.workloads.requests import Request

FREE = LinkLimits(math.inf, 0.0, 8)


@settings(deadline=None, max_examples=12)
@given(hardware=st.sampled_from(["h100-sxm", "sohu"]), scheduler=st.sampled_from(sorted(SCHEDULERS)),
       isl=st.sampled_from([64, 512, 3000]), osl=st.integers(1, 40), requests=st.integers(1, 12),
       rate=st.sampled_from([0.0, 5.0, 200.0]), seed=st.integers(0, 3))
def test_with_free_transfer_and_split_pools_no_request_is_slower(hardware, scheduler, isl, osl, requests, rate,
                                                                seed) -> None:
    """Each pool a copy of the aggregated deployment, one request at a time (max_batch 1), a free KV link: every
    request's first token and last token come no later than in the aggregated run. (Induction: the prefill pool
    starts each prompt no later, having no decodes to finish first; the decode pool then finishes each request by
    max(its first token, the previous finish) + the same decode steps.) Stepped one at a time, no fast path."""
    d = resolve(RunSpec(hardware=hardware, chips=1, model="llama-3.1-8b", dtype="fp8", isl=isl, osl=osl,
                        requests=requests, rate=rate, scheduler=scheduler, seed=seed, max_batch=1))
    reqs = build_requests(d)
    cfg = dataclasses.replace(serving_config(d), fast_forward=False)
    alone = {r.request_id: r for run in simulate(d.make_device(), 1, reqs, cfg) for r in run.requests}
    split = serve_disaggregated(d, d, reqs, cfg, cfg, link=FREE)
    assert len(split.records) == len(alone) == requests
    for r in split.records:
        a = alone[r.request_id]
        assert r.first_token_at <= a.first_token_at * (1 + 1e-12)
        assert r.finish_at <= a.finish_at * (1 + 1e-12)
        assert (r.input_tokens, r.output_tokens) == (a.input_tokens, a.output_tokens)


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_a_request_arriving_prefilled_is_never_prefilled_again(scheduler: str) -> None:
    d = resolve(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", dtype="fp8", isl=1000, osl=20,
                        requests=24, rate=50.0, scheduler=scheduler))
    reqs = [Request(r.request_id, r.arrival_at, r.input_tokens, r.output_tokens, prefilled=True)
            for r in build_requests(d)]
    (run,) = simulate(d.make_device(), 1, reqs, serving_config(d))
    assert int(run.steps.column("prefill_tokens").sum()) == 0
    assert sorted(r.request_id for r in run.requests) == [r.request_id for r in reqs]
    assert int(run.steps.column("tokens_out").sum()) == sum(r.output_tokens for r in reqs)
    for rec in run.requests:
        assert rec.arrival_at <= rec.scheduled_at < rec.first_token_at <= rec.finish_at
    # The KV cache held every prompt it received: at least the longest request at once.
    assert run.kv_peak_blocks * run.kv_block_tokens >= 1000 + 1


def test_kv_transfer_time_worked_by_hand() -> None:
    link = LinkLimits(100e9, 2e-6, 8)
    # 8 chips send 1,000 tokens x 40 KB each to 8 receivers: 40 MB per chip at 100 GB/s = 0.4 ms, + 2 us.
    assert kv_transfer_s(40e3, 1000, 8, 8, link) == pytest.approx(0.4e-3 + 2e-6)
    # Two receivers take the 8 shards over two links: four times longer.
    assert kv_transfer_s(40e3, 1000, 8, 2, link) == pytest.approx(1.6e-3 + 2e-6)


def test_a_disaggregated_run_conserves_requests_and_tokens_and_is_deterministic() -> None:
    spec = RunSpec(hardware="h100-sxm", chips=4, disaggregate="2:2", tp=2, model="llama-3.1-8b", dtype="fp8",
                   isl=1024, osl=32, requests=48, rate=40.0, seed=3)
    one, two = run_workload(spec), run_workload(spec)
    s = one.summary
    assert s["requests_completed"] == 48 and s["output_tokens_total"] == 48 * 32
    assert s["disaggregate"] == "2:2" and s["prefill_tp"] == s["decode_tp"] == 2
    assert 0.0 < s["kv_transfer_p50_s"] <= s["kv_transfer_p99_s"]
    for r in one.requests:  # the transfer and the decode pool's queue sit between the first and second token
        assert r.arrival_at < r.first_token_at < r.finish_at
    assert {k: v for k, v in s.items() if k != "wall_s"} == {k: v for k, v in two.summary.items() if k != "wall_s"}
    # Energy covers both pools' chips for the whole makespan.
    assert s["energy_static_j"] == pytest.approx(4 * s["static_power_w_per_chip"] * s["makespan_s"])


def test_pools_beyond_one_domain_send_the_kv_over_the_scale_out_network() -> None:
    base = dict(hardware="h100-sxm", model="llama-3.1-8b", dtype="fp8", isl=2048, osl=8, requests=16, rate=20.0)
    inside = run_workload(RunSpec(chips=8, disaggregate="4:4", tp=4, **base)).summary
    across = run_workload(RunSpec(chips=16, disaggregate="8:8", tp=8, **base)).summary
    # 8 + 8 H100s span two NVLink domains: the 50 GB/s NIC instead of 450 GB/s NVLink (and half the KV per chip).
    assert across["kv_transfer_p50_s"] > inside["kv_transfer_p50_s"]


@pytest.mark.parametrize("value, needle", [("8:7", "8 + 7 = 15 chips, but chips is 16"), ("x", "PREFILL:DECODE"),
                                           ("0:16", "PREFILL:DECODE"), ("16", "PREFILL:DECODE")])
def test_bad_disaggregate_is_one_line_and_exit_code_2(value: str, needle: str, capsys) -> None:
    assert main(["run", "--hw", "h100-sxm", "--chips", "16", "--model", "llama-3.1-8b", "--disaggregate", value]) == 2
    err = capsys.readouterr().err.strip()
    assert "--disaggregate" in err and needle in err and "\n" not in err


def test_a_pool_that_cannot_hold_the_model_names_the_pool(capsys) -> None:
    assert main(["run", "--hw", "h100-sxm", "--chips", "16", "--model", "llama-3.3-70b", "--dtype", "bf16",
                 "--disaggregate", "1:15"]) == 2
    assert "the prefill pool of 1 chips" in capsys.readouterr().err
