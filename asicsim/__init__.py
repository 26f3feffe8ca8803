"""asicsim: cycle-level performance model of a transformer-only inference ASIC versus GPU servers.

The Python API (`asicsim.run`, `compare`, `sweep`, `claim`, `validate`, `efficiency`, `scale`, `edge_pipeline`,
`describe`, `load_spec`, `load_model`) lives in `asicsim.api`; it is imported on first use so that `import asicsim.kernels` and
the CLI start fast.
"""

__version__ = "0.1.0"
_API = ("load_spec", "load_model", "describe", "run", "compare", "sweep", "claim", "validate", "efficiency", "scale",
        "edge_pipeline")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'asicsim' has no attribute {name!r}")
