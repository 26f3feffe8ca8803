"""Extract the operator tables asicsim calibrates its GPU models on from the aiconfigurator-core wheel.

aiconfigurator-core (Apache-2.0, PyPI) ships per-operator latencies measured by NVIDIA on real GPUs under
TensorRT-LLM, vLLM and SGLang (parquet files under `aiconfigurator_core/systems/data/<gpu>/<op>/<framework>/
<version>/`). This script is a tool, not a dependency: it reads a downloaded wheel (or downloads one with pip),
keeps the rows a dense transformer's step needs, and writes compact gzip CSVs plus `provenance.json` to
`asicsim/data/calibration/aiconfigurator/`.

    python benchmarks/extract_aiconfigurator.py              # pip download aiconfigurator-core==0.12.0
    python benchmarks/extract_aiconfigurator.py --wheel PATH  # an already downloaded wheel

What is kept (per GPU, TensorRT-LLM tables):
- `gemm.csv.gz`: the `Linear` module's forward (bf16 input; fp8 per-tensor includes the input quantize),
  CUDA-graph timed, weights larger than L2 or replicated past it; dtypes bf16, fp8 and nvfp4 (as fp4),
  n and k up to 32768, m up to 16384.
- `generation_attention.csv.gz` / `context_attention.csv.gz`: head_dim 128, no sliding window, up to 8 query
  heads per KV head (the GQA shapes of Llama-class models).
- `allreduce.csv.gz`: TensorRT-LLM's custom all-reduce (bf16) and NCCL all-reduce (half), message size in
  elements as the package records it (bytes = 2 x elements).

Every row gets `split` = `calibration` or `holdout`, decided by a hash of the row's shape group (GEMM: its
(n, k) weight shape, so a held-out weight shape is never seen in calibration; attention: its (heads, KV heads,
batch) group), so the split is the same on every machine and every run; all-reduce rows alternate by message
size (odd powers of two held out), so both ends of the size range are in both halves.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

PACKAGE = "aiconfigurator-core"
VERSION = "0.12.0"
LICENSE = "Apache-2.0"
OUT = Path(__file__).resolve().parents[1] / "asicsim" / "data" / "calibration" / "aiconfigurator"
# asicsim spec name -> aiconfigurator system name.
GPUS = {"h100-sxm": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm"}
TRTLLM_VERSION = "1.3.0rc20"  # the release every kept GEMM, attention and custom all-reduce table was measured on
NCCL_VERSION = "2.29.2"
_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "nvfp4": "fp4"}
MAX_NK = 32768
MAX_M = 16384
HOLDOUT_SHARE = 0.5


def holdout(*key: object) -> bool:
    """True for about HOLDOUT_SHARE of keys: the first byte of the key's SHA-256, stable across runs."""
    digest = hashlib.sha256(repr(tuple(int(k) if hasattr(k, "__int__") else k for k in key)).encode()).digest()
    return digest[0] < 256 * HOLDOUT_SHARE


def _split(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    return frame[columns].apply(lambda r: "holdout" if holdout(*r) else "calibration", axis=1)


def _read(zf: zipfile.ZipFile, gpu: str, relpath: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(zf.read(f"aiconfigurator_core/systems/data/{gpu}/{relpath}")))


def gemm_table(zf: zipfile.ZipFile, gpu: str) -> pd.DataFrame:
    g = _read(zf, gpu, f"gemm/trtllm/{TRTLLM_VERSION}/gemm_perf.parquet")
    g = g[g["gemm_dtype"].isin(list(_DTYPES)) & (g["n"] <= MAX_NK) & (g["k"] <= MAX_NK) & (g["m"] <= MAX_M)]
    out = pd.DataFrame({"dtype": g["gemm_dtype"].map(_DTYPES), "m": g["m"], "n": g["n"], "k": g["k"],
                        "latency_us": (g["latency"] * 1e3).round(4)})
    out["split"] = _split(out, ["n", "k"])
    return out.sort_values(["dtype", "n", "k", "m"]).reset_index(drop=True)


def _attention(zf: zipfile.ZipFile, gpu: str, name: str) -> pd.DataFrame:
    a = _read(zf, gpu, f"attention/trtllm/{TRTLLM_VERSION}/{name}_perf.parquet")
    a = a[(a["head_dim"] == 128) & (a["window_size"] == 0) & (a["num_key_value_heads"] <= 8)
          & (a["num_heads"] % a["num_key_value_heads"] == 0)
          & (a["num_heads"] // a["num_key_value_heads"] <= 8) & (a["beam_width"] == 1)]
    out = pd.DataFrame({
        "batch": a["batch_size"], "isl": a["isl"], "past_tokens": a["step"], "q_heads": a["num_heads"],
        "kv_heads": a["num_key_value_heads"], "head_dim": a["head_dim"],
        "dtype": a["attn_dtype"].map({"bfloat16": "bf16", "fp8": "fp8"}),
        "kv_dtype": a["kv_cache_dtype"].map({"bfloat16": "bf16", "fp8": "fp8"}),
        "latency_us": (a["latency"] * 1e3).round(4),
    })
    out["split"] = _split(out, ["q_heads", "kv_heads", "batch"])
    return out.sort_values(["kv_dtype", "q_heads", "kv_heads", "batch", "isl", "past_tokens"]).reset_index(drop=True)


def allreduce_table(zf: zipfile.ZipFile, gpu: str) -> pd.DataFrame:
    custom = _read(zf, gpu, f"comm/trtllm/{TRTLLM_VERSION}/custom_allreduce_perf.parquet")
    custom = custom.assign(implementation="trtllm-custom", framework_version=f"TensorRT-LLM {TRTLLM_VERSION}")
    nccl = _read(zf, gpu, f"comm/nccl/{NCCL_VERSION}/nccl_perf.parquet")
    nccl = nccl[(nccl["op_name"] == "all_reduce") & (nccl["nccl_dtype"] == "half")]
    nccl = nccl.assign(implementation="nccl", framework_version=f"NCCL {NCCL_VERSION}")
    both = pd.concat([custom, nccl], ignore_index=True)
    out = pd.DataFrame({"implementation": both["implementation"], "framework_version": both["framework_version"],
                        "gpus": both["num_gpus"], "message_bytes": both["message_size"] * 2,
                        "latency_us": (both["latency"] * 1e3).round(4)})
    # Every other power of two: a hash of 23 sizes left the whole large-message end of one GPU's table in the
    # holdout, so no bandwidth could be calibrated there; alternating keeps both ends in both halves.
    out["split"] = np.where(np.log2(out["message_bytes"]).round().astype(int) % 2 == 1, "holdout", "calibration")
    return out.sort_values(["implementation", "gpus", "message_bytes"]).reset_index(drop=True)


def _device_name(zf: zipfile.ZipFile, gpu: str) -> str:
    return str(_read(zf, gpu, f"gemm/trtllm/{TRTLLM_VERSION}/gemm_perf.parquet")["device"].iloc[0])


def extract(wheel: Path, out: Path) -> dict:
    """Write the tables and provenance.json; return the provenance record."""
    out.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    tables = {}
    with zipfile.ZipFile(wheel) as zf:
        for spec_name, gpu in GPUS.items():
            folder = out / spec_name
            folder.mkdir(exist_ok=True)
            frames = {
                "gemm": gemm_table(zf, gpu),
                "generation_attention": _attention(zf, gpu, "generation_attention"),
                "context_attention": _attention(zf, gpu, "context_attention"),
                "allreduce": allreduce_table(zf, gpu),
            }
            for name, frame in frames.items():
                frame.to_csv(folder / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
            tables[spec_name] = {"system": gpu, "device": _device_name(zf, gpu),
                                 "rows": {name: len(frame) for name, frame in frames.items()}}
    record = {
        "package": PACKAGE, "package_version": VERSION, "license": LICENSE, "wheel": wheel.name, "wheel_sha256": sha,
        "source": "https://pypi.org/project/aiconfigurator-core/ (NVIDIA ai-dynamo/aiconfigurator collector)",
        "framework": f"TensorRT-LLM {TRTLLM_VERSION} (gemm, attention, custom all-reduce); NCCL {NCCL_VERSION}",
        "latency": "microseconds per call, CUDA-graph replay (the collector's benchmark_with_power)",
        "split": f"sha256 of the shape group, holdout share {HOLDOUT_SHARE}; all-reduce: odd log2(bytes) held out",
        "extracted": _dt.date.today().isoformat(), "extractor": "benchmarks/extract_aiconfigurator.py",
        "gpus": tables,
    }
    (out / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def _download(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
                    f"{PACKAGE}=={VERSION}"], check=True)
    return next(dest.glob("aiconfigurator_core-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help=f"a downloaded {PACKAGE} {VERSION} wheel (default: pip download)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or _download(Path(tmp))
        record = extract(wheel, args.out)
    for name, entry in record["gpus"].items():
        print(f"{name:10} {entry['device']:28} " + "  ".join(f"{k} {v}" for k, v in entry["rows"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
