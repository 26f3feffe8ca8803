"""The ASIC's SRAM/HBM stall model: the systolic kernel prices every array matmul with per-port bandwidths
(each operand fed from SRAM or from HBM), the engine's HBM unit prices the same HBM bytes (asicsim.chip.device).

Step shapes: Llama-3-70B in FP8 on the Sohu spec, 8-way tensor parallel unless stated.
"""

from __future__ import annotations

import dataclasses
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.analysis.breakdown import CATEGORIES, format_breakdown, step_breakdown
from asicsim.chip.device import AsicDevice
from asicsim.chip.programmability import derive_asic_spec
from asicsim.core.engine import StepEngine
from asicsim.core.registry import load_hardware
from asicsim.core.runner import RunSpec, run_workload
from asicsim.workloads.graph import build_step_graph
from asicsim.workloads.graph_types import Op, OpKind, StepBatch
from asicsim.workloads.models import load_model

MIB = 2**20
PREFILL_RTOL = 0.02  # a compute-bound step may move this much when SRAM or HBM bandwidth halves


@pytest.fixture(scope="module")
def sohu():
    return load_hardware("sohu")


@pytest.fixture(scope="module")
def llama70b():
    return load_model("llama-3-70b")


@pytest.fixture(scope="module")
def decode(llama70b):
    """256 sequences decoding one token each after 2048 cached tokens."""
    return build_step_graph(llama70b, StepBatch.make(decode_past=[2048] * 256), tp=8, dtype="fp8")


def _step(spec, graph, **changes):
    return StepEngine(AsicDevice(dataclasses.replace(spec, **changes), 8)).run_step([graph])


def _matmul(graph, name: str):
    return next(op for op in graph.layer_ops + graph.post_ops if op.kind == OpKind.MATMUL and op.name == name)


def _hbm_bytes_per_cycle(spec) -> float:
    return spec.hbm_bandwidth_bytes_per_s * spec.hbm_efficiency / spec.clock_hz


def test_shrinking_sram_slows_decode(sohu, decode):
    """Less SRAM: weights stop fitting the prefetch buffer (half of SRAM; gate_up's 58.7 MB from 64 MiB down) and
    stream through the arrays' HBM-fed filter ports, activations stop fitting their quarter and are staged."""
    times = [_step(sohu, decode, sram_bytes=mib * MIB).time_s for mib in (128, 64, 32, 16, 8)]
    assert all(b >= a for a, b in zip(times, times[1:]))
    assert times[1] > times[0] and times[-1] > 1.1 * times[0]


def test_shrinking_hbm_bandwidth_slows_decode(sohu, decode):
    times = [_step(sohu, decode, hbm_bandwidth_bytes_per_s=tb * 1e12).time_s for tb in (8.0, 6.0, 4.8, 3.0, 1.5)]
    assert all(b > a for a, b in zip(times, times[1:]))


def test_compute_bound_prefill_barely_moves_when_sram_or_hbm_halves(sohu, llama70b):
    """A prefill step the arrays bound moves <= PREFILL_RTOL when SRAM or HBM bandwidth halves.

    Compute-bound takes tp = 1 (no all-reduce) and an SRAM that keeps the step's activations and prefetch-sized
    weights on chip even halved (4 GiB: 2 GiB still holds gate_up's 2048 x 65536 bf16 activations in its quarter
    and its 470 MB of weights in its half). Sohu's own 8192-token prefill at tp = 8 is not compute-bound: its
    all-reduces (134 MB each) bind, and its norms and residuals move 134 MB activations through HBM; it takes
    18% longer at half the HBM bandwidth, as it did before the stall model was live.
    """
    graph = build_step_graph(llama70b, StepBatch.make(prefill_new=[2048]), tp=1, dtype="fp8")
    spec = dataclasses.replace(sohu, sram_bytes=4 * 2**30)
    base = _step(spec, graph)
    assert base.compute_busy_s >= 0.95 * base.time_s  # the premise: the arrays bound the step
    halved = ({"sram_bytes": spec.sram_bytes // 2}, {"hbm_bandwidth_bytes_per_s": spec.hbm_bandwidth_bytes_per_s / 2})
    for changes in halved:
        slower = _step(spec, graph, **changes)
        assert base.time_s <= slower.time_s <= base.time_s * (1 + PREFILL_RTOL)


def test_streamed_weights_stall_on_the_hbm_fed_filter_port(sohu, decode):
    """gate_up's 58.7 MB of weights: prefetched into SRAM with 128 MiB (filter port fed from SRAM, no stall), streamed
    from HBM with 64 MiB (filter port at the HBM bandwidth: the arrays stall, the weights are op memory traffic)."""
    op = _matmul(decode, "gate_up_proj")
    fed = AsicDevice(sohu, 8).cost(op)
    assert fed.stall_cycles == 0.0 and fed.memory_cycles == 0.0
    assert fed.weight_cycles == pytest.approx(op.weight_bytes / _hbm_bytes_per_cycle(sohu))
    small = dataclasses.replace(sohu, sram_bytes=64 * MIB)
    streamed = AsicDevice(small, 8).cost(op)
    assert streamed.weight_cycles == 0.0 and streamed.stall_cycles > 0.0
    assert streamed.compute_cycles > fed.compute_cycles
    assert streamed.hbm_bytes >= op.weight_bytes
    assert streamed.memory_cycles == pytest.approx(streamed.hbm_bytes / _hbm_bytes_per_cycle(small))


def test_one_hbm_model_kernel_and_engine_overlap(sohu, decode):
    """An op alone: the kernel's stall-inclusive cycles and the engine's HBM time price the same streamed bytes at
    the same bandwidth, so they nearly agree and the op lasts their max, never their sum."""
    # gate_up's weights stream with 64 MiB of SRAM; the LM head's 131 MB always do (activations on chip in both)
    for spec, name in ((dataclasses.replace(sohu, sram_bytes=64 * MIB), "gate_up_proj"), (sohu, "lm_head")):
        priced = StepEngine(AsicDevice(spec, 8)).price(_matmul(decode, name))
        assert priced.stall_s > 0.0 and priced.weight_s == 0.0
        assert priced.compute_s == pytest.approx(priced.memory_s, rel=0.1)
        assert priced.alone_s == max(priced.compute_s, priced.memory_s) < priced.compute_s + priced.memory_s


def test_more_hbm_bandwidth_removes_the_stall(sohu, decode):
    """Stalls come from the limited HBM-fed port: at a thousand times the bandwidth the streamed op runs stall-free
    at its memory-unlimited cycles."""
    op = _matmul(decode, "lm_head")  # 131 MB of weights: never prefetched on Sohu (the buffer is 67 MB)
    slow = AsicDevice(sohu, 8).cost(op)
    ample = dataclasses.replace(sohu, hbm_bandwidth_bytes_per_s=1000 * sohu.hbm_bandwidth_bytes_per_s)
    fast = AsicDevice(ample, 8).cost(op)
    assert slow.stall_cycles > 0.0 and fast.stall_cycles == 0.0
    assert fast.compute_cycles < slow.compute_cycles


@pytest.mark.parametrize("sram_mib", [4, 32, 128, 1024])
def test_matmul_prices_are_consistent(sohu, llama70b, sram_mib):
    """Every matmul of a decode and a prefill step: HBM bytes are the engine's memory plus prefetch cycles at the HBM
    bandwidth, at least the weights once (plus the activations once when they leave SRAM); the kernel's cycles
    hold its stall and are never below the MAC bound."""
    spec = dataclasses.replace(sohu, sram_bytes=sram_mib * MIB)
    device = AsicDevice(spec, 8)
    per_cycle = _hbm_bytes_per_cycle(spec)
    batches = (StepBatch.make(decode_past=[2048] * 64), StepBatch.make(prefill_new=[4096]))
    for batch in batches:
        graph = build_step_graph(llama70b, batch, tp=8, dtype="fp8")
        for op in graph.layer_ops + graph.post_ops:
            if op.kind != OpKind.MATMUL:
                continue
            c = device.cost(op)
            assert c.hbm_bytes == pytest.approx((c.memory_cycles + c.weight_cycles) * per_cycle, rel=1e-9)
            act = op.act_in_bytes + op.act_out_bytes
            off_chip = act if act > spec.sram_bytes / 4 else 0.0
            assert c.hbm_bytes >= (op.weight_bytes + off_chip) * (1 - 1e-12)
            assert c.ideal_compute_cycles <= c.compute_cycles and 0.0 <= c.stall_cycles <= c.compute_cycles


def test_boost_counts_hbm_at_the_op_clock(sohu, decode):
    """A derived spec with a boost clock. An op fed from SRAM only: every cycle scales by base clock / op clock. An op
    streaming its weights from HBM: the kernel counts cycles at the op clock with HBM delivering its bytes per second
    over that clock, so the op still lasts its HBM time (the arrays wait longer, they do not get the bytes sooner)."""
    spec = derive_asic_spec(sohu, die_area_mm2=600.0, sram_bytes=64 * MIB, hbm_stacks=4, tdp_w=320.0, clock_hz=2.0e9)
    assert spec.max_clock_hz > spec.clock_hz
    plain_device, boosted_device = AsicDevice(dataclasses.replace(spec, max_clock_hz=0.0), 8), AsicDevice(spec, 8)
    fed = _matmul(decode, "qkv_proj")  # 10.5 MB of weights: prefetched into SRAM
    plain, boosted = plain_device.cost(fed), boosted_device.cost(fed)
    ratio = boosted.ideal_compute_cycles / plain.ideal_compute_cycles
    assert ratio < 1.0 and boosted.compute_cycles == pytest.approx(plain.compute_cycles * ratio)
    streamed = _matmul(decode, "gate_up_proj")  # 58.7 MB over the 33.6 MB buffer: streamed
    plain, boosted = plain_device.cost(streamed), boosted_device.cost(streamed)
    assert plain.stall_cycles > 0.0 and boosted.stall_cycles > plain.stall_cycles
    assert boosted.ideal_compute_cycles < plain.ideal_compute_cycles  # the op clock is above the base clock
    assert (boosted.memory_cycles, boosted.hbm_bytes) == (plain.memory_cycles, plain.hbm_bytes)
    assert boosted.compute_cycles == pytest.approx(boosted.memory_cycles, rel=0.05)
    assert boosted.compute_cycles <= plain.compute_cycles


def test_breakdown_reports_array_stall():
    """Sohu streams Llama-3-70B's LM head (131 MB per chip, over the 67 MB prefetch buffer): the arrays stall."""
    result = run_workload(RunSpec("sohu", 8, "llama-3-70b", "fp8", isl=128, osl=4, requests=4))
    b = step_breakdown(result)
    assert set(b["seconds"]) == set(CATEGORIES)
    assert b["stall_s"] == pytest.approx(sum(s.stall_s for s in result.steps)) and b["stall_s"] > 0.0
    assert b["stall_share"] == pytest.approx(b["stall_s"] / b["total_s"])
    assert "array stall" in format_breakdown(result)


def test_attention_score_entries_summed_as_integers_equal_the_float_sum():
    """`_causal_entries` sums int64 arrays as integers: the same number as the float sum it replaces (every term
    and partial sum an integer below 2^53), on random prefill and decode arrays; other dtypes take the float
    sum."""
    import numpy as np

    from asicsim.chip.device import _causal_entries

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 300))
        new = rng.integers(1, 9000, n) if rng.random() < 0.5 else np.ones(n, dtype=np.int64)
        past = rng.integers(0, 200_000, n)
        x = new.astype(float)
        want = float((x * past + x * (x + 1) / 2).sum())
        assert _causal_entries(new.astype(np.int64), past.astype(np.int64)) == want
        assert _causal_entries(new.astype(np.int32), past.astype(np.int32)) == want


_op_amount = st.sampled_from([0.0]) | st.floats(1.0, 1e10)


@settings(max_examples=60, deadline=None)
@given(sram_mib=st.sampled_from([8, 64, 230]), prefetch=st.booleans(), tokens=st.sampled_from([1, 7, 300, 4096, 9000]),
       extra=st.lists(st.builds(
           lambda kind, dtype, amounts, group, shape: Op("op", kind, dtype, *amounts, group=group, m=shape[0],
                                                         n=shape[1], k=shape[2]),
           st.sampled_from([OpKind.MATMUL, OpKind.NORM, OpKind.ELEMENTWISE, OpKind.EMBEDDING, OpKind.ALLREDUCE,
                            OpKind.P2P, OpKind.ALL_TO_ALL]), st.sampled_from(["fp8", "bf16", "int8"]),
           st.tuples(*[_op_amount] * 7), st.integers(1, 8), st.tuples(*[st.integers(1, 9000)] * 3)), max_size=4))
def test_cost_rows_are_the_costs_bit_for_bit(sohu, llama70b, sram_mib, prefetch, tokens, extra):
    """`AsicDevice.cost_rows` (one jitted call, `kernels.asic_price`) gives each array-free op the row of `cost(op)`,
    every OpCost field equal as a float: a step's pre, layer and post ops and random matmuls, vector ops and
    collectives, on chips whose SRAM holds the activations and weights or not, prefetching or not. With boost, or
    with an op of another kind among them (attention), or with the kernels run as plain Python, it gives None."""
    import numpy as np

    from asicsim.kernels.accounts import COST_COLUMNS

    spec = dataclasses.replace(sohu, sram_bytes=sram_mib * MIB, prefetch_weights=prefetch)
    device = AsicDevice(spec, 8)
    graph = build_step_graph(llama70b, StepBatch.make(prefill_new=[tokens], decode_past=[100, 2000]), tp=8)
    ops = [op for op in (*graph.pre_ops, *graph.layer_ops, *graph.post_ops) if op.seq_new is None] + extra
    with mock.patch("asicsim.chip.device.compiled", lambda: True):  # even with the JIT off (`kernels.jit.compiled`)
        rows = device.cost_rows(ops)
        assert device.cost_rows(ops + _attention_ops(graph)[:1]) is None
        boosted = AsicDevice(dataclasses.replace(spec, max_clock_hz=1.2 * spec.clock_hz), 8)
        assert boosted.cost_rows(ops) is None
        assert np.array_equal(device.cost_rows(ops[:3]), rows[:3])
    with mock.patch("asicsim.chip.device.compiled", lambda: False):  # interpreted: `cost` and its GEMM memo instead
        assert device.cost_rows(ops) is None
    assert rows.shape == (len(ops), len(COST_COLUMNS))
    for op, row in zip(ops, rows.tolist()):
        assert row == list(dataclasses.astuple(device.cost(op))), op


def _attention_ops(graph):
    return [op for op in graph.layer_ops if op.seq_new is not None]
