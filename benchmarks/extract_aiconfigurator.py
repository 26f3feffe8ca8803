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

Mixture-of-experts and MLA tables (TensorRT-LLM, only the shapes of the MoE models asicsim names: DeepSeek-V3/R1,
gpt-oss-120b/20b, Qwen3-235B-A22B/30B-A3B, Mixtral 8x7B/8x22B, Llama-4 Maverick/Scout; see MOE_SHAPES):
- `moe.csv.gz`: TensorRT-LLM's fused MoE op on one GPU (`create_moe(...).forward` with router logits given:
  top-k selection, token permute, the two grouped expert GEMMs with the gated activation, finalize; no router
  GEMM, no shared expert, no communication: `reduce_results=False`), TensorRT-LLM 1.3.0rc20. Columns:
  `models` (the model names the shape belongs to, `|`-separated), `dtype` (bf16; fp8 = per-tensor; fp8_block =
  128x128 block scales, DeepGEMM on Blackwell; fp4 = NVFP4; mxfp4_w4a16 / mxfp4_w4a8 = MXFP4 weights with bf16
  / MXFP8 activations), `kernel` (the package's kernel_source: `cutlass`, `trtllm` (TensorRT-LLM's default
  torch-flow backend), `trtllm_min_latency` (the NVFP4 min-latency trtllm-gen kernel, finalize skipped),
  `deepgemm`), `tokens` (tokens entering the MoE on this GPU), `hidden`, `inter` (the model's full expert
  intermediate size; a GPU holds inter / moe_tp of it), `experts` (routed experts in the model; a GPU holds
  experts / moe_ep), `topk`, `moe_tp`, `moe_ep` (moe_tp x moe_ep <= 8: one node), `distribution` (`balanced`
  or `power_law_<alpha>`: expert loads drawn from a power law, alpha 1.01 or 1.2, the collector's imbalance
  model), `latency_us`.
- `mla_context.csv.gz` / `mla_generation.csv.gz`: the MLA attention kernel alone (DeepSeek-V3 geometry: kv_lora
  512, rope 64, nope 128, v 128), TensorRT-LLM 1.3.0rc20, bf16 compute. Columns `heads` (query heads on this
  GPU: 128 / attention TP, so 16-128), `batch`, `isl` (context: new tokens per sequence; generation: 1),
  `past_tokens` (generation: cached tokens before this step), `kv_dtype` (bf16 or fp8 latent cache),
  `latency_us`.
- `mla_module_context.csv.gz` / `mla_module_generation.csv.gz`: the whole DeepSeek-V3 MLA module on one GPU
  (down/up projections, q/kv norms, RoPE, attention, output projection), same columns plus `gemm_dtype` (bf16,
  fp8_block, and on B200 fp4) for its projections; generation rows record `past_tokens` as the package's step.
- `mla_bmm.csv.gz`: the absorbed-MLA batched matmuls of a decode step (`op` = `pre`: q_nope x W_UK into the
  latent space, `post`: latent output x W_UV), columns `op`, `dtype` (bf16, fp8 block-scaled), `tokens`,
  `heads`, `latency_us`.
- `moe_a2a.csv.gz`: DeepEP dispatch and combine inside TensorRT-LLM (1.3.0rc11) on one 8-GPU node: `backend`
  (`ht`: DeepEP's high-throughput (normal) kernels; `ll`: its low-latency kernels), `phase` (dispatch or
  combine), `dtype` (the payload: bf16, fp8, fp4 (nvfp4)), `ep`, `hidden`, `topk`, `experts`, `tokens` (tokens
  per GPU), `latency_us`. Only the collector's top-8 shapes (hidden 4096 and 7168, 256 experts) are kept.
- `nccl_collectives.csv.gz`: NCCL 2.29.2 `all_gather`, `reduce_scatter` and `alltoall` (the collectives of
  attention-data-parallel MoE layers), `dtype` half or int8, `gpus` 2/4/8, `message_bytes` (the package's
  message size in elements x 2 for half, x 1 for int8), `latency_us`.

Every row gets `split` = `calibration` or `holdout`, decided by a hash of the row's shape group (GEMM: its
(n, k) weight shape, so a held-out weight shape is never seen in calibration; attention: its (heads, KV heads,
batch) group), so the split is the same on every machine and every run; all-reduce rows alternate by message
size (odd powers of two held out), so both ends of the size range are in both halves. MoE rows split by their
per-GPU expert shape (hidden, inter, experts, top-k, moe_tp, moe_ep), across dtypes and distributions; MLA rows by
(heads, batch), MLA BMMs by (op, heads); DeepEP and NCCL collective rows alternate like the all-reduce (DeepEP by
the rank of its token count).
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
GPUS = {"h100-sxm": "h100_sxm", "h200": "h200_sxm", "b200": "b200_sxm", "gb200": "gb200", "gb300": "gb300"}
# the release every kept GEMM, attention, MoE, MLA and custom all-reduce table was measured on
TRTLLM_VERSION = "1.3.0rc20"
TRTLLM_A2A_VERSION = "1.3.0rc11"  # the only TensorRT-LLM release with a DeepEP dispatch/combine table
NCCL_VERSION = "2.29.2"
_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "nvfp4": "fp4"}
MAX_NK = 32768
MAX_M = 16384
HOLDOUT_SHARE = 0.5
# (hidden, expert inter size, routed experts, top-k) -> the models with that MoE layer (Hugging Face config.json).
MOE_SHAPES = {
    (7168, 2048, 256, 8): "deepseek-v3|deepseek-r1",
    (2880, 2880, 128, 4): "gpt-oss-120b",
    (2880, 2880, 32, 4): "gpt-oss-20b",
    (4096, 1536, 128, 8): "qwen3-235b-a22b",
    (2048, 768, 128, 8): "qwen3-30b-a3b",
    (4096, 14336, 8, 2): "mixtral-8x7b",
    (6144, 16384, 8, 2): "mixtral-8x22b",
    (5120, 8192, 128, 1): "llama-4-maverick",
    (5120, 8192, 16, 1): "llama-4-scout",
}
MAX_MOE_GPUS = 8  # moe_tp x moe_ep: one node
_MOE_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "fp8_block": "fp8_block", "nvfp4": "fp4",
               "w4a16_mxfp4": "mxfp4_w4a16", "w4a8_mxfp4_mxfp8": "mxfp4_w4a8"}
_MOE_KERNELS = {"moe_torch_flow_cutlass": "cutlass", "moe_torch_flow": "trtllm",
                "moe_torch_flow_min_latency": "trtllm_min_latency", "deepgemm": "deepgemm"}
MLA_HEADS = (16, 32, 64, 128)  # DeepSeek's 128 query heads over attention TP 8, 4, 2, 1
_KV = {"bfloat16": "bf16", "fp8": "fp8"}


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


def moe_table(zf: zipfile.ZipFile, gpu: str) -> pd.DataFrame:
    m = _read(zf, gpu, f"moe/trtllm/{TRTLLM_VERSION}/moe_perf.parquet")
    models = pd.Series([MOE_SHAPES.get(k) for k in zip(m["hidden_size"], m["inter_size"], m["num_experts"],
                                                         m["topk"])], index=m.index)
    keep = models.notna() & (m["moe_tp_size"] * m["moe_ep_size"] <= MAX_MOE_GPUS) & m["moe_dtype"].isin(
        list(_MOE_DTYPES)) & m["kernel_source"].isin(list(_MOE_KERNELS))
    m, models = m[keep], models[keep]
    out = pd.DataFrame({
        "models": models, "dtype": m["moe_dtype"].map(_MOE_DTYPES), "kernel": m["kernel_source"].map(_MOE_KERNELS),
        "tokens": m["num_tokens"], "hidden": m["hidden_size"], "inter": m["inter_size"],
        "experts": m["num_experts"], "topk": m["topk"], "moe_tp": m["moe_tp_size"], "moe_ep": m["moe_ep_size"],
        "distribution": m["distribution"], "latency_us": (m["latency"] * 1e3).round(3),
    })
    out = out.drop_duplicates(["dtype", "kernel", "hidden", "inter", "experts", "topk", "moe_tp", "moe_ep",
                               "distribution", "tokens"])
    out["split"] = _split(out, ["hidden", "inter", "experts", "topk", "moe_tp", "moe_ep"])
    return out.sort_values(["hidden", "inter", "experts", "topk", "dtype", "kernel", "moe_tp", "moe_ep",
                            "distribution", "tokens"]).reset_index(drop=True)


def _mla(zf: zipfile.ZipFile, gpu: str, name: str, module: bool) -> pd.DataFrame:
    a = _read(zf, gpu, f"mla/trtllm/{TRTLLM_VERSION}/{name}_perf.parquet")
    a = a[a["num_heads"].isin(MLA_HEADS) & (a["mla_dtype"] == "bfloat16")]
    if module:
        a = a[a["model"] == "deepseek-ai/DeepSeek-V3"]
    out = pd.DataFrame({"heads": a["num_heads"], "batch": a["batch_size"], "isl": a["isl"],
                        "past_tokens": a["step"], "kv_dtype": a["kv_cache_dtype"].map(_KV)})
    if module:
        out["gemm_dtype"] = a["gemm_type"].map({"bfloat16": "bf16", "fp8_block": "fp8_block", "nvfp4": "fp4"})
    out["latency_us"] = (a["latency"] * 1e3).round(3)
    keys = [c for c in ("kv_dtype", "gemm_dtype") if c in out] + ["heads", "batch", "isl", "past_tokens"]
    out = out.drop_duplicates(keys)
    out["split"] = _split(out, ["heads", "batch"])
    return out.sort_values(keys).reset_index(drop=True)


def mla_bmm_table(zf: zipfile.ZipFile, gpu: str) -> pd.DataFrame:
    b = _read(zf, gpu, f"mla_bmm/trtllm/{TRTLLM_VERSION}/mla_bmm_perf.parquet")
    b = b[b["num_heads"].isin(MLA_HEADS)]
    out = pd.DataFrame({"op": b["op_name"].map({"mla_gen_pre": "pre", "mla_gen_post": "post"}),
                        "dtype": b["bmm_dtype"].map({"bfloat16": "bf16", "fp8": "fp8"}), "tokens": b["num_tokens"],
                        "heads": b["num_heads"], "latency_us": (b["latency"] * 1e3).round(3)})
    out["split"] = _split(out, ["op", "heads"])
    return out.sort_values(["op", "dtype", "heads", "tokens"]).reset_index(drop=True)


def _alternate(values: pd.Series) -> np.ndarray:
    """Every other distinct value (in sorted order) held out, so both ends of the range are in both halves."""
    rank = {v: i for i, v in enumerate(sorted(values.unique()))}
    return np.where(values.map(rank) % 2 == 1, "holdout", "calibration")


def moe_a2a_table(zf: zipfile.ZipFile, gpu: str) -> pd.DataFrame:
    a = _read(zf, gpu, f"comm/trtllm/{TRTLLM_A2A_VERSION}/moe_a2a_perf.parquet")
    a = a[(a["topk"] == 8) & (a["num_experts"] == 256) & (a["node_num"] == 1)]
    out = pd.DataFrame({
        "backend": a["comm_backend"].map({"trtllm_deepep_ht": "ht", "trtllm_deepep_ll": "ll"}),
        "phase": a["phase"], "dtype": a["comm_dtype"].map({"bfloat16": "bf16", "fp8": "fp8", "nvfp4": "fp4",
                                                           "fp4": "fp4"}),
        "ep": a["ep_size"], "hidden": a["hidden_size"], "topk": a["topk"], "experts": a["num_experts"],
        "tokens": a["num_tokens"], "latency_us": a["latency"].round(3),  # this table records microseconds
    })
    keys = ["backend", "phase", "dtype", "ep", "hidden", "topk", "experts", "tokens"]
    out = out.drop_duplicates(keys)
    out["split"] = _alternate(out["tokens"])
    return out.sort_values(keys).reset_index(drop=True)


def nccl_collectives_table(zf: zipfile.ZipFile, gpu: str) -> pd.DataFrame:
    n = _read(zf, gpu, f"comm/nccl/{NCCL_VERSION}/nccl_perf.parquet")
    n = n[n["op_name"].isin(["all_gather", "reduce_scatter", "alltoall"])]
    width = n["nccl_dtype"].map({"half": 2, "int8": 1})
    out = pd.DataFrame({"op": n["op_name"], "dtype": n["nccl_dtype"], "gpus": n["num_gpus"],
                        "message_bytes": n["message_size"] * width, "latency_us": (n["latency"] * 1e3).round(4)})
    out["split"] = np.where(np.log2(out["message_bytes"]).round().astype(int) % 2 == 1, "holdout", "calibration")
    return out.sort_values(["op", "dtype", "gpus", "message_bytes"]).reset_index(drop=True)


# table -> (framework and version it was measured under, the package file it comes from)
TABLE_SOURCES = {
    "gemm": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}", "file": f"gemm/trtllm/{TRTLLM_VERSION}/gemm_perf.parquet"},
    "generation_attention": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}",
                             "file": f"attention/trtllm/{TRTLLM_VERSION}/generation_attention_perf.parquet"},
    "context_attention": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}",
                          "file": f"attention/trtllm/{TRTLLM_VERSION}/context_attention_perf.parquet"},
    "allreduce": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}; NCCL {NCCL_VERSION}",
                  "file": f"comm/trtllm/{TRTLLM_VERSION}/custom_allreduce_perf.parquet; "
                          f"comm/nccl/{NCCL_VERSION}/nccl_perf.parquet"},
    "moe": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}", "file": f"moe/trtllm/{TRTLLM_VERSION}/moe_perf.parquet"},
    "mla_context": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}",
                    "file": f"mla/trtllm/{TRTLLM_VERSION}/context_mla_perf.parquet"},
    "mla_generation": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}",
                       "file": f"mla/trtllm/{TRTLLM_VERSION}/generation_mla_perf.parquet"},
    "mla_module_context": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}",
                           "file": f"mla/trtllm/{TRTLLM_VERSION}/mla_context_module_perf.parquet"},
    "mla_module_generation": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}",
                              "file": f"mla/trtllm/{TRTLLM_VERSION}/mla_generation_module_perf.parquet"},
    "mla_bmm": {"framework": f"TensorRT-LLM {TRTLLM_VERSION}",
                "file": f"mla_bmm/trtllm/{TRTLLM_VERSION}/mla_bmm_perf.parquet"},
    "moe_a2a": {"framework": f"TensorRT-LLM {TRTLLM_A2A_VERSION} (DeepEP)",
                "file": f"comm/trtllm/{TRTLLM_A2A_VERSION}/moe_a2a_perf.parquet"},
    "nccl_collectives": {"framework": f"NCCL {NCCL_VERSION}", "file": f"comm/nccl/{NCCL_VERSION}/nccl_perf.parquet"},
}


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
                "moe": moe_table(zf, gpu),
                "mla_context": _mla(zf, gpu, "context_mla", module=False),
                "mla_generation": _mla(zf, gpu, "generation_mla", module=False),
                "mla_module_context": _mla(zf, gpu, "mla_context_module", module=True),
                "mla_module_generation": _mla(zf, gpu, "mla_generation_module", module=True),
                "mla_bmm": mla_bmm_table(zf, gpu),
                "moe_a2a": moe_a2a_table(zf, gpu),
                "nccl_collectives": nccl_collectives_table(zf, gpu),
            }
            for name, frame in frames.items():
                frame.to_csv(folder / f"{name}.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
            tables[spec_name] = {"system": gpu, "device": _device_name(zf, gpu),
                                 "rows": {name: len(frame) for name, frame in frames.items()}}
    record = {
        "package": PACKAGE, "package_version": VERSION, "license": LICENSE, "wheel": wheel.name, "wheel_sha256": sha,
        "source": "https://pypi.org/project/aiconfigurator-core/ (NVIDIA ai-dynamo/aiconfigurator collector)",
        "framework": (f"TensorRT-LLM {TRTLLM_VERSION} (gemm, attention, moe, mla, custom all-reduce); TensorRT-LLM "
                      f"{TRTLLM_A2A_VERSION} (DeepEP dispatch/combine); NCCL {NCCL_VERSION}"),
        "tables": TABLE_SOURCES,
        "latency": "microseconds per call, CUDA-graph replay (the collector's benchmark_with_power)",
        "split": (f"sha256 of the shape group, holdout share {HOLDOUT_SHARE} (moe: per-GPU expert shape; mla: heads,"
                  " batch; mla_bmm: op, heads); all-reduce and NCCL collectives: odd log2(bytes) held out; moe_a2a:"
                  " every other token count"),
        "moe_models": {models: list(shape) for shape, models in MOE_SHAPES.items()},
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
