"""Regression tests for inputs that once crashed, hung or were accepted when they must be refused; each test is
named after what it guards. Every refusal is exit 2 and one line naming the file or flag and the field."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import asicsim
from asicsim.cli import main
from asicsim.workloads.errors import RUN, InputError
from asicsim.workloads.models import load_model, parse_config

ROOT = Path(__file__).resolve().parent.parent
CONFIG_8B = json.loads((ROOT / "workloads" / "configs" / "llama-3.1-8b.json").read_text())


def refused(capsys, *argv: str) -> str:
    """Run the CLI; assert exit 2 with exactly one line on stderr and no traceback; return that line."""
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def trace(tmp_path, rows: str) -> str:
    path = tmp_path / "trace.csv"
    path.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n" + rows)
    return str(path)


# --- traces ------------------------------------------------------------------------------------------------
def test_trace_with_infinite_tokens_is_refused_not_an_overflow(capsys, tmp_path):
    err = refused(capsys, "run", "--hw", "h100-sxm", "--chips", "1", "--model", "llama-3.1-8b",
                  "--trace", trace(tmp_path, "0,inf,5\n"))
    assert "input tokens" in err and "finite" in err


def test_trace_arrivals_at_1e300_seconds_are_refused(capsys, tmp_path):
    err = refused(capsys, "run", "--hw", "h100-sxm", "--chips", "1", "--model", "llama-3.1-8b",
                  "--trace", trace(tmp_path, "0,10,5\n1e300,10,5\n"))
    assert "arrival" in err and "row 3" in err


def test_trace_together_with_rate_is_refused(capsys):
    err = refused(capsys, "run", "--hw", "h100-sxm", "--chips", "1", "--model", "llama-3.1-8b",
                  "--trace", "azure-conv", "--rate", "3")
    assert "--rate" in err


def test_trace_row_longer_than_the_context_is_refused(capsys, tmp_path):
    err = refused(capsys, "run", "--hw", "h100-sxm", "--chips", "8", "--model", "llama-2-70b",
                  "--trace", trace(tmp_path, "0,100,5\n1,4000,200\n"))
    assert "--trace" in err and "4096-token context" in err


# --- context and model keys ----------------------------------------------------------------------------------
def test_prompt_plus_output_longer_than_the_context_is_refused(capsys):
    err = refused(capsys, "run", "--hw", "h100-sxm", "--chips", "8", "--model", "llama-2-70b", "--isl", "4000",
                  "--osl", "200")
    assert "--isl" in err and "4200" in err and "4096" in err
    with pytest.raises(InputError) as info:  # a drawn length beyond it too
        asicsim.describe("h100-sxm", 8, model="llama-2-70b", rate=1.0, requests=50, isl_dist="uniform:3000:5000")
    assert (info.value.source, info.value.field) == (RUN, "isl_dist")


def test_rope_scaled_context_is_read_from_the_config():
    assert load_model("llama-3.1-8b").max_context_tokens == 131072  # llama3 type states the extended window
    yarn = dict(CONFIG_8B, max_position_embeddings=32768,
                rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768})
    assert parse_config(yarn, "yarn.json", "y").max_context_tokens == 131072


@pytest.mark.parametrize("factor", [float("inf"), float("nan"), -1.0, 0.0, True])
def test_infinite_or_bad_rope_scaling_factor_is_refused(factor):
    raw = dict(CONFIG_8B, rope_scaling=dict(CONFIG_8B["rope_scaling"], factor=factor))
    with pytest.raises(InputError) as info:
        parse_config(raw, "c.json", "c")
    assert info.value.field == "rope_scaling.factor"


@pytest.mark.parametrize("key, value", [
    ("num_local_experts", 8), ("n_routed_experts", 256), ("sliding_window", 4096), ("attention_bias", True),
    ("qkv_bias", True), ("mlp_bias", True), ("kv_lora_rank", 512), ("ssm_state_size", 128),
    ("num_nextn_predict_layers", 1), ("architectures", ["LlamaForCausalLM", "MistralForCausalLM"]),
])
def test_config_keys_the_dense_graph_does_not_model_are_refused_by_name(key, value):
    with pytest.raises(InputError) as info:
        parse_config(dict(CONFIG_8B, **{key: value}), "c.json", "c")
    assert (info.value.source, info.value.field) == ("c.json", key)


def test_harmless_values_of_those_keys_still_load():
    parse_config(dict(CONFIG_8B, attention_bias=False, num_local_experts=1, sliding_window=None), "c.json", "c")
    parse_config(dict(CONFIG_8B, sliding_window=4096, use_sliding_window=False), "c.json", "c")  # Qwen2-style


# --- run settings ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["isl", "osl", "requests", "chips", "tp", "max_batch"])
def test_boolean_token_counts_and_sizes_are_refused(field):
    settings = {"hardware": "h100-sxm", "chips": 8, field: True}
    with pytest.raises(InputError) as info:
        asicsim.describe(**settings)
    assert (info.value.source, info.value.field) == (RUN, field)


def test_fractional_values_for_integer_spec_fields_are_refused(capsys, tmp_path):
    text = (ROOT / "asicsim" / "specs" / "sohu.toml").read_text()
    for field, bad in (("array_count", "16.5"), ("macs_per_pe_per_cycle_fp8", "1.5")):
        lines = [f'{field} = {{ value = {bad}, assumed = true, source = "t" }}' if ln.startswith(f"{field} =")
                 else ln for ln in text.splitlines()]
        path = tmp_path / f"{field}.toml"
        path.write_text("\n".join(lines))
        err = refused(capsys, "run", "--hw", str(path), "--chips", "8")
        assert field in err and "whole number" in err


# --- validate and sweep ---------------------------------------------------------------------------------------
def test_validate_plot_with_an_unsupported_extension_is_refused(capsys):
    assert "--plot" in refused(capsys, "validate", "--plot", "x.txt")


STUDY = """base = "{base}"
[parameters]
clock_hz = [{clock}]
[workload]
model = "{model}"
requests = 4
isl = 128
osl = 4
"""


def study(tmp_path, base="sohu", clock="1.5e9", model="llama-3.1-8b") -> str:
    path = tmp_path / "study.toml"
    path.write_text(STUDY.format(base=base, clock=clock, model=model))
    return str(path)


@pytest.mark.parametrize("change, field", [
    ({"base": "h100-sxm"}, "base"),           # a GPU base: no ASIC design to derive
    ({"base": "nochip"}, "base"),             # unknown base
    ({"model": "llama-9"}, "workload.model"),  # unknown model
    ({"clock": "-1.5e9"}, "parameters.clock_hz"),  # a negative value
])
def test_sweep_config_errors_exit_2_instead_of_infeasible_rows(capsys, tmp_path, change, field):
    err = refused(capsys, "sweep", study(tmp_path, **change), "--out", str(tmp_path / "r.csv"), "--quiet")
    assert field in err


@pytest.mark.parametrize("flag", ["--workers", "--chunk"])
def test_sweep_workers_and_chunk_of_zero_are_refused(capsys, tmp_path, flag):
    refused(capsys, "sweep", study(tmp_path), "--out", str(tmp_path / "r.csv"), flag, "0")


def test_sweep_out_into_a_missing_folder_creates_it(capsys, tmp_path):
    out = tmp_path / "new" / "deeper" / "r.csv"
    assert main(["sweep", study(tmp_path), "--out", str(out), "--quiet", "--workers", "1"]) == 0
    assert out.is_file()


def test_sweep_resume_on_a_garbage_results_file_is_refused(capsys, tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("a,b\n1,2\n")
    assert "point_id" in refused(capsys, "sweep", study(tmp_path), "--out", str(out), "--resume", "--quiet")
    out.unlink()
    journal = tmp_path / "r.csv.journal.jsonl"
    journal.write_text("not json\n")
    assert "line 1" in refused(capsys, "sweep", study(tmp_path), "--out", str(out), "--resume", "--quiet")


def test_sweep_grid_over_the_limit_needs_yes(capsys, tmp_path):
    clocks = ", ".join(f"{1e9 + i}" for i in range(400))
    path = tmp_path / "big.toml"
    path.write_text(f"base = \"sohu\"\n[parameters]\nclock_hz = [{clocks}]\nsram_bytes = [{clocks}]\n")
    err = refused(capsys, "sweep", str(path), "--out", str(tmp_path / "r.csv"))
    assert "160,000 points" in err and "--yes" in err


def test_sweep_example_with_out_runs_the_default_study(capsys, tmp_path, monkeypatch):
    import asicsim.commands.sweep as sweep_cmd

    small = tmp_path / "example.toml"
    small.write_text(STUDY.format(base="sohu", clock="1.2e9, 1.5e9", model="llama-3.1-8b"))
    monkeypatch.setattr(sweep_cmd, "EXAMPLE_CONFIG", small)  # the default study, made small for the test
    out = tmp_path / "r.csv"
    assert main(["sweep", "--example", "--out", str(out), "--quiet", "--workers", "1"]) == 0
    assert len(out.read_text().splitlines()) == 3  # header + 2 points


# --- Ctrl-C and process hygiene -----------------------------------------------------------------------------
SLOW_STUDY = """base = "sohu"
[parameters]
clock_hz = [{clocks}]
[workload]
model = "llama-3-70b"
requests = 64
isl = 1024
osl = 64
"""


def _start_sweep(tmp_path, n: int) -> tuple[subprocess.Popen, Path]:
    path = tmp_path / "slow.toml"
    path.write_text(SLOW_STUDY.format(clocks=", ".join(f"{1.0 + 0.001 * i:.3f}e9" for i in range(n))))
    out = tmp_path / "r.csv"
    proc = subprocess.Popen([sys.executable, "-m", "asicsim", "sweep", str(path), "--out", str(out), "--quiet",
                             "--workers", "2", "--chunk", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    journal = out.with_name(out.name + ".journal.jsonl")
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline and not (journal.exists() and journal.stat().st_size):
        time.sleep(0.01)
    return proc, journal


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_exits_130_with_one_line_and_keeps_finished_points(tmp_path):
    proc, journal = _start_sweep(tmp_path, 400)
    try:
        assert proc.poll() is None, proc.stderr.read()
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C reaches the parent (workers ignore it)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err and "--resume" in err, err
    assert journal.stat().st_size > 0  # finished points stay for --resume


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_the_sweep_parent_leaves_no_worker_behind(tmp_path):
    proc, _ = _start_sweep(tmp_path, 400)
    try:
        assert proc.poll() is None, proc.stderr.read()
        workers = _children(proc.pid)
        assert workers, "the pool should have started workers"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, not its process group
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(Path(f"/proc/{w}").exists() for w in workers):
            time.sleep(0.05)
        alive = [w for w in workers if Path(f"/proc/{w}").exists()
                 and "Z" not in Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0]]
        assert not alive, f"workers outlived their parent: {alive}"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        proc.stderr.close()


# --- dtype support -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hw, dtype", [("a100-sxm-80g", "fp8"), ("h100-sxm", "fp4"), ("sohu", "fp4")])
def test_dtypes_the_hardware_lacks_are_refused_with_the_supported_list(capsys, hw, dtype):
    err = refused(capsys, "run", "--hw", hw, "--chips", "8", "--dtype", dtype, "--model", "llama-3.1-8b")
    assert "--dtype" in err and "native: bf16" in err and "--widen" in err


def test_widening_runs_only_when_asked_and_keeps_the_wider_rate():
    d = asicsim.describe("h100-sxm", 8, dtype="fp4", widen=True, model="llama-3.1-8b", requests=4)
    assert d.dtype == "fp4" and d.widen


def test_specs_show_no_rate_for_a_dtype_without_a_datapath(capsys):
    assert main(["specs", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["a100-sxm-80g"]["dense_fp8_flops_per_s"] is None  # not the bf16 312 TFLOP/s
    assert rows["h100-sxm"]["dense_fp4_flops_per_s"] is None
    assert rows["b200"]["dense_fp4_flops_per_s"] == pytest.approx(9e15)


# --- physical limits -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes, words", [
    ({"array_count": "40"}, ("die_area_mm2", "reticle by")),
    ({"tdp_w": "150"}, ("tdp_w", "exceeds the 150 W TDP")),
    ({"array_count": "8", "hbm_stacks": "12"}, ("hbm_stacks", "too many")),  # fewer arrays: the edge binds first
])
def test_a_chip_that_breaks_physics_is_refused_with_the_numbers(capsys, tmp_path, changes, words):
    lines = (ROOT / "asicsim" / "specs" / "sohu.toml").read_text().splitlines()
    for field, value in changes.items():
        lines = [f"{field} = {value}" if ln.startswith(f"{field} =") else ln for ln in lines]
    path = tmp_path / "chip.toml"
    path.write_text("\n".join(lines))
    for cmd in (["run", "--hw", str(path), "--chips", "8"], ["compare", "--hw", f"{path},h100-sxm"]):
        err = refused(capsys, *cmd)
        assert str(path) in err and all(w in err for w in words), err


def test_azure_trace_with_non_finite_timestamps_is_refused(capsys, tmp_path):
    """Found by the fuzz: a numeric TIMESTAMP column holding inf and nan once reached the date-time parser."""
    path = tmp_path / "azure.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\ninf,10,2\nnan,10,2\n")
    err = refused(capsys, "run", "--hw", "h100-sxm", "--chips", "1", "--model", "llama-3.1-8b", "--trace", str(path))
    assert "TIMESTAMP" in err and "finite" in err
