"""CLI subcommands: each module exposes `register(subparsers)` which sets `func=run` on its parser."""

# Order of `asicsim --help`; a module is listed here once it exists.
COMMAND_MODULES = ("run", "compare", "specs", "models", "efficiency", "gemm", "validate", "claim", "area", "sweep", "scale",
                   "plot", "report")
