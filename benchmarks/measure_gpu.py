"""Operator measurements on a real GPU, written as calibration rows for the GPU model.

Run on a machine with an NVIDIA GPU and PyTorch (CI has neither; without them the script says so in one
line and exits 2):

    python benchmarks/measure_gpu.py --out DIR [--quick]

It measures what the end-to-end residuals of `asicsim validate` point at and no public row covers
(docs/gpu-calibration.md, "What the residuals say"):
- FP8 (torch._scaled_mm, per-tensor scales) and BF16 GEMMs at the Llama-70B projection shapes for
  TP 1/2/4/8 and decode-to-prefill token counts M;
- decode attention (one query per sequence, GQA, contiguous KV) and causal prefill attention through
  torch's scaled_dot_product_attention;
- HBM copy and read-only bandwidth; kernel launch overhead with and without CUDA Graph replay.
All-reduce needs more than one GPU and is not measured here.

Output: DIR/gpu_measurements.csv (device, benchmark, size, value, unit, plus median / min of the timed
repeats) and DIR/gpu_measurements.json (GPU name, driver, CUDA, PyTorch versions, date, the rows).
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


class _Timer:
    """Median and minimum of CUDA-event timings after warm-up."""

    def __init__(self, torch, repeats: int) -> None:
        self.torch, self.repeats = torch, repeats

    def __call__(self, fn) -> tuple[float, float]:
        torch = self.torch
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(self.repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        return statistics.median(times), min(times)


def _row(device: str, benchmark: str, size: str, value: float, unit: str, median_s: float, min_s: float) -> dict:
    return {"device": device, "benchmark": benchmark, "size": size, "value": round(value, 4), "unit": unit,
            "median_s": median_s, "min_s": min_s}


def measure(torch, device_name: str, quick: bool, repeats: int, progress) -> list[dict]:
    """Every measurement as a row dict (see the module docstring)."""
    time = _Timer(torch, repeats)
    cuda = torch.device("cuda")
    rows = []
    fp8 = getattr(torch, "float8_e4m3fn", None)
    one = torch.ones((), device=cuda, dtype=torch.float32)
    for name, tp, m, n, k in gemm_cases(quick):
        size = f"{name} tp{tp} M={m} N={n} K={k}"
        a = torch.randn(m, k, device=cuda, dtype=torch.bfloat16)
        b = torch.randn(n, k, device=cuda, dtype=torch.bfloat16)
        med, low = time(lambda: torch.matmul(a, b.t()))
        rows.append(_row(device_name, "gemm_bf16_torch", size, 2.0 * m * n * k / med / 1e12, "TFLOP/s", med, low))
        if fp8 is not None and hasattr(torch, "_scaled_mm"):
            m8 = -(-m // 16) * 16  # FP8 cuBLASLt GEMMs need every dimension divisible by 16
            a8, b8 = torch.randn(m8, k, device=cuda, dtype=torch.bfloat16).to(fp8), b.to(fp8)
            med, low = time(lambda: torch._scaled_mm(a8, b8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16))
            rows.append(_row(device_name, "gemm_fp8_scaled_mm", f"{name} tp{tp} M={m8} N={n} K={k}",
                             2.0 * m8 * n * k / med / 1e12, "TFLOP/s", med, low))
        progress(size)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    for batch, context, kv_heads in attention_cases(quick):
        q_heads = kv_heads * (Q_HEADS // KV_HEADS)
        q = torch.randn(batch, q_heads, 1, HEAD_DIM, device=cuda, dtype=torch.bfloat16)
        kv = torch.randn(batch, kv_heads, context, HEAD_DIM, device=cuda, dtype=torch.bfloat16)
        med, low = time(lambda: sdpa(q, kv, kv, enable_gqa=True))
        kv_bytes = 2.0 * kv.numel() * kv.element_size()
        rows.append(_row(device_name, "attention_decode_sdpa_bf16", f"batch={batch} ctx={context} kv_heads={kv_heads}",
                         kv_bytes / med / 1e12, "TB/s", med, low))
        progress(f"decode attention b{batch} ctx{context} h{kv_heads}")
    for seq in ((2048,) if quick else (512, 2048, 8192)):
        q = torch.randn(1, Q_HEADS // 8, seq, HEAD_DIM, device=cuda, dtype=torch.bfloat16)
        k = torch.randn(1, KV_HEADS // 8, seq, HEAD_DIM, device=cuda, dtype=torch.bfloat16)
        med, low = time(lambda: sdpa(q, k, k, is_causal=True, enable_gqa=True))
        flops = 4.0 * (Q_HEADS // 8) * HEAD_DIM * seq * (seq + 1) / 2.0
        rows.append(_row(device_name, "attention_prefill_sdpa_bf16", f"tp8 seq={seq}", flops / med / 1e12, "TFLOP/s",
                         med, low))
    src = torch.empty(2**30, device=cuda, dtype=torch.uint8)
    dst = torch.empty_like(src)
    med, low = time(lambda: dst.copy_(src))
    rows.append(_row(device_name, "hbm_copy_torch", "1GiB", 2.0 * src.numel() / med / 1e12, "TB/s", med, low))
    words = src.view(torch.float32)
    med, low = time(lambda: words.sum())
    rows.append(_row(device_name, "hbm_read_torch_sum", "1GiB", src.numel() / med / 1e12, "TB/s", med, low))
    rows += _launch_rows(torch, device_name, time)
    return rows


def _launch_rows(torch, device_name: str, time) -> list[dict]:
    """Per-kernel cost of 1000 tiny kernels launched one by one and replayed from a CUDA Graph."""
    x = torch.zeros(1, device="cuda")
    count = 1000

    def launches() -> None:
        for _ in range(count):
            x.add_(1.0)

    med, low = time(launches)
    rows = [_row(device_name, "kernel_launch_eager", "1-element add", med / count * 1e6, "us", med, low)]
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        launches()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        launches()
    med, low = time(graph.replay)
    rows.append(_row(device_name, "kernel_launch_cuda_graph", "1-element add", med / count * 1e6, "us", med, low))
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
            "driver": driver, "cuda": torch.version.cuda, "torch": torch.__version__,
            "date": dt.date.today().isoformat()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_measurements.{csv,json}")
    parser.add_argument("--quick", action="store_true", help="a subset of the shapes (a few minutes)")
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per case (median reported)")
    args = parser.parse_args(argv)
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

    rows = measure(torch, device_name, args.quick, args.repeats, progress)
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
