"""The front door speaks to a user: --version, a description, close-match suggestions, install hints that work
from a checkout."""

from __future__ import annotations

import pytest

from asicsim.cli import main
from asicsim.workloads.errors import did_you_mean, install_hint


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("asicsim ")


def test_top_level_help_describes_the_tool(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "COMMAND --help" in out and "front door" not in out


@pytest.mark.parametrize("argv, suggestion", [
    (["run", "--hw", "h100", "--chips", "8"], "did you mean h100-sxm?"),
    (["run", "--hw", "sohuu", "--chips", "8"], "did you mean sohu?"),
    (["run", "--hw", "h100-sxm", "--chips", "8", "--model", "llama-3-70"], "did you mean llama-3-70b"),
])
def test_unknown_names_suggest_the_closest(argv, suggestion, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and suggestion in err[0]


def test_no_suggestion_for_nothing_close():
    assert did_you_mean("zzzz", ["h100-sxm", "sohu"]) == ""


def test_install_hint_works_from_a_checkout():
    assert "pip install '.[plot]'" in install_hint("plot") and "asicsim[plot]" in install_hint("plot")


def test_required_chips_help_has_no_default_none(capsys):
    assert main(["run", "--help"]) == 0
    assert "default: None" not in capsys.readouterr().out


TABULAR = [["specs"], ["models", "llama-3.1-8b", "qwen3-0.6b"], ["efficiency", "--hw", "sohu,h100-sxm", "--isl", "64",
                                                                  "--osl", "4", "--requests", "2"],
           ["compare", "--hw", "sohu,h100-sxm", "--model", "llama-3.1-8b", "--isl", "64", "--osl", "4", "--requests",
            "2"],
           ["gemm", "--rows", "32", "--cols", "32", "--dataflow", "ws", "--m", "64", "--n", "64", "--k", "64"]]


@pytest.mark.parametrize("argv", TABULAR, ids=lambda a: a[0])
def test_every_tabular_command_speaks_csv_md_and_json(argv, capsys):
    import csv
    import io
    import json

    assert main([*argv, "--format", "json"]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main([*argv, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == as_json or argv[0] in ("compare", "efficiency")  # wall_s differs
    rows = as_json if isinstance(as_json, list) else [as_json]
    assert main([*argv, "--format", "csv"]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == len(rows) + 1 and len(set(table[0])) == len(table[0])
    assert main([*argv, "--format", "md"]) == 0
    md = capsys.readouterr().out.strip().splitlines()
    assert md[0].startswith("| ") and set(md[1]) <= set("|-")


def test_compare_runs_any_mix_and_lists_what_cannot_run(capsys):
    import json

    argv = ["compare", "--hw", "sohu,tpu-v5e,edge-npu", "--model", "llama-3.1-8b", "--isl", "64", "--osl", "4",
            "--requests", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "tpu-v5e: no fp8 datapath; ran int8" in out  # no --dtype: each system's own datapath
    assert "edge-npu: cannot run:" in out  # one device asked to be 8: listed, the others still run
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["hardware"] for r in rows] == ["sohu", "tpu-v5e", "edge-npu"] and "error" in rows[2]
    assert rows[1]["dtype"] == "int8" and rows[0]["dtype"] == "fp8"
    assert main([*argv[:2], "sohu,tpu-v5e", *argv[3:], "--dtype", "fp8"]) == 0
    assert "tpu-v5e: cannot run: dtype: tpu-v5e has no fp8 datapath" in capsys.readouterr().out  # asked: not widened
    assert main([*argv[:2], "edge-npu", *argv[3:]]) == 2  # nothing could run: the reason, exit 2


def test_progress_bar_shows_an_eta():
    import io

    from asicsim.commands.run import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(stream=stream, delay_s=0.0)
    bar(30.0, 5, 20)
    bar(60.0, 10, 20)
    bar.close()
    text = stream.getvalue()
    assert "10/20 requests" in text and "ETA" in text and "s simulated" in text


def _captured(argv: list[str]) -> str:
    """What `main(argv)` prints, run in this process."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


def test_the_console_script_exits_with_mains_code_and_freezes_what_is_left(monkeypatch):
    """`entry` (the console script and `python -m asicsim`) flushes its output, runs the exit handlers and leaves
    through `os._exit` with `main`'s code, after moving what the command left out of the collector's reach; `main`
    itself returns and leaves the collector alone. The real process: its code and its whole output."""
    import gc
    import os
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    import asicsim.cli as cli

    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["asicsim"] == "asicsim.cli:entry"
    monkeypatch.setattr(cli.sys, "argv", ["asicsim", "run", "--hw", "no-such-chip", "--chips", "8"])
    ran: list[bool] = []
    monkeypatch.setattr(cli.atexit, "_run_exitfuncs", lambda: ran.append(True))

    def leave(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(cli.os, "_exit", leave)
    gc.unfreeze()
    try:
        assert main(["--version"]) == 0 and gc.get_freeze_count() == 0
        with pytest.raises(SystemExit) as done:
            cli.entry()
        assert done.value.code == 2 and gc.get_freeze_count() > 0 and ran == [True]
        bad = subprocess.run([sys.executable, "-m", "asicsim", "run", "--hw", "no-such-chip", "--chips", "8"],
                             capture_output=True, text=True)
        assert bad.returncode == 2 and "no-such-chip" in bad.stderr and "Traceback" not in bad.stderr
        buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # output held in buffers
        good = subprocess.run([sys.executable, "-m", "asicsim", "models"], capture_output=True, text=True, env=buffered)
        assert good.returncode == 0 and good.stdout == _captured(["models"])
    finally:
        gc.unfreeze()


def test_the_console_script_runs_blas_on_one_thread_unless_the_user_says_otherwise():
    """`entry` sets OPENBLAS_NUM_THREADS=1 before numpy is first imported (the tool's arrays are small), keeping a
    value the user set; what numpy sees is read in the process itself, at exit."""
    import os
    import subprocess
    import sys

    probe = ("import atexit, os, sys, asicsim.cli as cli\n"
             "assert 'numpy' not in sys.modules\n"
             "atexit.register(lambda: print('threads', os.environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules))\n"
             "sys.argv = ['asicsim', 'models']\n"
             "cli.entry()\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    for preset, expected in ((None, "threads 1 True"), ("3", "threads 3 True")):
        run_env = env if preset is None else {**env, "OPENBLAS_NUM_THREADS": preset}
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=run_env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == expected



def test_a_commands_imports_run_with_the_collector_paused_and_it_resumes(monkeypatch):
    """`main` builds its parser (the command's imports) with the cyclic collector paused, then restores it: on if it
    was on, off if the caller had turned it off; nothing stays frozen."""
    import gc

    import asicsim.cli as cli

    seen: list[bool] = []
    build = cli.build_parser

    def recording(only=None):
        seen.append(gc.isenabled())
        return build(only)

    monkeypatch.setattr(cli, "build_parser", recording)
    assert gc.isenabled()
    assert main(["--version"]) == 0
    assert seen == [False] and gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        assert main(["--version"]) == 0
        assert seen == [False, False] and not gc.isenabled()
    finally:
        gc.enable()
