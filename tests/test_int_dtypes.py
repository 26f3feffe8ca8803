"""int8 / int4 as matmul dtypes: weight bytes, native datapaths, widening order and the refusal without --widen."""

from __future__ import annotations

import pytest

from asicsim.core.description import RunSpec, resolve
from asicsim.core.device import MATMUL_DTYPES, WIDER_DATAPATHS
from asicsim.core.registry import builtin_specs, make_device
from asicsim.workloads.dtypes import dtype_bytes
from asicsim.workloads.errors import InputError
from asicsim.workloads.memory import resolve_kv_dtype, weight_bytes_per_chip
from asicsim.workloads.models import load_model


def test_widening_chain_starts_with_itself_and_only_widens():
    for dtype in MATMUL_DTYPES:
        chain = WIDER_DATAPATHS[dtype]
        assert chain[0] == ("bf16" if dtype == "fp16" else dtype)
        widths = [dtype_bytes(d) for d in chain]
        assert widths == sorted(widths) and chain[-1] == "bf16"


@pytest.mark.parametrize("name", builtin_specs())
def test_widened_int_runs_at_the_first_native_datapath_of_its_chain(name):
    device = make_device(name, 1)
    native = device.supported_dtypes
    for dtype in ("int8", "int4"):
        chain = [d for d in WIDER_DATAPATHS[dtype] if d in native]
        assert chain, (name, dtype)
        assert device.peak_flops_per_s(dtype) == device.peak_flops_per_s(chain[0])


def test_a100_runs_int4_natively_at_twice_int8():
    a100 = make_device("a100-sxm-80g", 1)
    assert {"int8", "int4"} <= set(a100.supported_dtypes)
    assert a100.peak_flops_per_s("int4") == 2 * a100.peak_flops_per_s("int8")


def test_int_weights_take_their_bytes_and_a_bf16_cache():
    int8 = resolve(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", dtype="int8", requests=4))
    bf16 = resolve(RunSpec(hardware="h100-sxm", chips=1, model="llama-3.1-8b", dtype="bf16", requests=4))
    assert int8.kv_dtype == "bf16" and resolve_kv_dtype("int4", None) == "bf16"
    model = load_model("llama-3.1-8b")
    bf16_bytes = weight_bytes_per_chip(model, "bf16", 1, 1)
    assert weight_bytes_per_chip(model, "int8", 1, 1) == pytest.approx(bf16_bytes / 2, rel=0.01)
    assert weight_bytes_per_chip(model, "int4", 1, 1) == pytest.approx(bf16_bytes / 4, rel=0.01)
    assert int8.kv_capacity_blocks > bf16.kv_capacity_blocks  # the freed weight memory holds more cache


def test_sohu_refuses_int8_unless_widened():
    with pytest.raises(InputError, match="no int8 datapath"):
        resolve(RunSpec(hardware="sohu", chips=8, model="llama-3-70b", dtype="int8", requests=4))
    widened = resolve(RunSpec(hardware="sohu", chips=8, model="llama-3-70b", dtype="int8", requests=4, widen=True))
    assert widened.dtype == "int8"
