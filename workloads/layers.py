"""Operator graphs of the layers beyond the dense Llama layer: mixture-of-experts feed-forward blocks, multi-
head latent attention, sliding-window / chunked attention with sinks and biases, Mamba-2 mixers.

Counting rules are graph.py's (per chip, 2 FLOPs per multiply-accumulate, RMSNorm 4 per element), plus:
- Parallel layout (`GeneralPlan`): attention heads over `attn_tp` (= tp, or 1 with attention data
  parallelism, where each chip runs attention for its own share of the sequences); KV heads replicate when
  attn_tp exceeds them (each chip keeps at least one). Routed experts over `ep` chips in contiguous blocks,
  each expert's width over tp / ep. Dense feed-forward blocks and shared experts over `ffn_tp` (= tp, or 1 with
  attention data parallelism: replicated).
- MoE: router GEMM (tokens x hidden x experts, replicated) and top-k (softmax or sigmoid + selection + the
  permutation of rows to experts: 4 operations per router logit); expert GEMMs as one grouped GEMM per
  projection over the busiest chip's token-expert pairs (`routing.busiest_chip_load`), reading the weights of
  the experts that get tokens; with attention data parallelism and ep > 1 an all-to-all dispatch before the
  experts and a combine after (each chip sends its tokens' top-k hidden vectors, the (ep - 1) / ep of them
  bound for other chips); with tensor-parallel attention the experts' partial sums are all-reduced as a
  dense MLP's are.
- MLA decode (absorbed): queries meet the latent cache directly; per head 2 x (latent + RoPE dims) FLOPs for
  the score and 2 x latent for the value per cached entry, and two per-head projections (W_UK into the latent,
  W_UV out of it) as GEMMs. The latent cache (latent + RoPE key per token and layer) is shared by all heads
  and replicated on every tensor-parallel chip. MLA prefill (naive): the chunk's context is decompressed
  through W_UKV (2 x context x latent x heads x (nope + v) FLOPs) and attended as multi-head attention with
  head dims nope + rope (scores) and v (values).
- Sliding window W: a token attends to the last W positions (itself included); chunked attention C: to the
  tokens of its own C-token block. Entries per token = min(position + 1, W), or position mod C + 1; KV kept
  per sequence at most W (or C) tokens per such layer. Attention sinks add one logit per head and query.
- Mamba-2 (per token, per chip): causal conv 2 x channels x taps, state update and readout 6 x inner x state;
  prefill adds the chunked scan's intra-chunk work 2 x chunk x heads x (state + head_dim) (chunk 128). Each
  sequence reads and writes its state once per step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .architecture import LayerKind
from .graph_types import Feature, Op, OpKind
from .routing import busiest_chip_load

__all__ = ["GeneralPlan", "layer_ops", "matmul_op", "norm_op", "residual_op", "allreduce_op", "window_entries", "SSM_SCAN_CHUNK", "TOPK_OPS_PER_LOGIT"]

SSM_SCAN_CHUNK = 128  # Mamba-2 SSD chunk length (Nemotron-H config chunk_size)
TOPK_OPS_PER_LOGIT = 4
SSM_DECODE_FLOPS_PER_STATE = 6  # dt*A decay, B*x input, accumulate (state update), C*h readout (2)
NORM_FLOPS = 4
RESIDUAL_FLOPS = 1
GATED_ACT_FLOPS = 5  # SiLU/GELU gate times up (graph.SILU_MUL_FLOPS_PER_ELEMENT)
RELU2_FLOPS = 2
SINK_FLOPS_PER_QUERY_HEAD = 4


@dataclass(frozen=True, eq=False, slots=True)
class GeneralPlan:
    """Shapes of one (model, layout, dtypes) on one chip; everything a layer's ops need but the batch."""

    model: object  # ModelConfig (not imported: one-way imports)
    attn_tp: int
    ffn_tp: int
    ep: int
    moe_tp: int
    q_heads: int
    kv_heads: int
    dtype: str
    kv_dtype: str
    act_dtype: str
    wb: float
    kvb: float
    ab: float
    imbalance: float
    seed: int
    expert_dtype: str  # routed experts' datapath dtype
    expert_wb: float  # bytes per routed-expert weight (a block-scaled format's scales included)


@dataclass(frozen=True, slots=True)
class _Tokens:
    """This step's token counts: on this chip (prefill, decode, sequences) and routed over the EP group."""

    prefill: int
    decode: int
    sequences: int
    routed: int

    @property
    def local(self) -> int:
        return self.prefill + self.decode


def window_entries(new: np.ndarray, past: np.ndarray, window: int) -> int:
    """Score entries of chunks of `new` tokens after `past` under a sliding window: sum over the chunk's tokens of
    min(past + i, window), i = 1..new (closed form: the part below the window is triangular, the rest full)."""
    new = np.asarray(new, dtype=np.int64)
    past = np.asarray(past, dtype=np.int64)
    below = np.clip(window - past, 0, new)  # tokens whose position + 1 is still within the window
    tri = below * past + below * (below + 1) // 2
    return int((tri + (new - below) * window).sum())


def _chunk_entries(new: np.ndarray, past: np.ndarray, chunk: int) -> int:
    """Entries under chunked attention: token at position q attends q mod chunk + 1 positions."""
    total = 0
    for c, p in zip(np.asarray(new, dtype=np.int64).tolist(), np.asarray(past, dtype=np.int64).tolist()):
        start, end = p, p + c  # positions start..end-1
        # sum over q in [start, end) of (q mod chunk) + 1, by whole blocks
        total += _mod_sum(end, chunk) - _mod_sum(start, chunk)
    return total


def _mod_sum(n: int, chunk: int) -> int:
    """Sum over q in [0, n) of (q mod chunk) + 1."""
    full, rest = divmod(n, chunk)
    return full * chunk * (chunk + 1) // 2 + rest * (rest + 1) // 2


# --- the op primitives every graph is built from (graph.py's dense layer uses them too) ---------------------
def matmul_op(name: str, dtype: str, wb: float, ab: float, m: int, k: int, n: int, *, bias: bool = False,
              out_bytes: float | None = None) -> Op:
    """(m x k) @ (k x n): weights in `wb` bytes, activations in `ab` bytes (output `out_bytes` when given)."""
    features = (Feature.GEMM, Feature.GEMM_BIAS) if bias else (Feature.GEMM,)
    return Op(name, OpKind.MATMUL, dtype, flops=2.0 * m * k * n, weight_bytes=k * n * wb, act_in_bytes=m * k * ab,
              act_out_bytes=m * n * ab if out_bytes is None else out_bytes, m=m, n=n, k=k, features=features)


def norm_op(name: str, act_dtype: str, ab: float, tokens: int, width: int, feature: str = Feature.RMSNORM) -> Op:
    """RMSNorm over `width` values of `tokens` tokens (its weight vector in the activation dtype)."""
    elems = tokens * width
    return Op(name, OpKind.NORM, act_dtype, flops=float(NORM_FLOPS * elems), weight_bytes=width * ab,
              act_in_bytes=elems * ab, act_out_bytes=elems * ab, features=(feature,))


def residual_op(name: str, act_dtype: str, ab: float, tokens: int, hidden: int) -> Op:
    """The residual add of a hidden-wide stream."""
    elems = tokens * hidden
    return Op(name, OpKind.ELEMENTWISE, act_dtype, flops=float(RESIDUAL_FLOPS * elems), act_in_bytes=2 * elems * ab,
              act_out_bytes=elems * ab)


def allreduce_op(name: str, act_dtype: str, ab: float, tokens: int, hidden: int, group: int) -> Op:
    """All-reduce of a hidden-wide stream over `group` chips (the ring's (group - 1) / group adds per element)."""
    message = tokens * hidden * ab
    return Op(name, OpKind.ALLREDUCE, act_dtype, flops=tokens * hidden * (group - 1) / group, act_in_bytes=message,
              act_out_bytes=message, comm_bytes=message, group=group)


def _matmul(p: GeneralPlan, name: str, m: int, k: int, n: int, bias: bool = False) -> Op:
    return matmul_op(name, p.dtype, p.wb, p.ab, m, k, n, bias=bias)


def _norm(p: GeneralPlan, name: str, tokens: int, width: int, feature: str = Feature.RMSNORM) -> Op:
    return norm_op(name, p.act_dtype, p.ab, tokens, width, feature)


def _residual(p: GeneralPlan, name: str, tokens: int) -> Op:
    return residual_op(name, p.act_dtype, p.ab, tokens, p.model.hidden_size)


def _allreduce(p: GeneralPlan, name: str, tokens: int, group: int) -> Op:
    return allreduce_op(name, p.act_dtype, p.ab, tokens, p.model.hidden_size, group)


def _activation(p: GeneralPlan, name: str, rows: float, width: int) -> Op:
    act = p.model.activation
    feature = {"swiglu": Feature.SWIGLU, "geglu": Feature.GEGLU, "swiglu_clamp": Feature.SWIGLU_CLAMP,
               "relu2": Feature.RELU2}[act]
    elems = rows * width
    if act == "relu2":
        return Op(name, OpKind.ELEMENTWISE, p.act_dtype, flops=float(RELU2_FLOPS * elems), act_in_bytes=elems * p.ab,
                  act_out_bytes=elems * p.ab, features=(feature,))
    return Op(name, OpKind.ELEMENTWISE, p.act_dtype, flops=float(GATED_ACT_FLOPS * elems),
              act_in_bytes=2 * elems * p.ab, act_out_bytes=elems * p.ab, features=(feature,))


def _dense_ffn(p: GeneralPlan, prefix: str, tokens: int, width: int, tp: int) -> tuple[Op, ...]:
    h, local = p.model.hidden_size, -(-width // tp)
    if not p.model.gated:
        return (_matmul(p, f"{prefix}up_proj", tokens, h, local), _activation(p, f"{prefix}act", tokens, local),
                _matmul(p, f"{prefix}down_proj", tokens, local, h))
    return (_matmul(p, f"{prefix}gate_up_proj", tokens, h, 2 * local), _activation(p, f"{prefix}act", tokens, local),
            _matmul(p, f"{prefix}down_proj", tokens, local, h))


def _moe_ffn(p: GeneralPlan, t: _Tokens) -> tuple[Op, ...]:
    m, moe = p.model, p.model.moe
    h, local_width = m.hidden_size, -(-moe.expert_intermediate // p.moe_tp)
    load = busiest_chip_load(moe.num_experts, moe.top_k, t.routed, p.ep, p.imbalance, p.seed)
    pairs, active = load.pairs, max(load.active_experts, 1e-9)
    rows = max(int(math.ceil(pairs / active)), 1)
    ops = [
        _matmul(p, "router", t.local, h, moe.num_experts, bias=moe.router_bias),
        Op("topk", OpKind.ELEMENTWISE, p.act_dtype, flops=float(TOPK_OPS_PER_LOGIT * t.local * moe.num_experts),
           act_in_bytes=t.local * moe.num_experts * 4.0, act_out_bytes=t.local * moe.top_k * 8.0,
           features=(Feature.TOPK_ROUTING,)),
    ]
    exchange = p.attn_tp == 1 and p.ep > 1
    if exchange:
        message = t.local * moe.top_k * h * p.ab * (p.ep - 1) / p.ep
        ops.append(Op("moe_dispatch", OpKind.ALL_TO_ALL, p.act_dtype, act_in_bytes=message, act_out_bytes=message,
                      comm_bytes=message, group=p.ep))
    gate = 2 if m.gated else 1
    bias = (Feature.GEMM_BIAS,) if moe.expert_bias else ()
    # The down projection's epilogue sums each token's experts (the combine), writing one row per token.
    summed = min(pairs, float(t.routed))
    for name, k, n, out_rows, axis in (("experts_gate_up", h, gate * local_width, pairs, "n"),
                                       ("experts_down", local_width, h, summed, "k")):
        ops.append(Op(name, OpKind.MOE_MATMUL, p.expert_dtype, flops=2.0 * pairs * k * n,
                      weight_bytes=active * k * n * p.expert_wb, act_in_bytes=pairs * k * p.ab,
                      act_out_bytes=out_rows * n * p.ab, m=rows, n=n, k=k, experts=active, experts_axis=axis,
                      features=(Feature.MOE_EXPERTS, *bias)))
        if name == "experts_gate_up":
            ops.append(_activation(p, "experts_act", pairs, local_width))
    if exchange:
        message = t.local * moe.top_k * h * p.ab * (p.ep - 1) / p.ep
        ops.append(Op("moe_combine", OpKind.ALL_TO_ALL, p.act_dtype, act_in_bytes=message, act_out_bytes=message,
                      comm_bytes=message, group=p.ep))
    if moe.shared_intermediate:
        ops.extend(_dense_ffn(p, "shared_", t.local, moe.shared_intermediate, p.ffn_tp))
    return tuple(ops)


def _attention_features(p: GeneralPlan, kind: LayerKind) -> tuple[str, ...]:
    f = [Feature.MLA if kind.mixer == "mla" else Feature.GQA_ATTENTION]
    if kind.rope:
        f.append(Feature.ROPE)
    if kind.window:
        f.append(Feature.SLIDING_WINDOW)
    if kind.chunk:
        f.append(Feature.CHUNKED_ATTENTION)
    if p.model.attention_sinks:
        f.append(Feature.ATTENTION_SINKS)
    return tuple(f)


def _entries(kind: LayerKind, new: np.ndarray, past: np.ndarray) -> int:
    if kind.window:
        return window_entries(new, past, kind.window)
    if kind.chunk:
        return _chunk_entries(new, past, kind.chunk)
    new = np.asarray(new, dtype=np.int64)
    return int(np.dot(new, past)) + (int(np.dot(new, new)) + int(new.sum())) // 2


def _cached(kind: LayerKind, past: np.ndarray) -> np.ndarray:
    """Tokens each sequence keeps cached for this layer before the step (bounded by the window or chunk)."""
    past = np.asarray(past, dtype=np.int64)
    if kind.window:
        return np.minimum(past, kind.window)
    if kind.chunk:
        return past % kind.chunk
    return past


def attention_op(p: GeneralPlan, kind: LayerKind, op_kind: str, new: np.ndarray, past: np.ndarray) -> Op:
    """One attention op (GQA with window/chunk/sinks, or MLA) over these sequences on this chip."""
    m = p.model
    entries = _entries(kind, new, past)
    new_tokens = int(np.asarray(new).sum())
    cached = int(_cached(kind, past).sum())
    span = kind.window or kind.chunk
    sinks = float(SINK_FLOPS_PER_QUERY_HEAD * new_tokens * p.q_heads) if m.attention_sinks else 0.0
    if kind.mixer == "mla":
        mla = m.mla
        row = mla.cache_width * p.kvb
        if op_kind == OpKind.ATTENTION_DECODE:  # absorbed: scores over latent + RoPE, values over the latent
            flops = 2.0 * (mla.cache_width + mla.kv_lora_rank) * p.q_heads * entries
            return Op(op_kind, op_kind, p.kv_dtype, flops=flops, act_in_bytes=new_tokens * p.q_heads * mla.cache_width
                      * p.ab, act_out_bytes=new_tokens * p.q_heads * mla.kv_lora_rank * p.ab,
                      kv_read_bytes=cached * row, kv_write_bytes=new_tokens * row, q_heads=p.q_heads, kv_heads=1,
                      head_dim=mla.kv_lora_rank, features=_attention_features(p, kind), window=span,
                      seq_new=np.asarray(new), seq_past=np.asarray(past))
        context = new_tokens + cached  # naive prefill: decompress the chunk's whole context through W_UKV
        up = 2.0 * context * mla.kv_lora_rank * p.q_heads * (mla.qk_nope_head_dim + mla.v_head_dim)
        flops = 2.0 * (mla.qk_head_dim + mla.v_head_dim) * p.q_heads * entries + up
        return Op(op_kind, op_kind, p.kv_dtype, flops=flops,
                  weight_bytes=mla.kv_lora_rank * p.q_heads * (mla.qk_nope_head_dim + mla.v_head_dim) * p.wb,
                  act_in_bytes=new_tokens * p.q_heads * mla.qk_head_dim * p.ab,
                  act_out_bytes=new_tokens * p.q_heads * mla.v_head_dim * p.ab, kv_read_bytes=cached * row,
                  kv_write_bytes=new_tokens * row, q_heads=p.q_heads, kv_heads=p.q_heads, head_dim=mla.qk_head_dim,
                  features=_attention_features(p, kind), window=span, seq_new=np.asarray(new),
                  seq_past=np.asarray(past))
    hd = m.head_dim
    row = 2.0 * p.kv_heads * hd * p.kvb
    return Op(op_kind, op_kind, p.kv_dtype, flops=4.0 * p.q_heads * hd * entries + sinks,
              act_in_bytes=new_tokens * (p.q_heads + 2 * p.kv_heads) * hd * p.ab,
              act_out_bytes=new_tokens * p.q_heads * hd * p.ab, kv_read_bytes=cached * row,
              kv_write_bytes=new_tokens * row, q_heads=p.q_heads, kv_heads=p.kv_heads, head_dim=hd,
              features=_attention_features(p, kind), window=span, seq_new=np.asarray(new),
              seq_past=np.asarray(past) if not span else _cached(kind, past))


def _attention_projections(p: GeneralPlan, kind: LayerKind, t: _Tokens) -> tuple[tuple[Op, ...], tuple[Op, ...]]:
    """(ops before the attention kernel, ops after it up to the output projection)."""
    m, h = p.model, p.model.hidden_size
    if kind.mixer == "mla":
        mla, hl = m.mla, p.q_heads
        down = mla.q_lora_rank + mla.cache_width
        before = [_matmul(p, "qkv_a_proj", t.local, h, down)]
        if mla.q_lora_rank:
            before += [_norm(p, "q_a_norm", t.local, mla.q_lora_rank),
                       _matmul(p, "q_b_proj", t.local, mla.q_lora_rank, hl * mla.qk_head_dim)]
        else:
            before += [_matmul(p, "q_proj", t.local, h, hl * mla.qk_head_dim)]
        before.append(_norm(p, "kv_a_norm", t.local, mla.kv_lora_rank))
        after = []
        if t.decode:
            before.append(_matmul(p, "absorb_uk", t.decode, mla.qk_nope_head_dim, hl * mla.kv_lora_rank))
            after.append(_matmul(p, "absorb_uv", t.decode, mla.kv_lora_rank, hl * mla.v_head_dim))
        after.append(_matmul(p, "o_proj", t.local, hl * mla.v_head_dim, h))
        return tuple(before), tuple(after)
    qkv = (p.q_heads + 2 * p.kv_heads) * m.head_dim
    before = [_matmul(p, "qkv_proj", t.local, h, qkv, bias=m.attention_bias)]
    if m.qk_norm:
        before.append(_norm(p, "qk_norm", t.local, (p.q_heads + p.kv_heads) * m.head_dim, Feature.QK_NORM))
    return tuple(before), (_matmul(p, "o_proj", t.local, p.q_heads * m.head_dim, h, bias=m.o_bias),)


def _mamba(p: GeneralPlan, t: _Tokens) -> tuple[Op, ...]:
    ssm, h, tp = p.model.ssm, p.model.hidden_size, p.attn_tp
    heads = -(-ssm.num_heads // tp)
    inner, channels = heads * ssm.head_dim, ssm.conv_channels // tp
    width = inner + channels + heads
    state_bytes = (heads * ssm.head_dim * ssm.state_size + channels * (ssm.conv_kernel - 1)) * p.ab
    flops = t.local * (2.0 * channels * ssm.conv_kernel + SSM_DECODE_FLOPS_PER_STATE * inner * ssm.state_size)
    flops += t.prefill * 2.0 * SSM_SCAN_CHUNK * heads * (ssm.state_size + ssm.head_dim)
    scan = Op("ssm_scan", OpKind.SSM_SCAN, p.act_dtype, flops=flops, act_in_bytes=t.local * width * p.ab,
              act_out_bytes=t.local * inner * p.ab, kv_read_bytes=t.sequences * state_bytes,
              kv_write_bytes=t.sequences * state_bytes, features=(Feature.MAMBA2,))
    return (_matmul(p, "in_proj", t.local, h, width), scan, _norm(p, "gated_norm", t.local, inner),
            _matmul(p, "out_proj", t.local, inner, h))


def layer_ops(p: GeneralPlan, kind: LayerKind, t: _Tokens, batch, decode_new: int = 1) -> tuple[Op, ...]:
    """One layer of `kind` on this chip for this step (`batch`: this chip's StepBatch; `decode_new`: query tokens
    per decoding sequence, 1 + the draft tokens a speculative step verifies)."""
    m = p.model
    ops: list[Op] = []
    if kind.mixer != "none":
        ops.append(_norm(p, "input_norm", t.local, m.hidden_size))
        if kind.mixer == "mamba":
            ops.extend(_mamba(p, t))
        else:
            before, after = _attention_projections(p, kind, t)
            ops.extend(before)
            new, past, dec = batch.prefill_new_tokens, batch.prefill_past_tokens, batch.decode_past_tokens
            if new.size:
                ops.append(attention_op(p, kind, OpKind.ATTENTION_PREFILL, new, past))
            if dec.size:
                ops.append(attention_op(p, kind, OpKind.ATTENTION_DECODE, np.full(dec.size, decode_new, np.int64),
                                        dec))
            ops.extend(after)
        if p.attn_tp > 1:
            ops.append(_allreduce(p, "attn_allreduce", t.local, p.attn_tp))
        if m.norms_per_layer == 4:
            ops.append(_norm(p, "post_attention_out_norm", t.local, m.hidden_size))
        ops.append(_residual(p, "attn_residual", t.local))
    if kind.ffn != "none":
        ops.append(_norm(p, "post_attention_norm" if kind.mixer != "none" else "input_norm", t.local, m.hidden_size))
        if kind.ffn == "moe":
            ops.extend(_moe_ffn(p, t))
            group = p.ffn_tp if p.attn_tp > 1 else 1
        else:
            ops.extend(_dense_ffn(p, "", t.local, m.ffn_width(kind), p.ffn_tp))
            group = p.ffn_tp
        if group > 1:
            ops.append(_allreduce(p, "mlp_allreduce", t.local, group))
        if m.norms_per_layer == 4:
            ops.append(_norm(p, "post_ffn_norm", t.local, m.hidden_size))
        ops.append(_residual(p, "mlp_residual", t.local))
    return tuple(ops)
