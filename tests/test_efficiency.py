"""`asicsim efficiency`: peak TOPS/W next to delivered tokens/J; the bounds every row must respect."""

from __future__ import annotations

import json

import pytest

from asicsim.analysis.efficiency import EfficiencyWorkload, efficiency_row, serving_dtype
from asicsim.cli import main
from asicsim.core.registry import make_device

SMALL = EfficiencyWorkload(model="llama-3.1-8b", isl=256, osl=32, requests=8)


@pytest.mark.parametrize("name", ["sohu", "h100-sxm", "a100-sxm-80g", "gb200"])
def test_delivered_efficiency_is_bounded_by_peak_over_static_power(name):
    row = efficiency_row(name, SMALL)
    device = make_device(name, 1)
    static_w = device.power_limits().static_power_w
    assert row["error"] == "" and row["chips"] >= 1
    # energy >= static power x makespan on every chip, so tokens/J <= tokens/s / (chips x static W)
    assert row["output_tokens_per_j"] <= row["output_tokens_per_s"] / (row["chips"] * static_w) * (1 + 1e-9)
    # ops done per second never exceed the peak, and power never falls below static power
    assert row["effective_tops_per_w"] <= device.peak_flops_per_s(row["dtype"]) / static_w / 1e12
    assert 0 < row["mfu"] <= 1
    assert row["peak_tops_per_w_best"] >= row["peak_tops_per_w"]


def test_serving_dtype_prefers_fp8_then_int8():
    assert serving_dtype(make_device("h100-sxm", 1)) == "fp8"
    assert serving_dtype(make_device("a100-sxm-80g", 1)) == "int8"  # no fp8 datapath, integer tensor cores


def test_a_spec_that_cannot_serve_keeps_a_row_with_the_reason():
    row = efficiency_row("sohu", EfficiencyWorkload(model="llama-3.1-8b", isl=128, osl=8, requests=2, dtype="int8"))
    assert row["chips"] is None and row["output_tokens_per_j"] is None
    assert "no int8 datapath" in row["error"]
    assert row["peak_tops_per_w"] > 0  # the datasheet side is still shown


def test_cli_json_has_one_object_per_spec_with_its_name(capsys):
    assert main(["efficiency", "--hw", "sohu,h100-sxm", "--isl", "128", "--osl", "8", "--requests", "4",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["sohu", "h100-sxm"]
    assert all(r["output_tokens_per_j"] > 0 and "workload" in r for r in rows)


def test_cli_unknown_spec_is_one_line_and_exit_2(capsys):
    assert main(["efficiency", "--hw", "h100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "h100" in err[0]


def test_api_returns_the_same_rows_as_a_dataframe():
    import asicsim.api as api

    frame = api.efficiency("sohu,h100-sxm", isl=128, osl=8, requests=2)
    assert list(frame["name"]) == ["sohu", "h100-sxm"]
    row = efficiency_row("sohu", EfficiencyWorkload(isl=128, osl=8, requests=2))
    assert frame.iloc[0]["output_tokens_per_j"] == pytest.approx(row["output_tokens_per_j"])
