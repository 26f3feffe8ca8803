"""The systolic device kind (TPU v5e / v6e / v7, Trainium2): sourced specs, matrix-unit cost from the systolic kernel,
torus all-reduce, dtype refusals, and Llama-3.3-70B on each."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.analysis import validate as v
from asicsim.core.description import RunSpec, resolve
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.runner import run_workload
from asicsim.core.specfile import spec_meta_fields
from asicsim.devices.systolic.torus import group_rings, ring_bandwidth_bytes_per_s, torus_allreduce_time_s
from asicsim.kernels import systolic
from asicsim.kernels.collectives import ring_allreduce_time_s
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind

SPECS = ("tpu-v5e", "tpu-v6e", "tpu-v7", "trainium2")
_DATAFLOW = {"os": 0, "ws": 1, "is": 2}


@pytest.mark.parametrize("name", SPECS)
def test_every_field_has_a_source_and_assumed_fields_say_why(name):
    spec = load_hardware(name)
    assert spec.kind == "systolic" and spec.name == name
    notes = dict(spec.sources)
    fields = [f.name for f in dataclasses.fields(spec) if f.name not in spec_meta_fields]
    missing = [f for f in fields if not notes.get(f)]
    assert not missing, f"{name}: fields without a source note: {missing}"
    assert spec.assumed and spec.assumed <= set(fields)
    assert "tdp_w" in spec.assumed  # no vendor publishes these chips' power


def test_published_peaks_and_memory():
    """The datasheet figures the specs are built from come back out of the device."""
    cases = {"tpu-v5e": ("bf16", 197e12, 16e9), "tpu-v6e": ("bf16", 918e12, 32 * 2**30),
             "tpu-v7": ("fp8", 4614e12, 192 * 2**30), "trainium2": ("bf16", 667e12, 96 * 2**30)}
    for name, (dtype, peak, memory) in cases.items():
        device = make_device(name, 8)
        assert device.peak_flops_per_s(dtype) == pytest.approx(peak, rel=0.01)
        assert device.memory_bytes_per_chip == pytest.approx(memory)
    assert make_device("tpu-v7", 1).memory_bandwidth_bytes_per_s == pytest.approx(7.37e12, rel=0.01)
    assert make_device("trainium2", 1).memory_bandwidth_bytes_per_s == pytest.approx(2.9e12)


def _gemm(m, n, k, dtype="bf16"):
    elem = {"bf16": 2.0, "fp8": 1.0, "int8": 1.0}[dtype]
    return Op("gemm", OpKind.MATMUL, dtype, flops=2.0 * m * n * k, weight_bytes=k * n * elem,
              act_in_bytes=m * k * elem, act_out_bytes=m * n * 2.0, m=m, n=n, k=k)


def _compute_s(device, op):
    return device.cost(op).compute_cycles / device.clocks_hz["compute"]


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(SPECS), m=st.integers(1, 3000), n=st.integers(1, 3000), k=st.integers(1, 3000),
       dtype=st.sampled_from(["bf16", "fp8"]))
def test_matmul_cycles_are_the_systolic_kernels_and_never_beat_the_roofline(name, m, n, k, dtype):
    device = make_device(name, 1)
    if dtype not in device.supported_dtypes:
        dtype = "bf16"
    s = device.spec
    k_steps = -(-k // s.macs_per_pe(dtype))
    expected = systolic.shared_gemm_cycles(s.array_count, s.array_rows, s.array_cols, _DATAFLOW[s.dataflow], m, n,
                                           k_steps, systolic.MODE_PIPELINED, 0, 0.0, 0.0, 0.0)[0]
    op = _gemm(m, n, k, dtype)
    assert device.cost(op).compute_cycles == expected
    assert _compute_s(device, op) >= op.flops / device.peak_flops_per_s(dtype) * (1 - 1e-12)


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(SPECS), m=st.integers(1, 2000), n=st.integers(1, 2000), k=st.integers(1, 2000),
       grow=st.integers(1, 600), axis=st.sampled_from("mnk"))
def test_matmul_cost_is_monotone_in_every_dimension(name, m, n, k, grow, axis):
    device = make_device(name, 1)
    dims = {"m": m, "n": n, "k": k}
    bigger = dict(dims, **{axis: dims[axis] + grow})
    small, large = device.cost(_gemm(**dims)), device.cost(_gemm(**bigger))
    assert large.compute_cycles >= small.compute_cycles
    assert large.memory_cycles + large.weight_cycles >= small.memory_cycles + small.weight_cycles


@settings(max_examples=60, deadline=None)
@given(ring=st.integers(2, 64), closed=st.booleans(), size=st.floats(1.0, 1e10), port=st.floats(1e9, 1e12),
       latency=st.floats(0.0, 1e-5))
def test_a_one_dimensional_slice_is_a_ring(ring, closed, size, port, latency):
    torus = torus_allreduce_time_s(size, ring, (ring,), port, latency, closed)
    bandwidth = port * (2.0 if closed and ring > 2 else 1.0)
    assert torus == pytest.approx(ring_allreduce_time_s(size, ring, latency, bandwidth), rel=1e-12)
    assert group_rings(ring, (ring,), closed) == ((ring, closed),)


@settings(max_examples=80, deadline=None)
@given(dims=st.lists(st.sampled_from([2, 4, 8, 16]), min_size=1, max_size=3), wrap=st.booleans(),
       size=st.floats(1e3, 1e10), port=st.floats(1e9, 1e12), data=st.data())
def test_torus_allreduce_never_beats_its_bandwidth_bound(dims, wrap, size, port, data):
    dims = tuple(dims)
    chips = int(np.prod(dims))
    group = data.draw(st.integers(2, chips))
    seconds = torus_allreduce_time_s(size, group, dims, port, 0.0, wrap)
    ports = 2 * len(dims)  # every port of every dimension sending at once
    assert seconds >= size * 2 * (group - 1) / group / (ports * port) * (1 - 1e-12)
    rings = group_rings(group, dims, wrap)
    assert int(np.prod([r for r, _ in rings])) == group
    assert all(ring_bandwidth_bytes_per_s(r, c, port) <= 2 * port for r, c in rings)


@pytest.mark.parametrize("name", SPECS)
def test_device_allreduce_follows_the_slice_and_its_link_limits(name):
    device = make_device(name, 8)
    s, limits = device.spec, device.link_limits
    assert limits.chips_per_domain == s.slice_x * s.slice_y * s.slice_z
    op = Op("ar", OpKind.ALLREDUCE, "bf16", comm_bytes=64e6, group=8)
    seconds = device.cost(op).link_cycles / device.clocks_hz["link"]
    assert seconds >= 64e6 * 2 * 7 / 8 / limits.bandwidth_bytes_per_s
    assert seconds == pytest.approx(torus_allreduce_time_s(64e6, 8, s.slice_dims, limits.bandwidth_bytes_per_s /
                                                           s.link_ports, s.link_latency_s, s.wraparound))


@pytest.mark.parametrize("name, dtype", [("tpu-v5e", "fp8"), ("tpu-v7", "int8"), ("trainium2", "int8"),
                                         ("tpu-v6e", "fp4")])
def test_a_dtype_without_a_datapath_is_refused_unless_widened(name, dtype):
    run = RunSpec(hardware=name, chips=8, model="llama-3.1-8b", dtype=dtype, kv_dtype="bf16", requests=2)
    with pytest.raises(InputError, match=f"no {dtype} datapath"):
        resolve(run)
    assert resolve(dataclasses.replace(run, widen=True)).dtype == dtype
    device = make_device(name, 1)
    assert dtype not in device.supported_dtypes
    assert device.peak_flops_per_s(dtype) in {device.peak_flops_per_s(d) for d in device.supported_dtypes}


def test_int8_runs_natively_on_the_tpus_that_have_it():
    for name in ("tpu-v5e", "tpu-v6e"):
        device = make_device(name, 1)
        assert "int8" in device.supported_dtypes
        assert device.peak_flops_per_s("int8") == 2 * device.peak_flops_per_s("bf16")


@pytest.mark.parametrize("name, dtype, pp, chips", [("tpu-v5e", "int8", 1, 8), ("tpu-v5e", "bf16", 2, 16),
                                                     ("tpu-v6e", "bf16", 1, 8), ("tpu-v7", "fp8", 1, 1),
                                                     ("trainium2", "bf16", 1, 2)])
def test_llama_3_3_70b_runs_on_each_with_auto_chips(name, dtype, pp, chips):
    """--chips auto picks the smallest count that holds the weights: 141 GB of bf16 weights do not fit tp 8 x 16 GB
    of v5e (tp cannot pass the 8 KV heads), so v5e takes int8 on 8 chips or two pipeline stages of bf16."""
    d = resolve(RunSpec(hardware=name, chips="auto", model="llama-3.3-70b", dtype=dtype, pp=pp, isl=128, osl=4,
                        requests=2))
    assert d.chips == chips and d.tp * d.pp * d.replicas == d.chips
    result = run_workload(d)
    assert result.summary["output_tokens_per_s"] > 0 and result.summary["energy_j_per_output_token"] > 0


def test_area_is_refused_and_no_floorplan():
    device = make_device("tpu-v6e", 8)
    with pytest.raises(InputError, match="no area model"):
        device.area()
    assert device.die_floorplan() is None


def test_v6e_and_v7_rows_run_vllm_at_their_published_layout_and_count_toward_no_target():
    """The vLLM TPU rows (tpu-recipes) run the vllm-throughput harness with the published max-num-seqs, token budget
    and request count; no placeholder row is left for v7 (a measurement exists), and no systolic group has a target."""
    table = v._e2e_table()
    rows = table[table["hardware"].isin(["tpu-v6e", "tpu-v7"])]
    assert set(rows["hardware"]) == {"tpu-v6e", "tpu-v7"} and (rows["value"] > 0).all()
    for row in rows.itertuples(index=False):
        d = resolve(v._table_spec(row))
        assert d.harness == "vllm-throughput" and d.scheduler == "chunked-prefill", row
        assert (d.max_batch, d.requests, d.max_tokens_per_step) == (row.max_batch, row.requests, row.max_num_tokens)
        assert d.chips == row.tp and not v.is_e2e_group(row.group) and not v.is_accelerator_group(row.group)
    assert not [r for r in v.skipped_rows() if r.hardware == "tpu-v7"]
