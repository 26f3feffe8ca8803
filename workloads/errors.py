"""The one error type for bad user input, shared by every layer above.

It lives in the lowest data layer so that workloads, engine, devices and CLI all raise the same thing;
the CLI turns it into one line and exit code 2.
"""

import difflib

__all__ = ["InputError", "DoesNotFitError", "Infeasible", "Interrupted", "RUN", "did_you_mean", "install_hint"]

# Source of an error about a run setting: `field` is then the setting's name (a RunSpec field). The CLI shows it
# as the flag (`--tp`), the Python API as the keyword, a sweep as `workload.<field>`.
RUN = "run"


class InputError(ValueError):
    """Bad input: names the file (or flag), the field and the problem."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        super().__init__(f"{source}: {field}: {problem}")


class DoesNotFitError(InputError):
    """A workload whose weights plus minimum KV cache exceed device memory."""


class Infeasible(InputError):
    """A chip that breaks physics (over the reticle, the die edge, the power cap): refused with the numbers by
    `run`, kept as an infeasible row by a sweep."""


class Interrupted(Exception):
    """Ctrl-C during long work: the CLI prints this one line and exits 130."""


def did_you_mean(name: str, known) -> str:
    """' (did you mean X?)' for the closest known names (prefix matches first: 'h100' -> h100-sxm), else ''."""
    known = list(known)
    prefixed = [k for k in known if k.startswith(name) or name.startswith(k)]
    close = prefixed[:3] or difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(close)}?)" if close else ""


def install_hint(extra: str) -> str:
    """How to install an optional extra, from the package index and from a checkout of the repository."""
    return f"pip install 'asicsim[{extra}]' (from a checkout: pip install '.[{extra}]')"
