"""What a token rate implies per chip, and the roofline bound of a chip for one serving workload.

Counting rules (documented in docs/claims.md):
- A request runs its `isl` prompt tokens and `osl - 1` decode tokens through every layer (the first output
  token comes out of the prefill); the LM head runs once per output token. Dense FLOPs are 2 per matmul
  weight per token; attention adds QK^T and PV over the causal context (`workloads.graph.attention_flops`).
- Weights stream from HBM once per engine step. Steps are mixed (continuous batching with chunked
  prefill): each step advances `batch` decoding sequences by one token and carries prefill chunks, so a
  step's weight read serves both; a step holds at most `max_tokens_per_step` prefill tokens.
- KV cache: every decode token reads its sequence's whole cached context; every token's K and V is
  written once. Prefill attention reads its chunk's KV from on-chip memory (FlashAttention tiling).
- Links: Megatron tensor parallelism all-reduces the hidden state twice per layer (plus once after the
  embedding) for every token; a ring sends 2 (tp - 1) / tp of the message per chip.
- Required batch: the smallest number of sequences decoding together at which the HBM traffic of the
  claimed load (weights once per step + KV) fits the chip's peak bandwidth. Compute is checked apart:
  with perfect overlap a second of load needs max(FLOPs / peak, bytes / bandwidth) <= 1 s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asicsim.workloads.dtypes import dtype_bytes
from asicsim.workloads.graph import attention_flops
from asicsim.workloads.memory import activation_bytes_per_chip, kv_bytes_per_token_per_chip, weight_bytes_per_chip
from asicsim.workloads.models import ModelConfig

__all__ = ["Workload", "ChipLimits", "LayoutBound", "request_flops", "tokens_per_request", "layout_bound",
           "valid_tps", "ACCOUNTINGS"]

ACCOUNTINGS = ("output", "total")
ACT_DTYPE = "bf16"


@dataclass(frozen=True)
class Workload:
    """A serving workload: model, precisions, request shape and server size."""

    model: ModelConfig
    dtype: str
    kv_dtype: str
    isl: int
    osl: int
    chips: int
    max_tokens_per_step: int = 8192


@dataclass(frozen=True)
class ChipLimits:
    """The per-chip numbers a roofline needs (peaks, not achievable figures). None = not published."""

    name: str
    peak_flops_per_s: float | None
    memory_bandwidth_bytes_per_s: float | None
    memory_bytes_per_chip: float | None
    link_bandwidth_bytes_per_s: float | None = None  # per direction
    link_latency_s: float | None = None


def tokens_per_request(w: Workload, accounting: str) -> int:
    """Tokens one request counts for: its output only, or input plus output."""
    return w.osl if accounting == "output" else w.isl + w.osl


def request_flops(model: ModelConfig, isl: int, osl: int) -> dict[str, float]:
    """Forward FLOPs of one request over the whole model: dense matmuls, LM head and attention."""
    through_layers = isl + osl - 1
    dense = 2.0 * model.num_hidden_layers * model.layer_matmul_param_count() * through_layers
    lm_head = 2.0 * model.vocab_size * model.hidden_size * osl
    past = np.arange(isl, isl + osl - 1, dtype=np.int64)  # decode token j attends to isl + j cached tokens
    attention = attention_flops(model, np.array([isl]), np.array([0])) + attention_flops(model, np.ones_like(past), past)
    return {"dense": dense, "lm_head": lm_head, "attention": float(attention),
            "total": dense + lm_head + float(attention)}


def valid_tps(model: ModelConfig, chips: int) -> list[int]:
    """Tensor-parallel degrees that divide the chip count and either divide the KV-head count or are a multiple of
    it dividing the query heads (KV heads replicated: `workloads.memory.shard`)."""
    kv, heads = model.num_key_value_heads, model.num_attention_heads
    return [tp for tp in range(1, chips + 1) if chips % tp == 0 and (kv % tp == 0 or (tp % kv == 0 and heads % tp == 0))]


@dataclass(frozen=True)
class LayoutBound:
    """Per-chip demands of a token rate under one layout (tp-way groups, chips / tp replicas)."""

    tp: int
    replicas: int
    requests_per_s: float
    flops_per_s: float
    weight_bytes: float
    kv_bytes_per_token: float
    kv_bytes_per_s: float
    max_batch_fit: int
    required_batch: int | None
    weight_bytes_per_s_at_fit: float
    link_bytes_per_s: float
    ratios: dict[str, float]

    @property
    def hbm_bytes_per_s_at_fit(self) -> float:
        return self.weight_bytes_per_s_at_fit + self.kv_bytes_per_s

    def required_kv_bytes(self, seq_tokens: int) -> float | None:
        """KV bytes per chip of `required_batch` sequences of `seq_tokens` tokens each."""
        return None if self.required_batch is None else self.required_batch * seq_tokens * self.kv_bytes_per_token

    @property
    def need(self) -> float:
        """The largest demand / supply ratio: above 1 the rate breaks a limit."""
        return max(self.ratios.values())

    @property
    def binding(self) -> str:
        return max(self.ratios, key=self.ratios.get)


def _ratio(demand: float, supply: float | None) -> float:
    if demand <= 0:
        return 0.0
    return math.inf if not supply else demand / supply


def layout_bound(w: Workload, chip: ChipLimits, requests_per_s: float, tp: int) -> LayoutBound:
    """Demands per chip when `requests_per_s` requests/s are served by chips / tp replicas of tp chips."""
    m = w.model
    replicas = w.chips // tp
    lam = requests_per_s / replicas  # per replica (every chip of a replica shares its load)
    flops = requests_per_s * request_flops(m, w.isl, w.osl)["total"] / w.chips
    weights = weight_bytes_per_chip(m, w.dtype, tp, 1, act_dtype=ACT_DTYPE)
    kv_tok = kv_bytes_per_token_per_chip(m, w.kv_dtype, tp, 1)
    seq = w.isl + w.osl
    decode_reads = sum(range(w.isl, w.isl + w.osl - 1))  # cached tokens read over the decode steps
    kv_rate = lam * kv_tok * (decode_reads + seq)
    workspace = activation_bytes_per_chip(m, w.max_tokens_per_step, tp, ACT_DTYPE)
    capacity = chip.memory_bytes_per_chip
    free = (capacity - weights - workspace) if capacity else 0.0
    fit = max(int(free // (kv_tok * seq)), 0) if capacity else 0
    prefill_steps = lam * w.isl / w.max_tokens_per_step

    def steps_per_s(batch: int) -> float:
        return max(lam * (w.osl - 1) / batch, prefill_steps)

    bw = chip.memory_bandwidth_bytes_per_s
    required = None
    if bw:
        room = bw - kv_rate - weights * prefill_steps
        if room > 0:
            required = max(1, math.ceil(weights * lam * (w.osl - 1) / room)) if w.osl > 1 else 1
    weight_rate = weights * steps_per_s(fit) if fit >= 1 else math.inf
    per_token_msg = (2 * m.num_hidden_layers + 1) * m.hidden_size * dtype_bytes(ACT_DTYPE)
    link = lam * (w.isl + w.osl - 1) * per_token_msg * 2 * (tp - 1) / tp if tp > 1 else 0.0
    ratios = {"compute": _ratio(flops, chip.peak_flops_per_s),
              "hbm_bandwidth": _ratio(weight_rate + kv_rate, bw) if fit >= 1 else math.inf,
              # a batch that the bandwidth needs but memory cannot hold; "no batch suffices" is a bandwidth limit
              "memory_capacity": math.inf if fit < 1 else (required / fit if required else 0.0),
              "link_bandwidth": _ratio(link, chip.link_bandwidth_bytes_per_s)}
    return LayoutBound(tp=tp, replicas=replicas, requests_per_s=requests_per_s, flops_per_s=flops,
                       weight_bytes=weights, kv_bytes_per_token=kv_tok, kv_bytes_per_s=kv_rate, max_batch_fit=fit,
                       required_batch=required, weight_bytes_per_s_at_fit=weight_rate, link_bytes_per_s=link,
                       ratios=ratios)
