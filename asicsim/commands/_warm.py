"""The background warm-up `_coldstart` starts: compile the kernels a typical run needs into numba's on-disk cache.

Usage (internal): python -m asicsim.commands._warm LOCK STAMP. Runs small versions of the README's compare and of
runs with arrivals on a GPU and on the ASIC (output discarded), then writes STAMP and removes LOCK. A kernel that
only other paths call compiles on its first use later, with the usual notice."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

WARM_UP = (
    ["compare", "--json"],
    ["run", "--hw", "h100-sxm", "--chips", "8", "--rate", "20", "--requests", "40", "--json"],
    ["run", "--hw", "sohu", "--chips", "8", "--rate", "20", "--requests", "40", "--json"],
)


def main(lock: str, stamp: str) -> int:
    from asicsim.cli import main as cli

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            codes = [cli(list(words)) for words in WARM_UP]
        if not any(codes):
            Path(stamp).parent.mkdir(parents=True, exist_ok=True)
            Path(stamp).write_text("numba kernels compiled for this install by asicsim.commands._warm\n")
    finally:
        Path(lock).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
