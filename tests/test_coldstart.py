"""First run after an install: a light command runs interpreted with results equal to the compiled ones, while a
detached process compiles the kernels; heavy commands, a completed warm-up and the off switch compile as before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asicsim.commands import _coldstart


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ASICSIM_CACHE_DIR", str(tmp_path / "asicsim"))
    monkeypatch.delenv("ASICSIM_COLD_START", raising=False)
    monkeypatch.delenv("NUMBA_DISABLE_JIT", raising=False)
    monkeypatch.delitem(sys.modules, "numba", raising=False)  # as a fresh process sees it (restored after)
    return tmp_path / "asicsim"


@pytest.mark.parametrize("words, expected", [
    (["compare"], True), (["run", "--hw", "sohu"], True), (["efficiency"], True),
    (["run", "--trace", "azure-conv"], False), (["run", "--trace=azure-conv"], False), (["compare", "--exact"], False),
    (["sweep", "x.toml"], False), (["validate"], False), ([], False), (["run", "--help"], False),
    (["run", "--requests", "100"], True), (["run", "--requests", "50000"], False), (["compare", "--requests=9999"], False),
    (["run", "--rate", "5", "--requests", "100"], True),
])
def test_only_light_commands_run_interpreted(fresh_cache, words, expected):
    assert _coldstart.should_interpret(words) is expected


@pytest.mark.parametrize("words, warm_expected", [
    (["compare"], True), (["run", "--hw", "sohu", "--requests", "64"], True), (["claim"], True),
    (["run", "--hw", "sohu", "--rate", "20", "--requests", "40"], False), (["compare", "--rate=3"], False),
    (["run", "--hw", "my-chip.toml"], False), (["compare", "--hw=h100-sxm,specs/mine.toml"], False),
    (["compare", "--hw", "h100-sxm,sohu"], True),
])
def test_short_commands_stay_interpreted_after_the_warm_up(fresh_cache, words, warm_expected):
    """A burst (no arrival process) on built-in specs runs interpreted on a warmed install too: cheaper than
    loading numba. A run with arrivals, or on a spec file, compiles once the warm-up has completed."""
    assert _coldstart.should_interpret(words)  # cold: every light command
    _coldstart.warm_stamp().parent.mkdir(parents=True)
    _coldstart.warm_stamp().write_text("done")
    assert _coldstart.is_warm()
    assert _coldstart.should_interpret(words) is warm_expected


def test_the_switch_compiles_as_before(fresh_cache, monkeypatch):
    assert _coldstart.should_interpret(["compare"])
    monkeypatch.setenv("ASICSIM_COLD_START", "0")
    assert not _coldstart.should_interpret(["compare"])


def test_a_short_command_on_a_warm_install_imports_no_numba(tmp_path):
    """The point of interpreting a short command: numba is never imported (its import and cache load cost ~0.5 s)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ASICSIM_COLD_START", "NUMBA_DISABLE_JIT")}
    env["ASICSIM_CACHE_DIR"] = str(tmp_path)
    code = ("import sys; from asicsim.commands import _coldstart as c; p = c.warm_stamp(); "
            "p.parent.mkdir(parents=True, exist_ok=True); p.write_text('done'); "
            "from asicsim.cli import main; rc = main(['compare', '--requests', '8', '--json']); "
            "print('NUMBA', 'numba' in sys.modules, rc, file=sys.stderr)")
    err = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stderr
    assert "NUMBA False 0" in err
    assert not list(tmp_path.glob("kernels-warm-*.lock"))  # warm: no background compile started


def test_numba_already_loaded_never_interprets(fresh_cache, monkeypatch):
    import numba

    monkeypatch.setitem(sys.modules, "numba", numba)
    assert not _coldstart.should_interpret(["compare"])


def _compare(env: dict) -> list[dict]:
    out = subprocess.run([sys.executable, "-m", "asicsim", "compare", "--requests", "8", "--json"], env=env,
                         check=True, capture_output=True, text=True).stdout
    return [{k: v for k, v in s.items() if k != "wall_s"} for s in json.loads(out)]


def test_first_run_is_interpreted_equal_to_compiled_and_starts_one_warm_up(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("ASICSIM_COLD_START", "NUMBA_DISABLE_JIT")}
    env["ASICSIM_CACHE_DIR"] = str(tmp_path)
    first = _compare(env)
    try:
        started = list(tmp_path.glob("kernels-warm-*"))
        assert 1 <= len(started) <= 2  # the background compile started: its lock while it runs, its stamp once done
        assert _compare(env) == first  # a second run: interpreted again or compiled, the same results
        assert len(list(tmp_path.glob("kernels-warm-*.lock"))) <= 1  # never a second warm-up beside the first
        compiled = _compare({**env, "ASICSIM_COLD_START": "0"})
        assert compiled == first
    finally:
        for lock in tmp_path.glob("kernels-warm-*.lock"):
            _stop_warm_up(lock)


def _stop_warm_up(lock: Path) -> None:
    """Kill the warm-up process group the lock's process started (the test leaves no worker behind)."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(lock).encode() in cmd:
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(0.1)
