"""`asicsim scale` (analysis/scale.py): a size is replicas of one group's run, exactly; the network costs power and
never saves it; the command's outputs (JSON keys, Parquet, PNG) and its errors."""

from __future__ import annotations

import json

import pytest

from asicsim.analysis.scale import ScaleWorkload, group_result, scale_rows
from asicsim.cli import main
from asicsim.core.runner import RunSpec, run_workload

WORK = ScaleWorkload(model="llama-3.1-8b", isl=256, osl=64)


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return scale_rows(["h100-sxm"], [8, 64, 4096], WORK)


def test_a_size_is_replicas_of_one_group_run_exactly(rows) -> None:
    for row in rows:
        group = group_result("h100-sxm", WORK, row["tp"], row["pp"])
        assert row["replicas"] * row["group_chips"] == row["chips"]
        assert row["output_tokens_per_s"] == group.output_tokens_per_s * row["replicas"]
        assert row["max_batch"] == group.max_batch


def test_data_parallel_replicas_equal_independent_runs() -> None:
    # 16 chips as two tp=8 replicas, a burst dealt round robin, against one 8-chip replica with half the burst.
    kw = dict(hardware="h100-sxm", tp=8, model="llama-3.1-8b", dtype="fp8", isl=256, osl=32)
    two = run_workload(RunSpec(chips=16, requests=64, **kw)).summary
    one = run_workload(RunSpec(chips=8, requests=32, **kw)).summary
    assert two["replicas"] == 2
    assert two["output_tokens_per_s"] == pytest.approx(2 * one["output_tokens_per_s"], rel=1e-12)
    assert two["makespan_s"] == one["makespan_s"]


def test_tokens_per_chip_constant_and_the_network_never_raises_tokens_per_watt(rows) -> None:
    assert len({round(r["tokens_per_s_per_chip"], 9) for r in rows}) == 1
    inside, outside = rows[0], rows[1:]
    assert inside["network_tiers"] == 0 and inside["power_network_w"] == 0.0
    for r in outside:
        assert r["network_tiers"] > 0 and r["power_network_w"] > 0.0
        assert r["tokens_per_s_per_w"] < inside["tokens_per_s_per_w"]
    for r in rows:
        parts = r["power_chips_w"] + r["power_host_w"] + r["power_network_w"] + r["power_facility_overhead_w"]
        assert r["power_w"] == pytest.approx(parts)
        assert r["tokens_per_s_per_w"] == pytest.approx(r["output_tokens_per_s"] / r["power_w"])


def test_a_larger_deployment_draws_more_power(rows) -> None:
    powers = [r["power_w"] for r in rows]
    assert powers == sorted(powers) and len(set(powers)) == len(powers)


def test_the_command_writes_json_parquet_and_a_plot(tmp_path, capsys) -> None:
    out, png = tmp_path / "scale.parquet", tmp_path / "scale.png"
    code = main(["scale", "--model", "llama-3.1-8b", "--hw", "h100-sxm", "--chips", "8,16", "--isl", "256", "--osl",
                 "64", "--json", "--out", str(out), "--plot", str(png)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert [r["chips"] for r in printed] == [8, 16]
    for key in ("hardware", "chips", "layout", "output_tokens_per_s", "tokens_per_s_per_chip", "power_w",
                "tokens_per_s_per_w"):
        assert all(key in r for r in printed), key
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.read_parquet(out)
    assert list(frame["chips"]) == [8, 16]
    assert frame["output_tokens_per_s"].tolist() == [r["output_tokens_per_s"] for r in printed]
    pytest.importorskip("matplotlib")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv, needle", [
    (["--chips", "8,x"], "--chips"),
    (["--chips", "0"], "--chips"),
    (["--hw", "h100"], "did you mean h100-sxm"),
    (["--out", "rows.txt"], "--out"),
    (["--network", "nope"], "network"),
])
def test_bad_input_is_one_line_and_exit_code_2(argv, needle, capsys) -> None:
    sizes = [] if "--chips" in argv else ["--chips", "8"]
    assert main(["scale", "--model", "llama-3.1-8b", *sizes, *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err


def test_a_size_too_small_for_the_model_says_so() -> None:
    # Llama-3.1-405B in fp8 needs about 405 GB: no group of at most 4 H100s (320 GB) holds it.
    (row,) = scale_rows(["h100-sxm"], [4], ScaleWorkload(model="llama-3.1-405b", isl=256, osl=64))
    assert row["error"].startswith("no layout of at most 4 chips holds the model")
    # With 8 chips in the list the 4-chip size is told which layouts do hold it.
    row = scale_rows(["h100-sxm"], [4, 8], ScaleWorkload(model="llama-3.1-405b", isl=256, osl=64))[0]
    assert row["error"].startswith("4 chips is no multiple of a layout that holds the model: tp1 x pp8 = 8 chips")
    assert "tp8 x pp1 = 8 chips" in row["error"]


def test_moe_models_also_try_dep_groups_and_groups_may_span_domains() -> None:
    from asicsim.analysis.scale import candidate_layouts

    work = ScaleWorkload(model="qwen3-30b-a3b", isl=256, osl=16)
    layouts, _ = candidate_layouts("h100-sxm", work, 16)
    assert (16, 1, True) in layouts and (8, 1, True) in layouts and (1, 1, False) in layouts
    dense, _ = candidate_layouts("h100-sxm", WORK, 16)
    assert not any(dep for _, _, dep in dense) and (16, 1, False) in dense
    # A DEP16 group on 8-GPU servers crosses the scale-out network, and runs as such.
    across = group_result("h100-sxm", work, 16, 1, True)
    assert across.chips == 16 and across.attention_dp and across.output_tokens_per_s > 0
