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

from .dtypes import datapath_dtype, dtype_bytes
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
    "state_bytes_per_sequence_per_chip",
    "kv_span_bytes_per_sequence_per_chip",
    "LayoutShapes",
    "layout_shapes",
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
    """Per-chip shapes for `tp`; InputError on field 'tp' unless tp divides the KV-head count or is a multiple of
    it that divides the query heads (then each chip holds one KV head, replicated on tp / KV heads chips, as
    vLLM and TensorRT-LLM do past the KV-head count)."""
    tp = _check_int(tp, "tp")
    kv, heads = model.num_key_value_heads, model.num_attention_heads
    if kv % tp and (tp % kv or heads % tp):
        raise InputError(RUN, "tp", f"{tp} neither divides nor is a multiple of num_key_value_heads={kv} (dividing "
                                    f"the {heads} query heads) of {model.name}")
    return Shard(
        tp=tp,
        q_heads=heads // tp,
        kv_heads=max(kv // tp, 1),
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


@dataclass(frozen=True, slots=True)
class LayoutShapes:
    """How one chip of a tp group splits a model under expert and attention data parallelism.

    attn_tp: chips attention heads split over (1 with attention data parallelism: each chip runs all heads for
    its share of the sequences). q_heads / kv_heads: per chip (KV heads replicate when attn_tp exceeds them).
    ffn_tp: chips a dense feed-forward block or shared expert splits over (1 with attention DP: replicated).
    moe_tp: chips each routed expert's width splits over (tp / ep). lm_tp: chips the vocabulary splits over.
    kv_share: the share of the group's KV cache one chip holds per token of a sequence on the group (1 / tp
    with attention DP, where each sequence lives on one chip; else 1, every chip holds its heads' slice).
    """

    attn_tp: int
    ffn_tp: int
    moe_tp: int
    lm_tp: int
    q_heads: int
    kv_heads: int
    kv_share: float


@lru_cache(maxsize=256)
def layout_shapes(model: ModelConfig, tp: int, ep: int = 1, attention_dp: bool = False) -> LayoutShapes:
    """Per-chip shapes of a layout; InputError naming the flag a model's heads, KV heads or experts refuse."""
    tp, ep = _check_int(tp, "tp"), _check_int(ep, "ep")
    attn_tp = 1 if attention_dp else tp
    if tp % ep:
        raise InputError(RUN, "ep", f"{ep} does not divide tp={tp} (experts split over ep of the tp chips)")
    if ep > 1 and model.moe is None:
        raise InputError(RUN, "ep", f"{model.name} has no routed experts to split over {ep} chips")
    if model.moe is not None and model.moe.num_experts % ep:
        raise InputError(RUN, "ep", f"{ep} does not divide the {model.moe.num_experts} experts of {model.name}")
    if attention_dp and model.moe is not None and ep != tp:
        raise InputError(RUN, "attention_dp", f"attention data parallelism needs ep = tp (the DEP layout); got "
                                              f"ep={ep}, tp={tp}")
    heads, kv = model.num_attention_heads, model.num_key_value_heads
    if heads % attn_tp:
        raise InputError(RUN, "tp", f"{attn_tp} does not divide num_attention_heads={heads} of {model.name}")
    if model.mla is None and kv % attn_tp and attn_tp % kv:
        raise InputError(RUN, "tp", f"{attn_tp} neither divides nor is a multiple of num_key_value_heads={kv} "
                                    f"of {model.name}")
    if model.ssm is not None and model.ssm.num_heads % attn_tp:
        raise InputError(RUN, "tp", f"{attn_tp} does not divide the {model.ssm.num_heads} Mamba heads of {model.name}")
    ffn_tp = 1 if attention_dp else tp
    return LayoutShapes(attn_tp=attn_tp, ffn_tp=ffn_tp, moe_tp=tp // ep, lm_tp=1 if attention_dp else tp,
                        q_heads=heads // attn_tp, kv_heads=1 if model.mla else max(kv // attn_tp, 1),
                        kv_share=1.0 / tp if attention_dp else 1.0)


def _stage_kinds(model: ModelConfig, pp: int, mtp: bool = False):
    """Layer kinds of the last stage; with `mtp`, the multi-token-prediction module's layer too (it sits there)."""
    counts = stage_layer_counts(model, pp)
    start = sum(counts[:-1])
    return model.layers[start:] + ((model.layers[-1],) if mtp else ())


def resolve_kv_dtype(dtype: str, kv_dtype: str | None) -> str:
    """KV-cache dtype: as given, else the weight dtype, except 4-bit float weights keep an fp8 cache and integer
    (weight-only) formats a bf16 one, as llama.cpp and MLC-LLM do by default."""
    if kv_dtype is not None:
        return kv_dtype
    if dtype in ("int8", "int4"):
        return "bf16"
    return "fp8" if datapath_dtype(dtype) == "fp4" else dtype


def weight_bytes_per_chip(model: ModelConfig, dtype: str, tp: int, pp: int, *, act_dtype: str = "bf16", ep: int = 1,
                          attention_dp: bool = False, expert_dtype: str | None = None, mtp: bool = False) -> float:
    """Weights resident on one chip of the most loaded (last) stage.

    Matmul weights and the embedding table are in `dtype`; RMSNorm weight vectors stay in `act_dtype`.
    The last stage holds its layers, the final norm and the LM-head shard; with pp=1 it also holds the
    embedding shard, which a tied LM head shares.
    """
    wb = dtype_bytes(dtype, "dtype")
    ab = dtype_bytes(act_dtype, "act_dtype")
    if not model.is_dense_llama or ep != 1 or attention_dp or mtp:
        ewb = dtype_bytes(expert_dtype, "expert_dtype") if expert_dtype else wb
        mtp_head = (2 * model.hidden_size * model.hidden_size * wb + 2 * model.hidden_size * ab) if mtp else 0.0
        return _general_weight_bytes(model, wb, ab, tp, pp, ep, attention_dp, ewb, mtp) + mtp_head
    sh = shard(model, tp)
    layers = stage_layer_counts(model, pp)[-1]
    hidden = model.hidden_size
    per_layer = sh.layer_matmul_params(hidden) * wb + 2 * hidden * ab
    table = sh.vocab * hidden * wb
    tables = table if (pp > 1 or model.tie_word_embeddings) else 2 * table
    return layers * per_layer + hidden * ab + tables


def kv_bytes_per_token_per_chip(model: ModelConfig, kv_dtype: str, tp: int, pp: int, *, ep: int = 1,
                                attention_dp: bool = False, mtp: bool = False) -> float:
    """K and V of one token held by one chip of the most loaded stage (its KV heads, its layers); for a model
    with sliding-window or chunked layers, only the layers that cache the whole context (the span-bounded
    layers' cache is `kv_span_bytes_per_sequence_per_chip`, a per-sequence amount)."""
    if not model.is_dense_llama or ep != 1 or attention_dp or mtp:
        shapes = layout_shapes(model, tp, ep, attention_dp)
        return _per_token_elements(model, pp, shapes, bounded=False, mtp=mtp) * dtype_bytes(kv_dtype, "kv_dtype") \
            * shapes.kv_share
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
    hidden = model.hidden_size
    if model.is_dense_llama:
        sh = shard(model, tp)
        attention = sh.qkv_width + sh.q_heads * sh.head_dim
        mlp = 3 * sh.intermediate
        vocab = sh.vocab
    else:  # the widest layer kind, attention and MLP heads over tp, an MoE block's top-k expert rows per token
        heads = -(-model.num_attention_heads // tp)
        kv = max(model.num_key_value_heads // tp, 1)
        attention = (2 * heads + 2 * kv) * model.head_dim
        if model.mla is not None:
            attention = heads * (model.mla.qk_head_dim + model.mla.kv_lora_rank + model.mla.v_head_dim)
        widths = [model.ffn_width(k) for k in model.layers if k.ffn == "dense"]
        if model.moe is not None:
            widths.append(model.moe.top_k * model.moe.expert_intermediate + model.moe.shared_intermediate)
        if model.ssm is not None:
            attention = max(attention, 2 * model.ssm.in_proj_width // tp)
        mlp = 3 * -(-max(widths, default=0) // tp)
        vocab = -(-model.vocab_size // tp)
    layer = (2 * hidden + max(attention, mlp)) * ab
    lm_head = hidden * ab + vocab * LOGIT_BYTES
    return float(tokens * max(layer, lm_head))


def _per_token_elements(model: ModelConfig, pp: int, shapes: LayoutShapes, bounded: bool, mtp: bool = False) -> int:
    """Cached values per token on one chip of the last stage: unbounded layers, or (bounded) span layers."""
    total = 0
    for kind in _stage_kinds(model, pp, mtp):
        if bool(kind.kv_span) != bounded:
            continue
        if kind.mixer == "attention":
            total += 2 * shapes.kv_heads * model.head_dim
        elif kind.mixer == "mla":
            total += model.mla.cache_width
    return total


def kv_span_bytes_per_sequence_per_chip(model: ModelConfig, kv_dtype: str, tp: int, pp: int, *, ep: int = 1,
                                        attention_dp: bool = False, tokens: int | None = None) -> float:
    """KV bytes one sequence of `tokens` tokens (None: at least the span) holds in the sliding-window / chunked
    layers of one chip: min(tokens, span) tokens per such layer."""
    shapes = layout_shapes(model, tp, ep, attention_dp)
    kvb = dtype_bytes(kv_dtype, "kv_dtype")
    total = 0.0
    for kind in _stage_kinds(model, pp):
        if kind.kv_span and kind.mixer == "attention":
            held = kind.kv_span if tokens is None else min(kind.kv_span, tokens)
            total += held * 2 * shapes.kv_heads * model.head_dim * kvb
    return total * shapes.kv_share


def state_bytes_per_sequence_per_chip(model: ModelConfig, tp: int, pp: int, *, ep: int = 1,
                                      attention_dp: bool = False, state_dtype: str = "bf16") -> float:
    """Mamba-2 state one sequence holds on one chip of the last stage (heads split over attention tp)."""
    if model.ssm is None:
        return 0.0
    shapes = layout_shapes(model, tp, ep, attention_dp)
    ssm = model.ssm
    heads = ssm.num_heads // shapes.attn_tp
    per_layer = heads * ssm.head_dim * ssm.state_size + ssm.conv_channels // shapes.attn_tp * (ssm.conv_kernel - 1)
    layers = sum(1 for k in _stage_kinds(model, pp) if k.mixer == "mamba")
    return float(layers * per_layer) * dtype_bytes(state_dtype, "kv_dtype") * shapes.kv_share


def _general_weight_bytes(model: ModelConfig, wb: float, ab: float, tp: int, pp: int, ep: int,
                          attention_dp: bool, ewb: float, mtp: bool = False) -> float:
    """Weights on one chip of the last stage for any layer kind: mixers over attention tp (MLA's down
    projections and the router replicated), routed experts over ep x (tp / ep), dense blocks over ffn tp."""
    s = layout_shapes(model, tp, ep, attention_dp)
    h = model.hidden_size
    total = 0.0
    for kind in _stage_kinds(model, pp, mtp):
        total += model.norms_per_layer * h * ab
        if kind.mixer == "attention":
            q, kv = s.q_heads * model.head_dim, s.kv_heads * model.head_dim
            total += (h * (q + 2 * kv) + q * h) * wb
        elif kind.mixer == "mla":
            mla = model.mla
            full = mla.params(h, model.num_attention_heads)
            down = h * (mla.q_lora_rank + mla.cache_width) if mla.q_lora_rank else h * mla.cache_width
            total += (down + (full - down) / s.attn_tp) * wb
        elif kind.mixer == "mamba":
            total += model.ssm.params(h) / s.attn_tp * wb
        if kind.ffn == "dense":
            total += (3 if model.gated else 2) * h * model.ffn_width(kind) / s.ffn_tp * wb
        elif kind.ffn == "moe":
            moe = model.moe
            total += h * moe.num_experts * wb  # router, replicated
            total += moe.num_experts // ep * moe.expert_params(h, model.gated) / s.moe_tp * ewb
            total += (3 if model.gated else 2) * h * moe.shared_intermediate / s.ffn_tp * wb
    table = -(-model.vocab_size // s.lm_tp) * h * wb
    tables = table if (pp > 1 or model.tie_word_embeddings) else 2 * table
    return total + h * ab + tables
