"""Frozen result records of a serving run, and their tidy DataFrames and JSON summary."""

from __future__ import annotations

from collections import abc
from dataclasses import MISSING, dataclass, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .engine import StepTiming

if TYPE_CHECKING:  # pandas loads only when a frame is asked for
    import pandas as pd

__all__ = ["RequestRecord", "request_record", "StepRecord", "RunResult", "percentile", "VIDUR_REQUEST_COLUMNS", "step_records", "RECORDED_TIMING_FIELDS",
           "recorded_timing", "recorded_timing_values", "step_record_of", "StepTable", "StepLog", "STEP_FIELDS", "FIELD_INDEX"]


@dataclass(frozen=True)
class RequestRecord:
    """One request's life: times in simulated seconds from the start of the run."""

    request_id: int
    replica: int
    arrival_at: float
    first_token_at: float
    finish_at: float
    input_tokens: int
    output_tokens: int
    scheduled_at: float = -1.0  # first step that ran any of it (-1: not recorded)
    preemptions: int = 0

    @property
    def queueing_delay_s(self) -> float:
        """Time from arrival to the first step that worked on the request."""
        return (self.scheduled_at if self.scheduled_at >= 0.0 else self.first_token_at) - self.arrival_at

    @property
    def ttft_s(self) -> float:
        return self.first_token_at - self.arrival_at

    @property
    def tpot_s(self) -> float:
        """Mean time per output token after the first (0 for one-token outputs)."""
        if self.output_tokens <= 1:
            return 0.0
        return (self.finish_at - self.first_token_at) / (self.output_tokens - 1)

    @property
    def e2e_s(self) -> float:
        return self.finish_at - self.arrival_at


# StepTiming's fields a step record keeps: all but `time_s` (one stage's time; a record has start_at and end_at,
# which with a pipeline span more than one stage's time).
RECORDED_TIMING_FIELDS = tuple(f.name for f in fields(StepTiming) if f.name != "time_s")
# StepTiming -> the values of RECORDED_TIMING_FIELDS, in that order (a tuple; fast).
recorded_timing_values = attrgetter(*RECORDED_TIMING_FIELDS)


def recorded_timing(timing: StepTiming) -> dict[str, float]:
    """The fields of `timing` a StepRecord keeps, by name."""
    return dict(zip(RECORDED_TIMING_FIELDS, recorded_timing_values(timing)))


def _timing_fields_after(anchor: str):
    """Class decorator (under @dataclass): StepTiming's recorded fields, as declared there, become fields of
    the class right after `anchor`. A field added to StepTiming is a StepRecord field, with no edit here."""

    def insert(cls):
        own = list(cls.__dict__["__annotations__"].items())
        timing = {f.name: f.type for f in fields(StepTiming) if f.name in RECORDED_TIMING_FIELDS}
        clash = timing.keys() & {name for name, _ in own}
        if clash:
            raise TypeError(f"{cls.__name__} declares StepTiming fields itself: {sorted(clash)}")
        at = [name for name, _ in own].index(anchor) + 1
        cls.__annotations__ = dict([*own[:at], *timing.items(), *own[at:]])
        for f in fields(StepTiming):
            if f.name in timing and f.default is not MISSING:
                setattr(cls, f.name, f.default)  # StepTiming's default (0.0): a new field breaks no caller
        return cls

    return insert


@dataclass(frozen=True)
@_timing_fields_after("micro_batches")
class StepRecord:
    """One engine step of one replica (all chips of the replica in lock-step).

    After `micro_batches` come StepTiming's fields but `time_s`, by name and in StepTiming's order
    (compute_busy_s ... other_s: busy seconds per unit, FLOPs and HBM bytes per chip, time per op kind),
    summed over the step's pipeline micro-batches; see `asicsim.core.engine.StepTiming`.
    """

    step: int
    replica: int
    start_at: float
    end_at: float
    prefill_tokens: int
    decode_tokens: int
    micro_batches: int
    # ... StepTiming's recorded fields (RECORDED_TIMING_FIELDS) are inserted here ...
    batch_size: int = 0  # sequences in the step
    waiting: int = 0  # requests queued at the replica when the step started
    kv_blocks: int = 0  # KV blocks held on the replica during the step
    bubble_s: float = 0.0  # pipeline fill/drain time inside the step
    running: int = 0  # requests admitted (holding KV) when the step started
    tokens_out: int = 0  # output tokens the step emitted
    link_s: float = 0.0  # seconds on slow links between the pipeline's devices (--link), inside the step


_STEP_FIELDS = STEP_FIELDS = tuple(f.name for f in fields(StepRecord))
_STEP_FIELD_SET = frozenset(_STEP_FIELDS)
_INT_FIELDS = frozenset(f.name for f in fields(StepRecord) if f.type in (int, "int"))
FIELD_INDEX = _FIELD_INDEX = {name: i for i, name in enumerate(_STEP_FIELDS)}
_INT_COLUMNS = tuple(i for i, name in enumerate(_STEP_FIELDS) if name in _INT_FIELDS)


def _check_names(names, what: str) -> None:
    if names != _STEP_FIELD_SET:
        missing, extra = _STEP_FIELD_SET - names, names - _STEP_FIELD_SET
        raise ValueError(f"step record {what}: missing {sorted(missing)}, unknown {sorted(extra)}")


def step_record_of(values: Mapping[str, object]) -> StepRecord:
    """A StepRecord from every field's value, by name (fast: no per-field frozen setattr; one per step)."""
    _check_names(values.keys(), "values")
    record = object.__new__(StepRecord)
    record.__dict__.update(values)
    return record


def step_records(columns: Mapping[str, Sequence]) -> list[StepRecord]:
    """StepRecords from one column per field, by field name (fast: no per-field frozen setattr).

    Every StepRecord field needs its column, and no other column is allowed.
    """
    _check_names(columns.keys(), "columns")
    new, names, out = object.__new__, _STEP_FIELDS, []
    for row in zip(*(columns[name] for name in names)):
        record = new(StepRecord)
        record.__dict__.update(zip(names, row))
        out.append(record)
    return out


class StepTable(abc.Sequence):
    """Step records stored a column per StepRecord field, each a float64 array (integer fields hold whole numbers,
    exact below 2^53): 8 bytes a field instead of a Python object per step (an hour of traffic is 10^5-10^6
    steps). A field equal on every step (the replica, zeros of features the run does not use) is one value
    broadcast over the steps (a read-only view of no size): an hour's table is a quarter smaller.

    A sequence of StepRecords: `len`, indexing (a record built on demand, Python ints and floats), slices (a list)
    and iteration give records equal to the ones the serving loop booked; `column(name)` is one field over all
    steps as an array (int64 for integer fields), what summaries and DataFrames read."""

    __slots__ = ("_columns", "_n")

    def __init__(self, rows: np.ndarray) -> None:
        """A table from a (steps, fields) matrix, columns in STEP_FIELDS order."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(_STEP_FIELDS):
            raise ValueError(f"step rows must be (steps, {len(_STEP_FIELDS)}), got {rows.shape}")
        self._set([_compact(np.array(rows[:, i])) for i in range(rows.shape[1])], len(rows))

    def _set(self, columns: list[np.ndarray], n: int) -> None:
        for c in columns:
            c.flags.writeable = False
        self._columns = columns
        self._n = n

    @classmethod
    def _of(cls, columns: list[np.ndarray], n: int) -> "StepTable":
        """A table of `columns` (one float64 array of n steps per field, in STEP_FIELDS order), kept as given."""
        table = cls.__new__(cls)
        table._set(columns, n)
        return table

    @staticmethod
    def from_columns(columns: Mapping[str, Sequence]) -> "StepTable":
        """A table from one column per StepRecord field, by name (every field, no other)."""
        _check_names(columns.keys(), "columns")
        arrays = [np.array(columns[n], dtype=np.float64).reshape(-1) for n in _STEP_FIELDS]
        n = len(arrays[0])
        if any(len(a) != n for a in arrays):
            raise ValueError("step columns must have equal lengths")
        return StepTable._of([_compact(a) for a in arrays], n)

    @staticmethod
    def concat(tables: Sequence["StepTable"]) -> "StepTable":
        """The steps of several tables, one after another."""
        if len(tables) == 1:
            return tables[0]
        if not tables:
            return StepTable(np.zeros((0, len(_STEP_FIELDS))))
        n = sum(len(t) for t in tables)
        return StepTable._of([_joined([t._columns[i] for t in tables], n) for i in range(len(_STEP_FIELDS))], n)

    def with_replica_offset(self, offset: int) -> "StepTable":
        """The same steps with `offset` added to every replica index (a second pool's replicas after the first's)."""
        columns = list(self._columns)
        i = _FIELD_INDEX["replica"]
        columns[i] = _compact(columns[i] + offset)
        return StepTable._of(columns, self._n)

    def column(self, name: str) -> np.ndarray:
        """One field over all steps (float64, or int64 for an integer field)."""
        values = self._columns[_FIELD_INDEX[name]]
        return values.astype(np.int64) if name in _INT_FIELDS else values

    def raw_column(self, name: str) -> np.ndarray:
        """One field over all steps as stored: a read-only float64 array, no copy (an integer field's whole
        numbers; a field equal on every step is a broadcast view)."""
        return self._columns[_FIELD_INDEX[name]]

    def columns(self) -> "_Columns":
        """Every field as an attribute holding its column (what a device's `step_energy_j` takes for all steps),
        each read when asked for: an integer field's int64 copy is not kept (an hour's table is 10^5-10^6 rows)."""
        return _Columns(self)

    def blocks(self, rows: int):
        """The table as consecutive tables of at most `rows` steps (views, no copy); one empty table if empty."""
        for start in range(0, max(len(self), 1), rows):
            stop = min(start + rows, self._n)
            yield StepTable._of([c[start:stop] for c in self._columns], max(stop - start, 0))

    def _rows(self, start: int, stop: int) -> list[list[float]]:
        return np.stack([c[start:stop] for c in self._columns], axis=1).tolist()

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(self._n)[index]
        return _records(self._rows(i, i + 1))[0]

    def __iter__(self):
        for start in range(0, len(self), 4096):
            yield from _records(self._rows(start, start + 4096))

    def __eq__(self, other) -> bool:
        if isinstance(other, StepTable):
            return self._n == other._n and all(np.array_equal(a, b) for a, b in zip(self._columns, other._columns))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StepTable({len(self)} steps)"


def _constant(values: np.ndarray) -> bool:
    """Every value the same float64, bit for bit (-0.0 is not 0.0; a NaN equals its own bits)."""
    if len(values) == 0:
        return False
    bits = values.view(np.int64)
    return bool((bits == bits[0]).all())


def _compact(values: np.ndarray) -> np.ndarray:
    """`values` (a 1-D float64 array of its own), or its one value broadcast over its length if all are equal."""
    if values.strides == (0,) or not _constant(values):
        return values
    return np.broadcast_to(values[:1].copy(), values.shape)


def _joined(pieces: list[np.ndarray], n: int) -> np.ndarray:
    """Column pieces one after another (n values), kept broadcast when every piece is the same one value."""
    nonempty = [p for p in pieces if len(p)]
    if nonempty and all(p.strides == (0,) for p in nonempty) and _constant(np.array([p[0] for p in nonempty])):
        return np.broadcast_to(nonempty[0][:1].copy(), (n,))
    out = np.empty(n)
    at = 0
    for p in nonempty:
        out[at:at + len(p)] = p
        at += len(p)
    return _compact(out)


class _Columns:
    """`StepTable.columns()`: attribute `name` is `table.column(name)`, for every StepRecord field."""

    __slots__ = ("_table",)

    def __init__(self, table: StepTable) -> None:
        self._table = table

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in _FIELD_INDEX:
            raise AttributeError(f"no step field {name!r}")
        return self._table.column(name)

    def __dir__(self):
        return list(_STEP_FIELDS)


def _records(rows: list[list[float]]) -> list[StepRecord]:
    new, names, out = object.__new__, _STEP_FIELDS, []
    for row in rows:
        for i in _INT_COLUMNS:
            row[i] = int(row[i])
        record = new(StepRecord)
        record.__dict__.update(zip(names, row))
        out.append(record)
    return out


_GROW_ROWS = 1 << 16  # most rows a field's store grows by at once (512 KiB)
_CHUNK_ROWS = 1 << 14  # rows the log fills before it moves them to its fields' stores (16,384 x 29 fields: 3.8 MB)


class StepLog:
    """Grows a StepTable: the serving loop appends one step or a run of steps at a time into a chunk of rows (kept
    column by column, Fortran order, so that moving a field's rows is one contiguous copy); a full chunk is moved into
    one growing array per field, except for a field that has had one value on every
    step so far, which keeps just that value (`_compact` at the end). So an hour's log holds its varying fields
    plus one chunk. Each field's array grows in place (`ndarray.resize`: the allocator remaps large blocks, so
    neither growth nor `table()` holds two copies) by a quarter of its length, at most _GROW_ROWS rows (zero-filled
    room is resident memory; fewer, larger steps keep the copies of a heap that cannot remap amortised)."""

    __slots__ = ("_chunk", "_fill", "_stores", "_firsts", "_sealed", "_capacity")

    def __init__(self) -> None:
        self._chunk = np.zeros((min(1024, _CHUNK_ROWS), len(_STEP_FIELDS)), order="F")
        self._fill = 0
        self._stores: list[np.ndarray | None] = [None] * len(_STEP_FIELDS)  # None: every value so far is _firsts'
        self._firsts = np.zeros(len(_STEP_FIELDS))
        self._sealed = 0
        self._capacity = 0  # rows each store has room for

    def __len__(self) -> int:
        return self._sealed + self._fill

    def _seal(self) -> None:
        """Move the chunk's rows into the fields' stores and start an empty chunk."""
        fill = self._fill
        if not fill:
            return
        rows, at = self._chunk[:fill], self._sealed
        if not at:
            self._firsts[:] = rows[0]
        bits, firsts = rows.view(np.int64), self._firsts.view(np.int64)
        end = at + fill
        grow = end > self._capacity
        if grow:
            self._capacity = max(end, self._capacity + min(self._capacity // 4, _GROW_ROWS))
        for i, store in enumerate(self._stores):
            if store is None:
                if (bits[:, i] == firsts[i]).all():  # still one value (bit for bit): only fields without a store
                    continue
                store = self._stores[i] = np.full(self._capacity, self._firsts[i])
            elif grow:
                store.resize(self._capacity, refcheck=False)
            store[at:end] = rows[:, i]
        self._sealed = end
        self._fill = 0

    def extend(self, k: int) -> np.ndarray:
        """Room for k more steps: a (k, fields) block for the caller to fill at once (columns `FIELD_INDEX`)."""
        if self._fill + k > len(self._chunk):
            self._seal()
            if k > len(self._chunk) or len(self._chunk) < _CHUNK_ROWS:
                # The first chunk starts small (a short run stays small); a run longer than a chunk gets its own.
                self._chunk = np.zeros((max(k, min(2 * len(self._chunk), _CHUNK_ROWS)), len(_STEP_FIELDS)),
                                       order="F")
        block = self._chunk[self._fill:self._fill + k]
        self._fill += k
        return block

    def append(self, values: Sequence[float]) -> None:
        """One step: every field's value in STEP_FIELDS order."""
        self.extend(1)[0] = values

    def table(self) -> StepTable:
        """The steps so far; the log is spent (its stores become the table's columns)."""
        self._seal()
        self._chunk = np.zeros((0, len(_STEP_FIELDS)))
        n, self._sealed, self._capacity = self._sealed, 0, 0
        for store in self._stores:
            if store is not None:
                store.resize(n, refcheck=False)
        columns = [np.broadcast_to(self._firsts[i:i + 1].copy(), (n,)) if store is None else store
                   for i, store in enumerate(self._stores)]
        self._stores = [None] * len(_STEP_FIELDS)
        return StepTable._of(columns, n)


def request_record(request_id: int, replica: int, arrival_at: float, first_token_at: float, finish_at: float,
                   input_tokens: int, output_tokens: int, scheduled_at: float, preemptions: int) -> RequestRecord:
    """`RequestRecord(...)` with every field given, without the frozen dataclass's per-field `object.__setattr__`
    (the serving loop books one per request: ~3x faster; the record is the same, equal and hashable alike)."""
    record = object.__new__(RequestRecord)
    record.__dict__.update(request_id=request_id, replica=replica, arrival_at=arrival_at,
                           first_token_at=first_token_at, finish_at=finish_at, input_tokens=input_tokens,
                           output_tokens=output_tokens, scheduled_at=scheduled_at, preemptions=preemptions)
    return record


def percentile(values: np.ndarray, q: float) -> float:
    """Percentile with linear interpolation; 0.0 for an empty array."""
    return float(np.percentile(values, q)) if len(values) else 0.0


def percentiles(values: np.ndarray, qs: Sequence[float]) -> list[float]:
    """`percentile` at each of `qs`, in one numpy call (the same numbers; a call costs ~0.1 ms whatever its q)."""
    return [float(v) for v in np.percentile(values, qs)] if len(values) else [0.0] * len(qs)


# Vidur's request-metric (and Request field) name -> our requests-frame column (seconds, tokens). Vidur normalises decode time by its
# decode tokens; ours (tpot_s) by output tokens - 1, which excludes the first token that prefill produced.
VIDUR_REQUEST_COLUMNS = {
    "request_e2e_time": "e2e_s",
    "prefill_e2e_time": "ttft_s",
    "decode_time_execution_plus_preemption_normalized": "tpot_s",
    "request_scheduling_delay": "queueing_delay_s",
    "request_num_prefill_tokens": "input_tokens",
    "request_num_decode_tokens": "output_tokens",
    "request_num_restarts": "preemptions",
    "arrived_at": "arrival_at",  # Vidur's Request fields
    "prefill_completed_at": "first_token_at",
    "completed_at": "finish_at",
}


@dataclass(frozen=True)
class RunResult:
    """Everything a run produced: its inputs, per-request and per-step records, and the summary."""

    summary: dict
    requests: tuple[RequestRecord, ...]
    steps: Sequence[StepRecord]  # a StepTable from run_workload
    timeline: dict | None = None  # Chrome trace events of the first steps, when asked for
    description: object = None  # the resolved RunDescription the run served

    def requests_frame(self) -> "pd.DataFrame":
        """One row per request, with TTFT, TPOT and end-to-end latency, and the same values under Vidur's
        request-metric names where they overlap (`VIDUR_REQUEST_COLUMNS`; docs/metrics.md)."""
        frame = _frame(RequestRecord, self.requests)
        for name in ("ttft_s", "tpot_s", "e2e_s", "queueing_delay_s"):
            frame[name] = [getattr(r, name) for r in self.requests]
        for vidur, ours in VIDUR_REQUEST_COLUMNS.items():
            frame[vidur] = frame[ours]
        return frame

    def steps_frame(self) -> "pd.DataFrame":
        """One row per engine step."""
        import pandas as pd
        if isinstance(self.steps, StepTable):
            return pd.DataFrame({n: self.steps.column(n) for n in _STEP_FIELDS}, columns=list(_STEP_FIELDS))
        return _frame(StepRecord, self.steps)


def _frame(cls, records) -> "pd.DataFrame":
    import pandas as pd
    names = [f.name for f in fields(cls)]
    return pd.DataFrame({n: [getattr(r, n) for r in records] for n in names}, columns=names)
