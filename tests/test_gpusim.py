"""GpuDevice against the operator-level microbenchmarks it was calibrated on, and against theory.

Reference rows below are copied from /work/shared/reference/microbenchmarks.csv with their source column.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asicsim.core.device import Device, OpCost
from asicsim.core.registry import SPEC_DIR, load_hardware
from asicsim.core.specfile import read_toml
from asicsim.gpusim.device import GpuDevice
from asicsim.gpusim.options import GpuOptions
from asicsim.gpusim.spec import GpuSpec, load_gpu_spec
from asicsim.workloads.errors import InputError
from asicsim.workloads.graph_types import Op, OpKind

GPUS = ("h100-sxm", "h200", "b200", "a100-sxm-80g")
AZURE_H100 = "Azure AI-benchmarking-guide ND H100 v5"
AZURE_NCCL = "Azure ND H100 v5 nccl-tests (NVLS; NCCL 2.18.5)"

# (device, dtype, m, n, k, TFLOP/s, source)
GEMM_ROWS = [
    ("h100-sxm", "fp8", 1024, 1024, 1024, 274, AZURE_H100),
    ("h100-sxm", "fp8", 2048, 2048, 2048, 1011, AZURE_H100),
    ("h100-sxm", "fp8", 8192, 8192, 8192, 1290, AZURE_H100),
    ("h100-sxm", "fp8", 16384, 16384, 16384, 1377, AZURE_H100),
    ("h100-sxm", "fp8", 32768, 32768, 32768, 1382, AZURE_H100),
    ("h100-sxm", "fp8", 6144, 12288, 12288, 1351, AZURE_H100),
    ("h100-sxm", "bf16", 4224, 2048, 8192, 780, "public gist 'H100 peak matmul FLOPS' (torch.compile max-autotune)"),
    ("h200", "fp8", 16384, 16384, 16384, 1366, "Azure AI-benchmarking-guide ND H200 v5"),
]
# (device, copy TB/s, source); gb200 row applied to the b200 spec
COPY_ROWS = [
    ("h100-sxm", 2.90, AZURE_H100),
    ("h200", 4.01, "Azure AI-benchmarking-guide ND H200 v5"),
    ("b200", 7.35, "Azure ND GB200 v6 blog (92% of 8 TB/s)"),
]
# (device, message bytes, busbw GB/s, source), all x8
NCCL_ROWS = [
    ("h100-sxm", 2**10, 0.07, AZURE_NCCL),
    ("h100-sxm", 2**14, 0.95, AZURE_NCCL),
    ("h100-sxm", 2**18, 10.9, AZURE_NCCL),
    ("h100-sxm", 2**20, 43.7, AZURE_NCCL),
    ("h100-sxm", 2**23, 172, AZURE_NCCL),
    ("h100-sxm", 2**25, 296, AZURE_NCCL),
    ("h100-sxm", 2**27, 401, AZURE_NCCL),
    ("h100-sxm", 2**30, 466, AZURE_NCCL),
    ("h100-sxm", 2**33, 478.9, AZURE_NCCL),
    ("h200", 2**33, 480.0, "Azure ND H200 v5 nccl-tests"),
]
# (device, dtype, seq, TFLOP/s, source): FlashAttention-3 forward, head_dim 128, long sequence
ATTENTION_ROWS = [
    ("h100-sxm", "bf16", 16384, 740, "FlashAttention-3 paper arXiv 2407.08608 (fp16)"),
    ("h100-sxm", "fp8", 16384, 1200, "FlashAttention-3 paper"),
]


@pytest.fixture(scope="module")
def devices() -> dict[str, GpuDevice]:
    return {name: GpuDevice(load_hardware(name), 8) for name in GPUS}


def matmul(m: int, n: int, k: int, dtype: str = "fp8", elem: float = 1.0) -> Op:
    return Op("gemm", OpKind.MATMUL, dtype, flops=2.0 * m * n * k, weight_bytes=k * n * elem,
              act_in_bytes=m * k * elem, act_out_bytes=m * n * 2.0, m=m, n=n, k=k)


def time_s(device: GpuDevice, op: Op) -> float:
    return device.explain(op)["time_s"]


def decode(batch: int, context: int, kv_heads: int = 1) -> Op:
    past = np.full(batch, context, dtype=np.int64)
    kv = 2.0 * kv_heads * 128 * float(past.sum() + batch)
    return Op("attn", OpKind.ATTENTION_DECODE, "fp8", flops=4.0 * 8 * kv_heads * 128 * float(past.sum() + batch),
              kv_read_bytes=kv, q_heads=8 * kv_heads, kv_heads=kv_heads, head_dim=128,
              seq_new=np.ones(batch, dtype=np.int64), seq_past=past)


# --- specs ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", GPUS)
def test_spec_loads_through_registry_with_sources(name: str) -> None:
    spec = load_hardware(name)
    assert isinstance(spec, GpuSpec) and spec.kind == "gpu" and spec.name == name
    # Descriptive names (strings) and the unpriced last-level cache are optional: sourced where a spec sets them.
    descriptive = {"compute_unit_name", "link_name", "collective_library", "serving_stack", "llc_bytes"}
    numeric = [f.name for f in dataclasses.fields(GpuSpec)
               if f.name not in ("name", "kind", "description", "sources", "assumed", *descriptive)]
    assert [f for f in numeric if not spec.source_of(f).strip()] == []
    assert spec.llc_bytes == 0.0 or spec.source_of("llc_bytes").strip()
    assert all(len(spec.source_of(f).split()) >= 4 for f in spec.assumed)


def test_bad_spec_names_the_field() -> None:
    table = read_toml(SPEC_DIR / "h100-sxm.toml")
    with pytest.raises(InputError, match="sm_count"):
        load_gpu_spec({**table, "sm_count": -1}, "bad.toml")
    with pytest.raises(InputError, match="bogus"):
        load_gpu_spec({**table, "bogus": 1}, "bad.toml")
    with pytest.raises(InputError, match="hbm_achievable_fraction"):
        load_gpu_spec({**table, "hbm_achievable_fraction": 1.5}, "bad.toml")
    with pytest.raises(InputError, match="hbm_read_fraction"):  # reads slower than a copy: nonsense
        load_gpu_spec({**table, "hbm_read_fraction": 0.5}, "bad.toml")


def test_missing_dtypes_run_at_the_next_wider_rate(devices) -> None:
    a100, h100, b200 = devices["a100-sxm-80g"], devices["h100-sxm"], devices["b200"]
    assert a100.peak_flops_per_s("fp8") == a100.peak_flops_per_s("fp4") == 312e12
    assert h100.peak_flops_per_s("fp4") == h100.peak_flops_per_s("fp8") == 1978.9e12
    assert b200.peak_flops_per_s("fp4") == 9000e12
    assert h100.peak_flops_per_s("fp16") == h100.peak_flops_per_s("bf16")
    with pytest.raises(InputError, match="fp32"):
        h100.peak_flops_per_s("fp32")


@pytest.mark.parametrize("name", GPUS)
def test_device_protocol(devices, name: str) -> None:
    d = devices[name]
    assert isinstance(d, Device)
    assert set(d.clocks_hz) == {"compute", "memory", "link"}
    assert d.memory_bytes_per_chip > 0 and d.memory_bandwidth_bytes_per_s > 0
    assert d.prefetch_weights is False and d.overlap_collectives is False
    with pytest.raises(InputError):
        GpuDevice(d.spec, 0)


# --- calibration rows ------------------------------------------------------------------------------------

@pytest.mark.parametrize("row", GEMM_ROWS, ids=lambda r: f"{r[0]}-{r[1]}-{r[2]}x{r[3]}x{r[4]}")
def test_gemm_rows_within_10_percent(devices, row) -> None:
    name, dtype, m, n, k, measured, source = row
    op = matmul(m, n, k, dtype, 1.0 if dtype == "fp8" else 2.0)
    bench = devices[name].with_effects({"sustained_power_cap": False})  # kernel benchmarks: boost clock, no throttle
    predicted = op.flops / time_s(bench, op) / 1e12
    print(f"{name} {dtype} {m}x{n}x{k}: predicted {predicted:.0f} vs {measured} TFLOP/s "
          f"({predicted / measured - 1:+.1%}) [{source}]")
    assert predicted == pytest.approx(measured, rel=0.10)


@pytest.mark.parametrize("row", COPY_ROWS, ids=lambda r: r[0])
def test_hbm_copy_within_10_percent(devices, row) -> None:
    name, measured, source = row
    array = 4.0 * 2**30
    op = Op("copy", OpKind.ELEMENTWISE, "bf16", act_in_bytes=array, act_out_bytes=array)
    predicted = 2 * array / time_s(devices[name], op) / 1e12
    print(f"{name} copy: predicted {predicted:.2f} vs {measured} TB/s ({predicted / measured - 1:+.1%}) [{source}]")
    assert predicted == pytest.approx(measured, rel=0.10)


# (device, arrays read, arrays written, TB/s, source): STREAM kernels counting the bytes of every array
STREAM_ROWS = [
    ("h100-sxm", 2, 1, 2.97, AZURE_H100 + " triad"),
    ("h100-sxm", 2, 0, 3.18, AZURE_H100 + " dot"),
    ("h200", 2, 1, 4.15, "Azure AI-benchmarking-guide ND H200 v5 triad"),
    ("h200", 2, 0, 4.48, "Azure AI-benchmarking-guide ND H200 v5 dot"),
]


@pytest.mark.parametrize("row", STREAM_ROWS, ids=lambda r: f"{r[0]}-{r[1]}r{r[2]}w")
def test_read_heavy_streams_within_10_percent(devices, row) -> None:
    """Reads run at the dot-product bandwidth, writes at what makes the copy row come out: triad and dot."""
    name, reads, writes, measured, source = row
    array = 4.0 * 2**30
    op = Op("stream", OpKind.ELEMENTWISE, "bf16", act_in_bytes=reads * array, act_out_bytes=writes * array)
    predicted = (reads + writes) * array / time_s(devices[name], op) / 1e12
    print(f"{name} {reads}R{writes}W: predicted {predicted:.2f} vs {measured} TB/s ({predicted / measured - 1:+.1%}) [{source}]")
    assert predicted == pytest.approx(measured, rel=0.10)


@settings(deadline=None, max_examples=50)
@given(st.floats(min_value=1e6, max_value=1e10), st.floats(min_value=0.0, max_value=1.0))
def test_a_write_never_costs_less_than_a_read(read_bytes, share) -> None:
    """Moving a byte from the read side to the write side never makes a memory kernel faster."""
    device = GpuDevice(load_hardware("h100-sxm"), 1)
    moved = read_bytes * share
    assert device._stream_s(read_bytes - moved, moved) >= device._stream_s(read_bytes, 0.0) * (1 - 1e-12)


@pytest.mark.parametrize("row", NCCL_ROWS, ids=lambda r: f"{r[0]}-{r[1]}")
def test_allreduce_rows_within_10_percent(devices, row) -> None:
    name, size, measured, source = row
    op = Op("ar", OpKind.ALLREDUCE, "bf16", comm_bytes=float(size), group=8)
    nccl = GpuDevice(devices[name].spec, 8, GpuOptions.for_stack("generic"))  # the rows measure NCCL itself
    predicted = size * 2 * 7 / 8 / time_s(nccl, op) / 1e9
    print(f"{name} all-reduce {size} B: predicted {predicted:.3g} vs {measured} GB/s busbw "
          f"({predicted / measured - 1:+.1%}) [{source}]")
    assert predicted == pytest.approx(measured, rel=0.10)


@pytest.mark.parametrize("row", ATTENTION_ROWS, ids=lambda r: f"{r[0]}-{r[1]}")
def test_flash_attention_rows_within_10_percent(devices, row) -> None:
    name, dtype, seq, measured, source = row
    op = Op("fa", OpKind.ATTENTION_PREFILL, dtype, q_heads=16, kv_heads=16, head_dim=128,
            seq_new=np.array([seq]), seq_past=np.array([0]))
    kernel = devices[name].with_effects({"stack_attention": False})  # the FA3 kernel, not a stack's attention op
    detail = kernel.explain(op)
    predicted = detail["useful_flops"] / detail["time_s"] / 1e12
    print(f"{name} FA3 {dtype}: predicted {predicted:.0f} vs {measured} TFLOP/s ({predicted / measured - 1:+.1%}) [{source}]")
    assert predicted == pytest.approx(measured, rel=0.10)


# --- theory ---------------------------------------------------------------------------------------------

shapes = st.tuples(st.integers(1, 20000), st.integers(1, 30000), st.integers(1, 30000))


@settings(deadline=None)
@given(shapes, st.sampled_from(GPUS), st.sampled_from(["bf16", "fp8", "fp4"]))
def test_never_faster_than_datasheet(devices, shape, name, dtype) -> None:
    d = devices[name]
    op = matmul(*shape, dtype)
    t = time_s(d, op)
    assert op.flops / t <= d.peak_flops_per_s(dtype) * (1 + 1e-9)
    assert op.memory_bytes / t <= d.memory_bandwidth_bytes_per_s * (1 + 1e-9)


@settings(deadline=None)
@given(shapes, st.sampled_from(GPUS), st.floats(1.0, 4.0))
# A GEMM whose memory time sat just above its compute time: the power-limit throttle, sharing the op's time by
# its memory time, slowed it less than when doubled bandwidth made it compute-bound (5.452 -> 5.456 us).
@example(shape=(2049, 2945, 100), name="h200", factor=2.0)
def test_more_bandwidth_or_flops_never_slower(devices, shape, name, factor) -> None:
    d = devices[name]
    faster = {
        "hbm": dataclasses.replace(d.spec, hbm_bandwidth_bytes_per_s=d.spec.hbm_bandwidth_bytes_per_s * factor),
        "flops": dataclasses.replace(d.spec, dense_bf16_flops_per_s=d.spec.dense_bf16_flops_per_s * factor,
                                     dense_fp8_flops_per_s=d.spec.dense_fp8_flops_per_s * factor,
                                     dense_fp4_flops_per_s=d.spec.dense_fp4_flops_per_s * factor),
    }
    ops = [matmul(*shape), decode(1 + shape[0] % 64, shape[1]),
           Op("ew", OpKind.ELEMENTWISE, "bf16", act_in_bytes=float(shape[1] * 1000), act_out_bytes=float(shape[2]))]
    for op in ops:
        for spec in faster.values():
            assert time_s(GpuDevice(spec, 8), op) <= time_s(d, op) * (1 + 1e-12)


def test_decode_attention_grows_with_batch_and_context(devices) -> None:
    d = devices["h100-sxm"]
    assert time_s(d, decode(16, 1000)) < time_s(d, decode(64, 1000)) < time_s(d, decode(256, 1000))
    assert time_s(d, decode(64, 500)) < time_s(d, decode(64, 2000)) < time_s(d, decode(64, 8000))
    assert d.explain(decode(64, 2000))["bound"] == "memory"


def test_small_m_gemm_is_memory_bound_large_is_compute_bound(devices) -> None:
    d = devices["h100-sxm"]
    assert d.explain(matmul(16, 8192, 8192 * 4))["bound"] == "memory"
    big = d.explain(matmul(8192, 8192, 8192))
    assert big["bound"] == "compute" and big["waves"] == 16 and 0.9 < big["wave_efficiency"] <= 1.0


# --- switchable effects -----------------------------------------------------------------------------------

def test_each_effect_switches(devices) -> None:
    spec = devices["h100-sxm"].spec
    on = GpuDevice(spec, 8, GpuOptions())  # every effect at its default (CUDA Graphs on)
    tiny = Op("ew", OpKind.ELEMENTWISE, "bf16", act_in_bytes=1024.0, act_out_bytes=1024.0)
    no_graphs = GpuDevice(spec, 8, GpuOptions(cuda_graphs=False))
    assert no_graphs.cost(tiny).fixed_s == pytest.approx(spec.launch_overhead_s - time_s(on, tiny))
    assert on.cost(tiny).fixed_s == 0.0  # graph replay (1 us) hides behind a 2 us kernel
    assert GpuDevice(spec, 8, GpuOptions(kernel_latency=False, cuda_graphs=False)).cost(tiny).fixed_s > no_graphs.cost(tiny).fixed_s
    assert GpuDevice(spec, 8, GpuOptions(launch_overhead=False, cuda_graphs=False)).cost(tiny).fixed_s == 0.0
    fused = GpuDevice(spec, 8, GpuOptions(fused_elementwise=True)).cost(tiny)
    assert fused.compute_cycles == fused.memory_cycles == fused.fixed_s == 0.0
    skinny = matmul(2048, 1280, 8192)
    assert time_s(GpuDevice(spec, 8, GpuOptions(wave_quantization=False)), skinny) < time_s(on, skinny)
    long_kernel = matmul(8192, 8192, 8192)
    assert no_graphs.cost(long_kernel).fixed_s == 0.0  # launches queue ahead of a long kernel


def test_every_op_kind_prices_non_negative(devices) -> None:
    d = devices["h100-sxm"]
    ops = [
        Op("embed", OpKind.EMBEDDING, "fp8", weight_bytes=1e6, act_in_bytes=4e3, act_out_bytes=2e6),
        Op("norm", OpKind.NORM, "bf16", flops=1e6, act_in_bytes=1e6, act_out_bytes=1e6),
        matmul(64, 1280, 8192),
        Op("pf", OpKind.ATTENTION_PREFILL, "fp8", flops=1e9, q_heads=8, kv_heads=1, head_dim=128,
           seq_new=np.array([512, 3]), seq_past=np.array([0, 100])),
        decode(8, 100),
        Op("ew", OpKind.ELEMENTWISE, "bf16", act_in_bytes=1e6),
        Op("ar", OpKind.ALLREDUCE, "bf16", comm_bytes=1e6, group=8),
        Op("p2p", OpKind.P2P, "bf16", comm_bytes=1e6, group=2),
    ]
    for op in ops:
        cost = d.cost(op)
        assert isinstance(cost, OpCost)
        assert min(v for v in dataclasses.astuple(cost) if v is not None) >= 0.0
        assert time_s(d, op) > 0.0
    assert d.cost(Op("ar1", OpKind.ALLREDUCE, "bf16", comm_bytes=1e6, group=1)).link_cycles == 0.0
    with pytest.raises(InputError, match="NVLink"):
        d.cost(Op("ar16", OpKind.ALLREDUCE, "bf16", comm_bytes=1e6, group=16))
    with pytest.raises(InputError, match="kind"):
        d.cost(Op("x", "convolution", "bf16"))


def _served_ops(hw: str, model: str, seed: int) -> tuple[GpuDevice, list[Op]]:
    """A GPU and the ops of four served steps (dense layers, MoE groups, post and stage ops)."""
    from asicsim.api import describe
    from asicsim.core.runner import serving_config
    from asicsim.workloads.graph_types import StepBatch

    d = describe(hw, chips=8, model=model, trace="azure-conv")
    cfg, rng = serving_config(d), np.random.default_rng(seed)
    ops: list[Op] = []
    for tokens in (1, 37, 700, 4096):
        graph = cfg.step_graph(StepBatch(np.array([tokens]), np.array([int(rng.integers(0, 500))]),
                                         rng.integers(0, 4000, 12)))
        ops += [*graph.pre_ops, *graph.layer_ops, *graph.post_ops, *graph.stage_ops]
        ops += [op for group, _ in graph.more_groups for op in group]
    return d.make_device(), ops


@pytest.mark.parametrize("hw, model", [("h100-sxm", "llama-3.1-70b"), ("b200", "mixtral-8x7b"),
                                       ("mi300x", "llama-3.1-70b"), ("h200", "deepseek-v3")])
def test_cost_is_the_explained_cost_under_every_effect(hw: str, model: str) -> None:
    """`cost` skips building the detail `explain` reports (and its optional kernels' bookkeeping): the cost must be
    the explained one, field for field, on every op of served steps, with each effect switched either way."""
    device, ops = _served_ops(hw, model, 3)
    options = [device.options] + [dataclasses.replace(device.options, **{name: not value})
                                  for name, value in dataclasses.asdict(device.options).items()]
    compared = 0
    for opts in options:
        gpu = GpuDevice(device.spec, device.chips, opts)
        for op in ops:
            explained, _ = gpu._price(op, True)
            assert gpu.cost(op).__dict__ == explained.__dict__, (op.name, opts)
            compared += 1
    assert compared >= len(ops) * 9


@pytest.mark.parametrize("hw, model", [("h100-sxm", "llama-3.1-70b"), ("b200", "llama-3.1-70b"),
                                       ("mi300x", "llama-3.1-70b"), ("h200", "mixtral-8x7b")])
def test_cost_rows_are_the_costs_bit_for_bit_under_every_effect(hw: str, model: str) -> None:
    """`cost_rows` (one jitted call, `kernels.gpu_price`) gives each array-free op of the kinds it takes the row of
    `cost(op)`: every OpCost field equal as a float, hbm_bytes the op's bytes; with each effect switched either way.
    Ops of other kinds (grouped expert GEMMs, attention) and all-reduces that leave the server give None."""
    from asicsim.kernels.accounts import COST_COLUMNS

    device, ops = _served_ops(hw, model, 5)
    assert COST_COLUMNS == tuple(f.name for f in dataclasses.fields(OpCost))
    taken = [op for op in ops if op.seq_new is None and op.kind in (OpKind.MATMUL, OpKind.NORM, OpKind.ELEMENTWISE,
                                                                     OpKind.EMBEDDING, OpKind.ALLREDUCE, OpKind.P2P)]
    taken += [Op("send", OpKind.P2P, "bf16", act_in_bytes=1e6, comm_bytes=1e6, group=2),
              Op("shapeless", OpKind.MATMUL, "fp8", flops=4e12),
              Op("bytes_only", OpKind.MATMUL, "fp8", m=300, n=8, k=64),
              Op("empty", OpKind.ALLREDUCE, "bf16", group=8),
              Op("sample", OpKind.ELEMENTWISE, "bf16", act_in_bytes=1e6, act_out_bytes=8.0, m=0, n=9, group=8)]
    options = [device.options] + [dataclasses.replace(device.options, **{name: not value})
                                  for name, value in dataclasses.asdict(device.options).items()]
    for opts in options:
        gpu = GpuDevice(device.spec, device.chips, opts)
        rows = gpu.cost_rows(taken)
        assert rows.shape == (len(taken), len(COST_COLUMNS))
        for op, row in zip(taken, rows.tolist()):
            cost = gpu.cost(op)
            want = [getattr(cost, f) for f in COST_COLUMNS]
            want[COST_COLUMNS.index("hbm_bytes")] = op.memory_bytes if cost.hbm_bytes is None else cost.hbm_bytes
            assert row == want, (op.name, opts)
    others = [op for op in ops if op.seq_new is not None or op.kind == OpKind.MOE_MATMUL]
    assert others and all(device.cost_rows([op]) is None for op in others)
    assert device.cost_rows([Op("ar16", OpKind.ALLREDUCE, "bf16", comm_bytes=1e6, group=16)]) is None


_NAMES = ("qkv_proj", "input_norm", "post_attention_norm", "final_norm", "attn_residual", "silu_mul", "sample",
          "sample_allreduce", "embedding", "embedding_allreduce", "mlp_allreduce", "stage_send")
_KINDS = (OpKind.MATMUL, OpKind.NORM, OpKind.ELEMENTWISE, OpKind.EMBEDDING, OpKind.ALLREDUCE, OpKind.P2P)
_amounts = st.sampled_from([0.0]) | st.floats(1.0, 1e11)
_random_ops = st.lists(st.builds(
    lambda name, kind, dtype, amounts, group, shape: Op(name, kind, dtype, *amounts, group=group, m=shape[0],
                                                        n=shape[1], k=shape[2]),
    st.sampled_from(_NAMES), st.sampled_from(_KINDS), st.sampled_from(["fp8", "bf16", "fp4", "int8"]),
    st.tuples(*[_amounts] * 7), st.integers(1, 8), st.tuples(*[st.sampled_from([0, 1]) | st.integers(0, 9000)] * 3)),
    min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(_random_ops, st.sampled_from(GPUS), st.sampled_from(["", "custom_allreduce", "gathered_logits",
                                                            "fused_residual_norm", "separate_input_quantize",
                                                            "sustained_power_cap", "cuda_graphs"]))
def test_cost_rows_equal_costs_on_drawn_ops(devices, ops, name, flip) -> None:
    """`cost_rows` on drawn ops of every kind it takes (names the effects act on, zero and non-zero fields, any
    group in a server, any shape) equals `cost` field for field, with one effect flipped."""
    from asicsim.kernels.accounts import COST_COLUMNS

    device = devices[name]
    if flip:
        device = device.with_effects({flip: not device.effects[flip]})
    rows = device.cost_rows(ops)
    for op, row in zip(ops, rows.tolist()):
        cost = device.cost(op)
        want = [getattr(cost, f) for f in COST_COLUMNS]
        want[COST_COLUMNS.index("hbm_bytes")] = op.memory_bytes
        assert row == want, op


def test_cycles_are_seconds_times_the_clock(devices) -> None:
    d = devices["b200"]
    op = matmul(4096, 4096, 4096)
    cost, detail = d.cost(op), d.explain(op)
    assert cost.compute_cycles / d.clocks_hz["compute"] == pytest.approx(detail["compute_s"])
    assert cost.ideal_compute_cycles / d.clocks_hz["compute"] == pytest.approx(op.flops / d.peak_flops_per_s("fp8"))


def test_stack_effects_switch(devices) -> None:
    """TensorRT-LLM's one-shot all-reduce, replicated embedding and residual+norm fusion, each on and off."""
    spec = devices["h100-sxm"].spec
    generic = GpuDevice(spec, 8, GpuOptions.for_stack("generic"))
    trtllm = GpuDevice(spec, 8, GpuOptions.for_stack("trtllm-0.14"))
    assert GpuDevice(spec, 8).options == trtllm.options  # default: the stack the published rows ran on
    small = Op("attn_allreduce", OpKind.ALLREDUCE, "bf16", comm_bytes=256e3, group=8)
    large = Op("attn_allreduce", OpKind.ALLREDUCE, "bf16", comm_bytes=8e6, group=8)
    assert trtllm.explain(small)["algorithm"] == "oneshot"
    assert time_s(trtllm, small) < time_s(generic, small)
    assert time_s(trtllm, large) == time_s(generic, large)  # above 500 kB TensorRT-LLM calls NCCL too
    # one-shot: at least its latency plus the peers' bytes over one NVLink direction
    floor = (spec.custom_allreduce_latency_s or spec.p2p_latency_s) + 7 * 256e3 / (spec.nvlink_bandwidth_bytes_per_s / 2)
    assert time_s(trtllm, small) >= floor
    embed = Op("embedding_allreduce", OpKind.ALLREDUCE, "bf16", comm_bytes=1e6, group=8)
    assert time_s(trtllm, embed) == 0.0 < time_s(generic, embed)
    fused = GpuDevice(spec, 8, GpuOptions(fused_residual_norm=True))
    residual = Op("attn_residual", OpKind.ELEMENTWISE, "bf16", act_in_bytes=2e8, act_out_bytes=1e8)
    norm = Op("post_attention_norm", OpKind.NORM, "bf16", weight_bytes=16e3, act_in_bytes=1e8, act_out_bytes=1e8)
    apart = time_s(generic, residual) + time_s(generic, norm)
    together = time_s(fused, residual) + time_s(fused, norm)
    assert time_s(fused, residual) == 0.0 and time_s(fused, norm) > time_s(generic, norm)
    assert together < apart  # one pass over the residual stream saved: 4 tensors moved instead of 5
    with pytest.raises(InputError):
        GpuOptions.for_stack("no-such-stack")


def test_small_groups_get_no_nvls_gain(devices) -> None:
    """NVIDIA/nccl issue #1455: 2-4 H100s stay at the ring's busbw; 8 follow the measured NVLS curve."""
    spec = devices["h100-sxm"].spec
    size = 2.0**31
    for group in (2, 4, 8):
        nccl = GpuDevice(spec, group, GpuOptions.for_stack("generic"))
        op = Op("ar", OpKind.ALLREDUCE, "bf16", comm_bytes=size, group=group)
        busbw = size * 2 * (group - 1) / group / time_s(nccl, op)
        if group < spec.nvls_min_group:
            assert busbw == pytest.approx(spec.nccl_ring_busbw_bytes_per_s)
        else:
            assert busbw > spec.nccl_ring_busbw_bytes_per_s
    small = Op("ar", OpKind.ALLREDUCE, "bf16", comm_bytes=2.0**20, group=4)  # curve busbw below the cap
    four = GpuDevice(spec, 4, GpuOptions.for_stack("generic"))
    assert time_s(four, small) == pytest.approx(2.0**20 * 1.5 / four.spec.nccl_busbw_1m_bytes_per_s)


def test_gathered_logits_all_gather_the_full_vocabulary(devices) -> None:
    """TensorRT-LLM gathers bf16 logits to every GPU and samples fp32 there; the generic stack samples
    shards and all-reduces the winners. The gathered version moves tokens x vocab x 2 B over NVLink."""
    spec = devices["h100-sxm"].spec
    tokens, shard, tp = 1024, 16032, 8
    sample = Op("sample", OpKind.ELEMENTWISE, "bf16", act_in_bytes=tokens * shard * 4.0,
                act_out_bytes=tokens * 8.0, group=tp, m=tokens, n=shard)
    reduce = Op("sample_allreduce", OpKind.ALLREDUCE, "bf16", comm_bytes=tokens * 8.0, group=tp, m=tokens, n=shard)
    generic = GpuDevice(spec, tp, GpuOptions.for_stack("generic"))
    gathered = GpuDevice(spec, tp, replace_options(gathered_logits=True))
    wire = tokens * shard * tp * 2.0
    assert gathered.explain(reduce)["algorithm"] == "nccl-allgather"
    # at least the bytes each GPU receives at the ring's bus bandwidth
    assert time_s(gathered, reduce) >= wire * (tp - 1) / tp / spec.nccl_ring_busbw_bytes_per_s
    assert time_s(gathered, reduce) > 10 * time_s(generic, reduce)  # 263 MB gathered vs an 8 kB all-reduce
    # full-vocabulary bf16 read + fp32 cast + fp32 read: tp x 2.5 the shard's fp32 read, at least
    assert time_s(gathered, sample) > 2.5 * tp * 0.9 * time_s(generic, sample)
    bigger = Op("sample_allreduce", OpKind.ALLREDUCE, "bf16", comm_bytes=2 * tokens * 8.0, group=tp,
                m=2 * tokens, n=shard)
    assert time_s(gathered, bigger) > time_s(gathered, reduce)


def replace_options(**changes) -> GpuOptions:
    """The generic stack with some switches changed."""
    return dataclasses.replace(GpuOptions.for_stack("generic"), **changes)


@pytest.mark.parametrize("new, past", [(None, np.array([5, 6, 7])), (np.ones(4, dtype=np.int64), np.arange(4)),
                                       (None, None), (None, [3, 4]), (np.ones((2, 3), dtype=np.int64), np.zeros((2, 3)))])
def test_a_decode_op_is_priced_by_its_sequence_count_without_its_arrays(devices, new, past) -> None:
    """A decode-attention op with FLOPs and bytes is priced from its totals and sequence count; the count read
    without making the arrays is the arrays' (`_seq_arrays`), and the price that of the same op with arrays made."""
    from asicsim.gpusim.device import _seq_arrays, _sequence_count

    op = Op("attention_decode", OpKind.ATTENTION_DECODE, "fp8", flops=1e9, kv_read_bytes=4e8, kv_write_bytes=1e5,
            q_heads=8, kv_heads=1, head_dim=128, seq_new=new, seq_past=past)
    made = _seq_arrays(op)
    assert _sequence_count(op) == made[0].size
    again = Op("attention_decode", OpKind.ATTENTION_DECODE, "fp8", flops=1e9, kv_read_bytes=4e8, kv_write_bytes=1e5,
               q_heads=8, kv_heads=1, head_dim=128, seq_new=made[0], seq_past=made[1])
    assert devices["h100-sxm"].cost(op) == devices["h100-sxm"].cost(again)
