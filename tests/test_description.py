"""One run description: every entry point (CLI flags, Python keywords, a sweep row, a claim's search, a
validation row) resolves the same input to the same frozen description, and defaults live in one place."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asicsim
from asicsim.analysis.claims import claim_from_table, claim_run_spec
from asicsim.analysis.roofline import Workload
from asicsim.analysis.sweep import WORKLOAD_DEFAULTS, point_run_spec
from asicsim.analysis.validate import row_run_spec
from asicsim.cli import build_parser, main
from asicsim.commands._common import spec_from_args
from asicsim.core.description import RunDescription, RunSpec, resolve, resolve_run
from asicsim.core.memory_plan import plan_memory
from asicsim.core.registry import load_hardware
from asicsim.workloads.errors import RUN, InputError
from asicsim.workloads.models import load_model

ROOT = Path(__file__).resolve().parent.parent


def _cli(hw: str, chips: int, settings: dict) -> RunDescription:
    argv = ["run", "--hw", hw, "--chips", str(chips)]
    for key, value in settings.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return resolve(spec_from_args(build_parser().parse_args(argv), hw))


def _or_error(fn):
    """The description, or the (source, field) of the InputError resolving raised."""
    try:
        return fn()
    except InputError as exc:
        return ("error", exc.field)


# Settings a sweep row can carry (its workload keys), drawn around valid and invalid layouts.
SWEEPABLE = st.fixed_dictionaries({}, optional={
    "tp": st.sampled_from([1, 2, 4, 8, 3]),
    "pp": st.sampled_from([1, 2, 3]),
    "dtype": st.sampled_from(["bf16", "fp8", "fp4"]),
    "kv_dtype": st.sampled_from(["bf16", "fp8"]),
    "isl": st.integers(1, 4096),
    "osl": st.integers(1, 512),
    "requests": st.integers(1, 64),
    "max_batch": st.integers(1, 64),
    "max_tokens_per_step": st.integers(512, 16384),
})


@settings(deadline=None, max_examples=30)
@given(hw=st.sampled_from(["sohu", "h100-sxm"]), chips=st.sampled_from([1, 2, 4, 8]),
       model=st.sampled_from(["llama-3.1-8b", "llama-3-70b"]), work=SWEEPABLE)
def test_every_entry_point_resolves_the_same_description(hw, chips, model, work):
    settings_ = {"model": model, **work}
    cli = _or_error(lambda: _cli(hw, chips, settings_))
    api = _or_error(lambda: asicsim.describe(hw, chips, **settings_))
    point = {"base": hw, "spec": {}, "workload": dict(WORKLOAD_DEFAULTS, chips=chips, **settings_)}
    row = _or_error(lambda: resolve(point_run_spec(point, load_hardware(hw))))
    assert cli == api == row
    if isinstance(cli, RunDescription):
        assert cli.tp * cli.pp * cli.replicas == chips
        # a resolved description resolves to itself, and describing it again changes nothing
        assert resolve(cli) is cli


@settings(deadline=None, max_examples=15)
@given(hw=st.sampled_from(["sohu", "h100-sxm", "b200"]), tp=st.sampled_from([1, 2, 4, 8]),
       io=st.sampled_from([(128, 128), (2048, 128), (500, 300)]), scheduler=st.sampled_from(["inflight",
                                                                                            "inflight-chunked"]))
def test_a_validation_row_is_the_cli_with_its_harness(hw, tp, io, scheduler):
    isl, osl = io
    version = "v0.19.0" if scheduler == "inflight" else "v0.14.0"
    row = _or_error(lambda: resolve(row_run_spec(hw, "llama-3-70b", "fp8", "", tp, isl, osl, "in-flight",
                                                 version=version)))
    harness = "trtllm-bench-pytorch" if scheduler == "inflight" else "trtllm-bench"  # v0.19+: PyTorch backend
    cli = _or_error(lambda: _cli(hw, tp, {"model": "llama-3-70b", "tp": tp, "isl": isl, "osl": osl,
                                          "harness": harness, "scheduler": scheduler}))
    assert row == cli


@settings(deadline=None, max_examples=15)
@given(tp=st.sampled_from([2, 4, 8]), batch=st.integers(1, 200), scheduler=st.sampled_from(["static", "inflight"]))
def test_a_claims_search_run_is_the_cli(tp, batch, scheduler):
    claim = claim_from_table("c", {"tokens_per_s": 1e5, "hardware": "sohu", "chips": 8, "model": "llama-3-70b"}, "t")
    w = Workload(load_model("llama-3-70b"), "fp8", "fp8", 2048, 128, 8)
    replicas = 8 // tp
    mine = _or_error(lambda: resolve(claim_run_spec(claim, w, tp, batch, replicas, scheduler)))
    cli = _or_error(lambda: _cli("sohu", 8, {"tp": tp, "kv_dtype": "fp8", "requests": batch * replicas,
                                             "max_batch": batch, "max_tokens_per_step": 8192,
                                             "scheduler": scheduler}))
    assert mine == cli


def test_pp_2_on_8_chips_picks_tp_4_from_the_cli_and_python(capsys):
    assert main(["run", "--hw", "h100-sxm", "--chips", "8", "--pp", "2", "--requests", "16", "--isl", "256",
                 "--osl", "32", "--json", "--quiet"]) == 0
    cli = json.loads(capsys.readouterr().out)
    result = asicsim.run(hardware="h100-sxm", chips=8, pp=2, requests=16, isl=256, osl=32)
    assert cli["tp"] == result.summary["tp"] == 4
    assert set(result.summary) == set(cli)
    assert RunSpec(hardware="h100-sxm", chips=8, pp=2).tp is None  # not given: resolve decides


@pytest.mark.parametrize("given_, field", [
    ({"pp": 3}, "chips"),                      # 8 chips do not split into 3 stages
    ({"tp": 3}, "tp"),                         # tp x pp does not divide the chips
    ({"tp": 2, "replicas": 3}, "replicas"),    # 2 x 1 x 3 != 8
    ({"replicas": 1, "pp": 1, "model": "llama-3.1-8b", "chips": 12}, "tp"),  # 12: neither divides nor a multiple of 8 KV heads
    ({"dtype": "int4"}, "dtype"),
    ({"kv_dtype": "fp16"}, "kv_dtype"),
    ({"trace": "azure-conv", "rate": 2.0}, "rate"),
    ({"scheduler": "fifo"}, "scheduler"),
    ({"harness": "mlperf"}, "harness"),
    ({"max_batch": 10**6, "scheduler": "static"}, "max_batch"),
    ({"bogus": 1}, "bogus"),
])
def test_errors_name_the_setting_the_user_gave(given_, field, capsys):
    kwargs = {"hardware": "h100-sxm", "chips": 8, **given_}
    with pytest.raises(InputError) as err:
        resolve_run(**kwargs)
    assert (err.value.source, err.value.field) == (RUN, field)
    if "bogus" not in given_:  # the CLI shows the same error as the flag
        argv = ["run", "--hw", "h100-sxm", "--quiet"]
        for key, value in {"chips": 8, **given_}.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        code = main(argv)
        err_text = capsys.readouterr().err
        assert code == 2 and err_text.count("\n") == 1
        assert f"--{field.replace('_', '-')}" in err_text or "invalid choice" in err_text


def test_max_batch_default_is_as_many_as_memory_holds_for_every_scheduler():
    model = load_model("llama-3-70b")
    usable = 84.93e9  # h100-sxm hbm_usable_bytes: the 79.10 GiB TensorRT-LLM logs report as total
    plan = plan_memory(model, usable, dtype="fp8", kv_dtype="fp8", tp=8, pp=1, tokens_per_request=2176,
                       max_tokens_per_step=8192)
    static = resolve_run(hardware="h100-sxm", chips=8, scheduler="static")
    assert static.max_batch == plan.max_batch_fit  # whole requests of the longest length
    for name in ("continuous", "chunked-prefill", "inflight", "inflight-chunked"):
        d = resolve_run(hardware="h100-sxm", chips=8, scheduler=name)
        assert d.max_batch == d.kv_capacity_blocks  # each running request holds at least one block
        assert d.kv_capacity_blocks == int(plan.kv_capacity_bytes // (plan.kv_bytes_per_token * 16))


def test_harness_presets_set_what_the_tool_measured():
    trt = resolve_run(hardware="h100-sxm", chips=8, harness="trtllm-bench", isl=2048, osl=128)
    assert (trt.requests, trt.kv_block_tokens, trt.kv_dtype, trt.scheduler) == (3000, 64, "fp8", "inflight-chunked")
    vllm = resolve_run(hardware="h100-sxm", chips=8, harness="vllm-throughput")
    assert (vllm.requests, vllm.max_batch, vllm.max_tokens_per_step, vllm.scheduler) == (1000, 1024, 16384,
                                                                                        "chunked-prefill")
    a100 = resolve_run(hardware="a100-sxm-80g", chips=8, dtype="bf16", harness="vllm-throughput")
    assert (a100.max_batch, a100.max_tokens_per_step) == (256, 8192)  # vLLM keeps the small budget on A100
    user = resolve_run(hardware="h100-sxm", chips=8, harness="per-user")
    assert (user.requests, user.max_batch, user.scheduler) == (1, 1, "static")
    # the user's own values win over a preset
    mine = resolve_run(hardware="h100-sxm", chips=8, harness="trtllm-bench", requests=7, kv_block_tokens=32)
    assert (mine.requests, mine.kv_block_tokens) == (7, 32)


def test_cli_harness_trtllm_bench_runs(capsys):
    assert main(["run", "--hw", "h100-sxm", "--chips", "8", "--harness", "trtllm-bench", "--requests", "64",
                 "--json", "--quiet"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["harness"] == "trtllm-bench" and out["scheduler"] == "inflight-chunked"
    assert out["requests_completed"] == 64


def test_an_edited_spec_file_is_read_again(tmp_path):
    """Resolution caches loaded files on their modification time: a notebook user editing a spec gets the edit."""
    import os

    base = (ROOT / "asicsim" / "specs" / "h100-sxm.toml").read_text()
    path = tmp_path / "gpu.toml"
    path.write_text(base)
    first = resolve_run(hardware=str(path), chips=8).spec.hbm_capacity_bytes
    path.write_text(base.replace('hbm_capacity_bytes = { value = 80e9', 'hbm_capacity_bytes = { value = 96e9'))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert (first, resolve_run(hardware=str(path), chips=8).spec.hbm_capacity_bytes) == (80e9, 96e9)


def test_trtllm_bench_kv_cache_is_what_the_runtime_leaves_by_hand():
    """TensorRT-LLM sizes the KV cache as 0.95 of what is free after weights, activations, its decoder and runtime
    buffers (41.9 B per batch slot x vocabulary entry) and 3.39 GiB of unnamed allocations (harness.py sources).
    8 x H100, Llama-3-70B fp8, 128/2048: engine max batch 1792; buffers 41.92 x 1792 x 128256 = 9.63 GB."""
    from asicsim.core import harness
    d = resolve_run(hardware="h100-sxm", chips=8, harness="trtllm-bench", isl=128, osl=2048)
    model = load_model("llama-3-70b")
    assert d.max_batch == 1792
    reserve = harness.trtllm_runtime_reserve_bytes(model, 1792)
    assert reserve == pytest.approx(41.92 * 1792 * 128256 + 3.64e9, rel=2e-3)
    plan = plan_memory(model, 84.93e9, dtype="fp8", kv_dtype="fp8", tp=8, pp=1, tokens_per_request=2176,
                       max_tokens_per_step=d.max_tokens_per_step)
    blocks = int((plan.kv_capacity_bytes - reserve) * 0.95 // (20480 * 64))
    assert d.kv_capacity_blocks == blocks


def test_a_sweep_point_leaves_the_default_token_budget_to_resolve_as_the_cli_does() -> None:
    # Sohu holds Llama-3-70B in bf16 on one chip only with a 4096-token step: the CLI, the API and a sweep point,
    # none setting the budget, all get the halved one (found by the property test above).
    point = {"base": "sohu", "spec": {}, "workload": dict(WORKLOAD_DEFAULTS, chips=1, model="llama-3-70b",
                                                          dtype="bf16")}
    row = resolve(point_run_spec(point, load_hardware("sohu")))
    assert row == asicsim.describe("sohu", 1, model="llama-3-70b", dtype="bf16") == _cli("sohu", 1, {
        "model": "llama-3-70b", "dtype": "bf16"})
    assert row.max_tokens_per_step == 4096
