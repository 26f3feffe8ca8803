"""`--chips auto`: the smallest chip count (a doubling of the group the user fixed) that holds the model."""

from __future__ import annotations

import pytest

from asicsim.cli import main
from asicsim.core.description import RunSpec, resolve
from asicsim.workloads.errors import DoesNotFitError, InputError


@pytest.mark.parametrize(("hardware", "model", "dtype", "pp"), [
    ("h100-sxm", "llama-3.1-405b", "fp8", 1), ("b200", "deepseek-r1", "fp4", 1), ("h200", "qwen3-235b-a22b", "fp8", 1),
    ("h100-sxm", "llama-3.1-405b", "fp8", 3), ("sohu", "llama-3-70b", "fp8", 1), ("h100-sxm", "llama-3.1-8b", "bf16", 1)])
def test_auto_is_the_smallest_count_that_fits(hardware, model, dtype, pp):
    spec = RunSpec(hardware=hardware, chips="auto", model=model, dtype=dtype, pp=pp, isl=256, osl=8, requests=4)
    d = resolve(spec)
    assert d.chips % pp == 0 and d.tp * d.pp * d.replicas == d.chips
    if d.chips > pp:  # half as many chips does not hold it (or allows no layout)
        with pytest.raises(InputError):
            resolve(RunSpec(hardware=hardware, chips=d.chips // 2, model=model, dtype=dtype, pp=pp, isl=256, osl=8,
                            requests=4))


def test_auto_says_when_nothing_fits_and_other_errors_pass_through(capsys):
    with pytest.raises(DoesNotFitError) as err:
        resolve(RunSpec(hardware="h100-sxm", chips="auto", model="llama-3.1-405b", dtype="bf16", tp=1))
    assert err.value.field == "chips" and "does not fit" in err.value.problem
    with pytest.raises(InputError) as err:
        resolve(RunSpec(hardware="h100-sxm", chips="auto", model="llama-3.1-8b", dtype="fp9"))
    assert err.value.field == "dtype"
    assert main(["run", "--hw", "h100-sxm", "--chips", "auto", "--model", "llama-3.1-405b", "--dtype", "bf16",
                 "--tp", "1", "--requests", "2"]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith("asicsim run: error: --chips:")
    assert main(["run", "--hw", "h100-sxm", "--chips", "auto", "--model", "llama-3.1-405b", "--requests", "2",
                 "--isl", "128", "--osl", "4", "--json"]) == 0
    assert '"chips": 8' in capsys.readouterr().out
