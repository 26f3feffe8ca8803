"""Fuzzed CLI inputs (tests/fuzz_cases.py): every case exits 0, or 2 with one line; never a traceback or a hang.
A few hundred cases here, derandomized so CI is repeatable; benchmarks/fuzz_cli.py explores thousands more."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings

from tests.fuzz_cases import CASES, assert_contract, check

_COUNTER = itertools.count()


@settings(deadline=None, max_examples=300, derandomize=True, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                   HealthCheck.function_scoped_fixture])
@given(case=CASES)
def test_fuzzed_inputs_exit_0_or_2_with_one_line(tmp_path_factory, case):
    tmp = tmp_path_factory.mktemp(f"fuzz{next(_COUNTER)}")
    code, err = check(case, tmp)
    assert_contract(case, code, err)
