"""Pipelines over separate devices joined by slow links (`--link`, asicsim.core.links, analysis/edge_pipeline.py)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.analysis.edge_pipeline import EdgePipelineWorkload, edge_pipeline_rows, split_verdicts
from asicsim.analysis.sweep import WORKLOAD_DEFAULTS, evaluate_point, expand_points, sweep_config_from_table
from asicsim.cli import main
from asicsim.core.description import RunSpec, build_requests, resolve
from asicsim.core.links import LinkProfile, link_names, load_link
from asicsim.core.runner import run_workload, serving_config
from asicsim.core.serving import simulate

ZERO = LinkProfile("zero", "a free link (test)", "fixed", math.inf, 0.0, 0.0)


def _one_request(pp: int, link: LinkProfile | None, model: str = "llama-3.2-1b", osl: int = 24, seed: int = 0,
                 hardware: str = "edge-npu", dtype: str = "int4"):
    d = resolve(RunSpec(hardware=hardware, chips=pp, pp=pp, tp=1, model=model, dtype=dtype, isl=64, osl=osl,
                        requests=1, seed=seed, link="usb4" if pp > 1 else None))
    cfg = dataclasses.replace(serving_config(d), link=link if pp > 1 else None)
    ((record,),) = [run.requests for run in simulate(d.make_device(), d.chips, build_requests(d), cfg)]
    return record


@pytest.mark.parametrize("hardware, dtype", [("edge-npu", "int4"), ("cim-chip", "int8"), ("h100-sxm", "fp8")])
@pytest.mark.parametrize("pp", [2, 3, 4, 8])
def test_a_free_link_makes_splitting_free_at_batch_one(pp: int, hardware: str, dtype: str) -> None:
    # The stages' op times add up to the whole model's, so with no link cost the pipeline is the one device; a
    # device with scale-up links (h100) does not also pay its own NVLink send between the separate devices.
    alone = _one_request(1, None, hardware=hardware, dtype=dtype)
    split = _one_request(pp, ZERO, hardware=hardware, dtype=dtype)
    assert split.first_token_at == pytest.approx(alone.first_token_at, rel=1e-12)
    assert split.finish_at == pytest.approx(alone.finish_at, rel=1e-12)


WIRED = [name for name in link_names() if load_link(name).distribution == "fixed"]


@settings(deadline=None, max_examples=25)
@given(bandwidth=st.floats(1e6, 1e11), latency=st.floats(0.0, 5e-3), pp=st.integers(1, 6),
       model=st.sampled_from(["llama-3.2-1b", "qwen3-0.6b", "llama-3.1-8b"]))
def test_adding_a_pipeline_hop_never_lowers_batch_one_latency(bandwidth, latency, pp, model) -> None:
    link = LinkProfile("wired", "test", "fixed", bandwidth, latency, latency)
    fewer, more = _one_request(pp, link, model), _one_request(pp + 1, link, model)
    assert more.first_token_at >= fewer.first_token_at
    assert more.finish_at >= fewer.finish_at


@settings(deadline=None, max_examples=15)
@given(name=st.sampled_from(WIRED), pp=st.integers(1, 6), model=st.sampled_from(["llama-3.2-1b", "qwen3-0.6b"]))
def test_adding_a_hop_on_a_shipped_wired_link_never_lowers_batch_one_latency(name, pp, model) -> None:
    link = load_link(name)
    fewer, more = _one_request(pp, link, model), _one_request(pp + 1, link, model)
    assert more.first_token_at >= fewer.first_token_at
    assert more.finish_at >= fewer.finish_at


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_heavy_tailed_link_reproduces_its_configured_percentiles(seed: int) -> None:
    wifi = load_link("wifi6")
    draws = wifi.latencies_s(np.random.default_rng(seed), 200_000)
    # Sampling error of a quantile from 200,000 draws: under 1% at the median, about 3% at the 99th percentile.
    assert np.median(draws) == pytest.approx(wifi.latency_median_s, rel=0.02)
    assert np.percentile(draws, 99) == pytest.approx(wifi.latency_p99_s, rel=0.06)


def test_fixed_links_always_take_their_median_and_every_profile_is_sourced() -> None:
    for name in link_names():
        link = load_link(name)
        assert link.distribution in ("fixed", "lognormal")
        assert set(link.sources) == {"bandwidth_bytes_per_s", "latency_median_s", "latency_p99_s"}
        assert all(link.sources.values()), name
        if link.distribution == "fixed":
            assert (link.latencies_s(np.random.default_rng(0), 5) == link.latency_median_s).all()


def test_a_wifi_pipeline_is_seeded_and_its_tail_shows_in_the_token_gaps() -> None:
    spec = RunSpec(hardware="edge-npu", chips=4, pp=4, model="llama-3.2-1b", dtype="int4", isl=64, osl=200,
                   requests=1, link="wifi6", seed=7)
    one, two = run_workload(spec).summary, run_workload(spec).summary
    other = run_workload(dataclasses.replace(spec, seed=8)).summary
    assert one["p99_itl_ms"] == two["p99_itl_ms"] and one["p99_itl_ms"] != other["p99_itl_ms"]
    assert one["p99_itl_ms"] > 1.5 * one["median_itl_ms"]
    assert one["link"] == "wifi6" and 0.0 < one["link_time_share"] < 1.0


def test_the_study_says_what_does_not_fit_and_where_splitting_starts_to_cost() -> None:
    rows = edge_pipeline_rows("edge-npu", ["usb4"], [1, 2, 4], EdgePipelineWorkload(model="qwen3-32b", osl=16))
    assert [r["fits"] for r in rows] == [False, False, True]
    assert "does not fit" in rows[0]["error"] and "GB" in rows[0]["error"]
    small = edge_pipeline_rows("edge-npu", ["usb4"], [1, 2, 4], EdgePipelineWorkload(model="llama-3.2-1b", osl=16))
    assert all(r["fits"] for r in small)
    latency = [r["itl_p50_ms"] for r in small]
    assert latency == sorted(latency) and latency[0] < latency[-1]
    weights = [r["weight_bytes_per_device"] for r in small]
    assert weights == sorted(weights, reverse=True)
    (big_verdict,), (small_verdict,) = split_verdicts(rows), split_verdicts(small)
    assert big_verdict["fewest_devices"] == 4 and "p50_ms_per_extra_device" not in big_verdict
    assert small_verdict["fewest_devices"] == 1
    assert small_verdict["p50_ms_per_extra_device"] == pytest.approx((latency[-1] - latency[0]) / 3)
    assert small_verdict["weight_bytes_freed_per_extra_device"] > 0


@pytest.mark.parametrize("argv, needle", [
    (["--chips", "2", "--pp", "2", "--link", "wifi"], "did you mean wifi6"),
    (["--chips", "2", "--pp", "2"], "--link usb4"),
    (["--chips", "1", "--link", "usb4"], "pp 2 or more"),
])
def test_bad_link_input_is_one_line_and_exit_code_2(argv, needle, capsys) -> None:
    assert main(["run", "--hw", "edge-npu", "--model", "llama-3.2-1b", "--dtype", "int4", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err


@pytest.mark.parametrize("hardware, tp, pp, needle", [
    ("edge-npu", 2, 2, "edge-npu has no links of its own); give tp 1,"),
    ("h100-sxm", 16, 2, "h100-sxm joins up to 8 chips on its own links); give tp 8 or less"),
])
def test_tensor_parallelism_over_a_slow_link_is_refused(hardware, tp, pp, needle, capsys) -> None:
    assert main(["run", "--hw", hardware, "--chips", str(tp * pp), "--tp", str(tp), "--pp", str(pp), "--link",
                 "10gbe", "--model", "llama-3.1-8b", "--dtype", "int4" if hardware == "edge-npu" else "fp8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "tensor parallelism across a slow link" in err and needle in err and "\n" not in err


def test_a_stage_may_be_a_tp_group_on_its_devices_own_links() -> None:
    # Each stage is a tp-4 h100 group on NVLink; the stages are joined by the link. A free link: the pipeline is the
    # one tp-4 group at batch 1 (its collectives priced as that group's, not as a tp-1 device's).
    def one(pp: int, link: LinkProfile | None):
        d = resolve(RunSpec(hardware="h100-sxm", chips=4 * pp, pp=pp, tp=4, model="llama-3.1-8b", dtype="fp8",
                            isl=64, osl=24, requests=1, link="10gbe" if pp > 1 else None))
        cfg = dataclasses.replace(serving_config(d), link=link)
        ((record,),) = [run.requests for run in simulate(d.make_device(), d.chips, build_requests(d), cfg)]
        return record
    alone, split, slow = one(1, None), one(2, ZERO), one(2, load_link("10gbe"))
    assert split.finish_at == pytest.approx(alone.finish_at, rel=1e-12)
    assert slow.finish_at > split.finish_at


def test_link_is_a_sweep_key_and_a_point_equals_asicsim_run(capsys) -> None:
    work = {"model": "llama-3.1-8b", "chips": 8, "tp": 4, "pp": 2, "requests": 4, "isl": 256, "osl": 32,
            "link": "10gbe"}
    cfg = sweep_config_from_table({"base": "sohu", "parameters": {}, "workload": {"link": ["10gbe", "wifi6"]}})
    assert sorted(p["workload"]["link"] for p in expand_points(cfg)) == ["10gbe", "wifi6"]
    point = {"base": "sohu", "spec": {}, "workload": dict(WORKLOAD_DEFAULTS, **work)}
    row = evaluate_point(point, derive=lambda base: base,
                         area=lambda spec: {"total_mm2": spec.die_area_mm2, "blocks": {"other": spec.die_area_mm2}})
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in work.items()]
    assert main(["run", "--hw", "sohu", "--quiet", "--json", *flags]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["link"] == "10gbe" and cli["link_time_share"] > 0.0
    assert row["tpot_p50_s"] == cli["tpot_p50_s"] and row["output_tokens_per_s"] == cli["output_tokens_per_s"]
