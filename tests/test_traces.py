"""Trace loading: both CSV formats by header, the shipped Azure traces, time scaling, bad files."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.workloads.errors import InputError
from asicsim.workloads.traces import BUILTIN_TRACES, TRACE_DIR, fit_lognormal, load_trace


def test_shipped_azure_traces_load_with_their_attribution():
    conv = load_trace("azure-conv")
    # Request counts and medians from the trace README (Azure/AzurePublicDataset, Splitwise ISCA 2024).
    assert len(conv) == 19366 and len(load_trace("azure-code")) == 8819
    assert np.median([r.input_tokens for r in conv]) == 1020 and np.median([r.output_tokens for r in conv]) == 129
    assert conv[0].arrival_at == 0.0 and 3000 < conv[-1].arrival_at < 3600  # one hour
    assert all(a.arrival_at <= b.arrival_at for a, b in zip(conv, conv[1:]))
    readme = (TRACE_DIR / "README.md").read_text()
    assert "CC-BY 4.0" in readme and "Splitwise" in readme
    assert set(BUILTIN_TRACES) == {"azure-conv", "azure-code"}


def test_three_column_format_and_time_scale(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n2.0,10,3\n0.5,20,4\n1.0,30,5\n")
    reqs = load_trace(str(path), time_scale=0.5)
    assert [(r.request_id, r.arrival_at, r.input_tokens, r.output_tokens) for r in reqs] == [
        (1, 0.0, 20, 4), (2, 0.25, 30, 5), (0, 0.75, 10, 3)]


def test_azure_format_with_numeric_timestamps_and_limit(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n10.5,100,7\n11.0,200,8\n12.0,300,9\n")
    reqs = load_trace(str(path), limit=2)
    assert [(r.arrival_at, r.input_tokens) for r in reqs] == [(0.0, 100), (0.5, 200)]


@pytest.mark.parametrize("text, needle", [
    ("a,b,c\n1,2,3\n", "header"),
    ("arrived_at,num_prefill_tokens,num_decode_tokens\n0,0,3\n", "input tokens"),
    ("arrived_at,num_prefill_tokens,num_decode_tokens\n0,5,x\n", "output tokens"),
    ("TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,5,5\n", "TIMESTAMP"),
    ("arrived_at,num_prefill_tokens,num_decode_tokens\n", "no requests"),
])
def test_bad_traces_name_the_file_and_field(tmp_path, text, needle):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=needle) as info:
        load_trace(str(path))
    assert str(path) in str(info.value)


def test_unknown_trace_and_bad_scale():
    with pytest.raises(InputError, match="azure-conv"):
        load_trace("nope")
    with pytest.raises(InputError, match="time_scale"):
        load_trace("azure-code", time_scale=0.0)


def test_lognormal_fit_recovers_median_and_spread():
    rng = np.random.default_rng(0)
    lengths = np.rint(rng.lognormal(np.log(500), 0.7, 20000)).clip(1)
    dist = fit_lognormal(lengths)
    assert dist.a == pytest.approx(500, rel=0.03) and dist.b == pytest.approx(0.7, rel=0.03)
    draws = dist.sample(np.random.default_rng(1), 20000)
    assert np.median(draws) == pytest.approx(500, rel=0.05) and draws.max() <= lengths.max()


@pytest.mark.parametrize("name", sorted(BUILTIN_TRACES))
@pytest.mark.parametrize("limit", [0, 7])
def test_plain_azure_reader_equals_pandas_on_the_shipped_traces(name, limit):
    """The reader without pandas gives the shipped traces' arrays exactly as pandas does (nanosecond stamps)."""
    from asicsim.workloads.traces import _plain_azure, _read_with_pandas, trace_path

    fast = _plain_azure(trace_path(name), limit)
    assert fast is not None  # the shipped files are plain: pandas is not loaded for them
    for a, b in zip(fast, _read_with_pandas(trace_path(name), limit)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
                               st.integers(0, 999), st.integers(0, 9), st.integers(1, 10**6), st.integers(1, 10**6)),
                     min_size=1, max_size=30),
       crlf=st.booleans())
def test_plain_azure_reader_equals_pandas_on_random_rows(rows, crlf, tmp_path_factory):
    """Random date-times with 0-9 decimals (and CRLF endings): the same seconds and counts as pandas."""
    from asicsim.workloads.traces import _plain_azure, _read_with_pandas

    end = "\r\n" if crlf else "\n"
    lines = ["TIMESTAMP,ContextTokens,GeneratedTokens"]
    for stamp, extra, digits, ins, outs in rows:
        fraction = f"{stamp.microsecond:06d}{extra:03d}"[:digits]
        lines.append(f"{stamp:%Y-%m-%d %H:%M:%S}{'.' + fraction if digits else ''},{ins},{outs}")
    path = tmp_path_factory.mktemp("trace") / "t.csv"
    path.write_text(end.join(lines) + end)
    fast = _plain_azure(path, 0)
    assert fast is not None
    for a, b in zip(fast, _read_with_pandas(path, 0)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_other_csv_layouts_go_to_pandas(tmp_path):
    from asicsim.workloads.traces import _plain_azure

    path = tmp_path / "t.csv"
    for text in ("TIMESTAMP,ContextTokens,GeneratedTokens\n1.5,10,2\n",  # numeric stamps
                 "TIMESTAMP, ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,10,2\n",  # spaced header
                 "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-02-30 18:15:46,10,2\n",  # no such day
                 "arrived_at,num_prefill_tokens,num_decode_tokens\n0.0,10,2\n"):
        path.write_text(text)
        assert _plain_azure(path, 0) is None


@pytest.mark.parametrize("header", ["TIMESTAMP,ContextTokens,GeneratedTokens", "TIMESTAMP, ContextTokens, GeneratedTokens"])
def test_whole_second_stamps_are_seconds_on_both_readers(tmp_path, header):
    """pandas 3 parses stamps without sub-microsecond digits to microseconds: read as nanoseconds they were 1000x
    too close together. Both readers (plain, and pandas for the spaced header) give seconds."""
    path = tmp_path / "t.csv"
    path.write_text(f"{header}\n2000-01-01 00:00:00,10,2\n2000-01-01 00:00:01.5,10,2\n2000-01-01 00:01:00,10,2\n")
    assert [r.arrival_at for r in load_trace(str(path))] == [0.0, 1.5, 60.0]


def test_a_trace_run_reads_its_csv_once_and_a_limit_past_its_end_is_the_whole_trace(tmp_path, monkeypatch):
    """Resolving and serving a trace run without a limit parses the CSV once (its request count comes from the whole
    trace, then that many are served); a limit at or past the end gives the whole trace, one below it the first
    rows' requests as before."""
    import asicsim.core.description as description
    from asicsim.core.description import RunSpec, build_requests, resolve

    path = tmp_path / "t.csv"
    path.write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n" + "".join(
        f"{5.0 - 0.5 * i},{100 + i},{10 + i}\n" for i in range(8)))
    reads = []
    monkeypatch.setattr(description, "load_trace", lambda *a: reads.append(a) or load_trace(*a))
    d = resolve(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", trace=str(path)))
    whole = build_requests(d)
    assert d.requests == 8 and len(reads) == 1 and whole == load_trace(str(path))
    for limit in (8, 9, 100):
        assert description._trace(str(path), 1.0, limit) is whole
    first = description._trace(str(path), 1.0, 3)
    assert first == load_trace(str(path), 1.0, 3) and first != whole[:3] and len(reads) == 2
