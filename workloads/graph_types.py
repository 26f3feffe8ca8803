"""Data types of one engine step's operator graph (no arithmetic here; see graph.py).

An engine step runs one batch: some sequences get a chunk of their prompt (prefill), others one new token
(decode). All decoder layers of a model are identical, so a step graph holds one layer's ops and a layer
count; the engine costs a layer once and multiplies. Every count on an `Op` is per chip.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, fields, replace

import numpy as np

__all__ = ["OpKind", "Feature", "Op", "grouped_as_dense", "attention_flops_scale", "StepBatch", "StepGraph",
           "int_total", "int_dot"]

_SHORT = 64  # entries below which a list sum beats numpy's reduction (~0.2 us against ~1 us for a step's batch)


def int_total(values: np.ndarray) -> int:
    """The sum of an integer array as a Python int, the same number `int(values.sum())` gives (int64 sums of token
    counts stay far below 2^63): summed as a list when short, as serving sums a step's handful of sequences."""
    return sum(values.tolist()) if values.size < _SHORT else int(values.sum())


def int_dot(a: np.ndarray, b: np.ndarray) -> int:
    """`int(np.dot(a, b))` of two integer arrays of one length, as a list sum when short (the same number)."""
    return sum([x * y for x, y in zip(a.tolist(), b.tolist())]) if a.size < _SHORT else int(np.dot(a, b))


class OpKind:
    """Op kinds (plain strings so they serialise as-is)."""

    EMBEDDING = "embedding"
    NORM = "norm"
    MATMUL = "matmul"
    ATTENTION_PREFILL = "attention_prefill"
    ATTENTION_DECODE = "attention_decode"
    ELEMENTWISE = "elementwise"
    ALLREDUCE = "allreduce"
    P2P = "p2p"
    MOE_MATMUL = "moe_matmul"  # grouped GEMM over the routed experts on this chip
    ALL_TO_ALL = "all_to_all"  # expert-parallel dispatch / combine
    SSM_SCAN = "ssm_scan"  # Mamba-2: causal conv + selective state-space scan
    ALL = (EMBEDDING, NORM, MATMUL, ATTENTION_PREFILL, ATTENTION_DECODE, ELEMENTWISE, ALLREDUCE, P2P, MOE_MATMUL,
           ALL_TO_ALL, SSM_SCAN)


class Feature:
    """What an op computes, in the words a fixed-function chip's spec lists what it runs natively
    (`native_ops`). Ops without features (embedding lookup, residual add, sampling, collectives) are the
    plumbing every chip has."""

    GEMM = "gemm"  # dense matrix multiply (projections, dense MLPs, router, LM head)
    GEMM_BIAS = "gemm_bias"  # a bias added to a projection's output
    GQA_ATTENTION = "gqa_attention"  # causal MHA/GQA/MQA over the whole context
    ROPE = "rope"
    SLIDING_WINDOW = "sliding_window_attention"
    CHUNKED_ATTENTION = "chunked_attention"
    ATTENTION_SINKS = "attention_sinks"
    MLA = "mla_attention"  # multi-head latent attention (latent cache, absorbed projections)
    RMSNORM = "rmsnorm"
    QK_NORM = "qk_norm"
    SWIGLU = "swiglu"
    GEGLU = "geglu"
    SWIGLU_CLAMP = "swiglu_clamp"  # gpt-oss: clamped SwiGLU with a scaled sigmoid
    RELU2 = "relu2"
    MOE_EXPERTS = "moe_grouped_gemm"
    TOPK_ROUTING = "topk_routing"
    MAMBA2 = "mamba2_scan"
    ALL = (GEMM, GEMM_BIAS, GQA_ATTENTION, ROPE, SLIDING_WINDOW, CHUNKED_ATTENTION, ATTENTION_SINKS, MLA, RMSNORM,
           QK_NORM, SWIGLU, GEGLU, SWIGLU_CLAMP, RELU2, MOE_EXPERTS, TOPK_ROUTING, MAMBA2)


@dataclass(frozen=True, eq=False)
class StepBatch:
    """What one step processes, one entry per sequence.

    prefill_new_tokens[i]: prompt tokens of prefill sequence i processed in this step (its chunk).
    prefill_past_tokens[i]: tokens of that sequence already in the KV cache before this chunk.
    decode_past_tokens[j]: tokens of decode sequence j already in the KV cache; the step adds one token.
    """

    prefill_new_tokens: np.ndarray
    prefill_past_tokens: np.ndarray
    decode_past_tokens: np.ndarray

    @staticmethod
    def make(prefill_new=(), prefill_past=None, decode_past=()) -> "StepBatch":
        new = np.asarray(prefill_new, dtype=np.int64).reshape(-1)
        past = np.zeros_like(new) if prefill_past is None else np.asarray(prefill_past, dtype=np.int64).reshape(-1)
        return StepBatch(new, past, np.asarray(decode_past, dtype=np.int64).reshape(-1))

    @property
    def prefill_tokens(self) -> int:
        return int_total(self.prefill_new_tokens)

    @property
    def decode_tokens(self) -> int:
        return int(self.decode_past_tokens.size)

    @property
    def tokens(self) -> int:
        """Tokens pushed through the dense layers this step."""
        return self.prefill_tokens + self.decode_tokens


@dataclass(frozen=True, eq=False, init=False)
class Op:
    """One operator on one chip. FLOPs and bytes are per chip (after tensor-parallel sharding).

    Matmuls carry their per-chip shape (m tokens x k) @ (k x n). Attention ops carry per-chip head counts
    and, per sequence, the new tokens (`seq_new`, 1 for decode) and the tokens already cached (`seq_past`).
    Collectives carry the per-chip message size and the group size.
    """

    name: str
    kind: str
    dtype: str
    flops: float = 0.0
    weight_bytes: float = 0.0
    act_in_bytes: float = 0.0
    act_out_bytes: float = 0.0
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    comm_bytes: float = 0.0
    group: int = 1
    m: int = 0
    n: int = 0
    k: int = 0
    q_heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    features: tuple[str, ...] = ()  # Feature values (see Feature); () for plumbing
    window: int = 0  # attention: a token attends at most this many entries (sliding or chunked; 0: all)
    experts: float = 0.0  # moe_matmul: expected experts with tokens on this chip (m: tokens per such expert)
    # moe_matmul: how the experts' GEMMs add up to one: "n", side by side in the output (gate/up projections);
    # "k", partial sums over slices of the reduction (the down projection, summed per token as the combine does)
    experts_axis: str = "n"
    seq_new: np.ndarray | None = field(default=None, repr=False)
    seq_past: np.ndarray | None = field(default=None, repr=False)
    # The op's scalar fields as one hashable value (None with per-sequence arrays); set by __init__.
    value_key: bytes | None = field(default=None, init=False, repr=False)

    def __init__(self, name: str, kind: str, dtype: str, flops: float = 0.0, weight_bytes: float = 0.0,
                 act_in_bytes: float = 0.0, act_out_bytes: float = 0.0, kv_read_bytes: float = 0.0,
                 kv_write_bytes: float = 0.0, comm_bytes: float = 0.0, group: int = 1, m: int = 0, n: int = 0,
                 k: int = 0, q_heads: int = 0, kv_heads: int = 0, head_dim: int = 0, features: tuple[str, ...] = (),
                 window: int = 0, experts: float = 0.0, experts_axis: str = "n", seq_new: np.ndarray | None = None,
                 seq_past: np.ndarray | None = None) -> None:
        """The dataclass's fields, set in one dict update rather than one frozen `object.__setattr__` each (a
        mixed step builds a dozen ops at a new token count), and `value_key`: two ops with equal keys are the
        same op (ops are immutable), so a device prices them the same and caches can key on the value rather
        than on the object (`Op` compares by identity, `eq=False`, because of the arrays). The key is the tuple
        of scalar fields pickled: equal bytes unpickle to equal fields of equal types (floats bit for bit), and
        bytes, unlike a tuple, keep their hash once computed, so the engine's dozen lookups per step do not
        rehash every field. tests/test_graph_types.py checks the fields against the field list."""
        scalars = (name, kind, dtype, flops, weight_bytes, act_in_bytes, act_out_bytes, kv_read_bytes,
                   kv_write_bytes, comm_bytes, group, m, n, k, q_heads, kv_heads, head_dim, features, window, experts,
                   experts_axis)
        arrays = seq_new is not None or seq_past is not None
        self.__dict__.update(zip(_SCALAR_FIELDS, scalars), seq_new=seq_new, seq_past=seq_past,
                             value_key=None if arrays else pickle.dumps(scalars, protocol=5))

    def with_sequences(self, seq_new: np.ndarray, seq_past: np.ndarray, **scalars) -> "Op":
        """This op for other per-sequence arrays, with the given scalar fields changed and the rest kept: the op
        `__init__` gives for those values (an op with arrays has no value key), made by copying this one's fields
        (a decode run makes an attention op per step it times: ~2x faster than `__init__`)."""
        op = _new_object(Op)
        fields_ = op.__dict__
        fields_.update(self.__dict__)
        fields_.update(scalars, seq_new=seq_new, seq_past=seq_past, value_key=None)
        return op

    @property
    def memory_bytes(self) -> float:
        """Bytes this op moves through device memory if nothing stays on chip."""
        return self.weight_bytes + self.act_in_bytes + self.act_out_bytes + self.kv_read_bytes + self.kv_write_bytes


def grouped_as_dense(op: Op) -> Op:
    """A grouped expert GEMM (moe_matmul) as the one dense GEMM a device prices it as: m tokens per active expert
    through the active experts side by side (n x experts wide) or, for a down projection, as partial sums over
    their slices (k x experts deep), with the op's own FLOPs and bytes. With every expert active on the same
    tokens this is the dense GEMM the experts split."""
    widened = max(int(round((op.k if op.experts_axis == "k" else op.n) * op.experts)), 1)
    if op.experts_axis == "k":
        return replace(op, kind=OpKind.MATMUL, k=widened, experts=0.0)
    return replace(op, kind=OpKind.MATMUL, n=widened, experts=0.0)


def plain_attention(op: Op) -> bool:
    """Whether an attention op is plain causal attention (no window, MLA or sinks): its (seq_new, seq_past) arrays
    imply its FLOPs (`attention_flops_scale` is 1.0). A function of its window and features alone."""
    return not op.window and Feature.MLA not in op.features and Feature.ATTENTION_SINKS not in op.features


def attention_flops_scale(op: Op) -> float:
    """An attention op's FLOPs over those its (seq_new, seq_past) arrays imply for plain causal attention with
    its head count and head_dim (4 x heads x head_dim per entry): 1.0 for a plain GQA op, otherwise the factor
    by which a device's array-based attention model must scale (sliding windows, chunks, MLA, sinks)."""
    if plain_attention(op):
        return 1.0
    new = op.seq_new.astype(np.float64)
    entries = float((new * op.seq_past + new * (new + 1) / 2).sum())
    implied = 4.0 * op.q_heads * op.head_dim * entries
    return op.flops / implied if implied > 0.0 else 1.0


_SCALAR_FIELDS = tuple(f.name for f in fields(Op) if f.name not in ("seq_new", "seq_past", "value_key"))
_new_object = object.__new__


@dataclass(frozen=True, eq=False, init=False)
class StepGraph:
    """One step on one pipeline stage: ops before the layers, one layer's ops, the layer count, ops after.

    With pp > 1 the first stage holds the embedding, the last the final norm and LM head; `stage_ops` are
    the point-to-point transfer of activations to the next stage (empty for the last stage).
    """

    batch: StepBatch
    tp: int
    pp: int
    pre_ops: tuple[Op, ...]
    layer_ops: tuple[Op, ...]
    layers_per_stage: int
    post_ops: tuple[Op, ...]
    stage_ops: tuple[Op, ...] = ()
    # Layers of other kinds on this stage, after the first group: ((ops, count), ...) (MoE after dense layers,
    # global after sliding-window layers, Mamba beside attention). Empty for a model of identical layers.
    more_groups: tuple[tuple[tuple[Op, ...], int], ...] = ()
    # Equal keys: equal ops with equal values at every place but the per-sequence (attention) ops, which sit at
    # the same places (build_step_graph sets it; None: unknown). Engines key caches of the rest on it.
    dense_key: object = field(default=None, compare=False)
    # Equal keys: equal pre ops and layer ops (per-sequence ops at the same places), whatever the post and stage
    # ops (a step's sampled tokens change only its LM head). None: unknown.
    layer_key: object = field(default=None, compare=False)

    def __init__(self, batch: StepBatch, tp: int, pp: int, pre_ops: tuple[Op, ...], layer_ops: tuple[Op, ...],
                 layers_per_stage: int, post_ops: tuple[Op, ...], stage_ops: tuple[Op, ...] = (),
                 more_groups: tuple[tuple[tuple[Op, ...], int], ...] = (), dense_key: object = None,
                 layer_key: object = None) -> None:
        """The fields in one dict update (a decode run builds a graph per step timed; tests/test_engine.py checks
        the signature against the field list)."""
        self.__dict__.update(batch=batch, tp=tp, pp=pp, pre_ops=pre_ops, layer_ops=layer_ops,
                             layers_per_stage=layers_per_stage, post_ops=post_ops, stage_ops=stage_ops,
                             more_groups=more_groups, dense_key=dense_key, layer_key=layer_key)

    @property
    def layer_groups(self) -> tuple[tuple[tuple[Op, ...], int], ...]:
        """((layer ops, layer count), ...): every kind of layer on this stage."""
        return ((self.layer_ops, self.layers_per_stage), *self.more_groups)

    def split(self) -> list["StepGraph"]:
        """One single-group graph per layer group (pre ops with the first, post and stage ops with the last),
        so an engine that runs graphs of identical layers can run this one as their sum."""
        if not self.more_groups:
            return [self]
        groups = self.layer_groups
        last = len(groups) - 1
        return [StepGraph(self.batch, self.tp, self.pp, self.pre_ops if i == 0 else (), ops, count,
                          self.post_ops if i == last else (), self.stage_ops if i == last else (), (),
                          None if self.dense_key is None else (self.dense_key, i),
                          None if self.layer_key is None else (self.layer_key, i))
                for i, (ops, count) in enumerate(groups)]

    def all_ops(self):
        """(op, repeat count) pairs for one stage."""
        for op in self.pre_ops:
            yield op, 1
        for ops, count in self.layer_groups:
            for op in ops:
                yield op, count
        for op in self.post_ops:
            yield op, 1
        for op in self.stage_ops:
            yield op, 1

    def total(self, attr: str) -> float:
        """Sum of an Op attribute (e.g. 'flops') over one stage of one chip, layers counted."""
        return float(sum(getattr(op, attr) * count for op, count in self.all_ops()))
