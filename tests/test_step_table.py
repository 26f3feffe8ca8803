"""The step log and table: what the serving loop appends is what the table gives back, field by field and record by
record, whatever the chunking; a field equal on every step is stored as one value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.commands._allocator import pad_heap, pin_mmap_threshold
from asicsim.core import results
from asicsim.core.results import STEP_FIELDS, StepLog, StepTable

FIELDS = len(STEP_FIELDS)


def _rows(draw_sizes: list[int], constant: list[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Blocks of random rows: `constant` fields 3.0 throughout, and a few fields constant within a block but
    taking 0.0 or 1.0 from block to block (the same value on a chunk's rows, another value later)."""
    blocks = []
    piecewise = [i for i in range(0, FIELDS, 5) if i not in constant]
    for k in draw_sizes:
        block = rng.integers(0, 5, size=(k, FIELDS)).astype(float)
        block[:, constant] = 3.0
        block[:, piecewise] = rng.integers(0, 2, size=len(piecewise)).astype(float)
        blocks.append(block)
    return blocks


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=0, max_size=30), chunk=st.sampled_from([4, 16, 64]),
       grow=st.sampled_from([1, 8, 1 << 16]), constant=st.lists(st.integers(0, FIELDS - 1), max_size=6, unique=True),
       seed=st.integers(0, 2**16))
def test_the_log_gives_back_every_row_in_order_whatever_the_chunking(sizes, chunk, grow, constant, seed):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(results, "_CHUNK_ROWS", chunk)
        patch.setattr(results, "_GROW_ROWS", grow)
        _check_log(sizes, constant, seed)


def _check_log(sizes, constant, seed):
    blocks = _rows(sizes, constant, np.random.default_rng(seed))
    log = StepLog()
    for block in blocks:
        if len(block) == 1:
            log.append(list(block[0]))
        else:
            log.extend(len(block))[:] = block
    assert len(log) == sum(sizes)
    table = log.table()
    want = StepTable(np.concatenate(blocks) if blocks else np.zeros((0, FIELDS)))
    assert len(table) == len(want) == sum(sizes)
    assert table == want
    for name in STEP_FIELDS:
        np.testing.assert_array_equal(table.raw_column(name), want.raw_column(name))
        np.testing.assert_array_equal(table.column(name), want.column(name))
    assert list(table) == list(want)
    if sizes:
        for i in (0, len(table) - 1):
            assert table[i] == want[i]


def test_a_field_equal_on_every_step_is_one_value_and_a_varying_one_a_full_array():
    log = StepLog()
    block = log.extend(5000)
    block[:] = 0.0
    block[:, results.FIELD_INDEX["start_at"]] = np.arange(5000.0)
    block[:, results.FIELD_INDEX["replica"]] = 2.0
    table = log.table()
    assert table.raw_column("replica").strides == (0,)  # stored once
    assert table.raw_column("replica").tolist() == [2.0] * 5000
    assert table.raw_column("start_at").strides == (8,)
    assert table.column("replica").dtype == np.int64
    with pytest.raises(ValueError):
        table.raw_column("replica")[0] = 1.0  # read-only, as a stored table


def test_equal_means_bit_for_bit_so_minus_zero_keeps_its_sign():
    rows = np.zeros((3, FIELDS))
    rows[1, results.FIELD_INDEX["link_s"]] = -0.0
    table = StepTable(rows)
    assert table.raw_column("link_s").strides == (8,)
    assert np.signbit(table.raw_column("link_s")[1])


def test_blocks_concat_and_offsets_keep_the_steps():
    rng = np.random.default_rng(1)
    rows = rng.integers(0, 3, size=(50, FIELDS)).astype(float)
    rows[:, results.FIELD_INDEX["replica"]] = 1.0
    table = StepTable(rows)
    assert StepTable.concat(list(table.blocks(7))) == table
    assert StepTable.concat([table, table]) == StepTable(np.concatenate([rows, rows]))
    shifted = table.with_replica_offset(3)
    assert shifted.raw_column("replica").tolist() == [4.0] * 50
    assert StepTable.from_columns({n: rows[:, i] for i, n in enumerate(STEP_FIELDS)}) == table


def test_the_allocator_threshold_is_pinned_on_linux_glibc():
    import platform
    import sys

    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert pin_mmap_threshold() is expected


def test_the_heap_top_is_padded_on_linux_glibc_unless_the_user_set_it(monkeypatch):
    import platform
    import sys

    monkeypatch.delenv("MALLOC_TOP_PAD_", raising=False)
    expected = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert pad_heap() is expected
    monkeypatch.setenv("MALLOC_TOP_PAD_", "131072")  # glibc read the user's value at start: it stands
    assert pad_heap() is False
