"""Data types of one engine step's operator graph (no arithmetic here; see graph.py).

An engine step runs one batch: some sequences get a chunk of their prompt (prefill), others one new token
(decode). All decoder layers of a model are identical, so a step graph holds one layer's ops and a layer
count; the engine costs a layer once and multiplies. Every count on an `Op` is per chip.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field, fields
from operator import attrgetter

import numpy as np

__all__ = ["OpKind", "Op", "StepBatch", "StepGraph"]


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
    ALL = (EMBEDDING, NORM, MATMUL, ATTENTION_PREFILL, ATTENTION_DECODE, ELEMENTWISE, ALLREDUCE, P2P)


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
        return int(self.prefill_new_tokens.sum())

    @property
    def decode_tokens(self) -> int:
        return int(self.decode_past_tokens.size)

    @property
    def tokens(self) -> int:
        """Tokens pushed through the dense layers this step."""
        return self.prefill_tokens + self.decode_tokens


@dataclass(frozen=True, eq=False)
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
    seq_new: np.ndarray | None = field(default=None, repr=False)
    seq_past: np.ndarray | None = field(default=None, repr=False)
    # The op's scalar fields as one hashable value (None with per-sequence arrays); set by __post_init__.
    value_key: bytes | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        """`value_key`: two ops with equal keys are the same op (ops are immutable), so a device prices them
        the same and caches can key on the value rather than on the object (`Op` compares by identity,
        `eq=False`, because of the arrays). The key is the tuple of scalar fields pickled: equal bytes
        unpickle to equal fields of equal types (floats bit for bit), and bytes, unlike a tuple, keep their
        hash once computed, so the engine's dozen lookups per step do not rehash every field. An ordinary
        field set here (not computed lazily) keeps attribute access on ops fast."""
        if self.seq_new is None and self.seq_past is None:
            object.__setattr__(self, "value_key", pickle.dumps(_op_scalars(self), protocol=5))

    @property
    def memory_bytes(self) -> float:
        """Bytes this op moves through device memory if nothing stays on chip."""
        return self.weight_bytes + self.act_in_bytes + self.act_out_bytes + self.kv_read_bytes + self.kv_write_bytes


_op_scalars = attrgetter(*(f.name for f in fields(Op) if f.name not in ("seq_new", "seq_past", "value_key")))


@dataclass(frozen=True, eq=False)
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
    # Equal keys: equal ops with equal values at every place but the per-sequence (attention) ops, which sit at
    # the same places (build_step_graph sets it; None: unknown). Engines key caches of the rest on it.
    dense_key: object = field(default=None, compare=False)

    def all_ops(self):
        """(op, repeat count) pairs for one stage."""
        for op in self.pre_ops:
            yield op, 1
        for op in self.layer_ops:
            yield op, self.layers_per_stage
        for op in self.post_ops:
            yield op, 1
        for op in self.stage_ops:
            yield op, 1

    def total(self, attr: str) -> float:
        """Sum of an Op attribute (e.g. 'flops') over one stage of one chip, layers counted."""
        return float(sum(getattr(op, attr) * count for op, count in self.all_ops()))
