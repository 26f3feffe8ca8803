"""Short commands run interpreted; the first longer run after an install compiles the kernels in the background.

Loading numba costs a process about half a second even with every kernel in its on-disk cache (importing it ~0.25
s, its cached kernels ~0.3 s), and compiling the kernels takes ~25 s of CPU once per install. A burst of requests
on built-in specs (the README's `asicsim compare`, a `run` without arrivals, `claim`, `gemm`, `efficiency`) does
less work than that interpreted: the kernels are plain Python when not compiled (`asicsim.kernels.jit`; CI runs
the test suite both ways, the results are equal). So such a short command always runs interpreted and numba is
never imported. A light command with arrivals (`--rate`, up to MAX_INTERPRETED_REQUESTS requests) or on a spec
file runs interpreted only while no warm-up has completed for this install. Whenever one runs interpreted on an
install with no completed warm-up, it says so in one line at a terminal and starts one detached process
(`asicsim.commands._warm`) that compiles the kernels a typical run needs into numba's cache and then writes a
stamp. Long work (`--trace`, `--exact`, sweeps, validation) compiles in process as before, with its notice.
`ASICSIM_COLD_START=0` turns all this off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["LIGHT_COMMANDS", "HEAVY_FLAGS", "ARRIVAL_FLAGS", "NOTICE", "cache_dir", "warm_stamp", "is_warm",
           "should_interpret", "is_short", "interpret", "start_background_compile", "stop"]

# Commands whose default work is about a second interpreted (with no flag from HEAVY_FLAGS).
LIGHT_COMMANDS = frozenset({"compare", "run", "efficiency", "claim", "gemm"})
HEAVY_FLAGS = ("--trace", "--exact")
ARRIVAL_FLAGS = ("--rate",)  # requests arriving over time: every step its own, the ASIC's ~5x slower interpreted
MAX_INTERPRETED_REQUESTS = 2000  # interpreted, 1,000 requests with arrivals take ~10 s; compiling takes ~25 s
LOCK_STALE_S = 600.0  # a warm-up lock older than this is from a process that died
NOTICE = ("asicsim: first run after install: interpreting this one; numba kernels compile in the background "
          "(~30 s of CPU) for the next runs")


def cache_dir() -> Path:
    """Where the warm-up stamp lives: $ASICSIM_CACHE_DIR, else $XDG_CACHE_HOME/asicsim, else ~/.cache/asicsim."""
    if os.environ.get("ASICSIM_CACHE_DIR"):
        return Path(os.environ["ASICSIM_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asicsim"


def _key() -> str:
    """Python, numba and the kernel sources (size and mtime: numba's own cache check; numba by its package's
    version file) and the numba cache directory: a warm-up stamp is valid only for the exact code numba would
    load. Found, not imported (importing the kernels would load numba), and without importlib.metadata (~25 ms)."""
    parts = [sys.version, os.environ.get("NUMBA_CACHE_DIR", "")]
    for name in ("numba", "asicsim.kernels"):
        found = importlib.util.find_spec(name)
        folder = Path(next(iter(found.submodule_search_locations or []), "")) if found else Path()
        files = sorted(folder.glob("*.py")) if name != "numba" else [folder / "_version.py", folder / "__init__.py"]
        parts += [f"{name}/{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files if p.is_file()]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def warm_stamp() -> Path:
    """The file the background warm-up writes when it has compiled the kernels for this install."""
    return cache_dir() / f"kernels-warm-{_key()}"


def is_warm() -> bool:
    """Whether the background warm-up has compiled the kernels for this install (False if that cannot be read)."""
    try:
        return warm_stamp().exists()
    except OSError:
        return False


def is_short(words: list[str]) -> bool:
    """A light command on a burst of requests (no arrival process) on built-in specs: cheaper interpreted than
    loading numba. A spec file may describe a chip whose GEMM pricing is heavier than any built-in's (64 arrays of
    128 x 128: `run` takes 1.6 s interpreted, 0.6 s compiled), so one compiles once the warm-up is done."""
    if any(w.split("=")[0] in ARRIVAL_FLAGS for w in words):
        return False
    return not any(value.endswith(".toml") or os.sep in value for value in _hw_values(words))


def _hw_values(words: list[str]) -> list[str]:
    """The systems named by --hw on the command line (comma-separated values of every --hw)."""
    return [v.strip() for value in _flag_values(words, "--hw") for v in value.split(",")]


def _flag_values(words: list[str], flag: str) -> list[str]:
    """Every value given to `flag` on the command line, as `--flag VALUE` or `--flag=VALUE`, in order."""
    values = []
    for i, word in enumerate(words):
        if word.startswith(flag + "="):
            values.append(word.split("=", 1)[1])
        elif word == flag and i + 1 < len(words):
            values.append(words[i + 1])
    return values


def should_interpret(words: list[str]) -> bool:
    """Whether this command line runs interpreted: a light command, no heavy flag, numba not yet loaded in this
    process, not turned off; and either short (`is_short`) or on an install with no completed warm-up."""
    if not words or words[0] not in LIGHT_COMMANDS or any(w.split("=")[0] in HEAVY_FLAGS for w in words):
        return False
    if "-h" in words or "--help" in words:
        return False
    if _requests(words) > MAX_INTERPRETED_REQUESTS:  # a long run: compiling once costs less than interpreting it
        return False
    if os.environ.get("ASICSIM_COLD_START", "1") == "0" or os.environ.get("NUMBA_DISABLE_JIT"):
        return False
    if "numba" in sys.modules:  # kernels may already be compiled in this process (the API, tests)
        return False
    return is_short(words) or not is_warm()


def _requests(words: list[str]) -> int:
    """The --requests value on the command line (0 when absent or not a number)."""
    values = _flag_values(words, "--requests")
    try:
        return int(values[0]) if values else 0
    except ValueError:
        return 0


def interpret() -> None:
    """Kernels decorated from now on stay plain Python, and numba is not imported (`asicsim.kernels.jit`)."""
    from asicsim.kernels.jit import interpret as plain_kernels

    plain_kernels()


def start_background_compile() -> subprocess.Popen | None:
    """Start the detached warm-up unless one is running (its lock is fresh); None when none was started."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / f"kernels-warm-{_key()}.lock"
        if lock.exists() and time.time() - lock.stat().st_mtime < LOCK_STALE_S:
            return None
        lock.write_text(str(os.getpid()))
    except OSError:
        return None
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    env["ASICSIM_COLD_START"] = "0"  # the warm-up itself compiles
    return subprocess.Popen([sys.executable, "-m", "asicsim.commands._warm", str(lock), str(warm_stamp())],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(process: subprocess.Popen | None) -> None:
    """Stop a warm-up this process started and free its lock (on Ctrl-C: nothing is left behind)."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()
        Path(process.args[3]).unlink(missing_ok=True)
