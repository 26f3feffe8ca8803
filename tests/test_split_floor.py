"""The split-step floor (engine.StepEngine.floor_s): a lower bound on a step's scheduled seconds, so a runner that
passes over split halves whose floor exceeds the whole step times every step exactly as one that schedules them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.core.description import RunSpec, resolve
from asicsim.core.engine import StepEngine
from asicsim.core.runner import serving_config
from asicsim.core.serving import StepRunner, split_batch
from asicsim.workloads.graph_types import StepBatch

OVERLAP = ["sohu", "tpu-v6e", "trainium2"]


def _runner(hw: str, model: str = "llama-3.1-70b", chips: int = 8) -> StepRunner:
    d = resolve(RunSpec(hardware=hw, chips=chips, model=model, requests=4, isl=128, osl=8))
    device = d.make_device()
    return StepRunner(StepEngine(device), serving_config(d), device.overlap_collectives)


_RUNNERS: dict[str, StepRunner] = {}


def _cached(hw: str) -> StepRunner:
    if hw not in _RUNNERS:
        _RUNNERS[hw] = _runner(hw)
    return _RUNNERS[hw]


def _batch(prefills: list[tuple[int, int]], decodes: list[int]) -> StepBatch:
    return StepBatch(np.array([n for n, _ in prefills], dtype=np.int64),
                     np.array([p for _, p in prefills], dtype=np.int64), np.array(decodes, dtype=np.int64))


batches = st.tuples(st.lists(st.tuples(st.integers(1, 4096), st.integers(0, 4096)), max_size=3),
                    st.lists(st.integers(1, 8192), max_size=40)).filter(lambda b: b[0] or b[1])


@settings(max_examples=60, deadline=None)
@given(hw=st.sampled_from(OVERLAP + ["h100-sxm"]), parts=batches)
def test_the_floor_never_exceeds_the_scheduled_step(hw, parts):
    runner = _cached(hw)
    batch = _batch(*parts)
    for graphs in ([runner.graph(batch)], [runner.graph(h) for h in split_batch(batch, 2)]):
        floor = runner.engine.floor_s(graphs)
        assert 0.0 <= floor <= runner.engine.run_step(graphs).time_s * (1.0 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(hw=st.sampled_from(OVERLAP), parts=batches)
def test_passing_over_split_steps_by_their_floor_changes_no_timing(hw, parts):
    runner = _cached(hw)
    batch = _batch(*parts)
    plain = _runner(hw)
    plain.engine.floor_s = lambda graphs: 0.0  # every split scheduled, as before the floors
    plain.engine.serial_floor_s = lambda graph: 0.0  # and every whole step
    plain.weights_floor = False
    assert runner.weights_floor  # a dense model: both floors in use
    assert runner.run(batch) == plain.run(batch)
    assert runner.run(batch) == runner.run(batch)  # the decode-size memo gives the same answer again


@settings(max_examples=60, deadline=None)
@given(hw=st.sampled_from(OVERLAP + ["h100-sxm"]), parts=batches)
def test_the_serial_floor_never_exceeds_the_scheduled_whole_step(hw, parts):
    """`serial_floor_s` (the ops one after another, each at least its longest unit) is a lower bound on the whole
    step's scheduled seconds; 0.0 where one graph runs as a serial sum (no weight prefetch: the H100, TPU v6e), which
    is the whole step's own time."""
    runner = _cached(hw)
    graph = runner.graph(_batch(*parts))
    bound = runner.engine.serial_floor_s(graph)
    assert 0.0 <= bound <= runner.engine.run_step([graph]).time_s * (1.0 + 1e-12)
    assert (bound > 0.0) == bool(runner.engine.device.prefetch_weights)


@settings(max_examples=40, deadline=None)
@given(parts=batches, share=st.sampled_from([0.1, 0.3, 0.5]), dtype=st.sampled_from(["fp8", "bf16"]))
def test_the_serial_floor_changes_no_timing_on_derived_chips(parts, share, dtype):
    """Sweep chips derived from the Sohu (programmable area traded for arrays and SRAM; bf16 or fp8 weights) balance
    compute, HBM and links differently from the stock chip: a runner using the serial floor books every step as one
    that schedules every whole step and every split."""
    from asicsim.chip.programmability import derive_asic_spec
    from asicsim.core.registry import load_hardware

    spec = derive_asic_spec(load_hardware("sohu"), programmable_area_fraction=share)
    runners = []
    for _ in range(2):
        d = resolve(RunSpec(hardware=spec, chips=8, model="llama-3.1-8b", requests=4, isl=128, osl=8, dtype=dtype))
        device = d.make_device()
        runners.append(StepRunner(StepEngine(device), serving_config(d), device.overlap_collectives))
    fast, plain = runners
    plain.engine.floor_s = lambda graphs: 0.0
    plain.engine.serial_floor_s = lambda graph: 0.0
    plain.weights_floor = False
    batch = _batch(*parts)
    assert fast.run(batch) == plain.run(batch)


def test_a_split_faster_than_the_whole_steps_floor_is_taken_without_scheduling_the_whole():
    """A long prefill chunk beside decodes on Sohu: its halves beat the whole step's serial floor, so the step is
    the split's and the whole is never scheduled (one run_step call, of two graphs)."""
    runner = _runner("sohu")
    batch = _batch([(2048, 0)], [3000] * 16)
    calls = []
    real = runner.engine.run_step
    runner.engine.run_step = lambda graphs: calls.append(len(graphs)) or real(graphs)
    timing, halves = runner.run(batch)
    assert halves == 2 and calls == [2]
    assert timing.time_s < runner.engine.serial_floor_s(runner.graph(batch)) <= real([runner.graph(batch)]).time_s


@settings(max_examples=60, deadline=None)
@given(hw=st.sampled_from(OVERLAP), parts=batches)
def test_twice_the_layer_weights_is_a_floor_of_the_split(hw, parts):
    """Both halves of a dense model's batch stream every layer's weights: twice the whole step's layer weight
    seconds (`halves_weights_floor_s`) never exceeds the halves' floor (so never their scheduled time)."""
    runner = _cached(hw)
    batch = _batch(*parts)
    halves = split_batch(batch, 2)
    if len(halves) < 2:
        return
    weights = runner.engine.halves_weights_floor_s(runner.graph(batch))
    assert 0.0 < weights <= runner.engine.floor_s([runner.graph(h) for h in halves]) * (1.0 + 1e-12)


def test_mixed_steps_bound_by_their_weights_build_no_halves():
    """On TPU v6e a short prefill beside a few decodes streams its weights for most of the step: the halves would
    stream them twice, so they are ruled out from the whole step's template, no half built."""
    runner = _runner("tpu-v6e")
    built = []
    real = runner.graph
    runner.graph = lambda batch, stage=None: built.append(batch) or real(batch, stage)
    timing, halves = runner.run(_batch([(16, 0)], [1000] * 8))
    assert halves == 1 and len(built) == 1  # the whole step's graph only
    assert runner.engine.halves_weights_floor_s(real(_batch([(16, 0)], [1000] * 8))) > timing.time_s


def test_decode_steps_that_stream_weights_twice_skip_their_split():
    runner = _runner("sohu")
    calls = []
    real = runner.engine.run_step
    runner.engine.run_step = lambda graphs: calls.append(len(graphs)) or real(graphs)
    timing, halves = runner.run(_batch([], [1000] * 8))
    assert halves == 1 and calls == [1]  # the whole step only: its split floor is above it
    floor = runner._floors[(8, None)]
    assert floor > timing.time_s


@settings(max_examples=40, deadline=None)
@given(hw=st.sampled_from(OVERLAP + ["h100-sxm", "b200"]), pp=st.sampled_from([1, 2]),
       host_s=st.sampled_from([0.0, 2e-4]), widths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
       pasts=st.lists(st.integers(0, 6000), min_size=12, max_size=12), repeat=st.integers(1, 3))
def test_decode_values_equal_time_step(hw, pp, host_s, widths, pasts, repeat):
    """The fast-forward's short path for decode steps (`StepRunner.decode_values`) gives time_step's values bit
    for bit (step and bubble seconds, every recorded field, micro-batches) on every kind of runner: overlapping or
    serial devices, one stage or two, host work per sequence or none, a batch size met first or again."""
    import dataclasses

    from asicsim.core.results import recorded_timing_values

    d = resolve(RunSpec(hardware=hw, chips=8, model="llama-3.1-8b", requests=4, isl=128, osl=8, pp=pp))
    device = d.make_device()
    cfg = dataclasses.replace(serving_config(d), host_s_per_sequence=host_s)
    fast, plain = (StepRunner(StepEngine(device), cfg, device.overlap_collectives) for _ in range(2))
    for _ in range(repeat):
        for width in widths:
            past = np.array(pasts[:width], dtype=np.int64)
            values, micro = fast.decode_values(past)
            step_s, timing, want_micro, bubble_s = plain.time_step(_batch([], past.tolist()))
            assert micro == want_micro
            assert values.tolist() == [step_s, bubble_s, *recorded_timing_values(timing)]
            pasts = [p + 1 for p in pasts]


@settings(max_examples=40, deadline=None)
@given(hw=st.sampled_from(OVERLAP + ["h100-sxm"]), pp=st.sampled_from([1, 2]), host_s=st.sampled_from([0.0, 2e-4]),
       width=st.integers(1, 12), pasts=st.lists(st.integers(0, 6000), min_size=12, max_size=12),
       n=st.integers(1, 300), horizon_s=st.sampled_from([np.inf]) | st.floats(1e-4, 0.5))
def test_decode_run_equals_the_fast_forwards_python_path(hw, pp, host_s, width, pasts, n, horizon_s):
    """A decode run timed in one jitted call (`StepRunner.decode_run`, `kernels.decode_run`) gives the values and
    micro-batches of the fast-forward's Python path bit for bit: its first step timed for the cap at the next arrival,
    then `_interpolate` over `decode_values`. Where it declines (no pricer terms, a floor that leaves the split a
    chance) it returns None and the Python path runs."""
    import dataclasses

    from asicsim.core.serving import _STEP_S, _interpolate

    d = resolve(RunSpec(hardware=hw, chips=8, model="llama-3.1-8b", requests=4, isl=128, osl=8, pp=pp))
    device = d.make_device()
    cfg = dataclasses.replace(serving_config(d), host_s_per_sequence=host_s)
    fast, plain = (StepRunner(StepEngine(device), cfg, device.overlap_collectives) for _ in range(2))
    fast._kernels = True  # the kernel's path even with the kernels run as plain Python (`kernels.jit.compiled`)
    past0 = np.array(pasts[:width], dtype=np.int64)
    for runner in (fast, plain):
        runner.time_step(_batch([], past0.tolist()))  # the graph of this size, and its split's floor
    got = fast.decode_run(past0, n, horizon_s)
    if hw == "sohu" and pp == 1 and width == 1:
        assert got is not None  # the kernel's own case (one sequence: no split to rule out)
    if got is None:
        return
    if horizon_s < np.inf:
        n = min(n, int(horizon_s / plain.decode_values(past0)[0][_STEP_S] * 1.25) + 2)
    values, micro = _interpolate(lambda j: plain.decode_values(past0 + j), n, plain.ff_rtol)
    assert got[0].tolist() == values.tolist()
    assert got[1].tolist() == micro.tolist()


@settings(max_examples=60, deadline=None)
@given(hw=st.sampled_from(["sohu", "sohu-rack"]), parts=batches, pp=st.sampled_from([1, 2]),
       repeat=st.integers(1, 2))
def test_a_mixed_step_in_one_call_equals_its_python_path(hw, parts, pp, repeat):
    """A prefilling step timed in one jitted call (`StepRunner.mixed_step`, `kernels.mixed_step`) gives `run`'s
    Python path bit for bit: every StepTiming field and the halves used, whether the whole step, its split or both
    are scheduled, its templates kept or new (the second time round), on one stage or the last of two."""
    d = resolve(RunSpec(hardware=hw, chips=8, model="llama-3.1-70b", requests=4, isl=128, osl=8, pp=pp))
    device = d.make_device()
    fused, plain = (StepRunner(StepEngine(device), serving_config(d), device.overlap_collectives) for _ in range(2))
    fused._kernels, fused._mixed = True, False  # the kernel's path even with the JIT off (`kernels.jit.compiled`)
    batch = _batch(*parts)
    for _ in range(repeat):
        fused.graph(_batch([(64, 0)], [5, 6]))  # a prefilling graph: the runner finds its terms
        plain._mixed = None  # the Python path
        got, want = fused.run(batch), plain.run(batch)
        if batch.prefill_new_tokens.size:
            assert fused._mixed  # the kernel's case
        assert got[1] == want[1]
        assert got[0] == want[0]


def test_a_sohu_run_is_the_same_with_its_steps_timed_in_python(monkeypatch):
    """End to end: a Sohu run with arrivals books the same steps and requests whether its decode runs and prefilling
    steps are timed by the kernels or by the Python path, and the kernels time most of them."""
    from asicsim.core import serving
    from asicsim.core.runner import run_workload

    spec = RunSpec(hardware="sohu", chips=8, model="llama-3.1-70b", requests=300, isl=512, osl=128, rate=20.0)
    monkeypatch.setattr(serving, "compiled", lambda: True)  # the kernels' paths even with the JIT off
    calls: dict[str, list] = {"decode_run": [], "mixed_step": []}
    for name in calls:
        real = getattr(serving.StepRunner, name)
        monkeypatch.setattr(serving.StepRunner, name,
                            lambda self, *a, real=real, seen=calls[name]: seen.append(r := real(self, *a)) or r)
    fused = run_workload(spec)
    monkeypatch.setattr(serving.StepRunner, "decode_run", lambda self, *a: None)
    monkeypatch.setattr(serving.StepRunner, "_mixed_terms", lambda self, graph: None)
    plain = run_workload(spec)
    for seen in calls.values():
        assert sum(r is not None for r in seen) > 0.9 * len(seen) > 100
    assert {**fused.summary, "wall_s": 0} == {**plain.summary, "wall_s": 0}
    assert fused.steps == plain.steps
    assert fused.requests == plain.requests


@given(new=st.lists(st.integers(1, 5000), max_size=9), dec=st.lists(st.integers(0, 9000), max_size=9))
def test_two_halves_are_split_batchs_two_parts(new, dec):
    """The mixed step's halves (`two_halves`: views, no parts built) are `split_batch`'s two parts, array for array,
    for every batch of two sequences or more."""
    from asicsim.core.serving import two_halves

    if len(new) + len(dec) < 2:
        return
    batch = StepBatch.make(prefill_new=new, prefill_past=[7 * i for i in range(len(new))], decode_past=dec)
    parts = split_batch(batch, 2)
    assert len(parts) == 2
    want = [a for p in parts for a in (p.prefill_new_tokens, p.prefill_past_tokens, p.decode_past_tokens)]
    got = two_halves(batch.prefill_new_tokens, batch.prefill_past_tokens, batch.decode_past_tokens)
    assert len(got) == 6 and all(np.array_equal(g, w) and g.dtype == w.dtype for g, w in zip(got, want))
