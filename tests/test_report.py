"""`asicsim report`: one self-contained HTML page per run folder, compare, claim and sweep; rendered in headless
Chromium where the machine has it (CI installs it): the page loads without console errors and shows its tables
and every plot."""

from __future__ import annotations

import json
import os
import re
import shutil

import pandas as pd
import pytest

from asicsim.cli import main

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """A run folder, a compare JSON, a claim JSON and sweep results, each made by the CLI as a user would."""
    from test_sweep import fake_area, fake_derive, small_config

    from asicsim.commands.sweep import run_sweep

    root = tmp_path_factory.mktemp("report")
    made = {"run": root / "run"}
    assert main(["run", "--hw", "h100-sxm", "--chips", "8", "--model", "llama-3.1-8b", "--requests", "12",
                 "--rate", "20", "--out", str(made["run"]), "--quiet", "--json"]) == 0
    for name, argv in (("compare", ["compare", "--hw", "sohu,h100-sxm,edge-npu", "--model", "llama-3.1-8b",
                                    "--isl", "128", "--osl", "8", "--requests", "4", "--json"]),
                       ("claim", ["claim", "groq-llama-2-70b", "--json"]),
                       ("scale", ["scale", "--model", "llama-3.1-8b", "--hw", "h100-sxm,sohu", "--chips", "8,64",
                                  "--isl", "256", "--osl", "32", "--json"])):
        import contextlib
        import io

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(argv) == 0
        made[name] = root / f"{name}.json"
        made[name].write_text(buffer.getvalue())
    cfg = small_config(root, requests=4)
    run_sweep(str(cfg), str(root / "sweep.csv"), derive=fake_derive, area=fake_area, workers=1)
    frame = pd.read_csv(root / "sweep.csv")
    frame["output_tokens_per_j"] = frame["output_tokens_per_s"] / 5000.0  # the fake derivation has no power model
    frame.to_csv(root / "sweep.csv", index=False)
    made["sweep"] = root / "sweep.csv"
    return made


EXPECTED = {"run": (1, 2), "compare": (2, 1), "claim": (1, 1), "sweep": (1, 1), "scale": (1, 1)}  # (tables, images)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_source_makes_a_self_contained_page(sources, kind, tmp_path, capsys):
    page = tmp_path / f"{kind}.html"
    assert main(["report", str(sources[kind]), "--out", str(page)]) == 0, capsys.readouterr().err
    text = page.read_text()
    tables, images = EXPECTED[kind]
    assert text.count("<table") >= tables
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,[A-Za-z0-9+/=]{1000,}"', text)) == images
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing to fetch: it opens offline


# CI installs Chromium and sets ASICSIM_REQUIRE_CHROMIUM=1, so there a missing browser fails instead of skipping.
@pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("ASICSIM_REQUIRE_CHROMIUM"),
                    reason="no headless Chromium on this machine")
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_page_renders_in_headless_chromium_without_console_errors(sources, kind, tmp_path, capsys):
    from asicsim.commands.report import render_in_chromium

    page, shot = tmp_path / f"{kind}.html", tmp_path / f"{kind}.png"
    assert main(["report", str(sources[kind]), "--out", str(page), "--screenshot", str(shot)]) == 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000  # the page, drawn
    dom, console = render_in_chromium(page)
    assert console == []
    assert 'data-images="ok"' in dom  # every inlined plot decoded (the page's load check)
    tables, images = EXPECTED[kind]
    assert dom.count("<table") >= tables and dom.count("<img") == images


@pytest.mark.parametrize("argv, field", [
    (["report", "/nonexistent/folder", "--out", "x.html"], "path"),
    (["report", ".", "--out", "x.txt"], "out"),
])
def test_bad_input_is_one_line_and_exit_2(argv, field, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and field in err[0]


def test_a_json_that_is_no_run_claim_or_compare_is_refused(tmp_path, capsys):
    bogus = tmp_path / "x.json"
    bogus.write_text(json.dumps({"hello": 1}))
    assert main(["report", str(bogus), "--out", str(tmp_path / "x.html")]) == 2
    assert "not a compare, run or claim JSON" in capsys.readouterr().err
