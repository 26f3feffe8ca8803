"""Generated bad and odd inputs for the CLI: flags, spec TOMLs, model configs, trace CSVs and sweep studies.

`check(case, tmp)` writes the case's files, runs `asicsim.cli.main` in this process under an alarm, and
returns (exit code, stderr). The contract every case must keep: exit 0, or exit 2 with exactly one line on
stderr; never a traceback, never a hang. Used by tests/test_fuzz.py (a few hundred cases) and
benchmarks/fuzz_cli.py (thousands).
"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import tomllib
from pathlib import Path

from hypothesis import strategies as st

from asicsim.cli import main

ROOT = Path(__file__).resolve().parent.parent
SOHU = tomllib.loads((ROOT / "asicsim" / "specs" / "sohu.toml").read_text())
H100 = tomllib.loads((ROOT / "asicsim" / "specs" / "h100-sxm.toml").read_text())
CONFIG_8B = json.loads((ROOT / "workloads" / "configs" / "llama-3.1-8b.json").read_text())
CASE_TIMEOUT_S = 60

# Odd values of every type a user might type or a file might hold.
ODD = st.one_of(
    st.integers(-3, 3), st.sampled_from([0, -1, 10**9, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.5, 1.5, -0.0, 1e-300, 1e300]),
    st.booleans(), st.none(), st.text(max_size=6), st.sampled_from(["fp8", "bf16", "fp4", "int4", "", "auto"]),
    st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.sampled_from(["value", "x"]), st.integers(), max_size=2),
)
FLAG_VALUE = st.one_of(st.integers(-2, 9).map(str), st.sampled_from(["0", "-1", "1e9", "nan", "inf", "x", "", "1.5",
                                                                     "fp4", "fp8", "bf16", "99999999999"]))
RUN_FLAGS = ("--chips", "--tp", "--pp", "--replicas", "--isl", "--osl", "--requests", "--max-batch", "--dtype",
             "--kv-dtype", "--max-tokens-per-step", "--rate", "--time-scale", "--scheduler", "--micro-batches",
             "--kv-block-tokens", "--slo-ttft", "--slo-tpot", "--harness", "--isl-dist", "--osl-dist", "--seed",
             "--router", "--model", "--hw")


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else ("-inf" if v == -float("inf") else repr(v)))
    if isinstance(v, (int, str)):
        return json.dumps(v) if isinstance(v, str) else str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    return '""'  # None has no TOML form: an empty string


def _spec_text(table: dict) -> str:
    return "\n".join(f"{k} = {_toml_value(v)}" for k, v in table.items()) + "\n"


@st.composite
def run_flags(draw) -> dict:
    """`asicsim run` with a few random flags (kept to small workloads so valid cases finish quickly)."""
    argv = ["run", "--hw", draw(st.sampled_from(["sohu", "h100-sxm", "a100-sxm-80g", "nochip"])), "--quiet",
            "--chips", draw(st.sampled_from(["1", "2", "8", "0", "3"])), "--model", "llama-3.1-8b",
            "--requests", draw(st.sampled_from(["1", "4", "0", "x"])), "--isl", "64", "--osl", "4"]
    for flag in draw(st.lists(st.sampled_from(RUN_FLAGS[3:]), max_size=4, unique=True)):
        if flag in ("--requests", "--isl", "--osl", "--isl-dist", "--osl-dist"):
            value = draw(st.sampled_from(["3", "0", "-5", "1e3", "fixed:32", "uniform:9:1", "lognormal:100:0.5",
                                          "fit:nope"]))
        else:
            value = draw(FLAG_VALUE)
        argv += [flag, value]
    return {"argv": argv, "files": {}}


@st.composite
def spec_files(draw) -> dict:
    """A built-in spec with a field deleted, set to an odd value, or an unknown key added."""
    table = dict(draw(st.sampled_from([SOHU, H100])))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(table) + ["bogus_key"]))
        if draw(st.booleans()) and key in table:
            del table[key]
        else:
            table[key] = draw(ODD)
    return {"argv": ["run", "--hw", "{spec.toml}", "--chips", "8", "--requests", "2", "--isl", "64", "--osl", "2",
                     "--quiet", "--model", "llama-3.1-8b", "--widen"], "files": {"spec.toml": _spec_text(table)}}


@st.composite
def model_files(draw) -> dict:
    """Llama-3.1-8B's config.json with keys removed, set to odd values, or the file made invalid."""
    raw = dict(CONFIG_8B)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(raw) + ["num_local_experts", "sliding_window", "head_dim"]))
        if draw(st.booleans()) and key in raw:
            del raw[key]
        else:
            raw[key] = draw(ODD)
    text = json.dumps(raw, allow_nan=True) if draw(st.integers(0, 9)) else "{ not json"
    return {"argv": ["run", "--hw", "h100-sxm", "--chips", "1", "--model", "{config.json}", "--requests", "2",
                     "--isl", "64", "--osl", "2", "--quiet"], "files": {"config.json": text}}


@st.composite
def trace_files(draw) -> dict:
    """A trace CSV with odd headers, arrival times and token counts."""
    header = draw(st.sampled_from(["arrived_at,num_prefill_tokens,num_decode_tokens",
                                   "TIMESTAMP,ContextTokens,GeneratedTokens", "a,b,c", ""]))
    cell = st.one_of(st.integers(-5, 300).map(str), st.sampled_from(["inf", "nan", "1e300", "x", "", "2.5", "True",
                                                                    "2023-11-16 18:15:46.6805900"]))
    rows = draw(st.lists(st.tuples(cell, cell, cell), max_size=5))
    text = header + "\n" + "".join(",".join(r) + "\n" for r in rows)
    return {"argv": ["run", "--hw", "h100-sxm", "--chips", "1", "--model", "llama-3.1-8b", "--trace",
                     "{trace.csv}", "--quiet"], "files": {"trace.csv": text}}


@st.composite
def sweep_files(draw) -> dict:
    """A small sweep study with odd values; points run in this process."""
    params = {k: draw(st.one_of(ODD, st.lists(st.sampled_from([1e9, 1.5e9, 64, 128, -1, 0]), min_size=1, max_size=2)))
              for k in draw(st.lists(st.sampled_from(["clock_hz", "array_rows", "hbm_stacks", "bogus", "sram_bytes"]),
                                     max_size=2, unique=True))}
    work = {"model": draw(st.sampled_from(["llama-3.1-8b", "nomodel"])), "requests": draw(st.sampled_from([2, 0, -1])),
            "isl": 64, "osl": 2, "chips": draw(st.sampled_from([1, 8, 0]))}
    base = draw(st.sampled_from(["sohu", "h100-sxm", "nochip", "sohu"]))
    text = f"base = {json.dumps(base)}\n[parameters]\n{_spec_text(params) if params else ''}[workload]\n{_spec_text(work)}"
    return {"argv": ["sweep", "{study.toml}", "--out", "{out}/r.csv", "--quiet", "--workers", "1"],
            "files": {"study.toml": text}}


CASES = st.one_of(run_flags(), spec_files(), model_files(), trace_files(), sweep_files())


class _Hang(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Hang()


def check(case: dict, tmp: Path) -> tuple[int, str]:
    """Run one case; return (exit code, stderr). Raises on a traceback-worthy exception or a hang."""
    tmp.mkdir(parents=True, exist_ok=True)
    names = {}
    for name, text in case["files"].items():
        (tmp / name).write_text(text)
        names["{" + name + "}"] = str(tmp / name)
    names["{out}"] = str(tmp / "out")
    argv = [names.get(a, a.replace("{out}", str(tmp / "out"))) for a in case["argv"]]
    err, out = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_TIMEOUT_S)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
    except _Hang:
        raise AssertionError(f"hung for {CASE_TIMEOUT_S} s: {argv}") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, err.getvalue()


def assert_contract(case: dict, code: int, err: str) -> None:
    assert code in (0, 2), (case, code, err)
    assert "Traceback" not in err, (case, err)
    if code == 2:
        assert err.count("\n") == 1 and err.startswith("asicsim"), (case, err)
