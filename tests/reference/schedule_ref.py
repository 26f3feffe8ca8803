"""Twin of kernels/schedule.py: the engine's Python schedule pass (`asicsim.core.engine.schedule_step`, itself
checked against the simpy event model in tests/test_engine.py) over the same op table."""

from types import SimpleNamespace

from asicsim.core import engine

_KINDS = {True: "allreduce", False: "matmul"}


def schedule_step_s_ref(ops, collective, bounds, layers, prefetch, state_rtol):
    """(step seconds, memory wait seconds) by `engine.schedule_step` on ops built from the table's rows."""
    def op(g):
        compute_s, memory_s, weight_s, link_s, fixed_s = (float(v) for v in ops[g])
        return SimpleNamespace(op=SimpleNamespace(kind=_KINDS[bool(collective[g])], name=f"op{g}"),
                               compute_s=compute_s, memory_s=memory_s, weight_s=weight_s, link_s=link_s,
                               fixed_s=fixed_s)

    streams = [tuple([op(g) for g in range(row[2 * b], row[2 * b + 1])] for b in range(3)) for row in bounds]
    return engine.schedule_step(streams, int(layers), bool(prefetch), state_rtol=state_rtol)
