"""asicsim: cycle-level performance model of a transformer-only inference ASIC versus GPU servers."""

__version__ = "0.1.0"
__all__ = ["__version__"]
