"""Re-export of the shared input error types (defined in the lowest layer, workloads.errors)."""

from asicsim.workloads.errors import DoesNotFitError, InputError

__all__ = ["InputError", "DoesNotFitError"]
