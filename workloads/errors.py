"""The one error type for bad user input, shared by every layer above.

It lives in the lowest data layer so that workloads, engine, devices and CLI all raise the same thing;
the CLI turns it into one line and exit code 2.
"""

__all__ = ["InputError", "DoesNotFitError", "Infeasible", "Interrupted", "RUN"]

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
