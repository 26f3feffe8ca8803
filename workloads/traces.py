"""Request traces from CSV files, in two formats told apart by their header.

- Azure LLM inference format: `TIMESTAMP,ContextTokens,GeneratedTokens` (timestamps as date-times or
  seconds); arrivals are made relative to the first request.
- Three-column format: `arrived_at,num_prefill_tokens,num_decode_tokens` (arrivals in seconds).

`--trace azure-conv` / `azure-code` name the two Azure traces shipped in `workloads/traces/` (CC-BY 4.0,
attribution in traces/README.md). `time_scale` multiplies every arrival time (0.5 = twice the rate).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import RUN, InputError
from .requests import LengthDist, Request

if TYPE_CHECKING:  # pandas loads when a trace is read, not with the package
    import pandas as pd

__all__ = ["TRACE_DIR", "BUILTIN_TRACES", "load_trace", "trace_path", "fit_lognormal"]

TRACE_DIR = Path(__file__).resolve().parent / "traces"
BUILTIN_TRACES = {
    "azure-conv": "AzureLLMInferenceTrace_conv.csv",
    "azure-code": "AzureLLMInferenceTrace_code.csv",
}
_AZURE = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MAX_TRACE_SPAN_S = 1e8  # longer spans are unit mistakes (ns read as s), not serving traces
_THREE = ("arrived_at", "num_prefill_tokens", "num_decode_tokens")


def trace_path(name: str) -> Path:
    """A built-in trace name or a path to a CSV file."""
    if name in BUILTIN_TRACES:
        return TRACE_DIR / BUILTIN_TRACES[name]
    path = Path(name)
    if not path.is_file():
        raise InputError(RUN, "trace", f"no such file and not one of {', '.join(BUILTIN_TRACES)}: {name!r}")
    return path


def load_trace(name: str, time_scale: float = 1.0, limit: int = 0) -> tuple[Request, ...]:
    """Requests of a trace in arrival order (ids in file order); `limit` > 0 keeps the first `limit`."""
    if not time_scale > 0 or not np.isfinite(time_scale):
        raise InputError(RUN, "time_scale", f"must be a positive number, got {time_scale!r}")
    path = trace_path(name)
    plain = _plain_azure(path, limit)
    if plain is not None:
        times, ins, outs = plain
    else:
        times, ins, outs = _read_with_pandas(path, limit)
    for label, col in (("input tokens", ins), ("output tokens", outs)):
        if (col < 1).any() or (col != np.floor(col)).any():
            row = int(np.argmax((col < 1) | (col != np.floor(col))))
            raise InputError(str(path), label, f"must be whole numbers >= 1 (row {row + 2}: {col[row]!r})")
    if not np.isfinite(times).all():
        raise InputError(str(path), "arrival", "arrival times must be finite numbers")
    times = (times - times.min()) * float(time_scale)
    if times.max() > MAX_TRACE_SPAN_S:
        row = int(np.argmax(times > MAX_TRACE_SPAN_S))
        raise InputError(str(path), "arrival", f"row {row + 2} arrives {times[row]:.3g} s after the first request; "
                                               f"a trace may span at most {MAX_TRACE_SPAN_S:.0e} s (about 3 years)")
    order = np.argsort(times, kind="stable")
    # As Python numbers first: the same values, without a numpy scalar per field (~2x faster for an hour's trace).
    at, prompts, outputs = (a[order] for a in (times, ins.astype(np.int64), outs.astype(np.int64)))
    return tuple(Request(i, t, p, o) for i, t, p, o in zip(order.tolist(), at.tolist(), prompts.tolist(),
                                                              outputs.tolist()))


def _read_with_pandas(path: Path, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(arrival seconds, input tokens, output tokens) of any CSV trace, checked."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, nrows=limit or None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "csv", f"cannot parse: {str(exc).splitlines()[0]}") from None
    cols = tuple(c.strip() for c in frame.columns)
    frame.columns = cols
    if set(_AZURE) <= set(cols):
        times, ins, outs = _azure_times(path, frame["TIMESTAMP"]), frame["ContextTokens"], frame["GeneratedTokens"]
    elif set(_THREE) <= set(cols):
        times = _numeric(path, frame["arrived_at"], "arrived_at").astype(float)
        ins, outs = frame["num_prefill_tokens"], frame["num_decode_tokens"]
    else:
        raise InputError(str(path), "header", f"expected columns {','.join(_AZURE)} or {','.join(_THREE)}, "
                         f"got {','.join(cols)}")
    if len(frame) == 0:
        raise InputError(str(path), "rows", "the trace has no requests")
    return times, _numeric(path, ins, "input tokens"), _numeric(path, outs, "output tokens")


# One row of the Azure format as the shipped traces write it: a naive date-time with up to 9 decimals, two counts.
_PLAIN_ROW = re.compile(rb"(\d{4}-\d{2}-\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?,(\d{1,9}),(\d{1,9})\r?")


def _plain_azure(path: Path, limit: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """`_read_with_pandas` of an Azure trace written plainly (exactly the header `TIMESTAMP,ContextTokens,
    GeneratedTokens` and every row `YYYY-MM-DD HH:MM:SS[.fraction],count,count`), without pandas (70 MB and
    0.3 s to load): the same nanosecond stamps, so the same seconds. None for anything else (pandas reads it)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    lines = data.split(b"\n")
    if lines and lines[-1] in (b"", b"\r"):
        lines.pop()
    if not lines or lines[0].rstrip(b"\r") != ",".join(_AZURE).encode() or len(lines) < 2:
        return None
    rows = lines[1:limit + 1] if limit else lines[1:]
    matches = [_PLAIN_ROW.fullmatch(line) for line in rows]
    if not all(matches):
        return None
    fields = list(zip(*(m.groups(b"") for m in matches)))
    try:
        days = np.array(fields[0], dtype="datetime64[D]").astype(np.int64)
    except ValueError:  # not a calendar date: pandas reports the row
        return None
    if any(not 0 <= int(h) < 24 for h in set(fields[1])) or any(not 0 <= int(m) < 60 for m in set(fields[2])) \
            or any(not 0 <= int(sec) < 60 for sec in set(fields[3])):
        return None
    clock = (np.array(fields[1], dtype=np.int64) * 3600 + np.array(fields[2], dtype=np.int64) * 60
             + np.array(fields[3], dtype=np.int64))
    nanos = np.array([int(f.ljust(9, b"0")) if f else 0 for f in fields[4]], dtype=np.int64)
    ns = (days * 86_400 + clock) * 1_000_000_000 + nanos
    times = (ns - ns.min()) / 1e9
    return times, np.array(fields[5], dtype=np.int64).astype(float), np.array(fields[6], dtype=np.int64).astype(float)


def _numeric(path: Path, col: pd.Series, label: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        row = int(np.argmax(~np.isfinite(values)))
        raise InputError(str(path), label, f"not a finite number in row {row + 2}: {str(col.iloc[row])!r}")
    return values


def _azure_times(path: Path, col: pd.Series) -> np.ndarray:
    """Seconds from a date-time or numeric TIMESTAMP column."""
    import pandas as pd

    if pd.api.types.is_numeric_dtype(col):  # read as numbers: seconds, every one finite
        return _numeric(path, col, "TIMESTAMP")
    numeric = pd.to_numeric(col, errors="coerce")
    if not numeric.isna().any():
        return _numeric(path, numeric, "TIMESTAMP")
    stamps = pd.to_datetime(col, errors="coerce", format="mixed")
    if stamps.isna().any():
        row = int(np.argmax(stamps.isna().to_numpy()))
        raise InputError(str(path), "TIMESTAMP", f"not a date-time or number in row {row + 2}: {col.iloc[row]!r}")
    ns = stamps.dt.as_unit("ns").astype("int64").to_numpy()  # pandas 3 parses to "us" when no stamp has more digits
    return (ns - ns.min()) / 1e9


def fit_lognormal(lengths: np.ndarray) -> LengthDist:
    """Lognormal fitted by moments of ln(length): median exp(mean), sigma std; capped at the longest seen."""
    logs = np.log(np.asarray(lengths, dtype=float))
    return LengthDist("lognormal", float(np.exp(logs.mean())), float(logs.std()), cap=int(np.max(lengths)))
