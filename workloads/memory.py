"""Tensor/pipeline sharding of a model and its memory footprint per chip.

Sharding is Megatron-style: attention heads and KV heads split over `tp` (so `tp` must divide the KV-head
count), the MLP's intermediate dimension and the vocabulary split over `tp` (padded up when `tp` does not
divide them, as Megatron pads the vocabulary), norms replicated. Layers split over `pp` stages as evenly as
possible; when `pp` does not divide the layer count the LAST stages get one layer more, so the last stage
(which also holds the final norm and LM head) is always the most loaded one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral

from .dtypes import dtype_bytes
from .errors import RUN, InputError
from .models import ModelConfig

__all__ = [
    "Shard",
    "shard",
    "stage_layer_counts",
    "resolve_kv_dtype",
    "weight_bytes_per_chip",
    "kv_bytes_per_token_per_chip",
    "activation_bytes_per_chip",
    "LOGIT_BYTES",
]

LOGIT_BYTES = 4.0  # logits are kept in fp32 for sampling


@dataclass(frozen=True, slots=True)
class Shard:
    """Per-chip slice of one layer under tensor parallelism `tp` (counts, not bytes)."""

    tp: int
    q_heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @property
    def qkv_width(self) -> int:
        """Output width of this chip's fused QKV projection."""
        return (self.q_heads + 2 * self.kv_heads) * self.head_dim

    def layer_matmul_params(self, hidden: int) -> int:
        """Matmul weights of one layer held by one chip."""
        q_width = self.q_heads * self.head_dim
        return hidden * self.qkv_width + q_width * hidden + 3 * hidden * self.intermediate


def _check_int(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise InputError(RUN, field, f"must be a positive integer, got {value!r}")
    return int(value)


@lru_cache(maxsize=256)
def shard(model: ModelConfig, tp: int) -> Shard:
    """Per-chip shapes for `tp`; InputError on field 'tp' unless tp divides the KV-head count."""
    tp = _check_int(tp, "tp")
    if model.num_key_value_heads % tp:
        raise InputError(
            RUN, "tp", f"{tp} does not divide num_key_value_heads={model.num_key_value_heads} of {model.name}"
        )
    return Shard(
        tp=tp,
        q_heads=model.num_attention_heads // tp,
        kv_heads=model.num_key_value_heads // tp,
        head_dim=model.head_dim,
        intermediate=-(-model.intermediate_size // tp),
        vocab=-(-model.vocab_size // tp),
    )


@lru_cache(maxsize=256)
def stage_layer_counts(model: ModelConfig, pp: int) -> tuple[int, ...]:
    """Decoder layers on each of `pp` stages; the remainder goes to the last stages."""
    pp = _check_int(pp, "pp")
    layers = model.num_hidden_layers
    if pp > layers:
        raise InputError(RUN, "pp", f"{pp} stages exceed the {layers} layers of {model.name}")
    base, extra = divmod(layers, pp)
    return (base,) * (pp - extra) + (base + 1,) * extra


def resolve_kv_dtype(dtype: str, kv_dtype: str | None) -> str:
    """KV-cache dtype: as given, else the weight dtype, except fp4 weights keep an fp8 cache."""
    if kv_dtype is not None:
        return kv_dtype
    return "fp8" if dtype == "fp4" else dtype


def weight_bytes_per_chip(model: ModelConfig, dtype: str, tp: int, pp: int, *, act_dtype: str = "bf16") -> float:
    """Weights resident on one chip of the most loaded (last) stage.

    Matmul weights and the embedding table are in `dtype`; RMSNorm weight vectors stay in `act_dtype`.
    The last stage holds its layers, the final norm and the LM-head shard; with pp=1 it also holds the
    embedding shard, which a tied LM head shares.
    """
    wb = dtype_bytes(dtype, "dtype")
    ab = dtype_bytes(act_dtype, "act_dtype")
    sh = shard(model, tp)
    layers = stage_layer_counts(model, pp)[-1]
    hidden = model.hidden_size
    per_layer = sh.layer_matmul_params(hidden) * wb + 2 * hidden * ab
    table = sh.vocab * hidden * wb
    tables = table if (pp > 1 or model.tie_word_embeddings) else 2 * table
    return layers * per_layer + hidden * ab + tables


def kv_bytes_per_token_per_chip(model: ModelConfig, kv_dtype: str, tp: int, pp: int) -> float:
    """K and V of one token held by one chip of the most loaded stage (its KV heads, its layers)."""
    sh = shard(model, tp)
    layers = stage_layer_counts(model, pp)[-1]
    return 2.0 * layers * sh.kv_heads * sh.head_dim * dtype_bytes(kv_dtype, "kv_dtype")


def activation_bytes_per_chip(model: ModelConfig, max_tokens_per_step: int, tp: int, act_dtype: str = "bf16") -> float:
    """Estimated peak activation workspace of one chip for a step of `max_tokens_per_step` tokens.

    Inside a layer the live tensors are the residual stream and its normed copy (hidden wide each) plus
    the larger of the attention block (QKV output and attention output) and the MLP block (gate+up output
    and the SiLU*mul product), per token. Attention scores stay on chip (FlashAttention-style tiling), so
    they take no workspace. After the layers, the LM head holds the normed hidden state and an fp32 logit
    shard for every token (the worst case, when every token is sampled). The peak is the larger of the two.
    """
    tokens = _check_int(max_tokens_per_step, "max_tokens_per_step")
    ab = dtype_bytes(act_dtype, "act_dtype")
    sh = shard(model, tp)
    hidden = model.hidden_size
    attention = sh.qkv_width + sh.q_heads * sh.head_dim
    mlp = 3 * sh.intermediate
    layer = (2 * hidden + max(attention, mlp)) * ab
    lm_head = hidden * ab + sh.vocab * LOGIT_BYTES
    return float(tokens * max(layer, lm_head))
