"""The front door: `asicsim <command>`. All I/O of the tool happens here and in asicsim.commands.

Bad input (InputError) becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import importlib.util
import os
import sys

from asicsim.workloads.errors import RUN, InputError, Interrupted

from .commands import COMMAND_MODULES

__all__ = ["main", "build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2."""

    def error(self, message: str):  # noqa: D401 - argparse hook
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the command `only` alone (what `main` parses a command line with: the
    other command modules, and what they import, stay unloaded)."""
    parser = _Parser(prog="asicsim", description="Performance model of LLM inference hardware: tokens/s, TTFT, TPOT, "
                                                 "energy and memory of a transformer ASIC next to GPUs and other "
                                                 "accelerators. `asicsim COMMAND --help` describes each command.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES if only is None else (only,):
        if importlib.util.find_spec(f"asicsim.commands.{name}") is not None:
            importlib.import_module(f"asicsim.commands.{name}").register(sub)
    return parser


class _VersionAction(argparse.Action):
    """`--version`: looked up only when asked for (reading the install's metadata costs every command ~15 ms)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="show the version and exit"):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"asicsim {_version()}")  # stdout, as argparse's own version action
        parser.exit()


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("asicsim")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def describe_error(exc: InputError) -> str:
    """One line for the user: a run setting is named by its flag (`--tp: ...`), anything else as raised."""
    if exc.source == RUN:
        from .commands._common import flag_of

        return f"{flag_of(exc.field)}: {exc.problem}"
    return str(exc)


# Cold-cache compile time of `asicsim compare` on the 2-core machine (benchmarks/bench_compare.py).
COMPILE_NOTICE = "asicsim: compiling numba kernels (first run only, ~30 s)..."
_notice_armed = False


def _notice() -> None:
    if sys.stderr.isatty():  # as the progress bar: a person waiting at a terminal, not a pipe or a log
        print(COMPILE_NOTICE, file=sys.stderr, flush=True)


def _arm_compile_notice() -> None:
    """One line on stderr when this process first compiles a kernel (a cold numba cache); once per process."""
    global _notice_armed
    if not _notice_armed:
        from asicsim.kernels.jit import on_first_compile

        on_first_compile(_notice)
        _notice_armed = True


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    warmer = _cold_start(words)
    from .commands._allocator import pad_heap, pin_mmap_threshold

    pin_mmap_threshold()  # long runs keep their large arrays out of the heap (commands._allocator)
    pad_heap()  # and their heap's top: freed memory is not faulted in again page by page
    code = _main(argv, words)
    if code == 130:  # Ctrl-C: the background compile stops too, nothing is left behind
        _stop(warmer)
    return code


def entry() -> None:
    """The console script and `python -m asicsim`: `main`, then exit with its code. The process ends right after, so
    it ends without tearing its heap down: its output flushed and its exit handlers run (`atexit`), it leaves through
    `os._exit` instead of freeing every object the command left one by one (~0.4 s after an hour's replay; files the
    commands write are closed before `main` returns). `main` itself returns: tests and notebooks call it many times.

    numpy's BLAS runs one thread unless the user's environment says otherwise (OPENBLAS_NUM_THREADS, set before numpy
    is imported): the tool's arrays are small, and BLAS worker threads only cost their start and their spinning (an
    hour's replay on 2 cores took ~0.1 s longer with them); a sweep's worker processes inherit the setting."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    code = main()
    gc.freeze()  # exit handlers that collect find nothing to walk
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`) or stream: nothing more can be written anyway
            pass
    atexit._run_exitfuncs()
    os._exit(int(code))


def _cold_start(words: list[str]):
    """On the first run after an install, a light command runs interpreted while a detached process compiles the
    kernels for the next runs (`commands._coldstart`); returns that process or None."""
    from .commands import _coldstart

    if not _coldstart.should_interpret(words):
        return None
    _coldstart.interpret()
    if _coldstart.is_warm():  # a short command on a warmed install: interpreted, nothing to say or start
        return None
    warmer = _coldstart.start_background_compile()
    if sys.stderr.isatty():
        print(_coldstart.NOTICE, file=sys.stderr, flush=True)
    return warmer


def _stop(warmer) -> None:
    from .commands import _coldstart

    _coldstart.stop(warmer)


def _main(argv: list[str] | None, words: list[str]) -> int:
    from asicsim.core.collector import collection_paused

    try:
        with collection_paused():  # the command's imports: numba's, its module's and what that imports
            _arm_compile_notice()
            parser = build_parser(words[0] if words and words[0] in COMMAND_MODULES else None)
        args = parser.parse_args(argv)
    except SystemExit as done:  # usage errors (one line, code 2) and --help (code 0)
        return int(done.code or 0)
    except KeyboardInterrupt:
        print("asicsim: interrupted", file=sys.stderr)
        return 130
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"asicsim {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted) as exc:
        note = f": {exc}" if isinstance(exc, Interrupted) else ""
        print(f"asicsim {args.command}: interrupted{note}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
