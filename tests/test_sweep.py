"""`asicsim sweep`: config validation, stable point ids, one serving path with `asicsim run`, kill-and-resume,
executors.

The sweep mechanics are tested with TEST-ONLY stand-ins for the chip package's `derive_asic_spec` and
`area_breakdown` (`fake_derive`, `fake_area` below), so these tests do not depend on the area/power model.
The kill-and-resume test runs the real CLI (and so the real chip model) in a subprocess it SIGKILLs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.analysis.executors import bind, chunked, run_chunks
from asicsim.analysis.sweep import (EXAMPLE_CONFIG, WORKLOAD_DEFAULTS, evaluate_chunk, evaluate_point, expand_points,
                                    load_sweep_config, point_id, silicon_cost, sweep_config_from_table)
from asicsim.analysis.sweep_plots import pareto_front, plot_sweep
from asicsim.cli import main
from asicsim.commands.sweep import Progress, ResultStore, run_sweep
from asicsim.core.runner import RunSpec, run_workload
from asicsim.workloads.errors import Infeasible, InputError

ROOT = Path(__file__).resolve().parent.parent
HAVE_REAL = importlib.util.find_spec("asicsim.chip.programmability") is not None


# --- TEST-ONLY stand-ins (never used by the CLI) ---------------------------------------------------
def fake_derive(base, *, programmable_area_fraction=0.0, array_rows=None, array_cols=None, sram_bytes=None, hbm_stacks=None,
                clock_hz=None, process_node_nm=None):
    """Test stand-in: scales the base spec crudely; more than 8 HBM stacks is 'over the die edge'."""
    if hbm_stacks is not None and hbm_stacks > 8:
        raise Infeasible(base.name, "hbm_stacks", f"{hbm_stacks} stacks exceed the die edge")
    stacks = hbm_stacks or base.hbm_stacks
    return dataclasses.replace(
        base, array_count=max(1, round(base.array_count * (1.0 - programmable_area_fraction))),
        array_rows=array_rows or base.array_rows, array_cols=array_cols or base.array_cols,
        sram_bytes=sram_bytes or base.sram_bytes, clock_hz=clock_hz or base.clock_hz,
        process_node_nm=process_node_nm or base.process_node_nm, hbm_stacks=stacks,
        hbm_capacity_bytes=base.hbm_capacity_bytes * stacks / base.hbm_stacks,
        hbm_bandwidth_bytes_per_s=base.hbm_bandwidth_bytes_per_s * stacks / base.hbm_stacks)


def fake_area(spec):
    """Test stand-in for area_breakdown: two blocks summing to the spec's die area."""
    arrays = 0.5 * spec.die_area_mm2
    return {"total_mm2": spec.die_area_mm2, "blocks": {"arrays": arrays, "other": spec.die_area_mm2 - arrays}}


SMALL = """
base = "sohu"
[parameters]
programmable_area_fraction = [0.0, 0.5]
hbm_stacks = [6, 10]
[workload]
model = "llama-3-70b"
isl = 256
osl = 8
requests = {requests}
"""


def small_config(tmp_path: Path, requests: int = 16) -> Path:
    path = tmp_path / "study.toml"
    path.write_text(SMALL.format(requests=requests))
    return path


# --- configuration ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, field", [
    ("bogus = 1", "bogus"),
    ("sampling = 'sobol'", "sampling"),
    ("[parameters]\nclock_hz = []", "parameters.clock_hz"),
    ("[parameters]\nclock_hz = { min = 1, max = 2 }", "parameters.clock_hz"),
    ("sampling = 'random'\n[parameters]\nclock_hz = { min = 3, max = 2 }", "parameters.clock_hz"),
    ("sampling = 'random'\n[parameters]\nclock_hz = { min = 1, max = 2, step = 1 }", "parameters.clock_hz.step"),
    ("[workload]\nisl = 0", "workload.isl"),
    ("[workload]\ndtype = 'int3'", "workload.dtype"),
    ("[workload]\nflavour = 1", "workload.flavour"),
    ("[parameters]\nisl = [1]\n[workload]\nisl = 2", "parameters.isl"),
    ("[evaluation]\ndecode_samples = 1", "evaluation"),
    ("samples = -3", "samples"),
    ("base = 3", "base"),
    ("parameters = 3", "parameters"),
    ("x = [", "toml"),
])
def test_config_errors_name_file_and_field(tmp_path, text, field):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_sweep_config(path)
    assert err.value.source == str(path) and err.value.field == field
    assert "\n" not in str(err.value)


def test_config_error_is_one_line_exit_2_from_cli(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[workload]\nosl = -1\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "r.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "workload.osl" in err


def test_example_config_is_valid_and_has_1000_points(capsys):
    assert main(["sweep", "--example"]) == 0
    assert capsys.readouterr().out == EXAMPLE_CONFIG.read_text()
    cfg = load_sweep_config(EXAMPLE_CONFIG)
    points = expand_points(cfg)
    assert len(points) >= 1000
    assert len({point_id(p) for p in points}) == len(points)


# --- point ids --------------------------------------------------------------------------------------
def test_point_id_stable_across_processes_and_runs(tmp_path):
    cfg = load_sweep_config(small_config(tmp_path))
    ids = [point_id(p) for p in expand_points(cfg)]
    code = (f"from asicsim.analysis.sweep import *; cfg = load_sweep_config({str(cfg.source)!r}); "
            "print(' '.join(point_id(p) for p in expand_points(cfg)))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONHASHSEED="123")).stdout.split()
    assert other == ids
    # Golden value: `printf '%s' '{"base":"sohu","spec":{"clock_hz":1500000000},"workload":{"isl":2048}}' |
    # sha256sum | cut -c1-16` (coreutils, independent of this code); the id format is a contract.
    point = {"base": "sohu", "spec": {"clock_hz": 1.5e9}, "workload": {"isl": 2048}}
    assert point_id(point) == point_id({"workload": {"isl": 2048}, "spec": {"clock_hz": 1500000000}, "base": "sohu"})
    assert point_id(point) == "55e7ae78a99a014c"


@settings(deadline=None, max_examples=30)
@given(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(-10**6, 10**6) | st.text(max_size=5)))
def test_point_id_ignores_key_order_and_separates_values(spec):
    reordered = dict(reversed(list(spec.items())))
    a = {"base": "x", "spec": spec, "workload": {}}
    assert point_id(a) == point_id({"workload": {}, "spec": reordered, "base": "x"})
    changed = dict(spec, z=1)
    assert point_id(a) != point_id({"base": "x", "spec": changed, "workload": {}})


def test_random_sampling_is_seeded_and_in_range(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text("sampling = 'random'\nsamples = 50\nseed = 7\n[parameters]\n"
                    "clock_hz = { min = 1e9, max = 2e9, log = true }\nhbm_stacks = { min = 4, max = 8, integer = true }\n")
    a = expand_points(load_sweep_config(path))
    b = expand_points(load_sweep_config(path))
    assert [point_id(p) for p in a] == [point_id(p) for p in b]
    assert all(1e9 <= p["spec"]["clock_hz"] <= 2e9 and 4 <= p["spec"]["hbm_stacks"] <= 8 for p in a)
    assert all(isinstance(p["spec"]["hbm_stacks"], int) for p in a)


# --- one serving path: a sweep point is an `asicsim run` ------------------------------------------------------
def identity(base):
    """A 'derive' that returns the base spec unchanged, so a point is exactly the built-in spec."""
    return base


@pytest.mark.parametrize("work", [
    {"model": "llama-3-70b", "requests": 40, "isl": 1000, "osl": 150, "max_batch": 16},
    {"model": "llama-3.1-8b", "tp": 2, "requests": 40, "isl": 3000, "osl": 64, "dtype": "bf16"},
    {"model": "llama-3-70b", "requests": 64, "isl": 2048, "osl": 40},
])
@pytest.mark.parametrize("base", ["sohu"])
def test_a_sweep_point_and_asicsim_run_give_the_same_metrics(capsys, base, work):
    point = {"base": base, "spec": {}, "workload": dict(WORKLOAD_DEFAULTS, **work)}
    row = evaluate_point(point, derive=identity, area=fake_area)
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in work.items()]
    assert main(["run", "--hw", base, "--chips", "8", "--quiet", "--json", *flags]) == 0
    cli = json.loads(capsys.readouterr().out)
    for key in ("output_tokens_per_s", "total_tokens_per_s", "ttft_p50_s", "ttft_p99_s", "tpot_p50_s", "tpot_p99_s",
                "e2e_p50_s", "mfu", "mbu", "compute_utilization", "energy_j_per_output_token"):
        assert row[key] == cli[key], key  # the same code path: equal, not close
    assert row["run_max_batch"] == cli["max_batch"]  # "max_batch" is the workload column the point gave


def test_the_sweep_has_no_serving_loop_of_its_own():
    """analysis/sweep.py runs points through runner.run_workload: no engine, scheduler or step record there."""
    text = (ROOT / "asicsim" / "analysis" / "sweep.py").read_text()
    for name in ("StepEngine", "StepRunner", "step_record", "make_scheduler", "simulate(", "np.interp"):
        assert name not in text, name


def test_sweep_config_from_a_dict_equals_the_file(tmp_path):
    table = {"base": "sohu", "parameters": {"clock_hz": [1.2e9, 1.5e9]}, "workload": {"isl": 512}}
    path = tmp_path / "s.toml"
    path.write_text('base = "sohu"\n[parameters]\nclock_hz = [1.2e9, 1.5e9]\n[workload]\nisl = 512\n')
    from_file = expand_points(load_sweep_config(path))
    from_dict = expand_points(sweep_config_from_table(table, "dict"))
    assert [point_id(p) for p in from_file] == [point_id(p) for p in from_dict]


# --- silicon cost -----------------------------------------------------------------------------------------
def test_silicon_cost_textbook_example():
    # 300 mm wafer, 100 mm2 die: pi 150^2 / 100 - pi 300 / sqrt(200) = 706.86 - 66.64 = 640 gross dies.
    cost = silicon_cost(100.0, 5)
    assert cost["dies_per_wafer"] == 640
    ad = 1.0 * 0.10  # 1 cm2 x 0.10 defects/cm2 (N5, data/silicon_cost.csv)
    assert cost["die_yield"] == pytest.approx(((1 - np.exp(-ad)) / ad) ** 2)
    assert cost["die_cost_usd"] == pytest.approx(16000 / (640 * cost["die_yield"]))
    with pytest.raises(InputError, match="wafer_cost"):
        silicon_cost(100.0, 2)


@settings(deadline=None, max_examples=40)
@given(st.floats(20, 858), st.floats(1.0, 1.5))
def test_bigger_dies_cost_more_each(area, grow):
    assert silicon_cost(area * grow, 4)["die_cost_usd"] >= silicon_cost(area, 4)["die_cost_usd"] * (1 - 1e-12)


# --- rows, resume, executors ----------------------------------------------------------------------------------
def test_rows_carry_the_documented_columns_and_infeasible_points(tmp_path):
    points = expand_points(load_sweep_config(small_config(tmp_path, requests=4)))
    rows = evaluate_chunk(points, derive=fake_derive, area=fake_area)
    assert [r["point_id"] for r in rows] == [point_id(p) for p in points]
    bad = [r for r in rows if not r["feasible"]]
    assert len(bad) == 2 and all("die edge" in r["infeasible_reason"] for r in bad)
    good = [r for r in rows if r["feasible"]]
    for r in good:
        for key in ("area_total_mm2", "area_arrays_mm2", "peak_flops_per_s", "hbm_bandwidth_bytes_per_s",
                    "output_tokens_per_s", "ttft_p50_s", "tpot_p50_s", "power_w_per_chip", "output_tokens_per_j",
                    "output_tokens_per_s_per_mm2", "output_tokens_per_s_per_usd", "dies_per_wafer", "die_yield"):
            assert key in r, key
    # Fewer arrays (more programmable share) is never faster.
    by_share = {r["programmable_area_fraction"]: r["output_tokens_per_s"] for r in good}
    assert by_share[0.5] <= by_share[0.0]


def _ids(path: Path) -> list[str]:
    frame = pd.read_csv(path, dtype={"point_id": str})
    return list(frame["point_id"])


KILL_STUDY = """
base = "sohu"
[parameters]
programmable_area_fraction = [0.0, 0.1, 0.2]
hbm_stacks = [4, 6]
clock_hz = [{clocks}]
[workload]
model = "llama-3.1-8b"
chips = 1
isl = 2048
osl = 16
requests = 4
max_tokens_per_step = 128
"""


def _sweep_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "asicsim", "sweep", *args, "--workers", "2", "--chunk", "1"]


def _complete_rows(journal: Path) -> list[str]:
    """point_ids of the journal's newline-terminated lines (a torn last line is not a row)."""
    data = journal.read_bytes() if journal.exists() else b""
    return [json.loads(line)["point_id"] for line in data[:data.rfind(b"\n") + 1].splitlines()]


def _start_and_kill(study: Path, out: Path, stderr: Path) -> int | None:
    """Start the CLI sweep in its own process group; SIGKILL the whole group (the sweep and its pool
    workers) as soon as the journal holds a row. Returns the rows on disk at the kill, or None when
    the sweep finished first."""
    journal = out.with_name(out.name + ".journal.jsonl")
    with stderr.open("wb") as err:
        proc = subprocess.Popen(_sweep_cli(str(study), "--out", str(out), "--quiet"), stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 180.0  # start-up and the first point on a loaded 2-core box
        while proc.poll() is None and time.monotonic() < deadline and not _complete_rows(journal):
            time.sleep(0.005)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    if proc.returncode == 0:
        return None
    assert proc.returncode == -signal.SIGKILL, stderr.read_text()
    return len(_complete_rows(journal))  # the sweep is dead: what is on disk now was there at the kill


def test_killed_sweep_resumes_every_point_exactly_once(tmp_path):
    """`asicsim sweep` (2 pool workers) SIGKILLed with its whole process group midway, then `--resume`."""
    out, stderr = tmp_path / "r.csv", tmp_path / "stderr.txt"
    journal = out.with_name(out.name + ".journal.jsonl")
    for n_clocks in (10, 40, 160):  # 60, 240, 960 points: grow the study if it outran the kill
        study = tmp_path / "study.toml"
        study.write_text(KILL_STUDY.format(clocks=", ".join(f"{1.0 + 0.005 * i:.3f}e9" for i in range(n_clocks))))
        expected = [point_id(p) for p in expand_points(load_sweep_config(study))]
        assert len(expected) == 6 * n_clocks
        at_kill = _start_and_kill(study, out, stderr)
        if at_kill is not None and at_kill < len(expected):
            break
        for path in (out, journal):
            path.unlink(missing_ok=True)
    else:
        pytest.fail("the sweep finished before it could be killed, even at 960 points")
    assert 1 <= at_kill < len(expected), stderr.read_text()  # killed midway: some rows written, not all
    assert not out.exists() and journal.exists()
    first = _complete_rows(journal)
    assert len(first) == len(set(first)) == at_kill and set(first) <= set(expected)
    with journal.open("a") as fh:  # a torn last line, as a kill during a write leaves
        fh.write('{"point_id": "torn')
    assert main(["sweep", str(study), "--out", str(out), "--quiet"]) == 2  # not without --resume
    resumed = subprocess.run(_sweep_cli(str(study), "--out", str(out), "--resume"), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    # Nothing repeated: exactly the points that were not on disk ran again.
    assert f"sweep: {len(expected)} points ({len(expected) - at_kill} run now)" in resumed.stderr
    ids = _ids(out)
    assert ids == expected  # every point exactly once, in study order
    assert not journal.exists()
    written, total, _ = run_sweep(str(study), str(out), resume=True, workers=1)  # finished: runs nothing
    assert (written, total) == (0, len(expected)) and _ids(out) == expected


def test_process_pool_gives_the_same_rows_as_one_process(tmp_path):
    points = expand_points(load_sweep_config(small_config(tmp_path, requests=4)))
    fn = bind(evaluate_chunk, derive=fake_derive, area=fake_area)
    serial = [r for rows in run_chunks(fn, chunked(points, 1), workers=1) for r in rows]
    pooled = [r for rows in run_chunks(fn, chunked(points, 1), workers=2) for r in rows]
    key = ("point_id", "feasible", "output_tokens_per_s")
    assert sorted(tuple(r.get(k) for k in key) for r in pooled) == sorted(tuple(r.get(k) for k in key) for r in serial)


def test_dask_executor_on_a_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    points = expand_points(load_sweep_config(small_config(tmp_path, requests=4)))
    fn = bind(evaluate_chunk, derive=fake_derive, area=fake_area)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        rows = [r for chunk in run_chunks(fn, chunked(points, 2), executor="dask", address=cluster.scheduler_address)
                for r in chunk]
    assert sorted(r["point_id"] for r in rows) == sorted(point_id(p) for p in points)


def test_executor_flags_are_checked():
    with pytest.raises(InputError, match="executor"):
        list(run_chunks(len, [[1]], executor="mpi"))
    with pytest.raises(InputError, match="address"):
        list(run_chunks(len, [[1]], executor="local", address="tcp://x:1"))


def test_store_refuses_other_suffixes(tmp_path):
    with pytest.raises(InputError, match="parquet or .csv"):
        ResultStore(tmp_path / "r.txt", resume=False)


def test_progress_line_shows_rate_and_eta():
    class Sink:
        text = ""

        def write(self, s):
            Sink.text += s

        def flush(self):
            pass

    bar = Progress(enabled=True, stream=Sink())
    bar.start(10)
    bar.update(10)
    bar.finish()
    assert "10/10" in Sink.text and "points/s" in Sink.text and "ETA" in Sink.text
    quiet = Progress(enabled=False, stream=Sink())
    before = Sink.text
    quiet.start(3)
    quiet.update(3)
    assert Sink.text == before


# --- plots ----------------------------------------------------------------------------------------------------
def test_pareto_front_keeps_only_undominated_points():
    x = np.array([1.0, 2.0, 3.0, 2.5, 0.5])
    y = np.array([5.0, 4.0, 1.0, 4.5, 1.0])
    # larger x and larger y are better: (3,1), (2.5,4.5), (1,5) undominated; (2,4) and (0.5,1) dominated
    assert list(pareto_front(x, y)) == [0, 3, 2]
    # smaller x better (area): (0.5,1), (1,5) undominated
    assert list(pareto_front(x, y, minimize_x=True)) == [4, 0]


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_plot_sweep_writes_the_file(tmp_path, suffix):
    pytest.importorskip("matplotlib")
    cfg = small_config(tmp_path, requests=4)
    out, _, _ = run_sweep(str(cfg), str(tmp_path / "r.csv"), derive=fake_derive, area=fake_area, workers=1)
    result = tmp_path / "r.csv"
    frame = pd.read_csv(result)
    frame["output_tokens_per_j"] = frame["output_tokens_per_s"] / 5000.0  # fake has no power model
    frame.to_csv(result, index=False)
    target = plot_sweep(result, tmp_path / f"plot{suffix}")
    assert target.stat().st_size > 1000
    with pytest.raises(InputError, match="png or .svg"):
        plot_sweep(result, tmp_path / "plot.pdf")


@pytest.mark.skipif(not HAVE_REAL, reason="asicsim.chip.programmability not built yet")
def test_cli_sweep_with_the_real_chip_model(tmp_path):
    out = tmp_path / "r.csv"
    assert main(["sweep", str(small_config(tmp_path, requests=4)), "--out", str(out), "--quiet",
                 "--workers", "1"]) == 0
    assert len(_ids(out)) == 4


@pytest.mark.skipif(not HAVE_REAL, reason="asicsim.chip.programmability not built yet")
def test_unknown_spec_parameter_is_a_config_error(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[parameters]\nwarp_drive = [1, 2]\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "r.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "parameters.warp_drive" in err
