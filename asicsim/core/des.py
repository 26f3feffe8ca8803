"""The discrete-event model of one step: op streams on a chip's compute, HBM and link units, in simpy.

This is the model the engine's schedule is defined by; `engine._Schedule` is a direct pass that computes
the same times without an event queue (tests/test_engine.py checks they agree). Every unit serves op
parts in one fixed order (`service_order`): each stream's ops cut into segments after every collective,
segment j of every stream before segment j + 1 of any, block by block (pre ops, each layer copy, post ops;
a block's ops after its last collective open the next block's first segment).

- An op of stream k is ready when the stream's op before it has ended, plus its fixed overhead (serial).
- Compute and link are unit processes walking the order: wait for the op's ready event, hold the op's
  seconds on the unit, signal.
- HBM is a `simpy.PreemptiveResource`: each transfer requests it with priority = its place in the order
  (an op's weights just ahead of its activations); an earlier transfer pre-empts a later one, which resumes
  its remainder. Activations are released when the op is ready; weights then too, or, with `prefetch`,
  when the double buffer frees (the stream's op i - 2 has ended). Traffic retires in order: an op's HBM
  part is done when the transfers of every op up to it in the order are, and not before the op is ready
  (weights prefetched early are held until the op runs).
- The op ends when all its parts are done; an op with compute waits on memory for the time beyond its
  fixed overhead and compute.

Times are seconds: the engine converts each unit's cycles to seconds before calling (the one place).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import simpy

__all__ = ["Part", "DesResult", "service_order", "simulate_step"]


@dataclass(frozen=True)
class Part:
    """One op's seconds on each unit; `collective` ops end a segment of the order."""

    compute_s: float
    memory_s: float
    weight_s: float
    link_s: float
    fixed_s: float
    collective: bool = False


@dataclass(frozen=True)
class DesResult:
    """Step time, compute ops' memory wait and each unit's busy seconds, all layers simulated."""

    time_s: float
    memory_wait_s: float
    compute_busy_s: float
    memory_busy_s: float
    link_busy_s: float


Stream = tuple[Sequence[Part], Sequence[Part], Sequence[Part]]  # pre ops, one layer's ops, post ops


def service_order(streams: Sequence[Stream], layers: int) -> list[tuple[int, Part]]:
    """(stream, op) in the order every unit serves them; each stream's ops keep their own order."""
    blocks = [[pre for pre, _, _ in streams]] + [[layer for _, layer, _ in streams]] * layers
    blocks.append([post for _, _, post in streams])
    carried: list[list[Part]] = [[] for _ in streams]
    order: list[tuple[int, Part]] = []
    for b, block in enumerate(blocks):
        final = b == len(blocks) - 1
        cut: list[list[list[Part]]] = []
        for k, ops in enumerate(block):
            ops = carried[k] + list(ops)
            ends = [i + 1 for i, p in enumerate(ops) if p.collective]
            carried[k] = ops[ends[-1]:] if ends and not final else []
            bounds = [0] + ends + ([len(ops)] if final or not ends else [])
            cut.append([ops[a:z] for a, z in zip(bounds, bounds[1:])])
        for j in range(max(map(len, cut), default=0)):
            for k, segments in enumerate(cut):
                if j < len(segments):
                    order.extend((k, p) for p in segments[j])
    return order


def simulate_step(streams: Sequence[Stream], layers: int, prefetch: bool) -> DesResult:
    """Run the step's event simulation with every layer; deterministic, no I/O."""
    order = service_order(streams, layers)
    env = simpy.Environment()
    hbm = simpy.PreemptiveResource(env, capacity=1)
    n = len(order)
    ready = [env.event() for _ in range(n)]
    ended = [env.event() for _ in range(n)]
    by_stream: list[list[int]] = [[] for _ in streams]  # stream -> its ops' places in the order
    place = [0] * n  # op's index within its stream
    for g, (k, _) in enumerate(order):
        place[g] = len(by_stream[k])
        by_stream[k].append(g)
    busy = {"compute": 0.0, "memory": 0.0, "link": 0.0}
    wait, end_at = [0.0], [0.0]

    def unit(name: str, seconds_of, done: dict):
        for g, (_, p) in enumerate(order):
            seconds = seconds_of(p)
            if seconds > 0.0:
                yield ready[g]
                yield env.timeout(seconds)
                busy[name] += seconds
                done[g].succeed()

    def transfer(release: simpy.Event | None, seconds: float, priority: int, done: simpy.Event):
        if release is not None:
            yield release
        left_s = seconds
        while left_s > 0.0:
            with hbm.request(priority=priority, preempt=True) as req:
                start_at = due_at = None
                try:
                    yield req
                    start_at = env.now
                    due_at = start_at + left_s  # when the timeout below fires (simpy's own sum)
                    yield env.timeout(left_s)
                    left_s = 0.0
                except simpy.Interrupt:  # pre-empted by an earlier transfer: resume the remainder later
                    if due_at is not None:  # (not when pre-empted as the request was granted)
                        left_s = due_at - env.now if env.now < due_at else 0.0
                if start_at is not None:
                    busy["memory"] += env.now - start_at
        done.succeed()

    def retire(moved: dict, retired: dict):
        for g in sorted(retired):
            yield env.all_of(moved[g])
            retired[g].succeed()

    def stream(k: int, parts: dict):
        for g in by_stream[k]:
            p = order[g][1]
            if p.fixed_s > 0.0:
                yield env.timeout(p.fixed_s)
            ready_at = env.now
            ready[g].succeed()
            if parts[g]:
                yield env.all_of(parts[g])
            if p.compute_s > 0.0 and env.now - ready_at > p.compute_s:
                wait[0] += env.now - ready_at - p.compute_s
            end_at[0] = max(end_at[0], env.now)
            ended[g].succeed()

    compute_done = {g: env.event() for g, (_, p) in enumerate(order) if p.compute_s > 0.0}
    link_done = {g: env.event() for g, (_, p) in enumerate(order) if p.link_s > 0.0}
    moved: dict[int, list[simpy.Event]] = {}
    retired: dict[int, simpy.Event] = {}
    for g, (k, p) in enumerate(order):
        if p.memory_s + p.weight_s <= 0.0:
            continue
        retired[g] = env.event()
        moved[g] = [ready[g]]  # an op's HBM part is done no earlier than the op is ready
        i = place[g]
        if prefetch:
            buffer_free = ended[by_stream[k][i - 2]] if i >= 2 else None
            jobs = ((buffer_free, p.weight_s, 2 * g), (ready[g], p.memory_s, 2 * g + 1))
        else:
            jobs = ((ready[g], p.memory_s + p.weight_s, 2 * g),)
        for release, seconds, priority in jobs:
            if seconds > 0.0:
                done = env.event()
                moved[g].append(done)
                env.process(transfer(release, seconds, priority, done))
    parts = {g: [e for e in (compute_done.get(g), link_done.get(g), retired.get(g)) if e is not None]
             for g in range(n)}
    env.process(unit("compute", lambda p: p.compute_s, compute_done))
    env.process(unit("link", lambda p: p.link_s, link_done))
    env.process(retire(moved, retired))
    for k in range(len(streams)):
        env.process(stream(k, parts))
    env.run()
    return DesResult(time_s=end_at[0], memory_wait_s=wait[0], compute_busy_s=busy["compute"],
                     memory_busy_s=busy["memory"], link_busy_s=busy["link"])
