"""Step graphs and per-chip memory: FLOP and byte conservation across tp and pp, op structure, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.workloads.errors import InputError
from asicsim.workloads.graph import (
    NORM_FLOPS_PER_ELEMENT,
    SILU_MUL_FLOPS_PER_ELEMENT,
    attention_flops,
    build_step_graph,
    model_flops_per_token,
)
from asicsim.workloads.graph_types import OpKind, StepBatch
from asicsim.workloads.memory import (
    activation_bytes_per_chip,
    kv_bytes_per_token_per_chip,
    resolve_kv_dtype,
    stage_layer_counts,
    weight_bytes_per_chip,
)
from asicsim.workloads.models import ModelConfig, load_model

BUILTINS = {name: load_model(name) for name in ("llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b")}
ATTENTION_KINDS = (OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE)


def tiny(kv_heads: int = 8, group: int = 2, head_dim: int = 16, inter: int = 96, layers: int = 5, vocab: int = 512,
         tie: bool = False) -> ModelConfig:
    heads = kv_heads * group
    return ModelConfig("tiny", heads * head_dim, inter, layers, heads, kv_heads, head_dim, vocab, tie, 4096,
                       10000.0, "test")


@st.composite
def models(draw) -> ModelConfig:
    """A built-in model, or a small synthetic one whose widths tp in {1, 2, 4, 8} divides exactly."""
    if draw(st.booleans()):
        return BUILTINS[draw(st.sampled_from(sorted(BUILTINS)))]
    return tiny(kv_heads=draw(st.sampled_from([8, 16])), group=draw(st.integers(1, 4)),
                head_dim=draw(st.sampled_from([16, 64, 128])), inter=8 * draw(st.integers(1, 64)),
                layers=draw(st.integers(1, 7)), vocab=8 * draw(st.integers(1, 100)), tie=draw(st.booleans()))


@st.composite
def batches(draw) -> StepBatch:
    """Prefill chunks and decode sequences; at least one token in all."""
    n_pre = draw(st.integers(0, 4))
    n_dec = draw(st.integers(0 if n_pre else 1, 40))
    new = draw(st.lists(st.integers(1, 3000), min_size=n_pre, max_size=n_pre))
    past = draw(st.lists(st.integers(0, 5000), min_size=n_pre, max_size=n_pre))
    dec = draw(st.lists(st.integers(0, 9000), min_size=n_dec, max_size=n_dec))
    return StepBatch.make(new, past, dec)


def all_stage_graphs(model, batch, tp, pp, **kw):
    return [build_step_graph(model, batch, tp=tp, pp=pp, stage=s, **kw) for s in range(pp)]


def kind_total(graphs, tp: int, kinds) -> float:
    """Sum of FLOPs over every chip (tp of them per stage) and every stage, ops of the given kinds."""
    return tp * sum(op.flops * count for g in graphs for op, count in g.all_ops() if op.kind in kinds)


def sampled_tokens(batch: StepBatch) -> int:
    return batch.prefill_new_tokens.size + batch.decode_past_tokens.size


def all_sequences(batch: StepBatch) -> tuple[np.ndarray, np.ndarray]:
    dec = batch.decode_past_tokens
    return (np.concatenate([batch.prefill_new_tokens, np.ones_like(dec)]),
            np.concatenate([batch.prefill_past_tokens, dec]))


@settings(max_examples=60, deadline=None)
@given(model=models(), batch=batches(), tp=st.sampled_from([1, 2, 4, 8]), pp=st.integers(1, 4))
def test_flops_conserved_over_chips_and_stages(model, batch, tp, pp) -> None:
    pp = min(pp, model.num_hidden_layers)
    graphs = all_stage_graphs(model, batch, tp, pp)
    h, tokens = model.hidden_size, batch.tokens
    dense = 2.0 * (model.num_hidden_layers * model.layer_matmul_param_count() * tokens
                   + model.vocab_size * h * sampled_tokens(batch))
    attention = attention_flops(model, *all_sequences(batch))
    assert kind_total(graphs, tp, (OpKind.MATMUL,)) == pytest.approx(dense, rel=1e-12)
    assert kind_total(graphs, tp, ATTENTION_KINDS) == pytest.approx(attention, rel=1e-12, abs=0)
    total = tp * sum(g.total("flops") for g in graphs)
    assert total >= dense + attention
    if model.name in BUILTINS:  # at real widths norms, residuals and SiLU are under 1%
        assert total <= 1.01 * (dense + attention)
    # The small ops follow the documented per-element counts exactly.
    layers, inter = model.num_hidden_layers, model.intermediate_size
    reduce_adds = (tp - 1) * tokens * h * (2 * layers + 1)
    small = (tp * NORM_FLOPS_PER_ELEMENT * tokens * h * (2 * layers + 1) + tp * 2 * layers * tokens * h
             + SILU_MUL_FLOPS_PER_ELEMENT * layers * tokens * inter + reduce_adds
             + model.vocab_size * sampled_tokens(batch))
    assert total - dense - attention == pytest.approx(small, rel=1e-9)


def test_dense_flops_per_token_is_twice_non_embedding_params() -> None:
    m = BUILTINS["llama-3.1-70b"]
    non_embedding = m.param_count() - m.embedding_param_count() - (2 * m.num_hidden_layers + 1) * m.hidden_size
    assert model_flops_per_token(m) == 2.0 * non_embedding


@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(BUILTINS)), batch=batches(), tp=st.sampled_from([2, 4, 8]))
def test_flops_per_chip_scale_as_one_over_tp(name, batch, tp) -> None:
    model = BUILTINS[name]
    one = build_step_graph(model, batch).total("flops")
    sharded = build_step_graph(model, batch, tp=tp).total("flops")
    assert 0.99 * tp <= one / sharded <= tp * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(model=models(), batch=batches(), tp=st.sampled_from([1, 2, 4, 8]), pp=st.integers(1, 4),
       dtype=st.sampled_from(["bf16", "fp8", "fp4"]), kv_dtype=st.sampled_from([None, "bf16", "fp8", "fp4"]))
def test_kv_bytes_match_per_chip_footprint(model, batch, tp, pp, dtype, kv_dtype) -> None:
    pp = min(pp, model.num_hidden_layers)
    kv = resolve_kv_dtype(dtype, kv_dtype)
    g = build_step_graph(model, batch, tp=tp, pp=pp, dtype=dtype, kv_dtype=kv_dtype)
    per_token = kv_bytes_per_token_per_chip(model, kv, tp, pp)
    past_tokens = int(batch.prefill_past_tokens.sum() + batch.decode_past_tokens.sum())
    assert g.total("kv_write_bytes") == pytest.approx(batch.tokens * per_token, rel=1e-12)
    assert g.total("kv_read_bytes") == pytest.approx(past_tokens * per_token, rel=1e-12, abs=0)
    assert {op.dtype for op, _ in g.all_ops() if op.kind in ATTENTION_KINDS} <= {kv}


def test_fp4_weights_keep_an_fp8_cache_unless_told() -> None:
    assert resolve_kv_dtype("fp4", None) == "fp8"
    assert resolve_kv_dtype("bf16", None) == "bf16"
    assert resolve_kv_dtype("fp4", "fp4") == "fp4"


def test_kv_per_chip_equals_whole_model_over_chips() -> None:
    m = BUILTINS["llama-3.1-70b"]
    assert kv_bytes_per_token_per_chip(m, "fp8", 1, 1) == m.kv_bytes_per_token("fp8")
    assert kv_bytes_per_token_per_chip(m, "fp8", 8, 4) * 32 == m.kv_bytes_per_token("fp8")


LAYER_ORDER = ["input_norm", "qkv_proj", "attention_prefill", "attention_decode", "o_proj", "attn_allreduce",
               "attn_residual", "post_attention_norm", "gate_up_proj", "silu_mul", "down_proj", "mlp_allreduce",
               "mlp_residual"]


@pytest.mark.parametrize(("prefill", "decode", "tp"), [(True, True, 1), (True, False, 8), (False, True, 2),
                                                       (True, True, 4)])
def test_layer_ops_in_order_and_only_needed_attention(prefill, decode, tp) -> None:
    batch = StepBatch.make([300] if prefill else [], [20] if prefill else None, [7, 900] if decode else [])
    names = [op.name for op in build_step_graph(BUILTINS["llama-3.1-8b"], batch, tp=tp).layer_ops]
    expected = [n for n in LAYER_ORDER
                if (prefill or n != "attention_prefill") and (decode or n != "attention_decode")
                and (tp > 1 or "allreduce" not in n)]
    assert names == expected


def test_matmul_shapes_are_megatron_shards() -> None:
    m = BUILTINS["llama-3.1-70b"]
    g = build_step_graph(m, StepBatch.make([100], [0], [5, 6, 7]), tp=8)
    shapes = {op.name: (op.m, op.k, op.n) for op, _ in g.all_ops() if op.kind == OpKind.MATMUL}
    assert shapes == {"qkv_proj": (103, 8192, (8 + 2) * 128), "o_proj": (103, 1024, 8192),
                      "gate_up_proj": (103, 8192, 2 * 3584), "down_proj": (103, 3584, 8192),
                      "lm_head": (4, 8192, 128256 // 8)}
    attn = next(op for op in g.layer_ops if op.kind == OpKind.ATTENTION_DECODE)
    assert (attn.q_heads, attn.kv_heads, attn.head_dim) == (8, 1, 128)
    assert attn.seq_new.tolist() == [1, 1, 1] and attn.seq_past is g.batch.decode_past_tokens
    allreduce = next(op for op in g.layer_ops if op.kind == OpKind.ALLREDUCE)
    assert (allreduce.comm_bytes, allreduce.group) == (103 * 8192 * 2, 8)


def test_causal_chunk_counts_only_unmasked_scores() -> None:
    m = tiny(kv_heads=1, group=1, head_dim=1, layers=1)
    # 3 new tokens after 2 cached: rows see 3, 4, 5 keys = 3*2 + 3*4/2 = 12 entries; 4 FLOPs each.
    g = build_step_graph(m, StepBatch.make([3], [2]))
    assert next(op for op in g.layer_ops if op.kind == OpKind.ATTENTION_PREFILL).flops == 12 * 4


@settings(max_examples=30, deadline=None)
@given(layers=st.integers(1, 130), pp=st.integers(1, 16))
def test_pp_splits_layers_with_the_last_stage_heaviest(layers, pp) -> None:
    model = tiny(layers=layers)
    if pp > layers:
        with pytest.raises(InputError):
            stage_layer_counts(model, pp)
        return
    counts = stage_layer_counts(model, pp)
    assert sum(counts) == layers and len(counts) == pp
    assert max(counts) == counts[-1] == math.ceil(layers / pp) and max(counts) - min(counts) <= 1


def test_pp_places_embedding_lm_head_and_sends() -> None:
    m = BUILTINS["llama-3.1-405b"]
    graphs = all_stage_graphs(m, StepBatch.make([64], [0], [10]), tp=8, pp=4)
    assert [g.layers_per_stage for g in graphs] == [31, 31, 32, 32]
    assert [bool(g.pre_ops) for g in graphs] == [True, False, False, False]
    assert [bool(g.post_ops) for g in graphs] == [False, False, False, True]
    assert [len(g.stage_ops) for g in graphs] == [1, 1, 1, 0]
    assert graphs[0].stage_ops[0].comm_bytes == 65 * m.hidden_size * 2
    default = build_step_graph(m, StepBatch.make([64], [0], [10]), tp=8, pp=4)
    assert default.layers_per_stage == 32 and default.post_ops


@pytest.mark.parametrize("tp", [3, 5, 12, 128, 0, -2])
def test_tp_must_divide_kv_heads_or_be_a_multiple_dividing_the_query_heads(tp) -> None:
    with pytest.raises(InputError) as err:  # llama-3.1-70b: 8 KV heads, 64 query heads
        build_step_graph(BUILTINS["llama-3.1-70b"], StepBatch.make([4]), tp=tp)
    assert err.value.field == "tp"


def test_tp_past_the_kv_heads_replicates_one_kv_head_per_chip() -> None:
    model = BUILTINS["llama-3.1-70b"]
    at8 = build_step_graph(model, StepBatch.make([4], decode_past=[100]), tp=8)
    at16 = build_step_graph(model, StepBatch.make([4], decode_past=[100]), tp=16)
    kv8 = sum(op.kv_write_bytes + op.kv_read_bytes for op in at8.layer_ops)
    kv16 = sum(op.kv_write_bytes + op.kv_read_bytes for op in at16.layer_ops)
    assert kv8 > 0 and kv16 == kv8  # the same one KV head per chip: replicated, not split
    assert sum(op.flops for op in at16.layer_ops) < sum(op.flops for op in at8.layer_ops)  # the rest still splits


@pytest.mark.parametrize(("kwargs", "field"), [({"pp": 0}, "pp"), ({"pp": 81}, "pp"), ({"pp": 2, "stage": 2}, "stage"),
                                               ({"dtype": "int2"}, "dtype"), ({"act_dtype": "e5m2"}, "act_dtype")])
def test_bad_parallelism_or_dtype(kwargs, field) -> None:
    with pytest.raises(InputError) as err:
        build_step_graph(BUILTINS["llama-3.1-70b"], StepBatch.make([4]), **kwargs)
    assert err.value.field == field


@pytest.mark.parametrize("batch", [StepBatch.make(), StepBatch.make([0]), StepBatch.make([4], [-1]),
                                   StepBatch.make([], None, [-3]),
                                   StepBatch(np.array([4]), np.array([0, 0]), np.array([], dtype=np.int64))])
def test_bad_batch_is_input_error(batch) -> None:
    with pytest.raises(InputError):
        build_step_graph(BUILTINS["llama-3.1-8b"], batch)


def test_vocab_and_mlp_pad_up_when_tp_does_not_divide() -> None:
    m = tiny(kv_heads=4, inter=90, vocab=1001)
    g = build_step_graph(m, StepBatch.make([], None, [1]), tp=4)
    shapes = {op.name: op.n for op, _ in g.all_ops() if op.kind == OpKind.MATMUL}
    assert shapes["lm_head"] == 251 and shapes["gate_up_proj"] == 2 * 23


@pytest.mark.parametrize("name", sorted(BUILTINS))
@pytest.mark.parametrize("tp", [1, 2, 8])
def test_weight_memory_matches_graph_weights(name, tp) -> None:
    m = BUILTINS[name]
    g = build_step_graph(m, StepBatch.make([], None, [1]), tp=tp, dtype="fp8")
    table = -(-m.vocab_size // tp) * m.hidden_size * 1.0  # embedding shard, fp8
    streamed = sum(op.weight_bytes * c for op, c in g.all_ops() if op.kind != OpKind.EMBEDDING)
    assert weight_bytes_per_chip(m, "fp8", tp, 1) == pytest.approx(streamed + table, rel=1e-12)


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_bf16_weight_memory_is_two_bytes_per_param(name) -> None:
    m = BUILTINS[name]
    assert weight_bytes_per_chip(m, "bf16", 1, 1) == 2 * m.param_count()
    assert weight_bytes_per_chip(m, "bf16", 8, 1) * 8 >= 2 * m.param_count()
    assert weight_bytes_per_chip(m, "fp4", 8, 2) < weight_bytes_per_chip(m, "fp8", 8, 2)


@settings(max_examples=30, deadline=None)
@given(model=models(), tokens=st.integers(1, 50_000), tp=st.sampled_from([1, 2, 4, 8]))
def test_activation_workspace_linear_in_tokens_and_shrinks_with_tp(model, tokens, tp) -> None:
    one = activation_bytes_per_chip(model, 1, tp)
    assert activation_bytes_per_chip(model, tokens, tp) == tokens * one
    assert one <= activation_bytes_per_chip(model, 1, 1)
    assert one >= 2 * model.hidden_size * 2  # at least the residual stream and its normed copy, bf16
    with pytest.raises(InputError):
        activation_bytes_per_chip(model, 0, tp)


def _op_values(op):
    from dataclasses import fields as _fields

    return [(f.name, getattr(op, f.name).tolist() if isinstance(getattr(op, f.name), np.ndarray)
             else getattr(op, f.name)) for f in _fields(op)]


def _graph_values(g):
    return (g.tp, g.pp, g.layers_per_stage, g.dense_key, g.more_groups,
            [[_op_values(op) for op in ops] for ops in (g.pre_ops, g.layer_ops, g.post_ops, g.stage_ops)])


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 24), seed=st.integers(0, 2**16), tp=st.sampled_from([1, 2, 8]), pp=st.sampled_from([1, 2]))
def test_a_decode_graph_made_from_another_of_its_size_is_the_built_one(size, seed, tp, pp):
    from asicsim.workloads.graph import with_decode_past

    rng = np.random.default_rng(seed)
    model = load_model("llama-3.1-70b")
    first, second = (StepBatch.make(decode_past=rng.integers(0, 9000, size=size)) for _ in range(2))
    built = build_step_graph(model, second, tp=tp, pp=pp)
    made = with_decode_past(build_step_graph(model, first, tp=tp, pp=pp), second)
    assert made is not None and made.batch is second
    assert _graph_values(made) == _graph_values(built)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 900), max_size=4), st.lists(st.integers(0, 9000), max_size=6), st.integers(0, 5000),
       st.sampled_from(["llama-3.1-70b", "mixtral-8x7b"]), st.sampled_from([1, 8]))
def test_a_trusted_batch_gives_the_graph_a_checked_one_does(chunks, decodes, past, name, tp):
    """`trusted` (the serving loop's own batches) only skips the batch's checks: the graph is the checked one's."""
    from hypothesis import assume

    assume(chunks or decodes)
    model = load_model(name)
    batch = StepBatch.make(chunks, [past] * len(chunks), decodes)
    assert _graph_values(build_step_graph(model, batch, tp=tp, trusted=True)) == \
        _graph_values(build_step_graph(model, batch, tp=tp))


def test_a_graph_of_another_size_or_with_prefill_is_not_made_from_a_decode_graph():
    from asicsim.workloads.graph import with_decode_past

    model = load_model("llama-3.1-70b")
    decode = build_step_graph(model, StepBatch.make(decode_past=[5, 6]), tp=8)
    assert with_decode_past(decode, StepBatch.make(decode_past=[5, 6, 7])) is None
    assert with_decode_past(decode, StepBatch.make(prefill_new=[3], decode_past=[5])) is None
    mixed = build_step_graph(model, StepBatch.make(prefill_new=[3], decode_past=[5]), tp=8)
    assert with_decode_past(mixed, StepBatch.make(decode_past=[5, 6])) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 2**20)), max_size=150))
def test_integer_totals_equal_numpys(pairs):
    """`int_total` and `int_dot` (list sums for short arrays) give numpy's int64 sum and dot, short or long."""
    from asicsim.workloads.graph_types import int_dot, int_total

    a = np.array([x for x, _ in pairs], dtype=np.int64)
    b = np.array([y for _, y in pairs], dtype=np.int64)
    assert int_total(a) == int(a.sum()) and type(int_total(a)) is int
    assert int_dot(a, b) == int(np.dot(a, b)) and type(int_dot(a, b)) is int


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 9000), min_size=1, max_size=80), st.integers(0, 3000), st.sampled_from([1, 2, 8]),
       st.sampled_from(["llama-3.1-8b", "llama-3.1-70b"]), st.sampled_from(["fp8", "bf16"]))
def test_the_decode_attention_gives_the_built_op(past, grown, tp, name, dtype):
    """`decode_attention(graph).make(past)` is the decode attention op `build_step_graph` puts in that batch's layer,
    at `place`: every field equal (floats bit for bit, the same types), the same cached-token array, no value key.
    `fields(total)` gives its two fields the cached tokens set, and `op` every other field of it."""
    from asicsim.workloads.graph import decode_attention
    from asicsim.workloads.graph_types import _SCALAR_FIELDS

    model = load_model(name)
    first = np.array(past, dtype=np.int64)
    made = decode_attention(build_step_graph(model, StepBatch.make(decode_past=first), tp=tp, dtype=dtype))
    later = first + grown
    layer = build_step_graph(model, StepBatch.make(decode_past=later), tp=tp, dtype=dtype).layer_ops
    built = [op for op in layer if op.kind == OpKind.ATTENTION_DECODE]
    op = made.make(later)
    assert len(built) == 1 and layer[made.place] is built[0]
    assert op.value_key is None and op.seq_past is later
    for field in _SCALAR_FIELDS:
        got, want = getattr(op, field), getattr(built[0], field)
        assert type(got) is type(want) and got == want, field
        if field not in ("flops", "kv_read_bytes"):
            assert getattr(made.op, field) == want, field
    assert made.fields(int(later.sum())) == (built[0].flops, built[0].kv_read_bytes)
    assert np.array_equal(op.seq_new, built[0].seq_new) and op.seq_new.dtype == built[0].seq_new.dtype


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 900), max_size=3), st.lists(st.integers(0, 9000), max_size=6), st.integers(0, 5000),
       st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b"]), st.sampled_from([1, 2, 8]),
       st.sampled_from([1, 2]), st.sampled_from([None, 0]), st.sampled_from(["fp8", "bf16"]))
def test_a_graph_builder_gives_the_graph_build_step_graph_does(chunks, decodes, past, name, tp, pp, stage, dtype):
    """`step_graph_builder(model, **layout)(batch, stage, trusted)` is `build_step_graph(model, batch, stage=stage,
    trusted=trusted, **layout)`: the same ops, values and keys (dense and MoE paths, any stage), and the same refusal
    of a malformed batch."""
    from asicsim.workloads.graph import step_graph_builder

    model = load_model(name)
    if not chunks and not decodes:
        decodes = [past]
    batch = StepBatch.make(chunks, [past] * len(chunks), decodes)
    layout = dict(tp=tp, pp=pp, dtype=dtype)
    build = step_graph_builder(model, **layout)
    for trusted in (False, True):
        assert _graph_values(build(batch, stage, trusted)) == \
            _graph_values(build_step_graph(model, batch, stage=stage, trusted=trusted, **layout))
    bad = StepBatch(np.array([0]), np.array([0]), np.zeros(0, dtype=np.int64))
    with pytest.raises(InputError, match="prefill_new_tokens"):
        build(bad, stage)
    with pytest.raises(TypeError, match="unknown keyword"):
        step_graph_builder(model, tensor_parallel=2)
