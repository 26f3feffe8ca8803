"""The step engine against hand-worked timelines (fake device, round-number costs) on both paths: the simpy
event model (`exact=True`, asicsim.core.des) and the direct pass (the default); the two against each other on
random op streams; the one-stream schedule against the former first-come-first-served simpy simulation;
monotonicity of the two-micro-batch schedule."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
import simpy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from asicsim.core.device import OpCost
from asicsim.core.engine import StepEngine, StepTiming, _Hbm
from asicsim.workloads.graph_types import Op, OpKind, StepBatch, StepGraph


@dataclass
class FakeDevice:
    """Costs looked up by op name; clocks of 1 Hz so cycles read as seconds."""

    costs: dict
    prefetch_weights: bool = False
    overlap_collectives: bool = False
    clocks_hz: dict = field(default_factory=lambda: {"compute": 1.0, "memory": 1.0, "link": 1.0})

    def cost(self, op):
        return self.costs[op.name]


BOTH_PATHS = pytest.mark.parametrize("exact", [False, True], ids=["direct", "simpy"])


def graph(names, layers=1, pre=(), post=()):
    """Ops named "ar..." are all-reduces (collectives cut the two-micro-batch order into segments)."""
    mk = lambda n: Op(n, OpKind.ALLREDUCE if n.startswith("ar") else OpKind.MATMUL, "fp8", flops=1.0)  # noqa: E731
    return StepGraph(StepBatch.make(decode_past=[1]), 1, 1, tuple(map(mk, pre)), tuple(map(mk, names)), layers,
                     tuple(map(mk, post)))


@BOTH_PATHS
def test_compute_and_memory_of_one_op_overlap(exact):
    dev = FakeDevice({"a": OpCost(compute_cycles=3, memory_cycles=2, weight_cycles=2)})
    assert StepEngine(dev, exact=exact).run_step([graph(["a"])]).time_s == pytest.approx(4.0)  # max(3, 2 + 2)


@BOTH_PATHS
def test_ops_are_serial_without_prefetch(exact):
    dev = FakeDevice({"a": OpCost(compute_cycles=3, weight_cycles=1), "b": OpCost(compute_cycles=1, weight_cycles=3)})
    assert StepEngine(dev, exact=exact).run_step([graph(["a", "b"])]).time_s == pytest.approx(6.0)


@BOTH_PATHS
def test_prefetch_hides_next_weights_behind_compute(exact):
    # t=0-1: a streams its 1 s of weights while computing (0-3); t=1-3: b's weights prefetch in idle HBM
    # time (2 of its 3 s); t=3: b starts, streams its last 1 s of weights while computing 1 s; ends at 4.
    # Without prefetch the same ops take 3 + 3 = 6 s (previous test).
    dev = FakeDevice({"a": OpCost(compute_cycles=3, weight_cycles=1), "b": OpCost(compute_cycles=1, weight_cycles=3)},
                     prefetch_weights=True)
    assert StepEngine(dev, exact=exact).run_step([graph(["a", "b"])]).time_s == pytest.approx(4.0)


@BOTH_PATHS
def test_demand_traffic_preempts_prefetch(exact):
    # a: compute 1, activations 2 s of HBM; b: weights 2. The prefetch of b may not delay a's own traffic:
    # a ends at 2 (its 2 s of traffic first), b's weights then load 2-4, b ends at 4.
    dev = FakeDevice({"a": OpCost(compute_cycles=1, memory_cycles=2), "b": OpCost(compute_cycles=1, weight_cycles=2)},
                     prefetch_weights=True)
    assert StepEngine(dev, exact=exact).run_step([graph(["a", "b"])]).time_s == pytest.approx(4.0)


@BOTH_PATHS
def test_fixed_overhead_is_serial(exact):
    dev = FakeDevice({"a": OpCost(compute_cycles=2, fixed_s=0.5)})
    assert StepEngine(dev, exact=exact).run_step([graph(["a", "a"])]).time_s == pytest.approx(5.0)


@BOTH_PATHS
def test_layers_extrapolate_from_steady_state(exact):
    dev = FakeDevice({"p": OpCost(compute_cycles=1), "a": OpCost(compute_cycles=2), "q": OpCost(compute_cycles=3)})
    t = StepEngine(dev, exact=exact).run_step([graph(["a"], layers=80, pre=["p"], post=["q"])])
    assert t.time_s == pytest.approx(164.0)


@BOTH_PATHS
def test_two_micro_batches_overlap_link_with_compute(exact):
    # Each half: compute 2 then all-reduce 2. Alone 4 s; two halves interleave to 6 s rather than 8 s.
    dev = FakeDevice({"mm": OpCost(compute_cycles=2), "ar": OpCost(link_cycles=2)})
    g = graph(["mm", "ar"])
    assert StepEngine(dev, exact=exact).run_step([g, g]).time_s == pytest.approx(6.0)


@BOTH_PATHS
def test_busy_accounting_counts_layers(exact):
    dev = FakeDevice({"a": OpCost(compute_cycles=2, memory_cycles=1, ideal_compute_cycles=1, link_cycles=0.5)})
    t = StepEngine(dev, exact=exact).run_step([graph(["a"], layers=10)])
    assert (t.compute_busy_s, t.memory_busy_s, t.link_busy_s, t.ideal_compute_s) == pytest.approx((20, 10, 5, 10))
    assert t.flops_per_chip == pytest.approx(10.0)


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


@BOTH_PATHS
def test_memory_wait_counts_array_idle_time_per_layer(exact):
    # Memory-bound op: 1 s of compute inside 3 s of traffic -> the arrays wait 2 s per layer.
    dev = FakeDevice({"a": OpCost(compute_cycles=1, memory_cycles=3), "ar": OpCost(link_cycles=1)})
    t = StepEngine(dev).run_step([graph(["a", "ar"], layers=5)])
    assert t.memory_wait_s == pytest.approx(10.0)
    assert t.time_s == pytest.approx(20.0)


# --- two micro-batches: a fixed order per unit ------------------------------------------------------------

@BOTH_PATHS
def test_two_micro_batches_follow_the_segment_order(exact):
    # Halves A, B of mm (compute 1, HBM 2), ar (link 1), nm (compute 1, HBM 1), ar2 (link 1). Order: A.mm A.ar
    # B.mm B.ar | A.nm A.ar2 B.nm B.ar2. A.mm: HBM 0-2, ends 2; A.ar 2-3; B.mm: compute 1-2, HBM after A's,
    # 2-4; B.ar 4-5; A.nm: compute 3-4, HBM 4-5 (ends 5); A.ar2 5-6; B.nm: 5-6; B.ar2 6-7. Step 7 s.
    costs = {"mm": OpCost(compute_cycles=1, memory_cycles=2), "ar": OpCost(link_cycles=1),
             "nm": OpCost(compute_cycles=1, memory_cycles=1), "ar2": OpCost(link_cycles=1)}
    g = graph(["mm", "ar", "nm", "ar2"])
    assert StepEngine(FakeDevice(costs), exact=exact).run_step([g, g]).time_s == pytest.approx(7.0)
    # nm without HBM traffic: A.nm ends at 4, but A.ar2 still follows B.ar on the link (5-6): 7 s again. First
    # come, first served let A.ar2 take the link at 4, ahead of B.ar, and B finished at 8.
    costs["nm"] = OpCost(compute_cycles=1)
    assert StepEngine(FakeDevice(costs), exact=exact).run_step([g, g]).time_s == pytest.approx(7.0)


@BOTH_PATHS
def test_later_prefetch_never_delays_earlier_traffic(exact):
    # A: x (HBM 2), y (weights 2, compute 1); B the same. With prefetch, order A.x A.y B.x B.y: A.x 0-2;
    # A.y's weights (released at 0) fill HBM after A.x: 2-4; B.x 4-6 (after A.y's weights, ahead in order),
    # B.y's weights 6-8. B.y ends at 8 = total HBM work: nothing idles.
    costs = {"x": OpCost(memory_cycles=2), "y": OpCost(compute_cycles=1, weight_cycles=2)}
    g = graph(["x", "y"])
    t = StepEngine(FakeDevice(costs, prefetch_weights=True), exact=exact).run_step([g, g])
    assert t.time_s == pytest.approx(8.0) and t.memory_busy_s == pytest.approx(8.0)


def _shrunk(costs: dict, name: str, unit: str, factor: float) -> dict:
    field_name = {"compute": "compute_cycles", "memory": "memory_cycles", "weight": "weight_cycles",
                  "link": "link_cycles", "fixed": "fixed_s"}[unit]
    return {**costs, name: dataclasses.replace(costs[name], **{field_name: getattr(costs[name], field_name) * factor})}


_seconds = st.one_of(st.just(0.0), st.floats(0, 10))
_op_costs = st.builds(OpCost, compute_cycles=_seconds, memory_cycles=_seconds, weight_cycles=_seconds,
                      link_cycles=_seconds, fixed_s=st.one_of(st.just(0.0), st.floats(0, 1)))
_names = st.lists(st.sampled_from(["mm", "nm", "ar", "ar2", "qk", "sv"]), min_size=1, max_size=6)


@settings(max_examples=300)
@given(names=_names, pre=st.booleans(), post=st.booleans(), layers=st.integers(1, 6), prefetch=st.booleans(),
       micro=st.sampled_from([1, 2]), data=st.data())
def test_shorter_ops_never_lengthen_the_step(names, pre, post, layers, prefetch, micro, data):
    """Shrinking any unit's seconds of any op (of either micro-batch, in any layer copy or outside) never
    makes the step longer: one or two streams, with and without prefetch, layers extrapolated."""
    streams = [[f"{n}_{k}" for n in names] for k in range(micro)]  # each stream its own op costs
    extra = [f"pre_{k}" for k in range(micro) if pre] + [f"post_{k}" for k in range(micro) if post]
    costs = {n: data.draw(_op_costs, label=n) for s in streams for n in s} | {n: data.draw(_op_costs) for n in extra}
    graphs = [graph(s, layers=layers, pre=[f"pre_{k}"] if pre else (), post=[f"post_{k}"] if post else ())
              for k, s in enumerate(streams)]
    name = data.draw(st.sampled_from(sorted(costs)), label="shrunk op")
    unit = data.draw(st.sampled_from(["compute", "memory", "weight", "link", "fixed"]), label="unit")
    factor = data.draw(st.one_of(st.just(0.0), st.floats(0, 1)), label="factor")
    before = StepEngine(FakeDevice(costs, prefetch_weights=prefetch)).run_step(graphs).time_s
    after = StepEngine(FakeDevice(_shrunk(costs, name, unit, factor), prefetch_weights=prefetch)).run_step(graphs)
    assert after.time_s <= before * (1 + 1e-9) + 1e-12


@settings(max_examples=200)
@given(st.lists(_op_costs, min_size=1, max_size=5), st.integers(1, 6), st.booleans())
def test_two_micro_batches_bounded_by_busiest_unit_and_by_one_after_the_other(op_costs, layers, prefetch):
    names = [f"o{i}" if i % 2 else f"ar{i}" for i in range(len(op_costs))]
    dev = FakeDevice(dict(zip(names, op_costs)), prefetch_weights=prefetch)
    g = graph(names, layers=layers)
    two, one = StepEngine(dev).run_step([g, g]), StepEngine(dev).run_step([g])
    assert max(two.compute_busy_s, two.memory_busy_s, two.link_busy_s) <= two.time_s * (1 + 1e-9) + 1e-12
    assert two.time_s <= 2 * sum(c.fixed_s + c.compute_cycles + c.memory_cycles + c.weight_cycles + c.link_cycles
                                 for c in op_costs) * layers * (1 + 1e-9) + 1e-12
    assert two.compute_busy_s == pytest.approx(2 * one.compute_busy_s)



@settings(max_examples=200)
@given(st.lists(_op_costs.map(lambda c: dataclasses.replace(c, fixed_s=0.0)), min_size=1, max_size=5),
       st.integers(1, 8), st.booleans(), st.sampled_from([1, 2]))
def test_layer_extrapolation_equals_every_layer_scheduled(op_costs, layers, prefetch, micro):
    """The step (layer copies until the schedule repeats, then extrapolated) ends when the trace of every
    layer scheduled ends; the trace's busy time per unit is the step's."""
    names = [f"ar{i}" if i % 3 == 1 else f"o{i}" for i in range(len(op_costs))]
    engine = StepEngine(FakeDevice(dict(zip(names, op_costs)), prefetch_weights=prefetch), exact=True)
    graphs = [graph(names, layers=layers)] * micro
    t, trace = engine.direct_step(graphs), engine.trace_step(graphs)
    assert t.time_s == pytest.approx(max((at + s for *_, at, s in trace), default=0.0), rel=1e-9, abs=1e-12)
    for unit, busy_s in (("compute", t.compute_busy_s), ("memory", t.memory_busy_s), ("link", t.link_busy_s)):
        assert sum(s for _, u, _, _, s in trace if u == unit) == pytest.approx(busy_s, rel=1e-9, abs=1e-12)


# --- one stream: exactly the former event simulation ------------------------------------------------------

def _former_one_stream_s(costs: list[OpCost], prefetch: bool) -> float:
    """Step time of one op stream (every layer listed) as the former simpy engine simulated it: units as
    simpy resources, a prefetcher loading op i's weights once op i - 2 is done, in HBM time the running op's
    own traffic leaves (it pre-empts the prefetcher) and the op streaming the rest of its weights itself."""
    env = simpy.Environment()
    memory = simpy.PreemptiveResource(env, capacity=1)
    left = [c.weight_cycles for c in costs]
    taken = [False] * len(costs)
    loading = {"op": -1, "since": None}
    done = [env.event() for _ in costs]

    def prefetcher():
        for i in range(len(costs)):
            if i >= 2:
                yield done[i - 2]
            while left[i] > 0.0 and not taken[i]:
                with memory.request(priority=1, preempt=False) as req:
                    try:
                        yield req
                        if taken[i]:
                            break
                        loading.update(op=i, since=env.now)
                        yield env.timeout(left[i])
                        left[i] = 0.0
                    except simpy.Interrupt:
                        if taken[i]:
                            break
                        if loading["since"] is not None:  # pre-empted mid-transfer (not as it was granted)
                            left[i] -= env.now - loading["since"]
                    finally:
                        loading.update(op=-1, since=None)

    def demand(seconds):
        with memory.request(priority=0, preempt=True) as req:
            yield req
            yield env.timeout(seconds)

    def stream():
        for i, c in enumerate(costs):
            yield env.timeout(c.fixed_s)
            taken[i] = True
            if loading["op"] == i:  # mid-transfer: the op takes over the rest of its weights
                left[i] -= env.now - loading["since"]
            weight_s = max(left[i], 0.0) if prefetch else c.weight_cycles
            parts = [env.timeout(s) for s in (c.compute_cycles, c.link_cycles) if s > 0.0]
            if c.memory_cycles + weight_s > 0.0:
                parts.append(env.process(demand(c.memory_cycles + weight_s)))
            yield env.all_of(parts)
            done[i].succeed()

    if prefetch:
        env.process(prefetcher())
    env.process(stream())
    env.run()
    return env.now


@settings(max_examples=200)
@given(st.lists(_op_costs, min_size=1, max_size=5), st.lists(_op_costs, max_size=2), st.integers(1, 8),
       st.booleans())
def test_one_stream_is_the_former_event_simulation(layer, outside, layers, prefetch):
    """Every layer simulated by the former engine equals the schedule with its layers extrapolated."""
    names = [f"o{i}" for i in range(len(layer))]
    pre = [f"p{i}" for i in range(len(outside))]
    dev = FakeDevice(dict(zip(names + pre, layer + outside)), prefetch_weights=prefetch)
    engine, graphs = StepEngine(dev, exact=True), [graph(names, layers=layers, pre=pre, post=pre)]
    former_s = _former_one_stream_s(outside + layer * layers + outside, prefetch)
    assert engine.run_step(graphs).time_s == pytest.approx(former_s, rel=1e-9, abs=1e-12)  # simpy model
    assert engine.direct_step(graphs).time_s == pytest.approx(former_s, rel=1e-9, abs=1e-12)


# --- HBM: a preemptive priority server ---------------------------------------------------------------------

@given(st.lists(st.tuples(st.floats(0, 20), st.floats(0, 5)), min_size=1, max_size=12))
def test_hbm_serves_traffic_in_priority_order(jobs):
    """Placed in priority order, each transfer: is served only after its release, in pieces that overlap no
    one else's, for exactly its seconds, and leaves no HBM time idle between its release and its end that
    it or higher-priority traffic could have used. These four properties define preempt-resume priority.
    All traffic ends at max over releases t of (t + the seconds released at or after t)."""
    hbm, placed = _Hbm(), []
    for at, seconds in jobs:
        pieces: list = []
        done_at = hbm.place(at, seconds, pieces)
        assert sum(s for _, s in pieces) == pytest.approx(seconds, abs=1e-9)
        assert all(a >= at - 1e-12 and a + s <= done_at + 1e-9 for a, s in pieces)
        placed += pieces
        busy = sorted((a, a + s) for a, s in placed if s > 0.0)
        for (_, end_at), (start_at, _) in zip(busy, busy[1:]):
            assert start_at >= end_at - 1e-9  # disjoint
        covered = at  # [at, done_at] is busy with this or higher-priority traffic throughout
        for a, b in busy:
            if a <= covered + 1e-9 and b > covered:
                covered = b
        assert seconds == 0.0 or covered >= done_at - 1e-9
    real = [(at, s) for at, s in jobs if s > 0.0]
    if real:
        makespan = max(t + sum(s for a, s in real if a >= t) for t, _ in real)
        assert max(a + s for a, s in placed if s > 0.0) == pytest.approx(makespan, rel=1e-9)


# --- the simpy event model and the direct pass --------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(names=_names, pre=st.booleans(), post=st.booleans(), layers=st.integers(1, 6), prefetch=st.booleans(),
       micro=st.sampled_from([1, 2]), data=st.data())
def test_event_model_equals_the_direct_pass(names, pre, post, layers, prefetch, micro, data):
    """Random one- and two-stream steps (each stream its own costs, fixed overheads, pre/post ops, layer copies):
    the simpy model (every layer simulated) gives the direct pass's step time, memory wait and busy seconds,
    both the default path (caches, serial sum, layers extrapolated) and the uncached `direct_step`."""
    streams = [[f"{n}_{k}" for n in names] for k in range(micro)]
    extra = [f"pre_{k}" for k in range(micro) if pre] + [f"post_{k}" for k in range(micro) if post]
    costs = {n: data.draw(_op_costs, label=n) for s in streams for n in s} | {n: data.draw(_op_costs) for n in extra}
    graphs = [graph(s, layers=layers, pre=[f"pre_{k}"] if pre else (), post=[f"post_{k}"] if post else ())
              for k, s in enumerate(streams)]
    dev = FakeDevice(costs, prefetch_weights=prefetch)
    simpy_model = StepEngine(dev, exact=True).run_step(graphs)
    for direct in (StepEngine(dev).run_step(graphs), StepEngine(dev).direct_step(graphs)):
        for name in ("time_s", "memory_wait_s", "compute_busy_s", "memory_busy_s", "link_busy_s"):
            assert getattr(simpy_model, name) == pytest.approx(getattr(direct, name), rel=1e-9, abs=1e-12), name


@BOTH_PATHS
@pytest.mark.parametrize("prefetch", [False, True])
def test_activations_preempt_a_running_prefetch_which_resumes(exact, prefetch):
    # a: compute 1; b: 1 s fixed overhead, compute 1, activations 1; c: compute 1, weights 3. With prefetch:
    # a ends at 1, freeing c's double buffer: c's weights load 1-2; b is ready at 2 and its activations
    # (earlier in the order) pre-empt them, 2-3; c's weights resume 3-5; c computes 3-4, ends at 5 when its
    # weights are in. Without prefetch: 1 + (1 + 1) + 3 = 6 s.
    costs = {"a": OpCost(compute_cycles=1), "b": OpCost(compute_cycles=1, memory_cycles=1, fixed_s=1.0),
             "c": OpCost(compute_cycles=1, weight_cycles=3)}
    t = StepEngine(FakeDevice(costs, prefetch_weights=prefetch), exact=exact).run_step([graph(["a", "b", "c"])])
    assert t.time_s == pytest.approx(5.0 if prefetch else 6.0)
    assert t.memory_busy_s == pytest.approx(4.0)
    assert t.memory_wait_s == pytest.approx(1.0 if prefetch else 2.0)  # c waits 4-5 (without prefetch 4-6)


# --- caches keyed on op values ------------------------------------------------------------------------------

def test_op_value_key_is_every_scalar_field():
    """Equal ops built apart share a key; changing any scalar field changes it; ops with arrays have none."""
    op = Op("mm", OpKind.MATMUL, "fp8", flops=1.0, weight_bytes=2.0, act_in_bytes=3.0, act_out_bytes=4.0,
            kv_read_bytes=5.0, kv_write_bytes=6.0, comm_bytes=7.0, group=2, m=8, n=9, k=10, q_heads=11, kv_heads=12,
            head_dim=13)
    assert dataclasses.replace(op).value_key == op.value_key
    scalar = [f for f in dataclasses.fields(Op) if f.name not in ("seq_new", "seq_past", "value_key")]
    for f in scalar:
        value = getattr(op, f.name)
        bump = "x" if isinstance(value, str) else ("x",) if isinstance(value, tuple) else 1
        other = dataclasses.replace(op, **{f.name: value + bump})
        assert other.value_key != op.value_key, f.name
    arrays = (StepBatch.make(decode_past=[1]).decode_past_tokens,) * 2
    assert dataclasses.replace(op, seq_new=arrays[0], seq_past=arrays[1]).value_key is None


def test_op_init_is_the_field_list():
    """Op's own __init__ (one dict update) takes the dataclass's init fields in order, with their defaults, and sets
    each from its own argument; the key pickles the scalar fields in field order."""
    import inspect
    import pickle

    init = [f for f in dataclasses.fields(Op) if f.init]
    params = list(inspect.signature(Op.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [f.name for f in init]
    for p, f in zip(params, init):
        assert p.default == (inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default), f.name
    values = {f.name: (f"v{i}" if f.type in ("str", str) else (f"f{i}",) if "tuple" in str(f.type) else i + 0.5)
              for i, f in enumerate(init)}
    values["seq_new"] = values["seq_past"] = None
    op = Op(**values)
    for f in init:
        assert getattr(op, f.name) == values[f.name], f.name
    scalars = tuple(values[f.name] for f in init if f.name not in ("seq_new", "seq_past"))
    assert op.value_key == pickle.dumps(scalars, protocol=5)
    assert set(vars(op)) == {f.name for f in dataclasses.fields(Op)}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 9000), min_size=1, max_size=8), st.floats(0.0, 1e12), st.floats(0.0, 1e9),
       st.integers(0, 64))
def test_an_op_with_other_sequences_is_the_op_init_gives(past, flops, kv_bytes, heads):
    """`Op.with_sequences` (a copy of the op's fields with some changed) gives the op `__init__` gives for the same
    values: every field, the arrays, and no value key."""
    import numpy as np

    shape = Op("attention_decode", "attention_decode", "fp8", q_heads=8, kv_heads=1, head_dim=128,
               features=("gqa", "rope"), seq_new=np.ones(1, dtype=np.int64), seq_past=np.zeros(1, dtype=np.int64))
    new, old = np.ones(len(past), dtype=np.int64), np.array(past, dtype=np.int64)
    made = shape.with_sequences(new, old, flops=flops, kv_read_bytes=kv_bytes, q_heads=heads)
    built = Op("attention_decode", "attention_decode", "fp8", flops=flops, kv_read_bytes=kv_bytes, q_heads=heads,
               kv_heads=1, head_dim=128, features=("gqa", "rope"), seq_new=new, seq_past=old)
    assert vars(made).keys() == vars(built).keys()
    for name, value in vars(built).items():
        assert getattr(made, name) is value or getattr(made, name) == value, name
    assert made.value_key is None and made.seq_past is old and shape.seq_past.tolist() == [0]


def test_step_graph_init_is_the_field_list():
    """StepGraph's own __init__ takes its fields in order with their defaults and sets each from its own argument."""
    import inspect

    fields = dataclasses.fields(StepGraph)
    params = list(inspect.signature(StepGraph.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [f.name for f in fields]
    for p, f in zip(params, fields):
        assert p.default == (inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default), f.name
    values = {f.name: object() for f in fields}
    g = StepGraph(**values)
    assert all(getattr(g, f.name) is values[f.name] for f in fields) and set(vars(g)) == set(values)
    assert StepGraph(*values.values()).layer_key is values["layer_key"]


@pytest.mark.parametrize("cls", [StepTiming, OpCost])
def test_own_init_is_the_field_list(cls):
    """StepTiming's and OpCost's own __init__ take their fields in order with their defaults and set each from its own
    argument; they stay frozen, equal and hashable by value."""
    import inspect

    fields = dataclasses.fields(cls)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [(p.name, p.default) for p in params] == [(f.name, f.default) for f in fields]
    values = {f.name: i + 0.5 for i, f in enumerate(fields)}
    made = cls(**values)
    assert dataclasses.astuple(made) == tuple(values.values())
    assert cls(*values.values()) == made and hash(cls(*values.values())) == hash(made)
    assert dataclasses.replace(made, fixed_s=9.0).fixed_s == 9.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.fixed_s = 1.0


@dataclass
class CountingDevice(FakeDevice):
    calls: list = field(default_factory=list)

    def cost(self, op):
        self.calls.append(op.name)
        return self.costs[op.name]


@pytest.mark.parametrize("prefetch", [False, True], ids=["serial", "scheduled"])
def test_prices_are_cached_on_op_values_not_on_objects(prefetch):
    """A graph rebuilt from new but equal ops is answered from the caches, with the same timing; an op that
    differs in one field is priced afresh."""
    costs = {n: OpCost(compute_cycles=i + 1, memory_cycles=2, weight_cycles=1) for i, n in enumerate("abpq")}
    dev = CountingDevice(costs, prefetch_weights=prefetch)
    engine = StepEngine(dev)
    first = engine.run_step([graph(["a", "b"], layers=3, pre=["p"], post=["q"])])
    assert sorted(dev.calls) == ["a", "b", "p", "q"]
    again = engine.run_step([graph(["a", "b"], layers=3, pre=["p"], post=["q"])])  # new Op objects, equal values
    assert again == first and len(dev.calls) == 4
    changed = graph(["a", "b"], layers=3, pre=["p"], post=["q"])
    changed = dataclasses.replace(changed, layer_ops=(dataclasses.replace(changed.layer_ops[0], flops=2.0),
                                                      changed.layer_ops[1]))
    assert engine.run_step([changed]).time_s == first.time_s and dev.calls[4:] == ["a"]  # priced again


class PricingCounter:
    """A real device that counts the ops it is asked to price, by kind."""

    def __init__(self, device):
        self.device, self.kinds = device, []

    def __getattr__(self, name):
        return getattr(self.device, name)

    def cost(self, op):
        self.kinds.append(op.kind)
        return self.device.cost(op)


@pytest.mark.parametrize("hw", ["h100-sxm", "sohu"])
def test_prompt_chunks_with_equal_totals_but_other_arrays_are_priced_apart(hw):
    """Two prefill attention ops whose scalar fields are equal (the same new and cached tokens in all, the same score
    entries) but whose chunks differ are two values: the second is priced, and its step equals a fresh engine's."""
    import numpy as np

    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    model = load_model("llama-3.1-8b")
    new = np.array([4, 4], dtype=np.int64)
    graphs = [build_step_graph(model, StepBatch(new, np.array(past, dtype=np.int64), np.zeros(0, dtype=np.int64)),
                               tp=8) for past in ([0, 64], [32, 32])]
    ops = [next(op for op in g.layer_ops if op.kind == OpKind.ATTENTION_PREFILL) for g in graphs]
    assert ops[0].value_key is None and ops[0].__dict__.keys() == ops[1].__dict__.keys()
    assert all(ops[0].__dict__[k] == ops[1].__dict__[k] for k in ops[0].__dict__ if k not in ("seq_new", "seq_past"))
    device = PricingCounter(make_device(hw, 8))
    engine = StepEngine(device)
    engine.run_step([graphs[0]])
    device.kinds.clear()
    assert engine.run_step([graphs[1]]) == StepEngine(make_device(hw, 8)).run_step([graphs[1]])
    assert device.kinds.count(OpKind.ATTENTION_PREFILL) == 1


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 900), st.integers(0, 3000)), min_size=1, max_size=5),
       st.lists(st.integers(0, 3000), max_size=6), st.sampled_from(["h100-sxm", "sohu"]))
def test_prompt_chunks_are_priced_once_per_value_and_decodes_every_time(chunks, decodes, hw):
    """A prefill attention op of a few chunks is priced once per value (its scalar fields and arrays), whatever op
    object carries it; a decode attention op, or a prefill op of more chunks, every time; one whose arrays differ
    is priced afresh. Memoised or not, the step's timing equals that of an engine meeting the graph afresh."""
    import numpy as np

    from asicsim.core.engine import _FEW_SEQUENCES
    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    model = load_model("llama-3.1-8b")
    new = np.array([c for c, _ in chunks], dtype=np.int64)
    past = np.array([p for _, p in chunks], dtype=np.int64)

    def built(new_tokens):
        return build_step_graph(model, StepBatch(new_tokens, past, np.array(decodes, dtype=np.int64)), tp=8)

    device = PricingCounter(make_device(hw, 8))
    engine = StepEngine(device)
    first = engine.run_step([built(new)])
    device.kinds.clear()
    again = engine.run_step([built(new.copy())])  # new objects, equal values
    prefills = device.kinds.count(OpKind.ATTENTION_PREFILL)
    assert prefills == (0 if len(chunks) <= _FEW_SEQUENCES else 1)
    assert device.kinds.count(OpKind.ATTENTION_DECODE) == (1 if decodes else 0)
    assert first == again == StepEngine(make_device(hw, 8)).run_step([built(new)])
    device.kinds.clear()
    other = new + 1
    assert engine.run_step([built(other)]) == StepEngine(make_device(hw, 8)).run_step([built(other)])
    assert device.kinds.count(OpKind.ATTENTION_PREFILL) == 1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 900), max_size=3), st.lists(st.integers(0, 3000), max_size=20),
       st.sampled_from(["h100-sxm", "b200"]), st.sampled_from([1, 2, 8]))
def test_serial_step_is_the_same_by_keyed_sums_or_value_groups(prompts, decodes, hw, tp):
    """A serial step is summed from its layer key's head and its dense key's tail (`run_step`, made or found), or
    from value groups alone (a graph without those keys); `step_fields` and `step_fields_with` (its attention op
    given) take the keyed path: one sum in one order, so equal bit for bit."""
    import numpy as np

    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    if not prompts and not decodes:
        decodes = [5]
    batch = StepBatch(np.array(prompts, dtype=np.int64), np.zeros(len(prompts), dtype=np.int64),
                      np.array(decodes, dtype=np.int64))
    graph = build_step_graph(load_model("llama-3.1-8b"), batch, tp=tp)
    engine = StepEngine(make_device(hw, 8))
    made, found = engine.run_step([graph]), engine.run_step([graph])
    assert (graph.layer_key, graph.layers_per_stage) in engine._heads and graph.dense_key in engine._tails
    grouped = StepEngine(make_device(hw, 8)).run_step([dataclasses.replace(graph, layer_key=None, dense_key=None)])
    first, second = engine.step_fields(graph), engine.step_fields(graph)
    attention = [op for op in graph.layer_ops if op.seq_new is not None]
    if len(attention) == 1:
        assert StepTiming(*engine.step_fields_with(graph, attention[0])) == made
    else:
        assert engine.step_fields_with(graph, attention[0]) is None
    assert made == found == grouped == StepTiming(*first) == StepTiming(*second)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 900), max_size=3), st.lists(st.integers(0, 3000), max_size=20),
       st.sampled_from(["sohu", "tpu-v6e"]), st.sampled_from([1, 8]), st.booleans())
def test_scheduled_step_from_the_joined_table_equals_the_priced_schedule(prompts, decodes, hw, tp, split):
    """A scheduled step fills its attention rows into one op table made per tuple of graph keys
    (`_joined_table`); its time and memory wait equal the schedule of every op priced and packed afresh
    (`_simulated`, attention rounded alike) bit for bit, for one graph and for two halves, the table met
    first and again."""
    import numpy as np

    from asicsim.core.registry import make_device
    from asicsim.core.serving import split_batch
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    if not prompts and not decodes:
        decodes = [5]
    batch = StepBatch(np.array(prompts, dtype=np.int64), np.zeros(len(prompts), dtype=np.int64),
                      np.array(decodes, dtype=np.int64))
    model = load_model("llama-3.1-8b")
    parts = split_batch(batch, 2) if split else [batch]
    graphs = [build_step_graph(model, p, tp=tp) for p in parts]
    device = make_device(hw, 8)
    assume(device.prefetch_weights or len(graphs) == 2)  # one graph on tpu-v6e is a serial step: no schedule
    engine, reference = StepEngine(device), StepEngine(device)
    want = reference._simulated([reference._price_graph(g) for g in graphs], graphs[0].layers_per_stage)
    for _ in range(2):
        engine._cache.clear()  # schedule afresh from the (now cached) joined table
        got = engine.run_step(graphs)
        assert (got.time_s, got.memory_wait_s) == want
    assert tuple(g.dense_key for g in graphs) in engine._tables


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 900), st.lists(st.integers(0, 3000), min_size=1, max_size=20), st.integers(1, 4),
       st.sampled_from(["sohu", "h100-sxm"]), st.sampled_from([1, 8]))
def test_graphs_of_one_token_count_share_their_layer_part(prompt, decodes, pieces, hw, tp):
    """Two steps of one token count but different sampled tokens (a prompt whole, or in pieces) share the priced
    pre and layer ops (`_LayerPart`): each one's template, its table and its timing equal those of an engine that
    met it alone, bit for bit. The part, priced as one cost table, holds what its ops priced one by one give: the op
    table `_pack` makes of their prices, their sums (`_summed`), weights' seconds and serial seconds (`_serial_s`)."""
    import numpy as np

    from asicsim.core.engine import _ZERO, _pack, _Priced, _serial_s, _summed
    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    pieces = min(pieces, prompt)
    split = [prompt // pieces + (i < prompt % pieces) for i in range(pieces)]
    model = load_model("llama-3.1-8b")
    dec = np.array(decodes, dtype=np.int64)
    whole, cut = (build_step_graph(model, StepBatch(np.array(p, dtype=np.int64), np.zeros(len(p), dtype=np.int64),
                                                    dec), tp=tp) for p in ([prompt], split))
    assert whole.layer_key == cut.layer_key and (pieces == 1) == (whole.dense_key == cut.dense_key)
    device = make_device(hw, 8)
    shared = StepEngine(device)
    for g in (whole, cut):
        alone = StepEngine(device)
        assert shared.run_step([g]) == alone.run_step([g])
        t = shared._template(g)
        zero = _Priced(g.layer_ops[0], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        pre = [alone.price(op) for op in g.pre_ops]
        layer = [alone.price(op) if op.seq_new is None else zero for op in g.layer_ops]
        want = _pack([(pre, layer, [alone.price(op) for op in (*g.post_ops, *g.stage_ops)])])
        for got, expected in zip(t.table(), want):
            assert got.dtype == expected.dtype and np.array_equal(got, expected)
        assert t.head == alone._template(g).head and t.tail == alone._template(g).tail
        dense, layers = [p for p in layer if p is not zero], float(g.layers_per_stage)
        prefetch = device.prefetch_weights
        head = _ZERO
        for group, count in ((pre, 1.0), (dense, layers)):
            head = [a + count * v for a, v in zip(head, _summed(group))]
        assert t._part.head == tuple(head)
        assert t._part.weights_s == layers * sum(p.weight_s for p in dense)
        assert t._part.serial_s == (sum(_serial_s(p.key, prefetch) for p in pre)
                                    + layers * sum(_serial_s(p.key, prefetch) for p in dense))
    assert shared._template(whole)._part is shared._template(cut)._part


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 6000), min_size=1, max_size=24), st.integers(1, 500),
       st.sampled_from(["sohu", "h100-sxm", "tpu-v6e"]), st.sampled_from([1, 8]))
def test_a_graph_with_another_attention_op_gives_that_batchs_fields(past, grown, hw, tp):
    """`step_fields_with(graph, op)`, a decode graph with its attention op replaced by another batch's (made by
    `decode_attention(graph).make`), equals `step_fields` of that batch's own graph bit for bit, on an engine that met
    nothing else too; a graph whose per-sequence op is of another kind gives None. So does `fields_with(graph)(op)`,
    the same as a function of the op."""
    import numpy as np

    from asicsim.core.engine import TIMING_FIELDS
    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph, decode_attention
    from asicsim.workloads.models import load_model

    model = load_model("llama-3.1-8b")
    first = np.array(past, dtype=np.int64)
    graph = build_step_graph(model, StepBatch.make(decode_past=first), tp=tp)
    later = first + grown
    engine = StepEngine(make_device(hw, 8))
    op = decode_attention(graph).make(later)
    want = StepEngine(make_device(hw, 8)).run_step([build_step_graph(model, StepBatch.make(decode_past=later), tp=tp)])
    wanted = [getattr(want, name) for name in TIMING_FIELDS]
    fresh = StepEngine(make_device(hw, 8))  # `fields_with` on an engine that met nothing else
    fields_of = fresh.fields_with(graph)
    assert engine.step_fields_with(graph, op) == wanted
    assert fields_of(op) == wanted and fields_of(op) == wanted  # a schedule made, then read from the memo
    mixed = build_step_graph(model, StepBatch.make([5], [0]), tp=tp)
    engine.step_fields(mixed)
    assert engine.step_fields_with(mixed, op) is None and engine.fields_with(mixed)(op) is None
    prefill = next(o for o in mixed.layer_ops if o.seq_new is not None)
    assert fields_of(prefill) is None  # an op of another kind


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 6000), min_size=1, max_size=24), st.lists(st.integers(0, 500), min_size=1, max_size=4),
       st.sampled_from(["sohu", "sohu-rack", "h100-sxm", "tpu-v6e"]), st.sampled_from([1, 8]),
       st.sampled_from(["llama-3.1-8b", "llama-3.2-1b"]))
def test_decode_fields_of_cached_tokens_are_those_of_the_built_op(past, grown, hw, tp, name):
    """`decode_fields(graph, decode_attention(graph))(past)`, with no op built where the device prices decode attention
    from its cached tokens (the ASIC and its rack: its cost row and the step's sums in one jitted call), equals
    `fields_with(graph)` of the op made for `past`, field by field and bit for bit, on engines that met nothing else,
    for runs of cached tokens that hit and miss the schedule memo."""
    import numpy as np

    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph, decode_attention
    from asicsim.workloads.models import load_model

    model = load_model(name)
    first = np.array(past, dtype=np.int64)
    graph = build_step_graph(model, StepBatch.make(decode_past=first), tp=tp)
    attention = decode_attention(graph)
    fast = StepEngine(make_device(hw, 8)).decode_fields(graph, attention)
    slow = StepEngine(make_device(hw, 8)).fields_with(graph)
    for extra in [*grown, *grown]:  # each twice: the second read from the memo
        later = first + extra
        got, want = fast(later), slow(attention.make(later))
        assert [float(x) for x in got] == want


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 900), st.integers(0, 3000), st.sampled_from(["sohu", "h100-sxm", "tpu-v6e"]),
       st.sampled_from([1, 8]))
def test_graphs_with_equal_post_ops_share_their_post_part(prompt, past, hw, tp):
    """A prompt chunk beside one decode and the same chunk beside a one-token prefill have one token count and two
    sampled tokens, so equal post ops but different templates: they share the priced post ops (`_PostPart`), and
    each template's tail, table and timing equal those of an engine that met it alone, bit for bit."""
    import numpy as np

    from asicsim.core.engine import _pack, _Priced
    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    model = load_model("llama-3.1-8b")
    beside_decode = StepBatch.make([prompt], [0], [past])
    beside_prefill = StepBatch.make([prompt, 1], [0, past])
    graphs = [build_step_graph(model, b, tp=tp) for b in (beside_decode, beside_prefill)]
    assert graphs[0].dense_key != graphs[1].dense_key
    device = make_device(hw, 8)
    shared = StepEngine(device)
    for g in graphs:
        alone = StepEngine(device)
        assert shared.run_step([g]) == alone.run_step([g])
        t, t_alone = shared._template(g), alone._template(g)
        assert t.tail == t_alone.tail and [p.key for p in t.post] == [p.key for p in t_alone.post]
        zero = _Priced(g.layer_ops[0], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        layer = [alone.price(op) if op.seq_new is None else zero for op in g.layer_ops]
        want = _pack([([alone.price(op) for op in g.pre_ops], layer, t.post)])
        for got, expected in zip(t.table(), want):
            assert got.dtype == expected.dtype and np.array_equal(got, expected)
    assert shared._template(graphs[0])._post is shared._template(graphs[1])._post


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=40), st.sampled_from(["sohu", "tpu-v6e"]),
       st.sampled_from([1, 8]))
def test_a_decode_step_sums_its_attention_op_as_every_scheduled_step_does(decodes, hw, tp):
    """A scheduled step of one graph with one per-sequence op (a decode-only step) adds it to its template in one
    pass: every field equals head, plus layers x the op's account, plus tail, added in that order (as the steps
    of several graphs or ops are), and its time and memory wait are the schedule's."""
    from asicsim.core.engine import TIMING_FIELDS
    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    graph = build_step_graph(load_model("llama-3.1-8b"), StepBatch.make(decode_past=decodes), tp=tp)
    device = make_device(hw, 8)
    assume(device.prefetch_weights)  # a one-graph step on tpu-v6e is serial: no schedule
    engine = StepEngine(device)
    t = engine._template(graph)
    assert len(t.varying) == 1
    got = engine._scheduled_fields((graph,), (t,))
    account = engine.price(graph.layer_ops[t.varying[0]]).account
    want = [a + t.layers * v for a, v in zip(list(t.head), account)]
    want = [a + v for a, v in zip(want, t.tail)]
    scheduled = (TIMING_FIELDS.index("time_s"), TIMING_FIELDS.index("memory_wait_s"))
    assert [g for i, g in enumerate(got) if i not in scheduled] == [w for i, w in enumerate(want) if i not in scheduled]
    ref = StepEngine(device)
    assert tuple(got[i] for i in scheduled) == ref._simulated([ref._price_graph(graph)], graph.layers_per_stage)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 3000), max_size=3), st.lists(st.integers(0, 6000), max_size=30),
       st.sampled_from(["h100-sxm", "b200", "mi300x"]),
       st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b"]),
       st.sampled_from([1, 8]))
def test_a_serial_step_summed_from_cost_rows_is_the_op_by_op_sum(chunks, decodes, hw, name, tp):
    """A serial engine sums a new group of array-free ops from the device's cost rows in one pass
    (`Device.cost_rows`, `kernels.accounts.summed_accounts`): every StepTiming field equals an engine's that prices
    them one by one, bit for bit (new and repeated groups, MoE layers whose grouped GEMMs the rows leave to Python)."""
    from asicsim.core.engine import TIMING_FIELDS
    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    if not chunks and not decodes:
        decodes = [5]
    model = load_model(name)
    batch = StepBatch.make(chunks, [c // 3 for c in chunks], decodes)
    graph = build_step_graph(model, batch, tp=tp)
    device = make_device(hw, 8)
    rows, by_op = StepEngine(device), StepEngine(device)
    assert rows._cost_rows is not None
    by_op._cost_rows = None
    for _ in range(2):  # a new key (summed), then a repeated one (its template)
        got, want = rows.run_step([graph]), by_op.run_step([graph])
        assert [getattr(got, f) for f in TIMING_FIELDS] == [getattr(want, f) for f in TIMING_FIELDS]


def test_bounded_caches_drop_the_least_recently_used_entry(monkeypatch):
    """A cache at its bound drops the entry used longest ago, not everything: one used again stays."""
    from collections import OrderedDict

    from asicsim.core import engine as engine_module

    monkeypatch.setattr(engine_module, "_TEMPLATE_CACHE_MAX", 3)
    cache: OrderedDict = OrderedDict()
    made = []

    def get(key):
        return engine_module._bounded(cache, key, lambda: made.append(key) or key.upper())

    assert [get(k) for k in "abc"] == ["A", "B", "C"] and get("a") == "A" and made == list("abc")
    get("d")  # full: "b" was used longest ago
    assert list(cache) == ["c", "a", "d"]
    get("b")
    assert made == list("abcdb") and list(cache) == ["a", "d", "b"]


@pytest.mark.parametrize("hw", ["sohu", "h100-sxm"])
def test_templates_past_the_bound_keep_the_recently_used_ones(monkeypatch, hw):
    """With room for two templates, a decode width met again stays while an older key goes, and every step times as
    on a fresh engine."""
    import numpy as np

    from asicsim.core import engine as engine_module
    from asicsim.core.registry import make_device
    from asicsim.workloads.graph import build_step_graph
    from asicsim.workloads.models import load_model

    monkeypatch.setattr(engine_module, "_TEMPLATE_CACHE_MAX", 2)
    model = load_model("llama-3.1-8b")
    graphs = [build_step_graph(model, StepBatch.make(decode_past=np.full(width, 100)), tp=8) for width in (1, 2, 3)]
    engine = StepEngine(make_device(hw, 8))
    for g in (graphs[0], graphs[1], graphs[0], graphs[2]):
        engine._template(g)
        assert engine.run_step([g]) == StepEngine(make_device(hw, 8)).run_step([g])
    assert list(engine._templates) == [graphs[0].dense_key, graphs[2].dense_key]
