"""Serving-loop invariants (issue 5): conservation of requests and tokens, KV capacity, forward time,
Little's law, determinism, continuous >= static batching, and the engine fast path against the exact one."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.core.engine import FAST_PATH_RTOL, StepEngine
from asicsim.core.runner import RunSpec, make_device, run_workload
from asicsim.core.schedulers import SCHEDULERS
from asicsim.core.serving import ServingConfig, simulate
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph import build_step_graph
from asicsim.workloads.graph_types import StepBatch
from asicsim.workloads.models import load_model
from asicsim.workloads.requests import Request, poisson_requests, parse_length_dist

MODEL = load_model("llama-3.1-8b")
H100 = make_device("h100-sxm", 2)


def cfg(scheduler: str, **kw) -> ServingConfig:
    base = dict(model=MODEL, dtype="fp8", kv_dtype="fp8", tp=1, pp=1, max_batch=0, max_tokens_per_step=512,
                scheduler=scheduler)
    return ServingConfig(**(base | kw))


requests_st = st.lists(st.tuples(st.floats(0, 2.0), st.integers(1, 300), st.integers(1, 40)), min_size=1,
                       max_size=25).map(lambda rows: [Request(i, t, a, b) for i, (t, a, b) in enumerate(rows)])


@settings(max_examples=30, deadline=None)
@given(requests_st, st.sampled_from(sorted(SCHEDULERS)), st.sampled_from([0, 24, 60]), st.sampled_from([1, 2]),
       st.sampled_from(["round-robin", "least-tokens"]))
def test_conservation_capacity_and_forward_time(reqs, scheduler, kv_blocks, replicas_chips, router):
    """Tiny KV caches (24 or 60 blocks of 16 tokens) force admission waits and pre-emptions."""
    longest = max(r.input_tokens + r.output_tokens for r in reqs)
    if kv_blocks and kv_blocks * 16 < longest:
        kv_blocks = -(-longest // 16)
    runs = simulate(H100, replicas_chips, reqs, cfg(scheduler, kv_capacity_blocks=kv_blocks, router=router))
    records = [r for run in runs for r in run.requests]
    # Every request finishes exactly once, with the tokens it asked for.
    assert sorted(r.request_id for r in records) == [r.request_id for r in reqs]
    by_id = {r.request_id: r for r in reqs}
    for rec in records:
        req = by_id[rec.request_id]
        assert (rec.input_tokens, rec.output_tokens) == (req.input_tokens, req.output_tokens)
        assert rec.arrival_at <= rec.scheduled_at <= rec.first_token_at <= rec.finish_at
    for run in runs:
        mine = [r for r in records if r.replica == runs.index(run)]
        # Tokens emitted by the steps are exactly the tokens the replica's requests asked for.
        assert sum(s.tokens_out for s in run.steps) == sum(r.output_tokens for r in mine)
        # Prompt tokens processed: every prompt once, plus recomputation after pre-emptions.
        prefilled = sum(s.prefill_tokens for s in run.steps)
        assert prefilled >= sum(r.input_tokens for r in mine)
        if run.preemptions == 0:
            assert prefilled == sum(r.input_tokens for r in mine)
        # KV use never exceeds capacity; simulated time only moves forward.
        assert all(0 <= s.kv_blocks <= run.kv_capacity_blocks for s in run.steps)
        assert run.kv_peak_blocks <= run.kv_capacity_blocks
        for a, b in zip(run.steps, run.steps[1:]):
            assert a.start_at < a.end_at <= b.start_at
    assert sum(r.preemptions for r in records) == sum(run.preemptions for run in runs)


def test_small_cache_preempts_and_still_finishes():
    reqs = [Request(i, 0.0, 200, 60) for i in range(12)]
    runs = simulate(H100, 1, reqs, cfg("chunked-prefill", kv_capacity_blocks=40))
    assert runs[0].preemptions > 0
    assert len(runs[0].requests) == 12
    assert sum(s.tokens_out for s in runs[0].steps) == 12 * 60


def test_littles_law_on_a_long_steady_poisson_run():
    """Time-average of requests in the system (queue + running, from the scheduler's own counts at each
    step) equals arrival rate x mean time in system (from the request records), within 5%."""
    rate = 20.0
    reqs = poisson_requests(3000, rate, parse_length_dist("--isl-dist", "uniform:50:400", 0),
                            parse_length_dist("--osl-dist", "uniform:10:60", 0), seed=3)
    runs = simulate(H100, 1, reqs, cfg("chunked-prefill"))
    steps, records = runs[0].steps, runs[0].requests
    horizon = max(r.finish_at for r in records)
    occupancy = sum((s.waiting + s.running) * (s.end_at - s.start_at) for s in steps) / horizon
    lam = len(records) / horizon
    mean_w = float(np.mean([r.e2e_s for r in records]))
    assert occupancy > 1.0  # a loaded system, not an empty one
    assert occupancy == pytest.approx(lam * mean_w, rel=0.05)


def test_same_seed_same_output_and_seed_matters():
    spec = RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", rate=8.0, requests=60,
                   isl_dist="lognormal:300:0.8", osl_dist="uniform:5:50", seed=11)
    a, b = run_workload(spec), run_workload(spec)
    assert a.requests_frame().equals(b.requests_frame())
    assert a.steps_frame().equals(b.steps_frame())
    c = run_workload(RunSpec(**{**spec.__dict__, "seed": 12}))
    assert not a.requests_frame().equals(c.requests_frame())


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(16, 1200), st.integers(1, 80)), min_size=2, max_size=30))
def test_continuous_batching_at_least_static_with_all_requests_at_t0(lengths):
    reqs = [Request(i, 0.0, a, b) for i, (a, b) in enumerate(lengths)]
    static = simulate(H100, 1, reqs, cfg("static"))
    total = sum(a + b for a, b in lengths)
    static_tps = total / max(r.finish_at for r in static[0].requests)
    # (chunked-prefill is not bound by this: mixing a one-token decode into a prefill step can cost a
    # few microseconds more than static's prefill-only step on tiny batches.)
    runs = simulate(H100, 1, reqs, cfg("continuous"))
    assert total / max(r.finish_at for r in runs[0].requests) >= static_tps * (1 - 1e-9)


def test_pipeline_micro_batches_shrink_the_bubble():
    reqs = [Request(i, 0.0, 256, 16) for i in range(16)]
    one = simulate(H100, 2, reqs, cfg("continuous", tp=1, pp=2, micro_batches=1))
    two = simulate(H100, 2, reqs, cfg("continuous", tp=1, pp=2, micro_batches=2))
    share = [sum(s.bubble_s for s in r[0].steps) / sum(s.end_at - s.start_at for s in r[0].steps) for r in (one, two)]
    assert share[0] == pytest.approx(0.5)  # one batch walking two stages: each stage idles half the time
    assert share[1] < share[0]


def test_least_tokens_router_balances_unequal_requests():
    # Alternating huge and tiny requests: round-robin piles every huge one on replica 0.
    reqs = [Request(i, i * 0.001, 1500 if i % 2 == 0 else 20, 40 if i % 2 == 0 else 2) for i in range(16)]
    load = {}
    for router in ("round-robin", "least-tokens"):
        runs = simulate(H100, 2, reqs, cfg("continuous", router=router, max_tokens_per_step=2048))
        load[router] = [sum(r.input_tokens for r in run.requests) for run in runs]
    assert max(load["least-tokens"]) < max(load["round-robin"])


def test_summary_has_the_serving_keys():
    s = run_workload(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", rate=4.0, requests=20,
                             slo_ttft_s=1e-9, slo_tpot_s=0.0)).summary
    for key in ("slo_attainment", "mean_batch_size", "preemptions", "kv_peak_bytes_per_chip", "goodput_requests_per_s"):
        assert key in s
    assert s["slo_attainment"] == 0.0  # nobody gets a first token in a nanosecond
    assert s["scheduler"] == "chunked-prefill" and s["requests_completed"] == 20
    assert 0 < s["kv_peak_bytes_per_chip"] <= s["kv_capacity_bytes_per_chip"]


def test_unknown_scheduler_and_bad_distribution_are_input_errors():
    with pytest.raises(InputError, match="scheduler"):
        run_workload(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", requests=2, scheduler="fifo"))
    with pytest.raises(InputError, match="isl-dist"):
        parse_length_dist("--isl-dist", "gamma:3", 10)


batches = st.builds(
    lambda pre, dec: StepBatch.make(prefill_new=[a for a, _ in pre], prefill_past=[b for _, b in pre], decode_past=dec),
    st.lists(st.tuples(st.integers(1, 3000), st.integers(0, 4000)), max_size=4),
    st.lists(st.integers(0, 8000), max_size=64),
).filter(lambda b: b.tokens > 0)


@pytest.mark.parametrize("hw", ["h100-sxm", "sohu"])
@settings(max_examples=15, deadline=None)
@given(batch=batches, split=st.booleans())
def test_engine_fast_path_matches_exact_path(hw, batch, split):
    """Serial devices: equal to float rounding. Prefetching devices: within FAST_PATH_RTOL (attention
    seconds rounded in the memo key)."""
    device = make_device(hw, 8)
    fast, exact = StepEngine(device), StepEngine(device, exact=True)
    graphs = [build_step_graph(MODEL, batch, tp=8, dtype="fp8")]
    if split and batch.decode_past_tokens.size >= 2:
        half = batch.decode_past_tokens.size // 2
        graphs = [build_step_graph(MODEL, StepBatch(batch.prefill_new_tokens, batch.prefill_past_tokens,
                                                    batch.decode_past_tokens[:half]), tp=8, dtype="fp8"),
                  build_step_graph(MODEL, StepBatch.make(decode_past=batch.decode_past_tokens[half:]), tp=8, dtype="fp8")]
    for _ in range(2):  # second round answers from the caches
        a, b = fast.run_step(graphs), exact.run_step(graphs)
        rtol = 1e-9 if not device.prefetch_weights and len(graphs) == 1 else FAST_PATH_RTOL
        assert a.time_s == pytest.approx(b.time_s, rel=rtol)
        assert a.memory_wait_s == pytest.approx(b.memory_wait_s, rel=rtol, abs=1e-12)
        for field in ("compute_busy_s", "memory_busy_s", "link_busy_s", "ideal_compute_s", "flops_per_chip",
                      "memory_bytes_per_chip"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-9)


def test_cli_out_folder_and_plot(capsys, tmp_path):
    import json

    from asicsim.cli import main

    out = tmp_path / "run"
    code = main(["run", "--hw", "h100-sxm", "--chips", "1", "--model", "llama-3.1-8b", "--trace", "azure-code",
                 "--requests", "30", "--time-scale", "0.1", "--out", str(out), "--timeline-steps", "2", "--json",
                 "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["requests_completed"] == 30 and summary["workload"] == "trace azure-code"
    assert json.loads((out / "summary.json").read_text())["steps"] == summary["steps"]
    assert any((out / f"requests.{ext}").is_file() for ext in ("parquet", "csv"))
    events = json.loads((out / "timeline.json").read_text())["traceEvents"]
    tracks = {e["args"]["name"] for e in events if e.get("name") == "thread_name"}
    assert {"SMs (tensor cores + CUDA cores)", "HBM", "chip links"} <= tracks  # a GPU draws SMs, not arrays
    assert sum(1 for e in events if e.get("tid") == 0 and e["ph"] == "X") == 2
    pytest.importorskip("matplotlib")
    assert main(["plot", str(out)]) == 0
    assert (out / "latency.png").stat().st_size > 0 and (out / "steps.png").stat().st_size > 0
    assert main(["plot", str(out / "summary.json")]) == 2


# --- fast-forward (serving._Replica.fast_forward) against stepping one at a time ----------------------------

ff_requests_st = st.lists(st.tuples(st.floats(0, 1.0), st.integers(1, 400), st.integers(1, 120)), min_size=1,
                          max_size=20).map(lambda rows: [Request(i, t, a, b) for i, (t, a, b) in enumerate(rows)])


def _both(device, reqs, config, chips=1):
    from dataclasses import replace

    return (simulate(device, chips, reqs, replace(config, fast_forward=True)),
            simulate(device, chips, reqs, replace(config, fast_forward=False)))


def _assert_same_runs(fast, slow, rtol):
    """Same requests on the same replicas in the same finish order, same step shapes and KV use; times and
    per-step accounting within rtol."""
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow):
        assert [r.request_id for r in a.requests] == [r.request_id for r in b.requests]
        assert [(s.prefill_tokens, s.decode_tokens, s.batch_size, s.waiting, s.running, s.kv_blocks, s.tokens_out)
                for s in a.steps] == [(s.prefill_tokens, s.decode_tokens, s.batch_size, s.waiting, s.running,
                                       s.kv_blocks, s.tokens_out) for s in b.steps]
        assert (a.preemptions, a.kv_peak_blocks) == (b.preemptions, b.kv_peak_blocks)
        assert a.kv_mean_blocks == pytest.approx(b.kv_mean_blocks, rel=rtol)
        for x, y in zip(a.requests, b.requests):
            assert (x.replica, x.input_tokens, x.output_tokens, x.preemptions) == (
                y.replica, y.input_tokens, y.output_tokens, y.preemptions)
            for f in ("first_token_at", "finish_at", "scheduled_at"):
                assert getattr(x, f) == pytest.approx(getattr(y, f), rel=rtol, abs=1e-12)
        for f in ("start_at", "end_at", "compute_busy_s", "memory_busy_s", "attention_s", "flops_per_chip",
                  "memory_wait_s", "bubble_s"):
            assert np.allclose([getattr(s, f) for s in a.steps], [getattr(s, f) for s in b.steps], rtol=rtol,
                               atol=1e-12), f


@settings(max_examples=30, deadline=None)
@given(ff_requests_st, st.sampled_from(sorted(SCHEDULERS)), st.sampled_from([0, 30, 80]), st.sampled_from([1, 2]),
       st.sampled_from(["round-robin", "least-tokens"]), st.sampled_from([1, 2]))
def test_fast_forward_equals_stepping_on_the_gpu(reqs, scheduler, kv_blocks, chips, router, pp):
    """Serial engine: step time convex in the step index, so the fast-forward is exact to 2e-9 (here
    1e-8): same membership, order, KV use and pre-emptions; tiny caches force pre-emptions and waits."""
    longest = max(r.input_tokens + r.output_tokens for r in reqs)
    if kv_blocks and kv_blocks * 16 < longest:
        kv_blocks = -(-longest // 16)
    if pp > chips:
        pp = 1
    fast, slow = _both(H100, reqs, cfg(scheduler, kv_capacity_blocks=kv_blocks, router=router, pp=pp), chips)
    _assert_same_runs(fast, slow, 1e-8)


@contextlib.contextmanager
def _booked(method: str):
    """The steps each call of `serving._Replica.<method>` booked (a fast-forward), in a list, while in the block."""
    from asicsim.core import serving

    calls: list[int] = []
    original = getattr(serving._Replica, method)

    def spy(self, until_at):
        done = original(self, until_at)
        calls.append(done)
        return done

    setattr(serving._Replica, method, spy)
    try:
        yield calls
    finally:
        setattr(serving._Replica, method, original)


def test_fast_forward_books_runs_and_is_exact_on_a_poisson_stream():
    reqs = poisson_requests(120, 6.0, parse_length_dist("--isl-dist", "uniform:20:600", 0),
                            parse_length_dist("--osl-dist", "uniform:20:300", 0), seed=5)
    with _booked("fast_forward") as calls:
        fast, slow = _both(H100, reqs, cfg("chunked-prefill"))
    assert max(calls) > 20  # runs of many decode steps were booked at once
    _assert_same_runs(fast, slow, 1e-8)


@settings(max_examples=4, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 0.2), st.integers(1, 300), st.integers(20, 80)), min_size=2, max_size=4)
       .map(lambda rows: [Request(i, t, a, b) for i, (t, a, b) in enumerate(rows)]))
def test_fast_forward_on_the_asic_within_tolerance(reqs):
    """Weight prefetch and split halves are simulated (not convex): interpolation holds to FAST_PATH_RTOL at
    the checked midpoints; request time stamps stay within 0.1% of stepping one at a time (a TTFT is a
    difference of time stamps: its error is bounded by the same absolute amount, not relatively)."""
    sohu = make_device("sohu", 8)
    config = cfg("chunked-prefill", tp=8)
    fast, slow = _both(sohu, reqs, config, chips=8)
    assert sorted(r.request_id for r in fast[0].requests) == sorted(r.request_id for r in slow[0].requests)
    assert sum(s.tokens_out for s in fast[0].steps) == sum(s.tokens_out for s in slow[0].steps)
    by_id = {r.request_id: r for r in slow[0].requests}
    for r in fast[0].requests:
        ref = by_id[r.request_id]
        assert r.finish_at == pytest.approx(ref.finish_at, rel=1e-3)
        assert r.first_token_at == pytest.approx(ref.first_token_at, rel=1e-3)
        assert r.ttft_s == pytest.approx(ref.ttft_s, abs=1e-3 * ref.first_token_at)
    assert all(0 <= s.kv_blocks <= fast[0].kv_capacity_blocks for s in fast[0].steps)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 3)), min_size=1, max_size=12),
       st.integers(1, 16), st.integers(1, 100))
def test_growth_steps_match_a_block_by_block_count(seqs, block, steps):
    """kvcache.growth_steps: the step of every extra block, as a per-step loop over sequences finds them."""
    from asicsim.core.kvcache import growth_steps

    cached = [c for c, _ in seqs]
    cap = [(-(-c // block) + extra) * block for c, extra in seqs]
    expected = []
    for i in range(len(seqs)):
        have = cap[i]
        for j in range(steps):
            if cached[i] + j + 1 > have:
                expected.append(j)
                have += block
    assert growth_steps(cached, cap, block, steps).tolist() == sorted(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 3)), min_size=1, max_size=12),
       st.integers(1, 16), st.integers(1, 100))
def test_blocks_taken_count_the_growth_steps(seqs, block, steps):
    """kvcache.blocks_taken: by the end of each step, the blocks growth_steps lists up to it."""
    import numpy as np

    from asicsim.core.kvcache import blocks_taken, growth_steps

    cached = np.array([c for c, _ in seqs], dtype=np.int64)
    cap = np.array([(-(-c // block) + extra) * block for c, extra in seqs], dtype=np.int64)
    want = np.cumsum(np.bincount(growth_steps(cached, cap, block, steps), minlength=steps))
    assert blocks_taken(cached, cap, block, steps).tolist() == want.tolist()


# --- TensorRT-LLM in-flight batching (schedulers.InflightScheduler / InflightChunkedScheduler) -------------

@settings(max_examples=30, deadline=None)
@given(requests_st, st.sampled_from(["inflight", "inflight-chunked"]), st.sampled_from([0, 24, 60]),
       st.sampled_from([0, 3]), st.sampled_from([64, 512]))
def test_inflight_never_evicts_and_keeps_the_token_budget(reqs, scheduler, kv_blocks, max_batch, budget):
    """GUARANTEED_NO_EVICT: no pre-emption ever, KV within capacity, every request once with its tokens;
    a step holds at most max_batch requests and at most `budget` tokens (decodes + prompt tokens), except
    an unchunked prompt longer than the whole budget, which runs as the step's only prompt."""
    longest = max(r.input_tokens + r.output_tokens for r in reqs)
    if kv_blocks and kv_blocks * 16 < longest:
        kv_blocks = -(-longest // 16)
    runs = simulate(H100, 1, reqs, cfg(scheduler, kv_capacity_blocks=kv_blocks, max_batch=max_batch,
                                       max_tokens_per_step=budget))
    run = runs[0]
    assert run.preemptions == 0
    assert sorted(r.request_id for r in run.requests) == [r.request_id for r in reqs]
    assert sum(s.prefill_tokens for s in run.steps) == sum(r.input_tokens for r in reqs)
    assert sum(s.tokens_out for s in run.steps) == sum(r.output_tokens for r in reqs)
    assert all(0 <= s.kv_blocks <= run.kv_capacity_blocks for s in run.steps)
    for s in run.steps:
        assert s.running <= (max_batch or 1 << 30)
        if s.prefill_tokens + s.decode_tokens > budget:
            assert scheduler == "inflight" and s.prefill_tokens > budget
            assert s.batch_size - s.decode_tokens == 1


def test_inflight_without_chunking_waits_for_room_for_a_whole_prompt():
    """Budget 2048 and 2048-token prompts: no prompt joins while any request decodes (TensorRT-LLM's
    micro-batch scheduler stops at the first context request that does not fit); chunking lets them join."""
    reqs = [Request(i, 0.0, 2048, 8) for i in range(4)]
    plain = simulate(H100, 1, reqs, cfg("inflight", max_tokens_per_step=2048))[0]
    chunked = simulate(H100, 1, reqs, cfg("inflight-chunked", max_tokens_per_step=2048))[0]
    assert all(not (s.prefill_tokens and s.decode_tokens) for s in plain.steps)
    assert any(s.prefill_tokens and s.decode_tokens for s in chunked.steps)
    assert max(r.finish_at for r in chunked.requests) < max(r.finish_at for r in plain.requests)


# --- decode curves (serving._DecodeCurves): decode steps as linear pieces of the total cached tokens -----------

@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=48), st.data())
def test_gpu_decode_steps_depend_on_width_and_total_only(past, data):
    """What `GpuDevice.decode_cost_by_totals` promises (the decode curves rely on it): two decode batches of the
    same width and total cached tokens, spread differently, price every op and time the step bit for bit alike."""
    a = np.array(past, dtype=np.int64)
    b = data.draw(st.permutations(past)).copy() if len(past) > 1 else list(past)
    i, j = data.draw(st.integers(0, len(b) - 1)), data.draw(st.integers(0, len(b) - 1))
    moved = data.draw(st.integers(0, b[i]))
    b[i] -= moved
    b[j] += moved
    b = np.array(b, dtype=np.int64)
    assert H100.decode_cost_by_totals and a.sum() == b.sum() and len(a) == len(b)
    ga, gb = (build_step_graph(MODEL, StepBatch(np.zeros(0, np.int64), np.zeros(0, np.int64), x), tp=2)
              for x in (a, b))
    for oa, ob in zip(ga.layer_ops, gb.layer_ops):
        assert H100.cost(oa) == H100.cost(ob), oa.name
    assert StepEngine(H100).run_step([ga]) == StepEngine(H100).run_step([gb])


def test_only_devices_that_price_decode_by_totals_get_curves():
    from asicsim.core.serving import StepRunner

    assert StepRunner(StepEngine(H100), cfg("chunked-prefill"), False).curves is not None
    assert StepRunner(StepEngine(H100, exact=True), cfg("chunked-prefill"), False).curves is None  # the reference
    assert StepRunner(StepEngine(H100), cfg("chunked-prefill", pp=2), False, micro=2).curves is None  # split parts
    sohu = make_device("sohu", 8)
    assert not getattr(sohu, "decode_cost_by_totals", False)
    assert StepRunner(StepEngine(sohu), cfg("chunked-prefill", tp=8), True).curves is None


class _Kinked:
    """A stand-in StepRunner whose decode step is a convex piecewise-linear function of (width, total tokens)."""

    def __init__(self, pieces):
        self.pieces = pieces  # (slope, intercept) per width-scaled affine part; the step is their max
        self.calls = 0

    def exact(self, width: int, total: int) -> float:
        return max(1e-3 * width * a + 1e-7 * b * total for a, b in self.pieces)

    def time_step(self, batch):
        from asicsim.core.engine import StepTiming

        self.calls += 1
        past = batch.decode_past_tokens
        t = self.exact(len(past), int(past.sum()))
        flops = 3.0e9 * int(past.sum()) + 1e6 * len(past)  # affine fields ride along
        return t, StepTiming(time_s=t, compute_busy_s=0.5 * t, flops_per_chip=flops), 1, 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 5.0), st.floats(0.0, 3.0)), min_size=1, max_size=4),
       st.lists(st.tuples(st.integers(1, 6), st.integers(0, 40_000), st.integers(2, 300)), min_size=1, max_size=40))
def test_decode_curves_stay_within_twice_their_tolerance(pieces, runs):
    """Against the function itself: every value a curve gives for a run (pieces reused, grown and refused as runs
    come) is within 2 x rtol of the exact step, in step time and in the affine fields; a run no piece covers
    is refused (None), never guessed."""
    from asicsim.core.serving import _FF_FIELDS, FAST_FORWARD_RTOL, _DecodeCurves

    fake = _Kinked(pieces)
    curves = _DecodeCurves(FAST_FORWARD_RTOL)
    flops_at = _FF_FIELDS.index("flops_per_chip")
    for width, total, n in runs:
        got = curves.run(fake.time_step, np.full(width, total // width, dtype=np.int64), n, float("inf"))
        if got is None:
            continue
        values, micro = got
        assert len(values) == n and (micro == 1).all()
        start = (total // width) * width
        for j in range(n):
            want = fake.exact(width, start + j * width)
            assert abs(values[j, 0] - want) <= 2 * FAST_FORWARD_RTOL * want + 1e-18
            flops = 3.0e9 * (start + j * width) + 1e6 * width
            assert abs(values[j, flops_at] - flops) <= 2 * FAST_FORWARD_RTOL * flops
    assert curves.hits + curves.misses == len(runs)
    assert fake.calls <= 6 * curves.misses  # a run read off a piece builds no step; a miss at most 6


def test_decode_curves_are_used_and_match_stepping_on_a_long_stream():
    """A Poisson stream with hundreds of decode runs: most runs are read off reused pieces (no step built), and
    the whole replay equals stepping one at a time (1e-8, as the fast-forward's own test)."""
    from asicsim.core import serving

    reqs = poisson_requests(400, 8.0, parse_length_dist("--isl-dist", "uniform:20:600", 0),
                            parse_length_dist("--osl-dist", "uniform:20:300", 0), seed=11)
    made = []
    original = serving._DecodeCurves.__init__

    def spy(self, *args):
        original(self, *args)
        made.append(self)

    serving._DecodeCurves.__init__ = spy
    try:
        fast, slow = _both(H100, reqs, cfg("chunked-prefill"))
    finally:
        serving._DecodeCurves.__init__ = original
    curves = made[0]
    assert curves.hits > 100 and curves.hits > 3 * curves.misses
    _assert_same_runs(fast, slow, 1e-8)


@settings(max_examples=10, deadline=None)
@given(ff_requests_st, st.sampled_from([("gpt-oss-20b", False), ("mixtral-8x7b", True), ("qwen3-30b-a3b", False)]))
def test_fast_forward_equals_stepping_for_windowed_and_expert_models(reqs, case):
    """Sliding-window layers cap each sequence's cache and attention data parallelism gives the first chip a share
    of the sequences, so a decode step is not a function of the total cached tokens there: the decode curves stay
    off and the fast-forward still equals stepping one at a time."""
    from dataclasses import replace

    from asicsim.core.serving import StepRunner

    name, dep = case
    config = replace(cfg("continuous"), model=load_model(name), tp=2, ep=2 if dep else 1, attention_dp=dep)
    runner = StepRunner(StepEngine(H100), config, H100.overlap_collectives)
    windowed = any(k.kv_span for k in config.model.layers)
    assert (runner.curves is None) == (windowed or dep)
    fast, slow = _both(H100, reqs, config, chips=2)
    _assert_same_runs(fast, slow, 1e-8)


def test_run_plots_are_titled_and_bin_long_step_series():
    from asicsim.commands.plot import _binned, run_title

    title = run_title({"hardware": "sohu", "chips": 8, "tp": 8, "pp": 1, "model": "llama-3-70b", "dtype": "fp8",
                       "workload": "burst", "isl": 2048, "osl": 128})
    assert title == "sohu x8 (tp 8 x pp 1), llama-3-70b fp8, burst 2048/128"
    t = np.linspace(0.0, 100.0, 100_000)
    x, y = _binned(t, np.ones_like(t) * 3.0, 600)
    assert len(x) <= 600 and np.allclose(y, 3.0)  # means of a constant series stay the constant
    x, y = _binned(t, t, 10)
    assert np.all(np.diff(y) > 0) and y[0] == pytest.approx(5.0, abs=0.01)  # bin means of a ramp


@settings(max_examples=30, deadline=None)
@given(requests_st, st.sampled_from([0, 24, 60]), st.sampled_from([0, 3]), st.sampled_from([64, 512]))
def test_static_prefill_walks_exactly_the_unprefilled_running_sequences(reqs, kv_blocks, max_batch, budget):
    """The static scheduler keeps its unprefilled sequences in a queue instead of scanning the batch each step:
    every plan's prefill chunks equal those of the scan over the running list (the definition), on staggered
    arrivals, admission waits for KV blocks and batch limits."""
    from asicsim.core.schedulers import StaticScheduler

    longest = max(r.input_tokens + r.output_tokens for r in reqs)
    if kv_blocks and kv_blocks * 16 < longest:
        kv_blocks = -(-longest // 16)
    plans = []
    original = StaticScheduler.plan

    def checked(self, now_at):
        plan = original(self, now_at)
        room, expected = self.budget, []
        pending = [s for s in self.running if s.prefilled < s.prompt]
        for s in pending:
            if room == 0:
                break
            take = min(room, s.prompt - s.prefilled)
            expected.append((s.rid, take))
            room -= take
        assert [(s.rid, c) for s, c in plan.prefill] == expected
        assert [s.rid for s in plan.decode] == ([] if pending else [s.rid for s in self.running])
        plans.append(plan)
        return plan

    StaticScheduler.plan = checked
    try:
        runs = simulate(H100, 1, reqs, cfg("static", kv_capacity_blocks=kv_blocks, max_batch=max_batch,
                                           max_tokens_per_step=budget))
    finally:
        StaticScheduler.plan = original
    assert plans and sorted(r.request_id for r in runs[0].requests) == [r.request_id for r in reqs]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.0, 0.001, 0.01, 0.5]), st.integers(1, 3000), st.integers(1, 2)),
                min_size=1, max_size=30).map(lambda rows: [Request(i, t, a, b) for i, (t, a, b) in enumerate(rows)]),
       st.sampled_from([0, 4]), st.sampled_from([256, 2048]), st.sampled_from([1, 2]))
def test_static_prefill_runs_equal_stepping_to_the_bit(reqs, max_batch, budget, chips):
    """A static batch's prefill steps booked at once (`_Replica._prefill_forward`) equal stepping them one at a
    time exactly: every step record and request time stamp, the KV integral too. One- and two-token outputs
    leave no decode run to interpolate, so everything compared is exact; arrivals during a batch's prefill,
    one-token outputs finishing mid-run, batch limits and several replicas cut the runs short."""
    from dataclasses import replace

    config = cfg("static", max_batch=max_batch, max_tokens_per_step=budget)
    with _booked("_prefill_forward") as booked:
        fast = simulate(H100, chips, reqs, replace(config, fast_forward=True))
    slow = simulate(H100, chips, reqs, replace(config, fast_forward=False))
    for a, b in zip(fast, slow):
        assert list(a.steps) == list(b.steps)
        assert a.requests == b.requests
        assert a.kv_mean_blocks == b.kv_mean_blocks
    one_batch = max_batch == 0 and chips == 1 and all(r.arrival_at == 0.0 and r.output_tokens > 1 for r in reqs)
    if one_batch and sum(r.input_tokens for r in reqs) > 2 * budget:  # 3+ prefill steps, none finishing a request
        assert max(booked) >= 2  # all but the first (the admitting step) booked as a run


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_for_the_loop_and_summary_and_restored(monkeypatch, enabled):
    """A run pauses Python's cyclic collector while its loop and summary walk what the loop built, and leaves it
    as it found it (nested pauses too)."""
    import gc

    import asicsim.core.runner as runner
    from asicsim.core.serving import collection_paused

    seen = []
    summarize = runner.summarize
    monkeypatch.setattr(runner, "summarize", lambda *a, **k: seen.append(gc.isenabled()) or summarize(*a, **k))
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        run_workload(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", requests=8, isl=64, osl=4))
        assert seen == [False] and gc.isenabled() == enabled
        with collection_paused():
            with collection_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
            built = [[i] for i in range(50_000)]  # tracked objects the next collection would walk as young ones
        assert gc.isenabled() == enabled and gc.get_freeze_count() == 0 and len(built) == 50_000
        if enabled:  # what the block built went to the oldest generation unwalked (not walked young on the way out)
            assert id(built[0]) in {id(o) for o in gc.get_objects(generation=2)}
    finally:
        (gc.enable if was else gc.disable)()
