"""The fast path (templates, the jitted schedule, memoised steps, fast-forwarded decode runs, columnar step
records) against the event-by-event path (`exact`: the simpy model prices and times every step) on random
workloads: hardware kinds, schedulers, batch limits, bursts and Poisson arrivals.

Stated tolerance: with the attention memo key made exact (ATTENTION_KEY_BITS = 53) every summary value equals
the exact path's to a relative 1e-9 on serial devices (GPUs) and to 2 x FAST_PATH_RTOL (2^-9) on scheduled
ones (the fast-forward interpolation's midpoint check), and with the default 10-bit key to 2 x FAST_PATH_RTOL
on every device (docs/architecture.md, "The model and its fast path")."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.core import engine
from asicsim.core.runner import RunSpec, run_workload
from asicsim.core.schedulers import scheduler_names
from support import close_json, close_summary

SERIAL = {"h100-sxm", "b200"}




def _summary(spec: RunSpec) -> dict:
    s = run_workload(spec).summary
    s.pop("wall_s")
    return s


def _same(a: dict, b: dict, rel: float) -> bool:
    """Summaries equal to `rel`; the idle energy (static power x (makespan - busy time), a difference of nearly
    equal sums) to `rel` of the static energy it is part of; the vLLM-named latencies (ms; inter-token gaps and
    standard deviations are differences of step times) to `rel` of the run's duration."""
    a, b = dict(a), dict(b)
    idle = a.pop("energy_idle_j"), b.pop("energy_idle_j")
    return close_summary(a, b, rel) and abs(idle[0] - idle[1]) <= rel * a["energy_static_j"]


@settings(max_examples=25, deadline=None)
@given(hw=st.sampled_from(["h100-sxm", "b200", "sohu"]), scheduler=st.sampled_from(scheduler_names()),
       requests=st.integers(1, 7), isl=st.integers(16, 700), osl=st.integers(1, 14),
       max_batch=st.sampled_from([0, 1, 3]), rate=st.sampled_from([0.0, 60.0]), seed=st.integers(0, 3))
def test_fast_path_equals_the_event_model(hw, scheduler, requests, isl, osl, max_batch, rate, seed):
    spec = RunSpec(hardware=hw, chips=8, model="llama-3.1-8b", isl=isl, osl=osl, requests=requests,
                   scheduler=scheduler, max_batch=max_batch or None, rate=rate, seed=seed,
                   max_tokens_per_step=512)
    exact = _summary(dataclasses.replace(spec, exact=True))
    fast = _summary(spec)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "ATTENTION_KEY_BITS", 53)  # rounding to 53 bits keeps every double
        exact_key = _summary(spec)
    assert exact["requests_completed"] == requests
    assert _same(exact, exact_key, rel=1e-9 if hw in SERIAL else 2 * engine.FAST_PATH_RTOL)
    assert _same(exact, fast, rel=1e-9 if hw in SERIAL else 2 * engine.FAST_PATH_RTOL)


def test_the_comparison_can_fail():
    assert close_json({"a": 1.0, "b": 2}, {"a": 1.0 + 1e-12, "b": 2}, rel=1e-9)
    assert not close_json({"a": 1.0}, {"a": 1.0 + 1e-6}, rel=1e-9)
    assert not close_json({"a": 1.0, "b": 2}, {"a": 1.0, "b": 3}, rel=1e-9)
    base = {"energy_static_j": 100.0, "energy_idle_j": 0.0}
    assert _same(base, dict(base, energy_idle_j=1e-12), rel=1e-9)
    assert not _same(base, dict(base, energy_idle_j=1e-3), rel=1e-9)
