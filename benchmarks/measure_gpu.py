"""Operator measurements on a real GPU, written as calibration rows for the GPU model.

Run on a machine with an NVIDIA GPU and PyTorch (CI has neither; without them the script says so in one
line and exits 2):

    python benchmarks/measure_gpu.py --out DIR [--quick] [--only gemm,attention,memory,launch,power,ramp]

Sections (`--only` picks some; one that fails is reported and the others still run):
- gemm: FP8 (torch._scaled_mm, per-tensor scales) and BF16 GEMMs at the Llama-70B projection shapes for TP
  1/2/4/8 and decode-to-prefill token counts M, plus square peaks;
- attention: decode attention (one query per sequence, GQA, contiguous K and V) on every SDPA backend that
  runs it, and causal prefill attention;
- memory: HBM copy and read-only bandwidth; launch: kernel launch cost eager and from a CUDA Graph;
- power: board power (NVML energy counter) and SM clock over 3 s of sustained loads: idle, bf16 and fp8 GEMMs
  (random and all-zero data), a device copy, a memory-bound decode GEMM;
- ramp: rate, SM clock and power from 2 s idle to the power limit (10 ms windows, then 100 ms) for 8192^3 GEMMs
  (`--ramp gemm`), 8-layer Llama-70B TP8 decode steps, whole and as attention or projections alone (`decode`),
  and 8-layer prefills of one 2048- or 8192-token prompt (`prefill`).
GEMM and attention cases are captured in one CUDA Graph each and replayed over operand copies totalling 3x L2,
so no weight or KV block is still cached when it comes round (a serving step reads each once).
All-reduce needs more than one GPU and is not measured here. Rows measured here are stored under
asicsim/data/calibration/measured/<hardware>/ and compared with the model by benchmarks/bench_measured.py.

Output: DIR/gpu_measurements.csv (device, benchmark, size, value, unit, plus median / min of the timed
repeats) and DIR/gpu_measurements.json (GPU name, driver, CUDA, PyTorch versions, L2, date, the rows).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import statistics
import subprocess
import sys
from pathlib import Path

# Llama-3-70B: hidden 8192, 64 query heads, 8 KV heads of 128, intermediate 28672 (HF config.json).
HIDDEN, Q_HEADS, KV_HEADS, HEAD_DIM, FFN = 8192, 64, 8, 128, 28672
TPS = (1, 2, 4, 8)
TOKENS = (1, 16, 64, 128, 256, 512, 1024, 1536, 2048, 4096, 8192)
QUICK_TOKENS = (1, 128, 1024, 8192)
SQUARE = (4096, 8192, 16384)  # peak-efficiency GEMMs (the microbenchmark rows' M=N=K=16384)
RAMP_DECODE_BATCHES = (64, 256, 1024)
RAMP_CONTEXT = 2048
RAMP_LAYERS = 8
RAMP_FIRST_WINDOW_S, RAMP_FIRST_SPAN_S = 0.01, 0.3
RAMP_PREFILL_TOKENS = (2048, 8192)
RAMP_KINDS = ("gemm", "decode", "prefill")


def projection_shapes(tp: int) -> list[tuple[str, int, int]]:
    """(name, N, K) of the four Llama-70B projections on one GPU at tensor parallelism `tp`."""
    qkv = (Q_HEADS + 2 * KV_HEADS) * HEAD_DIM // tp
    return [("qkv_proj", qkv, HIDDEN), ("o_proj", HIDDEN, Q_HEADS * HEAD_DIM // tp),
            ("gate_up_proj", 2 * FFN // tp, HIDDEN), ("down_proj", HIDDEN, FFN // tp)]


def gemm_cases(quick: bool) -> list[tuple[str, int, int, int, int]]:
    """(projection, tp, M, N, K) for every shape the script times."""
    tokens = QUICK_TOKENS if quick else TOKENS
    return [(name, tp, m, n, k) for tp in TPS for name, n, k in projection_shapes(tp) for m in tokens]


def attention_cases(quick: bool) -> list[tuple[int, int, int]]:
    """(batch, context, kv heads per GPU) of the decode-attention cases."""
    batches = (64, 512) if quick else (16, 64, 256, 512, 1024)
    contexts = (1024,) if quick else (256, 1024, 2048, 4096)
    heads = (1, 8) if quick else (1, 2, 4, 8)
    return [(b, c, h) for b in batches for c in contexts for h in heads if b * c * h <= 2**25]


L2_ROTATE_FACTOR = 3  # each timed case cycles over buffers totalling at least 3x L2, so no operand stays cached
MAX_COPIES = 256


def copies_for(nbytes: int, l2_bytes: int) -> int:
    """How many copies of an operand of `nbytes` a case cycles over so that together they exceed L2 three times
    (serving reads each layer's weights and each sequence's KV once per step: none stays in L2)."""
    return max(1, min(MAX_COPIES, -(-L2_ROTATE_FACTOR * l2_bytes // max(int(nbytes), 1))))


class _Timer:
    """Per-call GPU time: median and minimum over timed repeats after warm-up.

    `graphed(calls)` captures the calls (each on its own buffers) into one CUDA Graph and times its replay, as the
    serving runtimes replay decode steps: no host launch gaps, no operand left in L2 by the previous call. If capture
    fails the calls run eagerly between the same events (the row's size then says `eager`)."""

    def __init__(self, torch, repeats: int) -> None:
        self.torch, self.repeats = torch, repeats

    def _events(self, run, per: int) -> tuple[float, float]:
        torch = self.torch
        for _ in range(3):
            run()
        torch.cuda.synchronize()
        times = []
        for _ in range(self.repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3 / per)
        return statistics.median(times), min(times)

    def __call__(self, fn, per: int = 1) -> tuple[float, float]:
        return self._events(fn, per)

    def graphed(self, calls: list) -> tuple[float, float, bool]:
        torch = self.torch

        def eager() -> None:
            for call in calls:
                call()
        replay = _capture(torch, eager)
        if replay is None:  # capture is an optimisation; eager timing is the fallback
            med, low = self._events(eager, len(calls))
            return med, low, False
        med, low = self._events(replay, len(calls))
        return med, low, True


def _capture(torch, fn):
    """Run `fn` once (warm-up: cuBLAS handles, workspaces), then capture it into a CUDA Graph; the graph's replay,
    or None when capture fails."""
    fn()
    torch.cuda.synchronize()
    try:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
    except Exception:  # noqa: BLE001 - any capture failure leaves eager execution
        torch.cuda.synchronize()
        return None
    return graph.replay


def _row(device: str, benchmark: str, size: str, value: float, unit: str, median_s: float, min_s: float) -> dict:
    return {"device": device, "benchmark": benchmark, "size": size, "value": round(value, 4), "unit": unit,
            "median_s": median_s, "min_s": min_s}


def _calls(fn, operands: list, count: int = 8) -> list:
    """`count` (at least one per operand) calls of fn, cycling over the operand copies."""
    n = max(count, len(operands))
    return [(lambda op=operands[i % len(operands)]: fn(op)) for i in range(n)]


def _gemm_rows(torch, device_name: str, time: _Timer, quick: bool, l2: int, progress) -> list[dict]:
    cuda = torch.device("cuda")
    rows = []
    fp8 = getattr(torch, "float8_e4m3fn", None)
    one = torch.ones((), device=cuda, dtype=torch.float32)
    cases = gemm_cases(quick) + [("square", 0, n, n, n) for n in SQUARE]
    for name, tp, m, n, k in cases:
        label = f"{name} tp{tp}" if tp else name
        a = torch.randn(m, k, device=cuda, dtype=torch.bfloat16)
        weights = [torch.randn(n, k, device=cuda, dtype=torch.bfloat16) for _ in range(copies_for(2 * n * k, l2))]
        med, low, graphed = time.graphed(_calls(lambda b: torch.matmul(a, b.t()), weights))
        mode = "" if graphed else " eager"
        rows.append(_row(device_name, "gemm_bf16_torch", f"{label} M={m} N={n} K={k}{mode}",
                         2.0 * m * n * k / med / 1e12, "TFLOP/s", med, low))
        if fp8 is not None and hasattr(torch, "_scaled_mm"):
            m8 = -(-m // 16) * 16  # FP8 cuBLASLt GEMMs need every dimension divisible by 16
            a8 = torch.randn(m8, k, device=cuda, dtype=torch.bfloat16).to(fp8)
            del weights
            weights8 = [torch.randn(n, k, device=cuda, dtype=torch.bfloat16).to(fp8)
                        for _ in range(copies_for(n * k, l2))]
            med, low, graphed = time.graphed(_calls(
                lambda b: torch._scaled_mm(a8, b.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16), weights8))
            mode = "" if graphed else " eager"
            rows.append(_row(device_name, "gemm_fp8_scaled_mm", f"{label} M={m8} N={n} K={k}{mode}",
                             2.0 * m8 * n * k / med / 1e12, "TFLOP/s", med, low))
            del weights8
        torch.cuda.empty_cache()
        progress(f"gemm {label} M={m}")
    return rows


def _sdpa_backends(torch) -> list:
    """(name, backend) of the SDPA kernels this torch has; each attention case is timed on every one that runs."""
    try:
        from torch.nn.attention import SDPBackend
    except ImportError:
        return [("default", None)]
    names = ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION")  # MATH expands GQA heads: no server runs it
    return [(n.lower(), getattr(SDPBackend, n)) for n in names if hasattr(SDPBackend, n)]


def _sdpa(torch, backend, *args, **kwargs):
    fn = torch.nn.functional.scaled_dot_product_attention
    if backend is None:
        return fn(*args, **kwargs)
    from torch.nn.attention import sdpa_kernel
    with sdpa_kernel([backend]):
        return fn(*args, **kwargs)


def _attention_rows(torch, device_name: str, time: _Timer, quick: bool, l2: int, progress) -> list[dict]:
    cuda = torch.device("cuda")
    rows = []
    backends = _sdpa_backends(torch)
    for batch, context, kv_heads in attention_cases(quick):
        q_heads = kv_heads * (Q_HEADS // KV_HEADS)
        q = torch.randn(batch, q_heads, 1, HEAD_DIM, device=cuda, dtype=torch.bfloat16)
        kv_one = batch * kv_heads * context * HEAD_DIM * 2  # bytes of K (and of V), bf16
        kvs = [tuple(torch.randn(batch, kv_heads, context, HEAD_DIM, device=cuda, dtype=torch.bfloat16)
                     for _ in range(2)) for _ in range(copies_for(2 * kv_one, l2))]
        for backend_name, backend in backends:
            try:
                med, low, graphed = time.graphed(_calls(
                    lambda kv, b=backend: _sdpa(torch, b, q, kv[0], kv[1], enable_gqa=True), kvs))
            except Exception:  # noqa: BLE001 - a backend that refuses the shape has no row
                torch.cuda.synchronize()
                continue
            mode = "" if graphed else " eager"
            rows.append(_row(device_name, "attention_decode_sdpa_bf16",
                             f"batch={batch} ctx={context} kv_heads={kv_heads} backend={backend_name}{mode}",
                             2.0 * kv_one / med / 1e12, "TB/s", med, low))
        del kvs
        progress(f"decode attention b{batch} ctx{context} h{kv_heads}")
    for seq in ((2048,) if quick else (512, 2048, 8192)):
        q = torch.randn(1, Q_HEADS // 8, seq, HEAD_DIM, device=cuda, dtype=torch.bfloat16)
        k = torch.randn(1, KV_HEADS // 8, seq, HEAD_DIM, device=cuda, dtype=torch.bfloat16)
        v = torch.randn_like(k)
        flops = 4.0 * (Q_HEADS // 8) * HEAD_DIM * seq * (seq + 1) / 2.0
        for backend_name, backend in backends:
            try:
                med, low = time(lambda b=backend: _sdpa(torch, b, q, k, v, is_causal=True, enable_gqa=True))
            except Exception:  # noqa: BLE001
                torch.cuda.synchronize()
                continue
            rows.append(_row(device_name, "attention_prefill_sdpa_bf16", f"tp8 seq={seq} backend={backend_name}",
                             flops / med / 1e12, "TFLOP/s", med, low))
        progress(f"prefill attention seq{seq}")
    torch.cuda.empty_cache()
    return rows


def _memory_rows(torch, device_name: str, time: _Timer) -> list[dict]:
    src = torch.empty(2**30, device="cuda", dtype=torch.uint8)
    dst = torch.empty_like(src)
    med, low = time(lambda: dst.copy_(src))
    rows = [_row(device_name, "hbm_copy_torch", "1GiB", 2.0 * src.numel() / med / 1e12, "TB/s", med, low)]
    words = src.view(torch.float32)
    med, low = time(lambda: words.sum())
    rows.append(_row(device_name, "hbm_read_torch_sum", "1GiB", src.numel() / med / 1e12, "TB/s", med, low))
    return rows


SECTIONS = ("gemm", "attention", "memory", "launch", "power", "ramp")


def measure(torch, device_name: str, quick: bool, repeats: int, progress,
            only: tuple[str, ...] = SECTIONS, ramp_kinds: tuple[str, ...] = RAMP_KINDS) -> list[dict]:
    """Every measurement as a row dict (see the module docstring). A section that fails is reported on stderr and
    the others still run, so one refused kernel does not cost the whole (rationed) GPU session."""
    time = _Timer(torch, repeats)
    l2 = int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20))
    sections = [("gemm", lambda: _gemm_rows(torch, device_name, time, quick, l2, progress)),
                ("attention", lambda: _attention_rows(torch, device_name, time, quick, l2, progress)),
                ("memory", lambda: _memory_rows(torch, device_name, time)),
                ("launch", lambda: _launch_rows(torch, device_name, time)),
                ("power", lambda: _power_rows(torch, device_name, 1.0 if quick else 3.0, l2)),
                ("ramp", lambda: _ramp_rows(torch, device_name, kinds=ramp_kinds))]
    rows = []
    for name, section in sections:
        if name not in only:
            continue
        try:
            rows += section()
        except Exception as exc:  # noqa: BLE001
            print(f"measure_gpu: section {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        progress(f"section {name} done ({len(rows)} rows)")
    return rows


def _launch_rows(torch, device_name: str, time) -> list[dict]:
    """Per-kernel cost of 1000 tiny kernels launched one by one and replayed from a CUDA Graph."""
    x = torch.zeros(1, device="cuda")
    count = 1000

    def launches() -> None:
        for _ in range(count):
            x.add_(1.0)

    med, low = time(launches, count)
    rows = [_row(device_name, "kernel_launch_eager", "1-element add", med * 1e6, "us", med, low)]
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        launches()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        launches()
    med, low = time(graph.replay, count)
    rows.append(_row(device_name, "kernel_launch_cuda_graph", "1-element add", med * 1e6, "us", med, low))
    return rows


def _power_rows(torch, device_name: str, seconds: float, l2: int) -> list[dict]:
    """Board power from NVML's energy counter over `seconds` idle and under sustained loads, with the SM clock
    at the end of each load and the energy per FLOP or per byte it implies. No NVML, no rows."""
    try:
        import pynvml
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception as exc:  # noqa: BLE001
        print(f"measure_gpu: no NVML ({exc}); power rows skipped", file=sys.stderr)
        return []
    import time as clock
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    loads = [("idle", None, 0.0, "")]
    loads.append((f"gemm_bf16 M=N=K={n}", lambda: torch.matmul(a, b), 2.0 * n**3, "pJ/FLOP"))
    fp8 = getattr(torch, "float8_e4m3fn", None)
    if fp8 is not None and hasattr(torch, "_scaled_mm"):
        a8, b8 = a.to(fp8), b.t().contiguous().to(fp8)
        one = torch.ones((), device="cuda", dtype=torch.float32)
        loads.append((f"gemm_fp8 M=N=K={n}",
                      lambda: torch._scaled_mm(a8, b8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16),
                      2.0 * n**3, "pJ/FLOP"))
    zeros = torch.zeros(n, n, device="cuda", dtype=torch.bfloat16)
    loads.append((f"gemm_bf16 zeros M=N=K={n}", lambda: torch.matmul(zeros, zeros), 2.0 * n**3, "pJ/FLOP"))
    src = torch.empty(2**30, device="cuda", dtype=torch.uint8)
    dst = torch.empty_like(src)
    loads.append(("hbm_copy 1GiB", lambda: dst.copy_(src), 2.0 * 2**30, "pJ/byte"))
    # a decode-shape GEMM (Llama-70B gate_up at TP8, 64 tokens) over weights that never stay in L2: memory-bound
    name, dn, dk = projection_shapes(8)[2]
    x = torch.randn(64, dk, device="cuda", dtype=torch.bfloat16)
    weights = [torch.randn(dn, dk, device="cuda", dtype=torch.bfloat16) for _ in range(copies_for(2 * dn * dk, l2))]
    turn = [0]

    def decode_gemm() -> None:
        turn[0] += 1
        torch.matmul(x, weights[turn[0] % len(weights)].t())
    loads.append((f"gemm_bf16 decode {name} tp8 M=64 N={dn} K={dk}", decode_gemm, 2.0 * dn * dk, "pJ/weight-byte"))
    rows = []
    for label, fn, work, unit in loads:
        if fn is not None:
            for _ in range(20):
                fn()
        torch.cuda.synchronize()
        energy0, start, calls = pynvml.nvmlDeviceGetTotalEnergyConsumption(handle), clock.perf_counter(), 0
        while clock.perf_counter() - start < seconds:
            if fn is None:
                clock.sleep(0.05)
                continue
            for _ in range(10):
                fn()
            calls += 10
            torch.cuda.synchronize()
        elapsed = clock.perf_counter() - start
        joules = (pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) - energy0) / 1e3
        sm_mhz = pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)
        watts = joules / elapsed
        rows.append(_row(device_name, "board_power_nvml", label, watts, "W", elapsed, elapsed))
        rows.append(_row(device_name, "sm_clock_nvml", label, sm_mhz, "MHz", elapsed, elapsed))
        if work:
            rate = work * calls / elapsed
            rows.append(_row(device_name, "energy_nvml", label, joules / (work * calls) * 1e12, unit,
                             elapsed / calls, elapsed / calls))
            rows.append(_row(device_name, "sustained_rate", label, rate / 1e12,
                             "TFLOP/s" if unit == "pJ/FLOP" else "TB/s", elapsed / calls, elapsed / calls))
            if unit == "pJ/FLOP":  # the board's power above idle, per FLOP: what the work itself costs
                idle_w = rows[0]["value"]
                rows.append(_row(device_name, "energy_above_idle_nvml", label, (watts - idle_w) / rate * 1e12,
                                 unit, elapsed / calls, elapsed / calls))
    pynvml.nvmlShutdown()
    return rows




def _decode_step(torch, batch: int, context: int, layers: int, parts: str = "all"):
    """A CUDA Graph of `layers` Llama-70B decoder layers at TP8 for `batch` sequences with `context` cached tokens
    each: FP8 projections (torch._scaled_mm, per-tensor scales) and bf16 GQA decode attention (SDPA), every layer
    on its own weights and KV so nothing stays in L2; `parts` "attention" or "projections" keeps only those kernels.
    Returns its replay (eager calls when capture fails)."""
    fp8 = torch.float8_e4m3fn
    one = torch.ones((), device="cuda", dtype=torch.float32)
    (_, n_qkv, k_qkv), (_, n_o, k_o), (_, n_gu, k_gu), (_, n_d, k_d) = projection_shapes(8)

    def weight(n: int, k: int):
        return torch.randn(n, k, device="cuda", dtype=torch.bfloat16).to(fp8)

    def act(k: int):
        return torch.randn(batch, k, device="cuda", dtype=torch.bfloat16).to(fp8)

    x, o_in, d_in = act(k_qkv), act(k_o), act(k_d)
    backend = dict(_sdpa_backends(torch)).get("cudnn_attention")  # the fastest decode backend measured (run 2)
    q = torch.randn(batch, Q_HEADS // 8, 1, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
    per_layer = [dict(qkv=weight(n_qkv, k_qkv), o=weight(n_o, k_o), gu=weight(n_gu, k_gu), d=weight(n_d, k_d),
                      k=torch.randn(batch, KV_HEADS // 8, context, HEAD_DIM, device="cuda", dtype=torch.bfloat16),
                      v=torch.randn(batch, KV_HEADS // 8, context, HEAD_DIM, device="cuda", dtype=torch.bfloat16))
                 for _ in range(layers)]

    def mm(a, w):
        return torch._scaled_mm(a, w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

    attention, projections = parts in ("all", "attention"), parts in ("all", "projections")

    def step() -> None:
        for w in per_layer:
            if projections:
                mm(x, w["qkv"])
            if attention:
                _sdpa(torch, backend, q, w["k"], w["v"], enable_gqa=True)
            if projections:
                mm(o_in, w["o"])
                mm(x, w["gu"])
                mm(d_in, w["d"])
    return _capture(torch, step) or step


def _prefill_step(torch, tokens: int, layers: int):
    """A CUDA Graph of `layers` Llama-70B decoder layers at TP8 prefilling one `tokens`-long prompt: FP8 projections
    and causal bf16 GQA attention (cuDNN SDPA), every layer on its own weights."""
    fp8 = torch.float8_e4m3fn
    one = torch.ones((), device="cuda", dtype=torch.float32)
    shapes = projection_shapes(8)
    x = {k: torch.randn(tokens, k, device="cuda", dtype=torch.bfloat16).to(fp8) for _, _, k in shapes}
    weights = [[torch.randn(n, k, device="cuda", dtype=torch.bfloat16).to(fp8) for _, n, k in shapes]
               for _ in range(layers)]
    backend = dict(_sdpa_backends(torch)).get("cudnn_attention")
    q = torch.randn(1, Q_HEADS // 8, tokens, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(1, KV_HEADS // 8, tokens, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
    v = torch.randn_like(k)

    def step() -> None:
        for layer in weights:
            for (_, _, kdim), w in zip(shapes, layer):
                torch._scaled_mm(x[kdim], w.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
            _sdpa(torch, backend, q, k, v, is_causal=True, enable_gqa=True)
    return _capture(torch, step) or step


def _ramp_rows(torch, device_name: str, seconds: float = 3.0, window_s: float = 0.1,
               kinds: tuple[str, ...] = RAMP_KINDS) -> list[dict]:
    """How a sustained load's rate, SM clock and board power move from a cold start (after 2 s idle) as the board
    reaches its power limit: short benchmarks see the first window, serving under load the last. Loads: bf16 and
    fp8 8192^3 GEMMs, and decode steps of 8 Llama-70B TP8 layers (fp8 GEMMs, bf16 attention) at several batches."""
    try:
        import pynvml
        pynvml.nvmlInit()
        nvml = (pynvml, pynvml.nvmlDeviceGetHandleByIndex(0))
    except Exception:  # noqa: BLE001
        nvml = None
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    cases = []
    if "gemm" in kinds:
        cases.append(("gemm_bf16_ramp", f"gemm_bf16 M=N=K={n}", lambda: (lambda: torch.matmul(a, b)), 2.0 * n**3,
                      "TFLOP/s", 1e12))
    fp8 = getattr(torch, "float8_e4m3fn", None)
    if fp8 is not None and hasattr(torch, "_scaled_mm"):
        a8, b8 = a.to(fp8), b.t().contiguous().to(fp8)
        one = torch.ones((), device="cuda", dtype=torch.float32)
        if "gemm" in kinds:
            cases.append(("gemm_fp8_ramp", f"gemm_fp8 M=N=K={n}",
                          lambda: (lambda: torch._scaled_mm(a8, b8.t(), scale_a=one, scale_b=one,
                                                            out_dtype=torch.bfloat16)),
                          2.0 * n**3, "TFLOP/s", 1e12))
        for tokens in (RAMP_PREFILL_TOKENS if "prefill" in kinds else ()):
            cases.append(("prefill_step_fp8_ramp", f"llama-70b tp8 {RAMP_LAYERS} layers prefill tokens={tokens}",
                          lambda tokens=tokens: _prefill_step(torch, tokens, RAMP_LAYERS),
                          float(RAMP_LAYERS), "layers/s", 1.0))
        for batch in (RAMP_DECODE_BATCHES if "decode" in kinds else ()):
            for bench, parts in (("decode_step_fp8_ramp", "all"), ("decode_attention_ramp", "attention"),
                                 ("decode_projections_fp8_ramp", "projections")):
                label = "" if parts == "all" else f" {parts} only"
                cases.append((bench, f"llama-70b tp8 {RAMP_LAYERS} layers{label} batch={batch} ctx={RAMP_CONTEXT}",
                              lambda batch=batch, parts=parts: _decode_step(torch, batch, RAMP_CONTEXT, RAMP_LAYERS,
                                                                            parts),
                              float(RAMP_LAYERS), "layers/s", 1.0))
    rows = []
    for bench, label, fn, work, unit, scale in cases:
        try:
            rows += _ramp(torch, nvml, device_name, bench, label, fn(), work, unit, scale, seconds, window_s)
        except Exception as exc:  # noqa: BLE001 - keep the cases measured so far
            print(f"measure_gpu: ramp {label}: {type(exc).__name__}: {exc}", file=sys.stderr)
            break
    return rows


def _ramp(torch, nvml, device_name: str, bench: str, label: str, fn, work: float, unit: str, scale: float,
          seconds: float, window_s: float) -> list[dict]:
    """One load's windows: rate, SM clock and board power at each window's end, after 2 s idle."""
    import time as clock
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    clock.sleep(2.0)
    rows, start = [], clock.perf_counter()
    while clock.perf_counter() - start < seconds:
        # 10 ms windows over the first 0.3 s show the burst rate before the power limiter acts, then `window_s`
        window = RAMP_FIRST_WINDOW_S if clock.perf_counter() - start < RAMP_FIRST_SPAN_S else window_s
        t0, calls = clock.perf_counter(), 0
        while clock.perf_counter() - t0 < window:
            fn()
            calls += 1
            torch.cuda.synchronize()
        t1 = clock.perf_counter()
        mhz, watts = 0, 0.0
        if nvml is not None:
            lib, handle = nvml
            mhz, watts = lib.nvmlDeviceGetClockInfo(handle, lib.NVML_CLOCK_SM), lib.nvmlDeviceGetPowerUsage(handle) / 1e3
        rows.append(_row(device_name, bench, f"{label} t={t1 - start:.3f}s sm_mhz={int(mhz)} power_w={float(watts):.0f}",
                         work * calls / (t1 - t0) / scale, unit, (t1 - t0) / calls, (t1 - t0) / calls))
    return rows


def environment(torch) -> dict:
    """What the rows were measured on."""
    props = torch.cuda.get_device_properties(0)
    driver = ""
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {"gpu": props.name, "sm_count": props.multi_processor_count, "memory_bytes": props.total_memory,
            "l2_bytes": int(getattr(props, "L2_cache_size", 0)),
            "driver": driver, "cuda": torch.version.cuda, "torch": torch.__version__,
            "date": dt.date.today().isoformat()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_measurements.{csv,json}")
    parser.add_argument("--quick", action="store_true", help="a subset of the shapes (a few minutes)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per case (median reported)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--ramp", default=",".join(RAMP_KINDS), help=f"the ramp section's loads ({', '.join(RAMP_KINDS)})")
    args = parser.parse_args(argv)
    only = tuple(x.strip() for x in args.only.split(",") if x.strip())
    if not only or set(only) - set(SECTIONS):
        print(f"measure_gpu: --only: sections are {', '.join(SECTIONS)}", file=sys.stderr)
        return 2
    ramp_kinds = tuple(x.strip() for x in args.ramp.split(",") if x.strip())
    if not ramp_kinds or set(ramp_kinds) - set(RAMP_KINDS):
        print(f"measure_gpu: --ramp: loads are {', '.join(RAMP_KINDS)}", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print("measure_gpu: --repeats: must be at least 1", file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError:
        print("measure_gpu: PyTorch is not installed; run this on a GPU machine with torch", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("measure_gpu: no CUDA device visible to PyTorch; run this on a GPU machine", file=sys.stderr)
        return 2
    env = environment(torch)
    device_name = env["gpu"]
    done = [0]

    def progress(label: str) -> None:
        done[0] += 1
        print(f"[{done[0]}] {label}", file=sys.stderr, flush=True)

    rows = measure(torch, device_name, args.quick, args.repeats, progress, only, ramp_kinds)
    if not rows:
        print("measure_gpu: every section failed (see above); nothing written", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "gpu_measurements.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "gpu_measurements.json").write_text(json.dumps({"environment": env, "rows": rows}, indent=1))
    print(f"{len(rows)} rows on {device_name} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
