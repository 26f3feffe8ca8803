"""Benchmark harness presets: how a published figure was measured, as defaults of a run description.

`asicsim run --harness NAME` (and every validation row) asks `description.resolve` to apply a preset
wherever the user gave nothing: engine sizing, KV-cache share, block size, scheduler, request count.
Each preset names its source; the numbers restated here come from the tools' own code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from asicsim.workloads.errors import InputError
from asicsim.workloads.models import ModelConfig

__all__ = ["Harness", "HARNESSES", "EngineSettings", "trtllm_engine_settings", "vllm_batch_defaults",
           "TRTLLM_BENCH_KV_FRACTION", "TRTLLM_RUNTIME_KV_FRACTION", "TRTLLM_TOKENS_PER_BLOCK",
           "TRTLLM_PUBLISHED_REQUESTS", "TRTLLM_DEFAULT_REQUESTS", "TRTLLM_DECODER_BYTES_PER_SLOT_VOCAB",
           "TRTLLM_UNNAMED_RUNTIME_BYTES", "trtllm_runtime_reserve_bytes", "PYTORCH_HOST_S_PER_SEQUENCE",
           "PYTORCH_EFFECTS", "TRTLLM_HARNESSES", "VLLM_GPU_MEMORY_UTILIZATION",
           "VLLM_DEFAULT_PROMPTS"]


@dataclass(frozen=True)
class Harness:
    """A benchmark tool's way of measuring: what it sets and which figure it reports."""

    name: str
    description: str
    source: str
    reports: str  # the summary key that matches the tool's headline figure


HARNESSES: dict[str, Harness] = {h.name: h for h in (
    Harness("default", "asicsim's own defaults (asicsim.core.description)", "asicsim", "total_tokens_per_s"),
    Harness("static", "static batching: a burst at t=0 in batches of as many requests as memory holds",
            "the static-batching setting of the TensorRT-LLM 0.5 performance tables and of Etched's comparison",
            "output_tokens_per_s"),
    Harness("trtllm-bench", "trtllm-bench throughput: engine max batch and max_num_tokens from its dataset-based "
            "sizing, runtime KV cache 0.95 of free memory, 64-token blocks, FP8 KV cache for FP8/FP4 weights, "
            "in-flight batching (GUARANTEED_NO_EVICT) with context chunking, the perf overview's request count "
            "for the ISL/OSL pair (1000 for a pair it does not list), all requests at t=0",
            "NVIDIA/TensorRT-LLM tensorrt_llm/bench/build/tuning.py (calc_engine_setting, finetune_setting); "
            "docs/source/performance/perf-overview.md (num_requests table, --kv_cache_free_gpu_mem_fraction 0.95)",
            "output_tokens_per_s"),
    Harness("trtllm-bench-pytorch", "trtllm-bench throughput --backend pytorch (TensorRT-LLM 0.19+ perf overview): "
            "the trtllm-bench sizing, KV cache and request counts above, in-flight batching without context "
            "chunking, the overlap scheduler (host work of a step hidden behind the previous step's GPU work, so a "
            "step lasts the longer of the two), host work per running request per step, and each fp8/fp4 Linear "
            "quantizing its own bf16 input; with attention DP, max batch, max_num_tokens, decoder buffers and host work "
            "are per rank (each rank schedules its own requests)",
            "TensorRT-LLM 0.19.0 docs performance/perf-overview.md (--backend pytorch; enable_overlap_scheduler, "
            "use_cuda_graph); NVIDIA/TensorRT-LLM PR #10273 (host_step_time); tensorrt_llm/_torch linear.py of "
            "v0.19 (fp4_quantize / static fp8 quantize inside Linear)", "output_tokens_per_s"),
    Harness("vllm-throughput", "vllm bench throughput (offline LLM class, V1 engine): chunked prefill always on, "
            "gpu_memory_utilization 0.9, 16-token blocks, max_num_seqs 1024 and max_num_batched_tokens 16384 on "
            "GPUs with >= 70 GiB that are not A100 (256 and 8192 otherwise), 1000 prompts at t=0",
            "vllm-project/vllm vllm/engine/arg_utils.py (EngineArgs.get_batch_defaults, _set_default_args_v1); "
            "vllm/benchmarks/throughput.py (--num-prompts default 1000)", "total_tokens_per_s"),
    Harness("per-user", "one stream alone: one request at batch 1, the setting of vendors' tokens/s per user",
            "the single-stream setting of Groq, Cerebras and SambaNova per-user figures", "output_tokens_per_s"),
)}

# --- trtllm-bench ----------------------------------------------------------------------------------------
# trtllm-bench sizes the engine for the dataset it will run (`trtllm-bench build --dataset`, the build step of
# every TensorRT-LLM perf overview since v0.12): tuning.py `calc_engine_setting` and `finetune_setting` (the
# formula is restated from its earliest stored version, which predates FP4; later versions keep it). Memory in
# GiB as the tool reads it (device total / 2^30); the engine size counts parameters in units of 1e9.
TRTLLM_BENCH_KV_FRACTION = 0.95  # calc_engine_setting's kv_cache_gpu_mem_fraction default
# Runtime KV cache: this share of the memory left after the engine is loaded (the perf overview's runs "in many
# cases" passed --kv_cache_free_gpu_mem_fraction 0.95; default 0.90).
TRTLLM_RUNTIME_KV_FRACTION = 0.95
TRTLLM_TOKENS_PER_BLOCK = 64  # TensorRT-LLM's default tokens_per_block, assumed unchanged
_TRTLLM_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "fp4": 0.5, "int8": 1.0, "int4": 0.5}  # tuning.py BYTES_PER_ELEM (fp4: NVFP4)
# `$num_requests` per ISL/OSL pair, "Reproducing Benchmarked Results" of the TensorRT-LLM perf overview (the
# same table from the v0.13 page through v0.19+: docs/source/performance/perf-overview.md).
TRTLLM_PUBLISHED_REQUESTS: dict[tuple[int, int], int] = {
    (128, 128): 30000, (128, 2048): 3000, (128, 4096): 1500, (1000, 2000): 1500, (2048, 128): 3000,
    (2048, 2048): 1500, (5000, 500): 1500, (1000, 1000): 3000, (500, 2000): 3000, (20000, 2000): 1000,
}
TRTLLM_DEFAULT_REQUESTS = 1000  # assumed for an ISL/OSL pair the perf overview does not list
# What TensorRT-LLM's C++ runtime allocates before the KV cache, beyond the engine's weights and activations
# (docs/source/reference/memory.md: runtime and decoder buffers are sized by the runtime max batch). From the
# trtllm-bench 0.12 log in NVIDIA/TensorRT-LLM benchmarks/Suite.md (Llama-2-7B FP8, max batch 4096, vocabulary
# 32000): "Allocated 1.14 GB GPU memory for runtime buffers" + "Allocated 4.35 GB GPU memory for decoder"
# = 41.9 bytes per (batch slot x vocabulary entry); and total 79.10 GiB - available 63.62 GiB = 15.48 GiB used
# before the KV cache, of which the log names 12.09 GiB (engine 6214 MiB, execution context 928.77 MiB, the two
# buffers): 3.39 GiB allocated unnamed (CUDA context, library workspaces).
TRTLLM_DECODER_BYTES_PER_SLOT_VOCAB = (4.35e9 + 1.14e9) / (4096 * 32000)
# The PyTorch backend's host (CPU) work per running request per iteration: NVIDIA/TensorRT-LLM PR #10273
# measured an average host_step_time of 45.11 ms per iteration at max_batch_size 1536 per rank (GB200, ADP2,
# GPT-OSS-120B, C++ scheduler, Dec 2025), taken as linear in the running requests (assumed: the PR gives no
# split into fixed and per-request parts, and v0.19's host path is older than the PR's).
PYTORCH_HOST_S_PER_SEQUENCE = 45.11e-3 / 1536
# Device effects the PyTorch backend implies where the device has them (TensorRT-LLM 0.19's Llama runs RMSNorm,
# then each Linear quantizes its bf16 input itself: no norm-quantize fusion until PR #6205, July 2025).
PYTORCH_EFFECTS = (("separate_input_quantize", True),)
TRTLLM_HARNESSES = ("trtllm-bench", "trtllm-bench-pytorch")
TRTLLM_UNNAMED_RUNTIME_BYTES = (79.10 - 63.62) * 2**30 - (6214 * 2**20 + 928.77 * 2**20 + 1.14e9 + 4.35e9)

# --- vllm bench throughput ---------------------------------------------------------------------------------
VLLM_GPU_MEMORY_UTILIZATION = 0.9  # EngineArgs default
VLLM_DEFAULT_PROMPTS = 1000  # vllm bench throughput --num-prompts default


@dataclass(frozen=True)
class EngineSettings:
    """What trtllm-bench builds for one model, mapping and dataset."""

    max_batch: int
    max_num_tokens: int
    kv_max_requests: float  # requests of isl + osl tokens the estimated KV memory holds (before rounding)


def _round_up(x: float, step: int) -> int:
    return step * math.ceil(x / step)


def trtllm_engine_settings(model: ModelConfig, dtype: str, kv_dtype: str, tp: int, pp: int, isl: int, osl: int,
                           gpu_memory_gib: float, kv_fraction: float = TRTLLM_BENCH_KV_FRACTION) -> EngineSettings:
    """trtllm-bench's engine sizing (tuning.py `calc_engine_setting` + `finetune_setting`), restated.

    KV GiB per token = 2 x layers x max(tp, kv_heads) x head_dim x KV bytes / 2^30 (every GPU holds at
    least one KV head); the cache is `kv_fraction` of the group's memory less the engine (parameters x
    bytes per weight); requests = cache / (KV per token x (isl + osl)). Max batch: min(requests, 4096) / pp
    rounded up to 32s (at least 64) below 256, 128s below 1024, 256s above. Max num tokens: min(batch before
    rounding x (1 + isl / osl), 32768) rounded up to 256s (at least 2048) below 4096, 512s below 8192,
    1024s above.
    """
    kv_heads = max(tp, model.num_key_value_heads)
    kv_gib_per_token = 2 * model.num_hidden_layers * kv_heads * model.head_dim * _TRTLLM_BYTES[kv_dtype] / 2**30
    engine_gib = model.param_count() / 1e9 * _TRTLLM_BYTES[dtype]
    available_gib = gpu_memory_gib * tp * pp - engine_gib
    requests = available_gib * kv_fraction / kv_gib_per_token / (isl + osl)
    if requests < 1:
        raise InputError("trtllm-bench", "memory", f"{model.name} at tp={tp}, pp={pp} leaves no KV cache")
    raw_batch = min(requests, 4096) / pp
    raw_tokens = min(raw_batch * (1 + isl / osl), 32768)
    batch = max(64, _round_tiered(raw_batch, ((256, 32), (1024, 128)), 256))  # the floors bind only in tier 1
    tokens = max(2048, _round_tiered(raw_tokens, ((4096, 256), (8192, 512)), 1024))
    return EngineSettings(batch, tokens, requests)


def trtllm_runtime_reserve_bytes(model: ModelConfig, max_batch: int) -> float:
    """Bytes per GPU TensorRT-LLM's runtime holds before sizing the KV cache, beyond weights and activations:
    decoder and runtime buffers (every rank holds full-vocabulary buffers per batch slot) plus the unnamed
    allocations of the Suite.md log."""
    return TRTLLM_DECODER_BYTES_PER_SLOT_VOCAB * max_batch * model.vocab_size + TRTLLM_UNNAMED_RUNTIME_BYTES


def _round_tiered(x: float, tiers: tuple[tuple[float, int], ...], last_step: int) -> int:
    """x rounded up to the step of the first tier whose bound it is below (else to `last_step`)."""
    step = next((s for bound, s in tiers if x < bound), last_step)
    return _round_up(x, step)


def vllm_batch_defaults(memory_bytes: float, device_name: str) -> tuple[int, int]:
    """(max_num_seqs, max_num_batched_tokens) vLLM's offline LLM class picks: 1024 / 16384 on devices with at
    least 70 GiB that are not A100 (vLLM PR #17885 found the larger budget slower on A100), else 256 / 8192."""
    if memory_bytes >= 70 * 2**30 and "a100" not in device_name.lower():
        return 1024, 16384
    return 256, 8192
