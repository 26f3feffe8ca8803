"""Where sweep points run: a local process pool (default) or a Dask distributed cluster.

Both take chunks of points and yield each chunk's rows as soon as it finishes (completion order), so
the caller can write rows as they arrive. Chunks keep per-task overhead small; a killed sweep loses
only the chunks in flight, which were never written and run again on resume.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from functools import partial
from typing import Callable, Iterator, Sequence

from asicsim.workloads.errors import InputError, install_hint

__all__ = ["EXECUTORS", "chunked", "run_local", "run_dask", "run_chunks", "bind"]

EXECUTORS = ("local", "dask")


def chunked(items: Sequence, size: int) -> list[list]:
    """Consecutive slices of at most `size` items."""
    return [list(items[i:i + size]) for i in range(0, len(items), max(size, 1))]


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def worker_init() -> None:
    """Pool-worker start-up: die with the parent (Linux PR_SET_PDEATHSIG: SIGKILL when the parent exits, even
    by SIGKILL), and leave Ctrl-C to the parent, which stops the pool and exits 130 with one line."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # no prctl: workers then end when the pool's queue closes
            pass
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def run_local(fn: Callable[[list], list], chunks: list[list], workers: int) -> Iterator[list]:
    """Each chunk's result, in completion order, from a pool of `workers` processes (1: in this process)."""
    if workers <= 1:
        for chunk in chunks:
            yield fn(chunk)
        return
    # fork: workers inherit the loaded modules and compiled kernels (no start-up cost); forking a process
    # that already runs threads can deadlock, so then (and where fork is missing) start clean processes.
    methods = multiprocessing.get_all_start_methods()
    method = "fork" if "fork" in methods and threading.active_count() == 1 else (
        "forkserver" if "forkserver" in methods else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method),
                             initializer=worker_init) as pool:
        pending = set()
        queue = iter(chunks)
        for chunk in queue:  # keep two chunks per worker queued, submit more as they finish
            pending.add(pool.submit(fn, chunk))
            if len(pending) >= 2 * workers:
                break
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
                    nxt = next(queue, None)
                    if nxt is not None:
                        pending.add(pool.submit(fn, nxt))
        finally:
            for fut in pending:
                fut.cancel()


def run_dask(fn: Callable[[list], list], chunks: list[list], address: str | None, workers: int) -> Iterator[list]:
    """Each chunk's result from a Dask cluster at `address` (a local one of `workers` processes if None)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise InputError("--executor", "dask", f"needs the optional extra: {install_hint('distributed')}") from None
    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=max(workers, 1), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        address = cluster.scheduler_address
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise InputError("--address", address, f"cannot reach the Dask scheduler: {exc}") from None
    try:
        futures = client.map(fn, chunks, pure=False)
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_chunks(fn: Callable[[list], list], chunks: list[list], *, executor: str = "local",
               address: str | None = None, workers: int = 0) -> Iterator[list]:
    """Dispatch to an executor by name; `workers` 0 means one per CPU."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise InputError("--workers", "workers", f"must be a whole number >= 1, got {workers!r}")
    if executor not in EXECUTORS:
        raise InputError("--executor", "executor", f"must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if address is not None and executor != "dask":
        raise InputError("--address", "address", "only applies to --executor dask")
    workers = workers or os.cpu_count() or 1
    if executor == "dask":
        return run_dask(fn, chunks, address, workers)
    return run_local(fn, chunks, workers)


def bind(fn: Callable, **kwargs) -> Callable:
    """A picklable `fn` with keyword arguments fixed (what executors ship to workers)."""
    return partial(fn, **kwargs)
