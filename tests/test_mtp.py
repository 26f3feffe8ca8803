"""Multi-token prediction (speculative decoding with the model's MTP module): emission, graph, memory, runs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.core.description import MTP_ACCEPTANCE, RunSpec, resolve
from asicsim.core.runner import run_workload
from asicsim.core.schedulers import Seq, emitted_tokens
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph import build_step_graph
from asicsim.workloads.graph_types import OpKind, StepBatch
from asicsim.workloads.memory import kv_bytes_per_token_per_chip, weight_bytes_per_chip
from asicsim.workloads.models import load_model
from asicsim.workloads.requests import Request

R1 = load_model("deepseek-r1")


@settings(max_examples=200, deadline=None)
@given(drafts=st.integers(1, 6), accept=st.floats(0.0, 1.0), steps=st.integers(1, 400))
def test_emission_follows_its_expected_rate_and_stays_within_one_step_of_tokens(drafts, accept, steps):
    rate = sum(accept ** i for i in range(drafts + 1))
    seq = Seq(Request(0, 0.0, 16, 10**9))
    total = 0
    for _ in range(steps):
        k = emitted_tokens(seq, rate)
        assert 1 <= k <= drafts + 1
        seq.decode_steps += 1
        seq.generated += k
        total += k
    assert total == max(steps, math.floor(steps * rate + 1e-9))


def test_emission_never_passes_the_requested_output():
    seq = Seq(Request(0, 0.0, 16, 5))
    seq.generated = 4
    assert emitted_tokens(seq, 3.4) == 1


def test_a_speculative_step_verifies_one_plus_n_tokens_and_drafts_n_times():
    batch = StepBatch.make([], None, [500] * 8)
    base = build_step_graph(R1, batch, tp=8, dtype="fp8")
    spec = build_step_graph(R1, batch, tp=8, dtype="fp8", mtp_draft_tokens=3)
    decode = [op for op, _ in spec.all_ops() if op.kind == OpKind.ATTENTION_DECODE]
    assert {int(op.seq_new[0]) for op in decode} == {4, 1}  # verification (1 + 3) and the MTP layer's drafts
    assert len(spec.layer_groups) == len(base.layer_groups) + 1 and spec.layer_groups[-1][1] == 3
    assert spec.total("flops") > 3.5 * base.total("flops")


def test_the_mtp_module_takes_memory_one_layer_of_cache_and_weights():
    w0, w1 = (weight_bytes_per_chip(R1, "fp8", 8, 1, mtp=m) for m in (False, True))
    kv0, kv1 = (kv_bytes_per_token_per_chip(R1, "fp8", 8, 1, mtp=m) for m in (False, True))
    assert kv1 - kv0 == R1.mla.cache_width  # fp8: one byte per cached value
    layer = R1.layer_params(R1.layers[-1]) / 8  # experts split over tp; MLA up-projections too (approximately)
    assert 0.5 * layer < w1 - w0 < 2.0 * layer


def test_speculative_decoding_serves_every_token_in_fewer_steps_and_lower_tpot():
    common = dict(hardware="b200", chips=8, model="deepseek-r1", dtype="fp4", requests=1, isl=512, osl=128)
    base = run_workload(RunSpec(**common)).summary
    spec = run_workload(RunSpec(**common, mtp=3)).summary
    assert spec["output_tokens_total"] == base["output_tokens_total"] == 128
    assert spec["steps"] < base["steps"] and spec["tpot_p50_s"] < base["tpot_p50_s"]
    assert spec["mtp"] == 3 and spec["mtp_acceptance"] == MTP_ACCEPTANCE
    never = run_workload(RunSpec(**common, mtp=1, mtp_acceptance=0.0)).summary
    assert never["steps"] == base["steps"] and never["tpot_p50_s"] > base["tpot_p50_s"]  # drafts all rejected


def test_mtp_is_refused_where_it_cannot_run():
    with pytest.raises(InputError, match="no multi-token-prediction module") as err:
        resolve(RunSpec(hardware="b200", chips=8, model="llama-3.1-8b", mtp=1))
    assert err.value.field == "mtp"
    with pytest.raises(InputError) as err:
        resolve(RunSpec(hardware="b200", chips=8, model="deepseek-r1", mtp=2, mtp_acceptance=1.5))
    assert err.value.field == "mtp_acceptance"
    with pytest.raises(InputError, match="needs --mtp"):
        resolve(RunSpec(hardware="b200", chips=8, model="deepseek-r1", mtp_acceptance=0.5))
