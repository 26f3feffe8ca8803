"""The first run after an install: interpret it, and compile the numba kernels in the background for later runs.

Compiling the kernels takes ~25 s of CPU once per install (numba then loads them from its on-disk cache). A short
command (the README's `asicsim compare`, a run without a trace) does about 1 s of work interpreted, with results
equal to the compiled ones (the kernels are plain Python under numba's DISABLE_JIT; CI runs the test suite both
ways). So when no warm-up has completed for this install, such a command runs interpreted, says so in one line at
a terminal, and starts one detached process (`asicsim.commands._warm`) that compiles the kernels a typical run
needs into numba's cache and then writes a stamp. Long work (`--trace`, `--exact`, sweeps, validation) compiles
in process as before, with its notice. `ASICSIM_COLD_START=0` turns this off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

__all__ = ["LIGHT_COMMANDS", "HEAVY_FLAGS", "NOTICE", "cache_dir", "warm_stamp", "should_interpret", "interpret",
           "start_background_compile", "stop"]

# Commands whose default work is about a second interpreted (with no flag from HEAVY_FLAGS).
LIGHT_COMMANDS = frozenset({"compare", "run", "efficiency", "claim", "gemm"})
HEAVY_FLAGS = ("--trace", "--exact")
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
    """Python, numba and asicsim versions, the kernel sources (size and mtime: numba's own cache check) and the
    numba cache directory: a warm-up stamp is valid only for the exact code numba would load."""
    found = importlib.util.find_spec("asicsim.kernels")  # found, not imported (importing would load numba)
    kernels = Path(next(iter(found.submodule_search_locations or []), "")) if found else Path()
    parts = [sys.version, _version("numba"), _version("asicsim"), os.environ.get("NUMBA_CACHE_DIR", "")]
    parts += [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(kernels.glob("*.py"))]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def warm_stamp() -> Path:
    """The file the background warm-up writes when it has compiled the kernels for this install."""
    return cache_dir() / f"kernels-warm-{_key()}"


def should_interpret(words: list[str]) -> bool:
    """Whether this command line runs interpreted: a light command, no heavy flag, numba not yet loaded in this
    process, not turned off, and no completed warm-up for this install."""
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
    try:
        return not warm_stamp().exists()
    except OSError:
        return False


def _requests(words: list[str]) -> int:
    """The --requests value on the command line (0 when absent or not a number)."""
    for i, word in enumerate(words):
        value = word.split("=", 1)[1] if word.startswith("--requests=") else (
            words[i + 1] if word == "--requests" and i + 1 < len(words) else None)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def interpret() -> None:
    """Kernels decorated from now on stay plain Python (numba's DISABLE_JIT, read at decoration time)."""
    import numba

    numba.config.DISABLE_JIT = True


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
