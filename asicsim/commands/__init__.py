"""CLI subcommands: each module exposes `register(subparsers)` which sets `func=run` on its parser."""

# Order of `asicsim --help`.
COMMAND_MODULES = ("run", "compare", "specs", "models", "gemm")
