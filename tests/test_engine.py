"""The simpy engine against hand-worked timelines, using a fake device with round-number costs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asicsim.core.device import OpCost
from asicsim.core.engine import StepEngine
from workloads.graph_types import Op, OpKind, StepBatch, StepGraph


@dataclass
class FakeDevice:
    """Costs looked up by op name; clocks of 1 Hz so cycles read as seconds."""

    costs: dict
    prefetch_weights: bool = False
    overlap_collectives: bool = False
    clocks_hz: dict = field(default_factory=lambda: {"compute": 1.0, "memory": 1.0, "link": 1.0})

    def cost(self, op):
        return self.costs[op.name]


def graph(names, layers=1, pre=(), post=()):
    mk = lambda n: Op(n, OpKind.MATMUL, "fp8", flops=1.0)  # noqa: E731
    return StepGraph(StepBatch.make(decode_past=[1]), 1, 1, tuple(map(mk, pre)), tuple(map(mk, names)), layers,
                     tuple(map(mk, post)))


def test_compute_and_memory_of_one_op_overlap():
    dev = FakeDevice({"a": OpCost(compute_cycles=3, memory_cycles=2, weight_cycles=2)})
    assert StepEngine(dev).run_step([graph(["a"])]).time_s == pytest.approx(4.0)  # max(3, 2 + 2)


def test_ops_are_serial_without_prefetch():
    dev = FakeDevice({"a": OpCost(compute_cycles=3, weight_cycles=1), "b": OpCost(compute_cycles=1, weight_cycles=3)})
    assert StepEngine(dev).run_step([graph(["a", "b"])]).time_s == pytest.approx(6.0)


def test_prefetch_hides_next_weights_behind_compute():
    # t=0-1: a streams its 1 s of weights while computing (0-3); t=1-3: b's weights prefetch in idle HBM
    # time (2 of its 3 s); t=3: b starts, streams its last 1 s of weights while computing 1 s; ends at 4.
    # Without prefetch the same ops take 3 + 3 = 6 s (previous test).
    dev = FakeDevice({"a": OpCost(compute_cycles=3, weight_cycles=1), "b": OpCost(compute_cycles=1, weight_cycles=3)},
                     prefetch_weights=True)
    assert StepEngine(dev).run_step([graph(["a", "b"])]).time_s == pytest.approx(4.0)


def test_demand_traffic_preempts_prefetch():
    # a: compute 1, activations 2 s of HBM; b: weights 2. The prefetch of b may not delay a's own traffic:
    # a ends at 2 (its 2 s of traffic first), b's weights then load 2-4, b ends at 4.
    dev = FakeDevice({"a": OpCost(compute_cycles=1, memory_cycles=2), "b": OpCost(compute_cycles=1, weight_cycles=2)},
                     prefetch_weights=True)
    assert StepEngine(dev).run_step([graph(["a", "b"])]).time_s == pytest.approx(4.0)


def test_fixed_overhead_is_serial():
    dev = FakeDevice({"a": OpCost(compute_cycles=2, fixed_s=0.5)})
    assert StepEngine(dev).run_step([graph(["a", "a"])]).time_s == pytest.approx(5.0)


def test_layers_extrapolate_from_steady_state():
    dev = FakeDevice({"p": OpCost(compute_cycles=1), "a": OpCost(compute_cycles=2), "q": OpCost(compute_cycles=3)})
    assert StepEngine(dev).run_step([graph(["a"], layers=80, pre=["p"], post=["q"])]).time_s == pytest.approx(164.0)


def test_two_micro_batches_overlap_link_with_compute():
    # Each half: compute 2 then all-reduce 2. Alone 4 s; two halves interleave to 6 s rather than 8 s.
    dev = FakeDevice({"mm": OpCost(compute_cycles=2), "ar": OpCost(link_cycles=2)})
    g = graph(["mm", "ar"])
    assert StepEngine(dev).run_step([g, g]).time_s == pytest.approx(6.0)


def test_busy_accounting_counts_layers():
    dev = FakeDevice({"a": OpCost(compute_cycles=2, memory_cycles=1, ideal_compute_cycles=1, link_cycles=0.5)})
    t = StepEngine(dev).run_step([graph(["a"], layers=10)])
    assert (t.compute_busy_s, t.memory_busy_s, t.link_busy_s, t.ideal_compute_s) == pytest.approx((20, 10, 5, 10))
    assert t.flops == pytest.approx(10.0)


costs = st.builds(OpCost, compute_cycles=st.floats(0, 10), memory_cycles=st.floats(0, 10),
                  weight_cycles=st.floats(0, 10), link_cycles=st.floats(0, 10), fixed_s=st.floats(0, 1))


@given(st.lists(costs, min_size=1, max_size=6), st.integers(1, 8), st.booleans())
def test_step_time_between_busiest_unit_and_serial_sum(op_costs, layers, prefetch):
    """Lower bound: no unit can be busier than the step; upper bound: everything one after another."""
    names = [f"o{i}" for i in range(len(op_costs))]
    dev = FakeDevice(dict(zip(names, op_costs)), prefetch_weights=prefetch)
    t = StepEngine(dev).run_step([graph(names, layers=layers)])
    busiest = max(t.compute_busy_s, t.memory_busy_s, t.link_busy_s)
    serial = layers * sum(c.fixed_s + c.compute_cycles + c.memory_cycles + c.weight_cycles + c.link_cycles
                          for c in op_costs)
    assert busiest - 1e-9 <= t.time_s + 1e-9 and t.time_s <= serial + 1e-9


@given(st.lists(costs, min_size=1, max_size=6), st.integers(1, 4))
def test_prefetch_never_slower(op_costs, layers):
    names = [f"o{i}" for i in range(len(op_costs))]
    slow = StepEngine(FakeDevice(dict(zip(names, op_costs)))).run_step([graph(names, layers=layers)])
    fast = StepEngine(FakeDevice(dict(zip(names, op_costs)), prefetch_weights=True)).run_step(
        [graph(names, layers=layers)])
    assert fast.time_s <= slow.time_s + 1e-9


def test_memory_wait_counts_array_idle_time_per_layer():
    # Memory-bound op: 1 s of compute inside 3 s of traffic -> the arrays wait 2 s per layer.
    dev = FakeDevice({"a": OpCost(compute_cycles=1, memory_cycles=3), "ar": OpCost(link_cycles=1)})
    t = StepEngine(dev).run_step([graph(["a", "ar"], layers=5)])
    assert t.memory_wait_s == pytest.approx(10.0)
    assert t.time_s == pytest.approx(20.0)
