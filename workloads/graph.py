"""Per-step operator graphs: one engine step of a Llama model on one chip of one pipeline stage.

Counting rules (all per chip, after sharding; see memory.py for the sharding itself):
- Matmuls: 2 FLOPs per multiply-accumulate. (m tokens x k) @ (k x n) with n or k split over `tp`.
- Attention: QK^T and PV only, 2 * head_dim FLOPs each per unmasked score entry per query head. A chunk
  of c new tokens after p cached ones has c*p + c*(c+1)/2 entries (causal within the chunk); a decode
  token after p cached ones has p + 1. Softmax arithmetic is not counted (under 1% at head_dim 128).
- RMSNorm: 4 FLOPs per element (square, accumulate, scale by 1/rms, scale by weight).
- Residual add: 1 FLOP per element. SiLU(gate) * up: 5 FLOPs per element (SiLU as x * sigmoid(x):
  exp, add, divide, multiply; then the gating multiply).
- Allreduce: the additions of a ring reduce-scatter, (tp - 1) / tp adds per element per chip.
- LM head: runs on every decode token and on the last token of every prefill chunk. A chunk that does not
  end its prompt makes one logit row it does not need; the simulator cannot tell chunks apart and the
  cost is one row of the LM head per such chunk. Sampling is distributed: each chip takes the argmax of its
  vocabulary shard (1 FLOP per logit) and a small allreduce of (value, index) per token picks the winner,
  so logits are never gathered.
- Vocab-parallel embedding: each chip reads the rows of its vocabulary shard (tokens / tp of them on
  average) and an allreduce (tp > 1) completes the hidden states.

Stages: `stage` picks the pipeline stage; by default the last, which is the most loaded one (it has the
most layers, see memory.stage_layer_counts, plus the final norm and LM head).

Speed: this runs once per simulated engine step, so everything that depends only on the model, the
parallelism and the token count is cached; only the two attention ops are built per call, and they share
(do not copy) the batch's arrays.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral
from typing import Any, NamedTuple

import numpy as np

from .dtypes import datapath_dtype, dtype_bytes
from .errors import InputError
from .graph_types import Feature, Op, OpKind, StepBatch, StepGraph, int_dot, int_total
from .layers import (GATED_ACT_FLOPS, NORM_FLOPS, GeneralPlan, _Tokens, allreduce_op, layer_ops, matmul_op, norm_op,
                     residual_op)
from .memory import LOGIT_BYTES, Shard, layout_shapes, resolve_kv_dtype, shard, stage_layer_counts
from .models import ModelConfig
from .routing import DEFAULT_IMBALANCE, DEFAULT_ROUTING_SEED

__all__ = [
    "build_step_graph",
    "with_decode_past",
    "decode_graph_maker",
    "decode_attention",
    "DecodeAttention",
    "dense_attention",
    "DenseAttention",
    "step_graph_builder",
    "dense_path",
    "model_features",
    "model_flops_per_token",
    "attention_score_entries",
    "attention_flops",
    "NORM_FLOPS_PER_ELEMENT",
    "SILU_MUL_FLOPS_PER_ELEMENT",
    "TOKEN_ID_BYTES",
    "SAMPLE_BYTES_PER_TOKEN",
]

NORM_FLOPS_PER_ELEMENT = NORM_FLOPS
SILU_MUL_FLOPS_PER_ELEMENT = GATED_ACT_FLOPS
TOKEN_ID_BYTES = 4  # int32 token ids into the embedding
SAMPLE_BYTES_PER_TOKEN = 8  # fp32 best logit + int32 index, per sampled token


def model_flops_per_token(model: ModelConfig) -> float:
    """Matmul FLOPs per token through the whole model, LM head included, attention excluded."""
    return 2.0 * (model.num_hidden_layers * model.layer_matmul_param_count() + model.vocab_size * model.hidden_size)


def attention_score_entries(seq_new: np.ndarray, seq_past: np.ndarray) -> int:
    """Unmasked causal score entries per head: sum of c*p + c*(c+1)/2 over sequences."""
    new = np.asarray(seq_new, dtype=np.int64)
    return _score_entries(new, np.asarray(seq_past, dtype=np.int64), int_total(new))


def _score_entries(new: np.ndarray, past: np.ndarray, new_total: int) -> int:
    """`attention_score_entries` of int64 arrays whose new tokens sum to `new_total`."""
    return int_dot(new, past) + (int_dot(new, new) + new_total) // 2


def attention_flops(model: ModelConfig, seq_new: np.ndarray, seq_past: np.ndarray) -> float:
    """Attention (QK^T and PV) FLOPs of the whole model, all layers and heads, for these sequences."""
    per_entry = 4.0 * model.head_dim * model.num_attention_heads * model.num_hidden_layers
    return per_entry * attention_score_entries(seq_new, seq_past)


@dataclass(frozen=True, eq=False, slots=True)
class _Plan:
    """Everything about one (model, parallelism, stage, dtypes) that does not depend on the batch."""

    hidden: int
    sh: Shard
    tp: int
    pp: int
    layers: int
    first: bool
    last: bool
    dtype: str
    kv_dtype: str
    act_dtype: str
    wb: float
    kvb: float
    ab: float
    kv_token_bytes: float  # K and V of one token, one layer, this chip
    attn_flops_per_entry: float  # both attention matmuls, this chip's query heads


@lru_cache(maxsize=1024)
def _plan(model: ModelConfig, tp: int, pp: int, stage: int, dtype: str, kv_dtype: str, act_dtype: str) -> _Plan:
    sh = shard(model, tp)
    counts = stage_layer_counts(model, pp)
    if isinstance(stage, bool) or not isinstance(stage, Integral) or not 0 <= stage < pp:
        raise InputError("stage", "stage", f"must be an integer in [0, {pp}), got {stage!r}")
    wb, ab = dtype_bytes(dtype, "dtype"), dtype_bytes(act_dtype, "act_dtype")
    kvb = dtype_bytes(kv_dtype, "kv_dtype")
    dtype = datapath_dtype(dtype)  # ops carry the datapath; the format's scale bytes stay in wb
    return _Plan(
        hidden=model.hidden_size,
        sh=sh,
        tp=sh.tp,
        pp=len(counts),
        layers=counts[stage],
        first=stage == 0,
        last=stage == pp - 1,
        dtype=dtype,
        kv_dtype=kv_dtype,
        act_dtype=act_dtype,
        wb=wb,
        kvb=kvb,
        ab=ab,
        kv_token_bytes=2.0 * sh.kv_heads * sh.head_dim * kvb,
        attn_flops_per_entry=4.0 * sh.q_heads * sh.head_dim,
    )


def _matmul(p: _Plan, name: str, m: int, k: int, n: int, out_bytes: float | None = None) -> Op:
    return matmul_op(name, p.dtype, p.wb, p.ab, m, k, n, out_bytes=out_bytes)


def _norm(p: _Plan, name: str, tokens: int) -> Op:
    return norm_op(name, p.act_dtype, p.ab, tokens, p.hidden)


def _residual(p: _Plan, name: str, tokens: int) -> Op:
    return residual_op(name, p.act_dtype, p.ab, tokens, p.hidden)


def _allreduce(p: _Plan, name: str, tokens: int) -> Op:
    return allreduce_op(name, p.act_dtype, p.ab, tokens, p.hidden, p.tp)


@lru_cache(maxsize=8192)
def _dense_ops(p: _Plan, tokens: int) -> tuple[tuple[Op, ...], tuple[Op, ...], tuple[Op, ...], tuple[Op, ...]]:
    """(pre_ops, layer ops before attention, layer ops after attention, stage_ops) for `tokens` tokens."""
    sh, h, tp = p.sh, p.hidden, p.tp
    before = (_norm(p, "input_norm", tokens), _matmul(p, "qkv_proj", tokens, h, sh.qkv_width))
    inter = tokens * sh.intermediate
    silu = Op("silu_mul", OpKind.ELEMENTWISE, p.act_dtype, flops=float(SILU_MUL_FLOPS_PER_ELEMENT * inter),
              act_in_bytes=2 * inter * p.ab, act_out_bytes=inter * p.ab, features=(Feature.SWIGLU,))
    after = (
        _matmul(p, "o_proj", tokens, sh.q_heads * sh.head_dim, h),
        *((_allreduce(p, "attn_allreduce", tokens),) if tp > 1 else ()),
        _residual(p, "attn_residual", tokens),
        _norm(p, "post_attention_norm", tokens),
        _matmul(p, "gate_up_proj", tokens, h, 2 * sh.intermediate),
        silu,
        _matmul(p, "down_proj", tokens, sh.intermediate, h),
        *((_allreduce(p, "mlp_allreduce", tokens),) if tp > 1 else ()),
        _residual(p, "mlp_residual", tokens),
    )
    return _pre_ops(p, tokens), before, after, _stage_ops(p, tokens)


def _pre_ops(p: _Plan, tokens: int) -> tuple[Op, ...]:
    """The first stage's vocab-parallel embedding lookup (and its all-reduce with tp > 1)."""
    if not p.first:
        return ()
    h = p.hidden
    embed = Op("embedding", OpKind.EMBEDDING, p.dtype, weight_bytes=tokens * h * p.wb / p.tp,
               act_in_bytes=float(tokens * TOKEN_ID_BYTES), act_out_bytes=tokens * h * p.ab)
    return (embed, _allreduce(p, "embedding_allreduce", tokens)) if p.tp > 1 else (embed,)


def _stage_ops(p: _Plan, tokens: int) -> tuple[Op, ...]:
    """Every stage but the last sends its activations to the next."""
    if p.last:
        return ()
    message = tokens * p.hidden * p.ab
    return (Op("stage_send", OpKind.P2P, p.act_dtype, act_in_bytes=message, comm_bytes=message, group=2),)


def _post_ops(p: _Plan, tokens: int, lm_tokens: int) -> tuple[Op, ...]:
    """Final norm (all tokens), LM head and distributed greedy sampling (sampled tokens only); each part memoised
    on its own count, so a mixed step's new token count rebuilds only the norm."""
    return _final_norm(p, tokens) + _head_ops(p, lm_tokens)


@lru_cache(maxsize=8192)
def _final_norm(p: _Plan, tokens: int) -> tuple[Op, ...]:
    return (_norm(p, "final_norm", tokens),)


@lru_cache(maxsize=1024)
def _head_ops(p: _Plan, lm_tokens: int) -> tuple[Op, ...]:
    """LM head and sampling of `lm_tokens` sampled tokens.

    `sample` and `sample_allreduce` carry the per-chip logits shard as m (sampled tokens) x n (vocab
    shard), so a device whose software gathers the full logits (gpusim `gathered_logits`) can price that.
    """
    sh = p.sh
    logits = lm_tokens * sh.vocab
    ops = [
        _matmul(p, "lm_head", lm_tokens, p.hidden, sh.vocab, out_bytes=logits * LOGIT_BYTES),
        Op("sample", OpKind.ELEMENTWISE, p.act_dtype, flops=float(logits), act_in_bytes=logits * LOGIT_BYTES,
           act_out_bytes=float(lm_tokens * SAMPLE_BYTES_PER_TOKEN), group=p.tp, m=lm_tokens, n=sh.vocab),
    ]
    if p.tp > 1:  # m x n: the logits shard, for devices whose software gathers full logits instead
        message = float(lm_tokens * SAMPLE_BYTES_PER_TOKEN)
        ops.append(Op("sample_allreduce", OpKind.ALLREDUCE, p.act_dtype, act_in_bytes=message,
                      act_out_bytes=message, comm_bytes=message, group=p.tp, m=lm_tokens, n=sh.vocab))
    return tuple(ops)


_new_object = object.__new__


@lru_cache(maxsize=4096)
def _ones(n: int) -> np.ndarray:
    arr = np.ones(n, dtype=np.int64)
    arr.flags.writeable = False
    return arr


@lru_cache(maxsize=1024)
def _attention_shape(p: _Plan, kind: str) -> Op:
    """The plan's attention op of `kind` with the fields no batch changes (heads, dtype, features), for
    `_attention` to copy."""
    sh = p.sh
    return Op(name=kind, kind=kind, dtype=p.kv_dtype, q_heads=sh.q_heads, kv_heads=sh.kv_heads, head_dim=sh.head_dim,
              features=(Feature.GQA_ATTENTION, Feature.ROPE), seq_new=_ones(1), seq_past=_ones(1))


def _attention(p: _Plan, kind: str, new: np.ndarray, past: np.ndarray, new_tokens: int, past_tokens: int,
               entries: int) -> Op:
    sh = p.sh
    flops, kv_read_bytes = _past_fields(p, past_tokens, entries)
    return _attention_shape(p, kind).with_sequences(
        new, past,
        flops=flops,
        act_in_bytes=new_tokens * sh.qkv_width * p.ab,
        act_out_bytes=new_tokens * sh.q_heads * sh.head_dim * p.ab,
        kv_read_bytes=kv_read_bytes,
        kv_write_bytes=new_tokens * p.kv_token_bytes,
    )


def _past_fields(p: _Plan, past_tokens: int, entries: int) -> tuple[float, float]:
    """(flops, kv_read_bytes) `_attention` gives an op caching `past_tokens` with `entries` score entries per head
    (the fields a decode batch of fixed size changes)."""
    return p.attn_flops_per_entry * entries, past_tokens * p.kv_token_bytes


def _check_batch(batch: StepBatch) -> None:
    new, past, dec = batch.prefill_new_tokens, batch.prefill_past_tokens, batch.decode_past_tokens
    if new.shape != past.shape:
        raise InputError("batch", "prefill_past_tokens", f"{past.size} entries for {new.size} prefill sequences")
    if new.size and new.min() < 1:
        raise InputError("batch", "prefill_new_tokens", "every prefill sequence needs at least one new token")
    if past.size and past.min() < 0:
        raise InputError("batch", "prefill_past_tokens", "cached token counts cannot be negative")
    if dec.size and dec.min() < 0:
        raise InputError("batch", "decode_past_tokens", "cached token counts cannot be negative")
    if not (new.size or dec.size):
        raise InputError("batch", "tokens", "an empty step has nothing to run")


def dense_path(model: ModelConfig, ep: int = 1, attention_dp: bool = False, mtp_draft_tokens: int = 0) -> bool:
    """Whether `build_step_graph` takes its dense Llama path for this layout: identical dense layers, no expert
    parallelism, attention data parallelism or multi-token prediction. Its graphs' layer ops then carry the same
    weights whatever the batch (only token counts and attention vary)."""
    return model.is_dense_llama and ep == 1 and not attention_dp and not mtp_draft_tokens


def build_step_graph(
    model: ModelConfig,
    batch: StepBatch,
    *,
    tp: int = 1,
    pp: int = 1,
    dtype: str = "fp8",
    kv_dtype: str | None = None,
    act_dtype: str = "bf16",
    stage: int | None = None,
    ep: int = 1,
    attention_dp: bool = False,
    moe_imbalance: float = DEFAULT_IMBALANCE,
    routing_seed: int = DEFAULT_ROUTING_SEED,
    expert_dtype: str | None = None,
    mtp_draft_tokens: int = 0,
    trusted: bool = False,
) -> StepGraph:
    """One step of `model` on one chip of pipeline stage `stage` (default: the last, most loaded stage).

    Weights in `dtype`, KV cache in `kv_dtype` (default: `dtype`, fp8 for fp4 weights), activations in
    `act_dtype`. `ep`: expert-parallel chips among the tp chips; `attention_dp`: attention data parallel over
    the tp chips (each runs attention for every tp-th sequence; the graph is that of the first, most loaded
    chip). `expert_dtype`: routed experts' weight dtype or format (default: `dtype`; e.g. mxfp4 experts beside
    bf16 attention). `mtp_draft_tokens`: multi-token prediction, each decoding sequence verifies 1 + N tokens
    and the model's MTP module drafts N (N passes of one MTP layer and the LM head). Raises InputError for a layout the model's heads, KV heads or experts do not divide, `pp` over the
    layer count, or a malformed batch. `trusted`: the caller vouches for the batch (the serving loop's own, made by
    its scheduler: positive chunks, no negative cached count), whose checks are then skipped.
    """
    kv = resolve_kv_dtype(datapath_dtype(dtype), kv_dtype)
    if not dense_path(model, ep, attention_dp, mtp_draft_tokens):
        return _general_graph(model, batch, tp, pp, dtype, kv, act_dtype, pp - 1 if stage is None else stage, ep,
                              attention_dp, float(moe_imbalance), int(routing_seed), expert_dtype or dtype,
                              int(mtp_draft_tokens), trusted)
    p = _plan(model, tp, pp, pp - 1 if stage is None else stage, dtype, kv, act_dtype)
    if not trusted:
        _check_batch(batch)
    return _dense_graph(p, batch)


def step_graph_builder(model: ModelConfig, **layout: Any):
    """`build_step_graph` with the layout (every keyword but the batch, `stage` and `trusted`) fixed: a function
    of (batch, stage=None, trusted=False) giving the same graph, with the dense path's plan per stage found once
    (a serving loop builds a graph per step). Raises InputError as `build_step_graph` does, when it is called."""
    unknown = sorted(set(layout) - set(_LAYOUT))
    if unknown:
        raise TypeError(f"step_graph_builder: unknown keyword {unknown[0]!r}")
    args = {**_LAYOUT, **layout}
    if not dense_path(model, args["ep"], args["attention_dp"], args["mtp_draft_tokens"]):
        return lambda batch, stage=None, trusted=False: build_step_graph(model, batch, stage=stage, trusted=trusted,
                                                                         **args)
    kv = resolve_kv_dtype(datapath_dtype(args["dtype"]), args["kv_dtype"])
    plans: dict[int | None, _Plan] = {}

    def build(batch: StepBatch, stage: int | None = None, trusted: bool = False) -> StepGraph:
        p = plans.get(stage)
        if p is None:
            p = plans[stage] = _plan(model, args["tp"], args["pp"], args["pp"] - 1 if stage is None else stage,
                                     args["dtype"], kv, args["act_dtype"])
        if not trusted:
            _check_batch(batch)
        return _dense_graph(p, batch)

    return build


# build_step_graph's layout keywords and their defaults (`step_graph_builder`): every keyword but stage and trusted.
_LAYOUT = {name: p.default for name, p in inspect.signature(build_step_graph).parameters.items()
           if p.kind == p.KEYWORD_ONLY and name not in ("stage", "trusted")}


def _dense_graph(p: _Plan, batch: StepBatch) -> StepGraph:
    """The dense path's graph of a checked batch on the plan's stage."""
    new, past, dec = batch.prefill_new_tokens, batch.prefill_past_tokens, batch.decode_past_tokens
    prefill_tokens = int_total(new) if new.size else 0
    tokens = prefill_tokens + dec.size
    pre, before, after, stage_ops = _dense_ops(p, tokens)
    attention: tuple[Op, ...] = ()
    if new.size:
        attention = (
            _attention(p, OpKind.ATTENTION_PREFILL, new, past, prefill_tokens, int_total(past),
                       _score_entries(new, past, prefill_tokens)),
        )
    if dec.size:
        past_tokens = int_total(dec)
        attention += (
            _attention(p, OpKind.ATTENTION_DECODE, _ones(dec.size), dec, dec.size, past_tokens, past_tokens + dec.size),
        )
    post = _post_ops(p, tokens, new.size + dec.size) if p.last else ()
    return StepGraph(batch, p.tp, p.pp, pre, before + attention + after, p.layers, post, stage_ops,
                     dense_key=_dense_key(p, tokens, new.size, dec.size),
                     layer_key=_layer_key(p, tokens, new.size, dec.size))


def _dense_key(p: _Plan, tokens: int, prefills: int, decodes: int) -> tuple:
    """A dense-path graph's `dense_key`: its plan (cached and held by the key, so its identity stands for its values),
    token count, sequences, and whether it prefills and decodes."""
    return (p, tokens, prefills + decodes, bool(prefills), bool(decodes))


def _layer_key(p: _Plan, tokens: int, prefills: int, decodes: int) -> tuple:
    """A dense-path graph's `layer_key`: its plan, token count and whether it prefills and decodes (its pre and layer
    ops, attention's places among them)."""
    return (p, tokens, bool(prefills), bool(decodes))


class DenseAttention(NamedTuple):
    """What a dense-path plan's graphs are, as functions of a batch (`dense_attention`): their layer key and post ops
    (`layer_key`; `norm_ops` then `head_ops`, its post ops), their attention ops' fields the batch does not set (`prefill_op`, `decode_op`: each op
    with one sequence) and the constants of the fields it sets (`_attention`): FLOPs per score entry, KV bytes per
    cached token, the QKV and query widths (elements per token) and the activations' bytes per element."""

    plan: Any
    prefill_op: Op
    decode_op: Op
    flops_per_entry: float
    kv_bytes_per_token: float
    qkv_width: int
    q_width: int
    act_bytes: float

    def layer_key(self, tokens: int, prefills: int, decodes: int) -> tuple:
        """The `layer_key` of this plan's graph of a batch of `tokens` tokens, `prefills` prefilling sequences and
        `decodes` decoding ones."""
        return _layer_key(self.plan, tokens, prefills, decodes)

    @property
    def layers_per_stage(self) -> int:
        return self.plan.layers

    def layer_ops(self, tokens: int, prefills: int, decodes: int) -> tuple[tuple[Op, ...], tuple[Op, ...]]:
        """(pre ops, layer ops) of that graph, with `prefill_op` and `decode_op` in its attention ops' places (what its
        `layer_key` fixes: the ops without per-sequence arrays and those ops' places, not their values)."""
        pre, before, after, _ = _dense_ops(self.plan, tokens)
        attention = ((self.prefill_op,) if prefills else ()) + ((self.decode_op,) if decodes else ())
        return pre, before + attention + after

    def norm_ops(self, tokens: int) -> tuple[Op, ...]:
        """That graph's first post ops (the last stage's), over all its `tokens` tokens: the final norm."""
        return _final_norm(self.plan, tokens)

    def head_ops(self, sequences: int) -> tuple[Op, ...]:
        """Its post ops after `norm_ops`, over one sampled token per sequence: LM head and sampling."""
        return _head_ops(self.plan, sequences)


def dense_attention(graph: StepGraph) -> DenseAttention | None:
    """`DenseAttention` of the plan a dense-path graph was built on; None for any other graph."""
    key = graph.dense_key
    if not (isinstance(key, tuple) and len(key) == 5 and isinstance(key[0], _Plan)):
        return None
    p = key[0]
    sh = p.sh
    return DenseAttention(p, _attention_shape(p, OpKind.ATTENTION_PREFILL), _attention_shape(p, OpKind.ATTENTION_DECODE),
                          p.attn_flops_per_entry, p.kv_token_bytes, sh.qkv_width, sh.q_heads * sh.head_dim, p.ab)


def with_decode_past(graph: StepGraph, batch: StepBatch) -> StepGraph | None:
    """The graph `build_step_graph` gives for `batch`, made from `graph`, its graph of another decode-only batch of
    as many sequences: only the decode attention op depends on the cached tokens, so only it is built again (a
    decode run prices the same batch size step after step). None unless both are decode-only batches of equal
    size and `graph` came from the dense path (the caller then builds the graph in full)."""
    make = decode_graph_maker(graph)
    dec = batch.decode_past_tokens
    if make is None or batch.prefill_new_tokens.size or dec.size != graph.batch.decode_past_tokens.size \
            or (dec.size and dec.min() < 0):
        return None
    return make(batch)


def decode_graph_maker(graph: StepGraph):
    """For a decode-only graph from the dense path: a function of a decode-only batch of as many sequences, with no
    negative cached token count, giving that batch's graph (`with_decode_past` without its checks, made once for a
    caller that times many such batches). None for any other graph."""
    made = decode_attention(graph)
    if made is None:
        return None
    at, attention = made.place, made.make
    ops = graph.layer_ops
    before, after, key = ops[:at], ops[at + 1:], graph.dense_key
    tp, pp, pre, layers, post, stage_ops, layer_key = (graph.tp, graph.pp, graph.pre_ops, graph.layers_per_stage,
                                                       graph.post_ops, graph.stage_ops, graph.layer_key)

    def make(batch: StepBatch) -> StepGraph:
        return StepGraph(batch, tp, pp, pre, (*before, attention(batch.decode_past_tokens), *after), layers, post,
                         stage_ops, dense_key=key, layer_key=layer_key)

    return make


class DecodeAttention:
    """A decode-only dense-path graph's attention op as a function of its sequences' cached tokens (`decode_attention`):
    `place` in the graph's layer ops; `op`, the op with nothing cached (every field the cached tokens leave alone; its
    `seq_past` a placeholder);
    `fields(past_tokens)`, the two fields they set, (flops, kv_read_bytes), for `past_tokens` cached in all; and
    `make(past)`, the op itself for an int64 array of cached tokens per sequence (none negative)."""

    __slots__ = ("place", "op", "_plan", "_size", "_fields")

    def __init__(self, place: int, plan: _Plan, size: int) -> None:
        self.place, self._plan, self._size = place, plan, size
        ones = _ones(size)
        self.op = _attention(plan, OpKind.ATTENTION_DECODE, ones, ones, size, 0, size)
        self._fields = dict(self.op.__dict__)

    def fields(self, past_tokens: int) -> tuple[float, float]:
        """(flops, kv_read_bytes) of the op when its sequences cache `past_tokens` tokens in all (`_past_fields`)."""
        return _past_fields(self._plan, past_tokens, past_tokens + self._size)

    @property
    def field_terms(self) -> tuple[float, float]:
        """(FLOPs per score entry, KV bytes read per cached token): `fields(T)` is (the first x (T + sequences), T x the
        second), as a kernel computes it (`kernels.decode_run`)."""
        return self._plan.attn_flops_per_entry, self._plan.kv_token_bytes

    def make(self, past: np.ndarray) -> Op:
        """The op for cached tokens `past`: `op`'s fields copied, the two the cached tokens set and the array
        replaced (a decode run makes thousands)."""
        flops, kv_read_bytes = self.fields(int_total(past))
        op = _new_object(Op)
        op.__dict__.update(self._fields, flops=flops, kv_read_bytes=kv_read_bytes, seq_past=past)
        return op


def decode_attention(graph: StepGraph) -> DecodeAttention | None:
    """A decode-only graph's attention op as a function of the cached tokens (`DecodeAttention`), for a graph from the
    dense path whose layer has one; None for any other graph."""
    key = graph.dense_key
    if not (isinstance(key, tuple) and len(key) == 5 and isinstance(key[0], _Plan) and key[4] and not key[3]):
        return None
    at = next((i for i, op in enumerate(graph.layer_ops) if op.kind == OpKind.ATTENTION_DECODE), -1)
    if at < 0:
        return None
    return DecodeAttention(at, key[0], graph.batch.decode_past_tokens.size)


@lru_cache(maxsize=1024)
def _general_plan(model: ModelConfig, tp: int, pp: int, stage: int, dtype: str, kv_dtype: str, act_dtype: str,
                  ep: int, attention_dp: bool, imbalance: float, seed: int,
                  expert_dtype: str) -> tuple[GeneralPlan, _Plan, int, tuple]:
    """(layer plan, plumbing plan for embedding / LM head, first layer index, layer groups) of one stage."""
    shapes = layout_shapes(model, tp, ep, attention_dp)
    counts = stage_layer_counts(model, pp)
    if isinstance(stage, bool) or not isinstance(stage, Integral) or not 0 <= stage < pp:
        raise InputError("stage", "stage", f"must be an integer in [0, {pp}), got {stage!r}")
    wb, ab, kvb = dtype_bytes(dtype, "dtype"), dtype_bytes(act_dtype, "act_dtype"), dtype_bytes(kv_dtype, "kv_dtype")
    ewb = dtype_bytes(expert_dtype, "expert_dtype")
    dtype = datapath_dtype(dtype)
    plan = GeneralPlan(model=model, attn_tp=shapes.attn_tp, ffn_tp=shapes.ffn_tp, ep=ep, moe_tp=shapes.moe_tp,
                       q_heads=shapes.q_heads, kv_heads=shapes.kv_heads, dtype=dtype, kv_dtype=kv_dtype,
                       act_dtype=act_dtype, wb=wb, kvb=kvb, ab=ab, imbalance=imbalance, seed=seed,
                       expert_dtype=datapath_dtype(expert_dtype), expert_wb=ewb)
    lm = Shard(tp=shapes.lm_tp, q_heads=0, kv_heads=0, head_dim=0, intermediate=0,
               vocab=-(-model.vocab_size // shapes.lm_tp))
    plumbing = _Plan(hidden=model.hidden_size, sh=lm, tp=shapes.lm_tp, pp=len(counts), layers=counts[stage],
                     first=stage == 0, last=stage == pp - 1, dtype=dtype, kv_dtype=kv_dtype, act_dtype=act_dtype,
                     wb=wb, kvb=kvb, ab=ab, kv_token_bytes=0.0, attn_flops_per_entry=0.0)
    start = sum(counts[:stage])
    kinds: dict = {}
    for kind in model.layers[start:start + counts[stage]]:
        kinds[kind] = kinds.get(kind, 0) + 1
    return plan, plumbing, start, tuple(kinds.items())


def _local_batch(batch: StepBatch, ranks: int) -> StepBatch:
    """The sequences of the first of `ranks` attention data-parallel chips (every ranks-th, from the first)."""
    if ranks == 1:
        return batch
    return StepBatch(batch.prefill_new_tokens[::ranks], batch.prefill_past_tokens[::ranks],
                     batch.decode_past_tokens[::ranks])


def _general_graph(model: ModelConfig, batch: StepBatch, tp: int, pp: int, dtype: str, kv_dtype: str,
                   act_dtype: str, stage: int, ep: int, attention_dp: bool, imbalance: float, seed: int,
                   expert_dtype: str, draft: int = 0, trusted: bool = False) -> StepGraph:
    """Step graph of a model with layers beyond the dense Llama layer (layers.py), one group per layer kind."""
    plan, plumbing, _, kinds = _general_plan(model, tp, pp, stage, dtype, kv_dtype, act_dtype, ep, attention_dp,
                                             imbalance, seed, expert_dtype)
    if not trusted:
        _check_batch(batch)
    local = _local_batch(batch, tp if attention_dp else 1)
    prefill = int(local.prefill_new_tokens.sum()) if local.prefill_new_tokens.size else 0
    decoding = int(local.decode_past_tokens.size)
    sequences = local.prefill_new_tokens.size + decoding
    t = _Tokens(prefill=prefill, decode=decoding * (1 + draft), sequences=sequences,
                routed=batch.tokens + batch.decode_tokens * draft)
    groups = tuple((layer_ops(plan, kind, t, local, 1 + draft), count) for kind, count in kinds)
    pre, stage_ops = _pre_ops(plumbing, t.local), _stage_ops(plumbing, t.local)
    post = _post_ops(plumbing, t.local, local.prefill_new_tokens.size + t.decode) if plumbing.last else ()
    if draft and decoding and plumbing.last:
        groups += ((_mtp_ops(model, plan, plumbing, local, batch.decode_tokens), draft),)
    key = (plan, stage, t)
    (first_ops, first_count), *rest = groups
    return StepGraph(batch, tp, plumbing.pp, pre, first_ops, first_count, post, stage_ops, tuple(rest), key)


@lru_cache(maxsize=256)
def model_features(model: ModelConfig) -> frozenset[str]:
    """Every op feature a step of `model` uses (a prefill chunk and a decode token on one chip)."""
    graph = build_step_graph(model, StepBatch.make([2], [0], [3]), tp=1, dtype="bf16")
    return frozenset(f for op, _ in graph.all_ops() for f in op.features)


def _mtp_ops(model: ModelConfig, plan: GeneralPlan, plumbing: _Plan, local: StepBatch, routed: int) -> tuple[Op, ...]:
    """One drafting pass of the multi-token-prediction module for the decoding sequences (DeepSeek-V3): RMSNorm
    of the embedding and of the hidden state, their concatenation projected back (2h -> h), one decoder layer of
    the main model's last kind (with its own KV cache), then the shared final norm, LM head and sampling."""
    decoding = int(local.decode_past_tokens.size)
    t = _Tokens(prefill=0, decode=decoding, sequences=decoding, routed=routed)
    drafts = StepBatch(local.decode_past_tokens[:0], local.decode_past_tokens[:0], local.decode_past_tokens)
    h = model.hidden_size
    head = (_norm(plumbing, "mtp_embed_norm", decoding), _norm(plumbing, "mtp_hidden_norm", decoding),
            _matmul(plumbing, "mtp_eh_proj", decoding, 2 * h, h))
    return head + layer_ops(plan, model.layers[-1], t, drafts) + _post_ops(plumbing, decoding, decoding)
