"""Imports point one way (docs/architecture.md): kernels and workloads at the bottom, the CLI at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# package folder -> import prefixes it must never use
# Folders install under the one `asicsim` namespace (kernels/ -> asicsim.kernels, and so on).
_UPPER = ("asicsim.core", "asicsim.chip", "asicsim.gpusim", "asicsim.analysis", "asicsim.commands", "asicsim.cli",
          "asicsim.api")
FORBIDDEN = {
    "kernels": ("asicsim.workloads", *_UPPER, "simpy", "pandas"),
    "workloads": ("asicsim.kernels", *_UPPER, "simpy"),
    "asicsim/core": ("asicsim.chip", "asicsim.gpusim", "asicsim.cli", "asicsim.commands", "asicsim.analysis",
                     "asicsim.api"),
    "asicsim/chip": ("asicsim.gpusim", "asicsim.cli", "asicsim.commands", "asicsim.analysis", "asicsim.api"),
    "gpusim": ("asicsim.chip", "asicsim.cli", "asicsim.commands", "asicsim.analysis", "asicsim.api"),
    # device packages of further kinds: siblings of chip and gpusim, never importing them or anything above
    "asicsim/devices": ("asicsim.chip", "asicsim.gpusim", "asicsim.cli", "asicsim.commands", "asicsim.analysis",
                        "asicsim.api"),
}
KERNEL_ALLOWED = ("numpy", "numba", "math", "asicsim.kernels", "__future__")


def imports_of(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_upward_imports(folder):
    bad = [(p.relative_to(ROOT).as_posix(), name) for p in sorted((ROOT / folder).rglob("*.py"))
           for name in imports_of(p) if name.startswith(FORBIDDEN[folder])]
    assert not bad, f"upward imports: {bad}"


def test_kernels_import_only_numeric_libraries():
    bad = [(p.name, n) for p in sorted((ROOT / "kernels").rglob("*.py")) for n in imports_of(p)
           if not n.startswith(KERNEL_ALLOWED)]
    assert not bad, bad


def test_engine_is_quiet():
    """No print or file writes in the engine, devices or workloads (the CLI does I/O)."""
    for folder in ("asicsim/core", "asicsim/chip", "asicsim/devices", "gpusim", "kernels", "workloads"):
        for p in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(p.read_text(encoding="utf-8"))
            calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
            assert "print" not in calls, p
