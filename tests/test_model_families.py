"""Issue 16's model families (MoE, MLA, sliding/chunked windows, Mamba-2 hybrids) checked against their model cards
and against counts derived here from first principles.

Golden sources: workloads/configs/MODEL_CARDS.toml (card figures, card URLs, and notes on how each card counts) and
the shipped config.json files (layer shapes). Each tolerance says what it reflects.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.cli import main
from asicsim.core.engine import StepEngine
from asicsim.core.registry import load_hardware, make_device
from asicsim.workloads.architecture import LayerKind, MoeConfig
from asicsim.workloads.graph import build_step_graph, model_features
from asicsim.workloads.graph_types import Feature, OpKind, StepBatch, StepGraph, grouped_as_dense
from asicsim.workloads.layers import _entries, window_entries
from asicsim.workloads.memory import (kv_bytes_per_token_per_chip, kv_span_bytes_per_sequence_per_chip,
                                      state_bytes_per_sequence_per_chip)
from asicsim.workloads.models import CONFIG_DIR, builtin_models, load_model, read_model_config
from asicsim.workloads.routing import busiest_chip_load, expert_popularity

CARDS = tomllib.loads((CONFIG_DIR / "MODEL_CARDS.toml").read_text(encoding="utf-8"))
# Issue 16's built-in names; mistral-large-2 has a card but no config (MODEL_CARDS.toml: config_source MISSING).
ISSUE_MODELS = ("llama-3.3-70b", "deepseek-v3", "deepseek-r1", "gpt-oss-120b", "gpt-oss-20b", "qwen3-235b-a22b",
                "qwen3-30b-a3b", "qwen3-32b", "qwen2.5-72b", "llama-4-maverick", "llama-4-scout", "mixtral-8x7b",
                "mixtral-8x22b", "gemma-3-27b", "nemotron-h-56b")
NO_CONFIG: tuple[str, ...] = ()  # cards without a shipped config (mistral-large-2's is reconstructed)
MOE_MODELS = tuple(n for n in builtin_models() if load_model(n).moe is not None)


def _card(name: str) -> dict:
    return CARDS[name]


# --- every config loads ------------------------------------------------------------------------------------------
def test_issue_models_are_built_in() -> None:
    assert set(ISSUE_MODELS) <= set(builtin_models())
    assert set(CARDS) - set(builtin_models()) == set(NO_CONFIG)
    for name in NO_CONFIG:
        assert "MISSING" in CARDS[name]["config_source"]
    assert "RECONSTRUCTED" in CARDS["mistral-large-2"]["config_source"]


@pytest.mark.parametrize("name", builtin_models())
def test_every_builtin_config_loads(name: str) -> None:
    m = load_model(name)
    assert len(m.layers) == m.num_hidden_layers
    assert 0 < m.param_count(active=True) <= m.param_count()
    assert m.kv_bytes_per_token_unbounded("bf16") <= m.kv_bytes_per_token("bf16")
    assert Feature.GEMM in model_features(m)
    # a prefill chunk plus decode tokens builds a graph with the model's layer count
    graph = build_step_graph(m, StepBatch.make([5], [3], [7, 9]), tp=1, dtype="bf16")
    assert sum(count for _, count in graph.layer_groups) == m.num_hidden_layers


# --- parameter counts against the model cards ----------------------------------------------------------------------
# A card figure X written to a last digit worth d (671B: d = 1; 30.5B: d = 0.1; 1.23B: d = 0.01) is consistent with
# an exact count c when X - d/2 <= c < X + d: the card rounded (|c - X| <= d/2) or truncated (X <= c < X + d).
# Truncation is observed: Meta writes 1,235,814,400 as "1.23B", Qwen 3,353M active as "3.3B".
# (total digit, active digit) in billions, as each card_quote words it.
CARD_DIGITS = {
    "deepseek-v3": (1, 1), "deepseek-r1": (1, 1),  # "671B ... 37B"
    "gpt-oss-120b": (1, 0.1), "gpt-oss-20b": (1, 0.1),  # "117B ... 5.1B", "21B ... 3.6B"
    "qwen3-235b-a22b": (1, 1), "qwen3-30b-a3b": (0.1, 0.1), "qwen3-32b": (0.1, 0.1), "qwen2.5-72b": (0.1, 0.1),
    "qwen3-0.6b": (0.1, 0.1),
    "llama-4-maverick": (1, 1), "llama-4-scout": (1, 1),  # "17B (Activated) 400B (Total)"
    "mixtral-8x7b": (0.1, 0.1), "mixtral-8x22b": (1, 1),  # "46.7B ... 12.9B", "39B ... 141B"
    "llama-3.3-70b": (1, 1), "llama-3.2-1b": (0.01, 0.01), "llama-3.2-3b": (0.01, 0.01),  # "1B (1.23B)"
    "nemotron-h-56b": (1, 1),  # "56B model parameters"
}


def _consistent(count: float, figure_b: float, digit_b: float) -> bool:
    c = count / 1e9
    return figure_b - digit_b / 2 - 1e-9 <= c < figure_b + digit_b


def _vision_encoder_params(vc: dict, text_hidden: int) -> int:
    """Llama 4's vision tower + projector from its vision_config, with the shapes of transformers'
    Llama4VisionModel: conv patch embedding (no bias), class embedding, positional embedding per patch + class,
    pre/post LayerNorms, ViT layers (Q, K, V, O with biases, two LayerNorms, fc1/fc2 with biases), pixel-shuffle
    MLP (fc1: intermediate -> projector_input, fc2: projector_input -> projector_output, no biases) and the
    multi-modal projector (vision_output_dim -> text hidden, no bias)."""
    h, inter = vc["hidden_size"], vc["intermediate_size"]
    patches = (vc["image_size"] // vc["patch_size"]) ** 2
    embed = vc["num_channels"] * vc["patch_size"] ** 2 * h + h + (patches + 1) * h + 4 * h
    layer = 4 * (h * h + h) + 4 * h + (h * inter + inter) + (inter * h + h)
    adapter = inter * vc["projector_input_dim"] + vc["projector_input_dim"] * vc["projector_output_dim"]
    return embed + vc["num_hidden_layers"] * layer + adapter + vc["vision_output_dim"] * text_hidden


@pytest.mark.parametrize("name", sorted(CARD_DIGITS))
def test_total_params_match_card(name: str) -> None:
    m, card = load_model(name), _card(name)
    total_digit = CARD_DIGITS[name][0]
    ours = m.param_count()
    if name == "llama-4-scout":
        # The card's 109B counts the vision encoder (MODEL_CARDS.toml note); ours is the text model: add the
        # vision tower computed from the shipped vision_config to compare like with like.
        raw, _ = read_model_config(name)
        vision = _vision_encoder_params(raw["vision_config"], m.hidden_size)
        assert 0.5e9 < vision < 2.0e9
        ours += vision
    assert _consistent(ours, card["params_total_b"], total_digit), (ours / 1e9, card["params_total_b"])


@pytest.mark.parametrize("name", sorted(CARD_DIGITS))
def test_active_params_match_card(name: str) -> None:
    m, card = load_model(name), _card(name)
    ours = m.param_count(active=True)
    if name.startswith("gpt-oss"):
        # gpt-oss's card counts active parameters without the embedding table (a token reads one row of it);
        # its unembedding (LM head) is counted. MODEL_CARDS.toml note; the paper gives 5.13B / 3.61B.
        ours -= m.embedding_param_count()
    if m.moe is None:
        assert ours == m.param_count()
    assert _consistent(ours, card["params_active_b"], CARD_DIGITS[name][1]), (ours / 1e9, card["params_active_b"])


def test_gpt_oss_counts_match_the_papers_two_decimals() -> None:
    # gpt-oss model card paper (arXiv 2508.10925) as quoted in MODEL_CARDS.toml notes: 116.83B total, 5.13B active
    # (120b); 20.91B total, 3.61B active (20b); active without the embedding table. Rounded to 0.01B.
    for name, total, active in (("gpt-oss-120b", 116.83, 5.13), ("gpt-oss-20b", 20.91, 3.61)):
        m = load_model(name)
        assert m.param_count() / 1e9 == pytest.approx(total, abs=0.005)
        assert (m.param_count(active=True) - m.embedding_param_count()) / 1e9 == pytest.approx(active, abs=0.005)


def test_gemma_3_27b_matches_the_technical_report_split() -> None:
    # "27B" is only a size name (card_quote), so the check is the Gemma 3 technical report's split quoted in the
    # MODEL_CARDS.toml note: ~25.6B non-embedding + ~1.4B embedding (tied, so counted once), to 0.05B.
    m = load_model("gemma-3-27b")
    assert m.tie_word_embeddings and m.lm_head_param_count() == 0
    assert m.embedding_param_count() / 1e9 == pytest.approx(1.4, abs=0.05)
    assert (m.param_count() - m.embedding_param_count()) / 1e9 == pytest.approx(25.6, abs=0.05)
    assert m.param_count() / 1e9 == pytest.approx(27.0, rel=0.02)  # the size name, 2%


@pytest.mark.parametrize("name", sorted(n for n, c in CARDS.items() if "safetensors_total_bytes" in c))
def test_bf16_checkpoint_size_is_exactly_twice_the_param_count(name: str) -> None:
    # safetensors metadata.total_size of an all-BF16 checkpoint is 2 bytes per parameter, exactly.
    total_bytes = _card(name)["safetensors_total_bytes"]
    assert total_bytes % 2 == 0
    assert load_model(name).param_count() == total_bytes // 2


@pytest.mark.parametrize("name", sorted(n for n, c in CARDS.items() if "params_non_embedding_b" in c
                                        and n != "qwen2.5-72b"))
def test_qwen_non_embedding_params_match_card(name: str) -> None:
    # Qwen cards' "Number of Parameters (Non-Embedding)" leaves out the embedding table and the untied LM head.
    # qwen2.5-72b is left out: its 70.0B came from a secondary page (MODEL_CARDS.toml note) and the exact count
    # (72,706,203,648 = total_size / 2, tested above) minus both tables is 70.21B.
    m = load_model(name)
    ours = m.param_count() - m.embedding_param_count() - m.lm_head_param_count()
    assert _consistent(ours, _card(name)["params_non_embedding_b"], 0.01 if name == "qwen3-0.6b" else
                       (1 if name == "qwen3-235b-a22b" else 0.1))


@pytest.mark.parametrize("name", ["deepseek-v3", "deepseek-r1"])
def test_deepseek_mtp_module_is_the_cards_685_minus_671(name: str) -> None:
    # DeepSeek-V3 card (MODEL_CARDS.toml note): "685B, which includes 671B of the Main Model weights and 14B of the
    # Multi-Token Prediction (MTP) Module weights". The checkpoint's MTP layer stores its own copies of the
    # embedding and the shared head, which mtp_param_count() shares with the main model. 14 is the difference of
    # two figures each good to +-0.5B (or truncated), so the comparison carries +-1B.
    m = load_model(name)
    assert m.mtp_layers == 1
    mtp_in_checkpoint = m.mtp_param_count() + 2 * m.vocab_size * m.hidden_size
    assert 13e9 <= mtp_in_checkpoint <= 15e9
    assert m.param_count() / 1e9 == pytest.approx(671, abs=0.5)  # main model only (MTP excluded)


# --- FLOPs per token = 2 x active matmul params (+ attention) ------------------------------------------------------
DECODE_TOKENS, DECODE_PAST = 64, 32


def _mixer_flops_per_token(m, kind: LayerKind, past: int) -> float:
    """FLOPs of one decode token's attention (score and value products) or Mamba-2 scan in one layer, counted from
    the config: GQA 4 x heads x head_dim per attended entry; MLA absorbed 2 x heads x (latent + RoPE) for scores and
    2 x heads x latent for values; Mamba-2 conv 2 x channels x taps + state update/readout 6 x inner x state."""
    entries = past + 1
    if kind.window:
        entries = min(entries, kind.window)
    if kind.chunk:
        entries = past % kind.chunk + 1
    if kind.mixer == "attention":
        sinks = 4 * m.num_attention_heads if m.attention_sinks else 0
        return 4.0 * m.num_attention_heads * m.head_dim * entries + sinks
    if kind.mixer == "mla":
        return 2.0 * m.num_attention_heads * (2 * m.mla.kv_lora_rank + m.mla.qk_rope_head_dim) * entries
    if kind.mixer == "mamba":
        s = m.ssm
        return 2.0 * s.conv_channels * s.conv_kernel + 6.0 * s.inner * s.state_size
    return 0.0


@pytest.mark.parametrize("name", builtin_models())
def test_decode_flops_per_token_are_twice_the_active_params_plus_attention(name: str) -> None:
    """Decode, tp = 1, 64 sequences at 32 cached tokens, one chip holding every expert (ep = 1, so every routed
    pair is on it). Expected per token: 2 x (active parameters without the embedding table (a lookup, no FLOPs),
    with the LM head once (a matmul, run for tied embeddings too)) + each layer's attention / scan FLOPs. The
    2 x params side also counts norm weights and biases as if they were matmul weights, and the graph adds the
    elementwise FLOPs (norms, activations, residuals, top-k, sampling) that the expectation leaves out: within 2%."""
    m = load_model(name)
    graph = build_step_graph(m, StepBatch.make(decode_past=[DECODE_PAST] * DECODE_TOKENS), tp=1, dtype="bf16")
    matmul_params = (m.param_count(active=True) - m.embedding_param_count()
                     + m.vocab_size * m.hidden_size - m.lm_head_param_count())
    mixer = sum(_mixer_flops_per_token(m, kind, DECODE_PAST) for kind in m.layers)
    expected = 2.0 * matmul_params + mixer
    per_token = graph.total("flops") / DECODE_TOKENS
    assert per_token == pytest.approx(expected, rel=0.02)
    # no FLOPs for the embedding lookup; the LM head's are 2 x vocab x hidden per token
    ops = {op.name: op for op, _ in graph.all_ops()}
    assert ops["embedding"].flops == 0.0
    assert ops["lm_head"].flops == 2.0 * DECODE_TOKENS * m.vocab_size * m.hidden_size


@pytest.mark.parametrize("name", MOE_MODELS)
@pytest.mark.parametrize("imbalance", [0.0, 0.3, 2.0])
def test_routed_expert_flops_are_exactly_top_k_experts_per_token(name: str, imbalance: float) -> None:
    # With ep = 1 the one chip takes every routed pair whatever the popularity: tokens x top_k rows through the
    # expert GEMMs, 2 x (gate/up + down weights of one expert, no biases) FLOPs per row.
    m = load_model(name)
    graph = build_step_graph(m, StepBatch.make(decode_past=[DECODE_PAST] * DECODE_TOKENS), tp=1, dtype="bf16",
                             moe_imbalance=imbalance)
    moe_layers = sum(1 for k in m.layers if k.ffn == "moe")
    expert_matmul = (3 if m.gated else 2) * m.hidden_size * m.moe.expert_intermediate
    routed = sum(op.flops * count for op, count in graph.all_ops() if op.kind == OpKind.MOE_MATMUL)
    assert routed == pytest.approx(2.0 * DECODE_TOKENS * m.moe.top_k * expert_matmul * moe_layers, rel=1e-12)


# --- an MoE of equal, always-active experts prices as the dense model ----------------------------------------------
def _equal_experts(base, experts: int):
    """`base` (dense, intermediate I) with every MLP split into `experts` experts of width I / experts, all of them
    active for every token (top_k = experts)."""
    width = base.intermediate_size // experts
    assert width * experts == base.intermediate_size
    return dataclasses.replace(base, name=f"{base.name}-{experts}x-equal",
                               moe=MoeConfig(num_experts=experts, top_k=experts, expert_intermediate=width),
                               layer_kinds=(LayerKind(ffn="moe"),) * base.num_hidden_layers)


def _without_routing(graph: StepGraph) -> StepGraph:
    """The graph less its router GEMM and top-k: with every expert taking every token they choose nothing, so the
    comparison leaves them out (they are priced on their own elsewhere). dense_key None: every op priced afresh."""
    def keep(ops):
        return tuple(op for op in ops if op.name not in ("router", "topk"))
    return StepGraph(graph.batch, graph.tp, graph.pp, graph.pre_ops, keep(graph.layer_ops), graph.layers_per_stage,
                     graph.post_ops, graph.stage_ops, tuple((keep(ops), n) for ops, n in graph.more_groups), None)


def _devices(tp: int):
    """H100 without the grouped-GEMM kernel overheads the operator tables calibrate (fixed and per-expert costs,
    the MoE permute kernels: real costs a dense GEMM does not pay, while these tests compare the graphs), and
    Sohu with MoE grouped GEMMs declared native (its spec runs them on the host-CPU fallback, which would
    compare the fallback with the datapath rather than the graphs)."""
    sohu = load_hardware("sohu")
    sohu = dataclasses.replace(sohu, native_ops=(*sohu.native_ops, Feature.MOE_EXPERTS))
    h100 = dataclasses.replace(load_hardware("h100-sxm"), grouped_gemm_efficiency=1.0, grouped_gemm_efficiency_fp8=0.0,
                               grouped_gemm_efficiency_fp4=0.0, grouped_gemm_fixed_s=0.0, grouped_gemm_expert_s=0.0)
    h100_device = make_device(h100, tp).with_effects({"separate_moe_permute": False})
    return {"h100-sxm": h100_device, "sohu": make_device(sohu, tp)}


BATCHES = {"decode-3": StepBatch.make(decode_past=[1000] * 3), "decode-64": StepBatch.make(decode_past=[100] * 64),
           "prefill+decode": StepBatch.make([512], [0], [200] * 8)}


@pytest.mark.parametrize("batch", sorted(BATCHES))
@pytest.mark.parametrize("tp", [1, 2])
def test_single_expert_moe_is_the_dense_model_exactly(batch: str, tp: int) -> None:
    # One expert of width I, top-1: the grouped GEMMs are the dense GEMMs (same m, n, k, FLOPs and bytes), so
    # once the router and top-k are left out the step time is the dense model's to rounding, on both devices.
    base = load_model("llama-3.1-8b")
    moe = _equal_experts(base, 1)
    for label, device in _devices(tp).items():
        dense = StepEngine(device).run_step([build_step_graph(base, BATCHES[batch], tp=tp, dtype="fp8")]).time_s
        graph = _without_routing(build_step_graph(moe, BATCHES[batch], tp=tp, dtype="fp8", moe_imbalance=0.0))
        assert StepEngine(device).run_step([graph]).time_s == pytest.approx(dense, rel=1e-12), label


@pytest.mark.parametrize("experts", [4, 8, 16])
def test_equal_experts_moe_has_the_dense_models_flops_and_weights(experts: int) -> None:
    # llama-3.1-8b: I = 14336 = 4 x 3584 = 8 x 1792 = 16 x 896, each a multiple of 128 (the GEMM tile width).
    base = load_model("llama-3.1-8b")
    moe = _equal_experts(base, experts)
    for batch in BATCHES.values():
        dense = build_step_graph(base, batch, tp=1, dtype="fp8")
        graph = _without_routing(build_step_graph(moe, batch, tp=1, dtype="fp8", moe_imbalance=0.0))
        assert graph.total("flops") == pytest.approx(dense.total("flops"), rel=1e-12)
        assert graph.total("weight_bytes") == pytest.approx(dense.total("weight_bytes"), rel=1e-12)
        ops = {op.name: op for op, _ in graph.all_ops()}
        dense_ops = {op.name: op for op, _ in dense.all_ops()}
        gate_up = grouped_as_dense(ops["experts_gate_up"])  # every expert, every token: the dense gate/up GEMM
        ref = dense_ops["gate_up_proj"]
        assert (gate_up.m, gate_up.n, gate_up.k, gate_up.flops, gate_up.weight_bytes) == \
            (ref.m, ref.n, ref.k, ref.flops, ref.weight_bytes)


@pytest.mark.parametrize("experts", [4, 8, 16])
@pytest.mark.parametrize("tp", [1, 2])
def test_equal_experts_moe_decodes_in_the_dense_models_time(experts: int, tp: int) -> None:
    """Decode (weight-bound), I / E a multiple of the 128-wide tile. Sohu: equal to rounding. H100: the MoE's
    routed rows carry a copy of each token's hidden vector per expert (experts_gate_up reads tokens x E x hidden,
    experts_down writes tokens x E x hidden, where the dense MLP moves tokens x hidden), which a memory-bound GPU
    GEMM pays for; the difference is bounded by those extra bytes at the spec's HBM rates, per layer."""
    base = load_model("llama-3.1-8b")
    moe = _equal_experts(base, experts)
    devices = _devices(tp)
    h100 = load_hardware("h100-sxm")
    for batch in (BATCHES["decode-3"], BATCHES["decode-64"]):
        dense_graph = build_step_graph(base, batch, tp=tp, dtype="fp8")
        graph = _without_routing(build_step_graph(moe, batch, tp=tp, dtype="fp8", moe_imbalance=0.0))
        for label, device in devices.items():
            dense = StepEngine(device).run_step([dense_graph]).time_s
            ours = StepEngine(device).run_step([graph]).time_s
            if label == "sohu":
                assert ours == pytest.approx(dense, rel=1e-12)
                continue
            extra = (experts - 1) * batch.tokens * base.hidden_size * 2  # bf16 activations, one copy per expert
            bound = base.num_hidden_layers * (extra / h100.hbm_read_bytes_per_s + extra / h100.hbm_write_bytes_per_s)
            assert dense <= ours <= dense + bound * 1.000001


def test_equal_experts_moe_prefills_in_the_dense_models_time() -> None:
    base = load_model("llama-3.1-8b")
    moe = _equal_experts(base, 8)
    batch = BATCHES["prefill+decode"]
    for device in _devices(1).values():
        dense = StepEngine(device).run_step([build_step_graph(base, batch, tp=1, dtype="fp8")]).time_s
        graph = _without_routing(build_step_graph(moe, batch, tp=1, dtype="fp8", moe_imbalance=0.0))
        # Exact: the down projection is the dense one split over K, the gate/up one split over N, and a
        # compute-bound prefill hides the experts' extra activation reads.
        assert StepEngine(device).run_step([graph]).time_s == pytest.approx(dense, rel=1e-12)


def test_stock_sohu_runs_moe_experts_on_its_fallback() -> None:
    # The Sohu spec lists no MoE feature (native_ops): the same equal-experts graph costs fallback time there.
    base = load_model("llama-3.1-8b")
    graph = _without_routing(build_step_graph(_equal_experts(base, 8), BATCHES["decode-64"], tp=1, dtype="fp8",
                                              moe_imbalance=0.0))
    timing = StepEngine(make_device(load_hardware("sohu"), 1)).run_step([graph])
    dense = StepEngine(make_device(load_hardware("sohu"), 1)).run_step(
        [build_step_graph(base, BATCHES["decode-64"], tp=1, dtype="fp8")])
    assert timing.fallback_s > 0.0 and dense.fallback_s == 0.0
    assert timing.time_s > dense.time_s


# --- the routing model --------------------------------------------------------------------------------------------
@st.composite
def routing_case(draw):
    ep = draw(st.sampled_from([1, 2, 4, 8]))
    local = draw(st.integers(1, 32))
    experts = ep * local
    top_k = draw(st.integers(1, min(experts, 16)))
    tokens = draw(st.integers(0, 4096))
    imbalance = draw(st.one_of(st.just(0.0), st.floats(0.0, 3.0, allow_nan=False)))
    seed = draw(st.integers(0, 2**32 - 1))
    return experts, top_k, tokens, ep, imbalance, seed


EPS = 1e-9


@settings(max_examples=300, deadline=None)
@given(routing_case())
def test_routing_bounds(case) -> None:
    experts, top_k, tokens, ep, imbalance, seed = case
    load = busiest_chip_load(experts, top_k, tokens, ep, imbalance, seed)
    total = tokens * top_k
    assert load.total_pairs == total
    assert load.local_experts == experts // ep
    slack = EPS * max(total, 1)
    assert load.pairs >= total / ep - slack  # the busiest chip has at least the mean
    assert load.pairs <= total + slack
    assert load.pairs <= tokens * load.local_experts + slack  # an expert takes a token at most once
    assert 0.0 <= load.active_experts <= min(load.local_experts, load.pairs) + slack
    if imbalance == 0.0:
        assert load.pairs == pytest.approx(total / ep, rel=1e-12, abs=1e-9)  # uniform: exactly the mean
    p = expert_popularity(experts, top_k, imbalance, seed)
    assert p.sum() == pytest.approx(1.0, rel=1e-12)
    assert (top_k * p <= 1.0 + 1e-12).all() and (p >= 0).all()


@settings(max_examples=200, deadline=None)
@given(routing_case(), st.integers(1, 512))
def test_routing_is_monotone_in_tokens(case, more) -> None:
    experts, top_k, tokens, ep, imbalance, seed = case
    a = busiest_chip_load(experts, top_k, tokens, ep, imbalance, seed)
    b = busiest_chip_load(experts, top_k, tokens + more, ep, imbalance, seed)
    assert b.pairs >= a.pairs - EPS * max(a.pairs, 1)
    assert b.active_experts >= a.active_experts - EPS * max(a.active_experts, 1)


@settings(max_examples=100, deadline=None)
@given(routing_case())
def test_routing_is_deterministic_for_a_seed(case) -> None:
    experts, top_k, tokens, ep, imbalance, seed = case
    first = busiest_chip_load(experts, top_k, tokens, ep, imbalance, seed)
    busiest_chip_load.cache_clear()
    expert_popularity.cache_clear()
    again = busiest_chip_load(experts, top_k, tokens, ep, imbalance, seed)
    assert again == first


def test_routing_seed_and_imbalance_matter() -> None:
    a = busiest_chip_load(256, 8, 1024, 8, 0.3, 0)
    b = busiest_chip_load(256, 8, 1024, 8, 0.3, 1)
    uniform = busiest_chip_load(256, 8, 1024, 8, 0.0, 0)
    assert a.pairs != b.pairs
    assert a.pairs > uniform.pairs == 1024 * 8 / 8


# --- MLA: the latent cache ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["deepseek-v3", "deepseek-r1"])
def test_mla_kv_bytes_per_token_is_layers_times_latent_plus_rope(name: str) -> None:
    m = load_model(name)
    raw, _ = read_model_config(name)
    # config.json: 61 layers, kv_lora_rank 512, qk_rope_head_dim 64 -> 61 x 576 x 2 B = 70,272 B in bf16
    latent = raw["kv_lora_rank"] + raw["qk_rope_head_dim"]
    assert m.kv_bytes_per_token("bf16") == raw["num_hidden_layers"] * latent * 2
    assert m.kv_bytes_per_token("bf16") == 70_272
    assert m.kv_bytes_per_token("fp8") == 35_136
    assert m.kv_bytes_per_token_unbounded("bf16") == 70_272  # no windows
    # the latent is shared by all heads, so every tensor-parallel chip holds all of it
    for tp in (1, 8):
        assert kv_bytes_per_token_per_chip(m, "bf16", tp, 1) == 70_272


def test_mla_decode_reads_the_latent_cache() -> None:
    m = load_model("deepseek-v3")
    past = 1000
    graph = build_step_graph(m, StepBatch.make(decode_past=[past] * 4), tp=8, dtype="fp8", kv_dtype="bf16")
    reads = sum(op.kv_read_bytes * n for op, n in graph.all_ops() if op.kind == OpKind.ATTENTION_DECODE)
    assert reads == 4 * past * m.kv_bytes_per_token("bf16")


# --- sliding-window and chunked attention -------------------------------------------------------------------------
@pytest.mark.parametrize("name, window", [("gpt-oss-120b", 128), ("gpt-oss-20b", 128), ("gemma-3-27b", 1024)])
def test_windowed_kv_stops_growing_past_the_window(name: str, window: int) -> None:
    m = load_model(name)
    spans = {k.window for k in m.layers if k.window}
    assert spans == {window}  # config.json sliding_window
    held = [kv_span_bytes_per_sequence_per_chip(m, "bf16", 1, 1, tokens=t) for t in
            (1, window // 2, window - 1, window, window + 1, 4 * window, 10**6)]
    assert held[0] < held[1] < held[2] < held[3]
    assert held[3] == held[4] == held[5] == held[6] == kv_span_bytes_per_sequence_per_chip(m, "bf16", 1, 1)
    windowed = sum(1 for k in m.layers if k.window)
    assert held[3] == windowed * window * 2 * m.kv_size * 2
    # per token only the global layers keep growing
    full = sum(1 for k in m.layers if not k.window)
    assert kv_bytes_per_token_per_chip(m, "bf16", 1, 1) == full * 2 * m.kv_size * 2
    assert m.kv_bytes_per_token_unbounded("bf16") == full * 2 * m.kv_size * 2


@pytest.mark.parametrize("name", ["gpt-oss-120b", "gemma-3-27b", "llama-4-scout"])
def test_decode_attention_reads_flat_past_the_window(name: str) -> None:
    m = load_model(name)
    span = max(k.kv_span for k in m.layers)

    def attention_ops(past: int) -> dict:
        graph = build_step_graph(m, StepBatch.make(decode_past=[past]), tp=1, dtype="bf16")
        return {op.window: op for op, _ in graph.all_ops() if op.kind == OpKind.ATTENTION_DECODE}

    below, at, beyond = attention_ops(span // 2), attention_ops(span), attention_ops(3 * span + 5)
    spanned = [w for w in at if w]
    assert spanned
    for w in spanned:
        if any(k.window == w for k in m.layers):  # sliding: at most the window read, ever
            assert at[w].kv_read_bytes == beyond[w].kv_read_bytes > below[w].kv_read_bytes
            assert at[w].flops == beyond[w].flops > below[w].flops
        else:  # chunked: only the tokens of the current chunk so far (past mod chunk), never more than the chunk
            row = 2 * m.kv_size * 2
            for past in (w // 2, w - 1, w, w + 7, 3 * w + 5):
                assert attention_ops(past)[w].kv_read_bytes == (past % w) * row
    if 0 in at:  # the global layers keep growing
        assert beyond[0].kv_read_bytes > at[0].kv_read_bytes


def _brute_entries(new: list[int], past: list[int], window: int = 0, chunk: int = 0) -> int:
    total = 0
    for c, p in zip(new, past):
        for q in range(p, p + c):  # 0-based positions of the new tokens
            if window:
                total += min(q + 1, window)
            elif chunk:
                total += q % chunk + 1
            else:
                total += q + 1
    return total


sequences = st.lists(st.tuples(st.integers(1, 300), st.integers(0, 2000)), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(sequences, st.integers(1, 700))
def test_window_entries_equal_brute_force(seqs, window) -> None:
    new, past = [c for c, _ in seqs], [p for _, p in seqs]
    expected = _brute_entries(new, past, window=window)
    assert window_entries(np.array(new), np.array(past), window) == expected
    assert _entries(LayerKind(window=window), np.array(new), np.array(past)) == expected


@settings(max_examples=300, deadline=None)
@given(sequences, st.integers(1, 700))
def test_chunked_entries_equal_brute_force(seqs, chunk) -> None:
    new, past = [c for c, _ in seqs], [p for _, p in seqs]
    assert _entries(LayerKind(chunk=chunk), np.array(new), np.array(past)) == _brute_entries(new, past, chunk=chunk)
    assert _entries(LayerKind(), np.array(new), np.array(past)) == _brute_entries(new, past)


# --- Mamba-2 hybrids ----------------------------------------------------------------------------------------------
def test_nemotron_h_layer_pattern_counts() -> None:
    m = load_model("nemotron-h-56b")
    raw, _ = read_model_config("nemotron-h-56b")
    pattern = raw["hybrid_override_pattern"]
    assert len(pattern) == m.num_hidden_layers == 118
    # NVIDIA (MODEL_CARDS.toml note): 54 Mamba-2, 54 MLP, 10 attention layers
    assert (pattern.count("M"), pattern.count("-"), pattern.count("*")) == (54, 54, 10)
    kinds = m.layers
    assert sum(k.mixer == "mamba" and k.ffn == "none" for k in kinds) == pattern.count("M")
    assert sum(k.mixer == "none" and k.ffn == "dense" for k in kinds) == pattern.count("-")
    assert sum(k.mixer == "attention" and k.ffn == "none" for k in kinds) == pattern.count("*")
    assert [{"M": "mamba", "-": "none", "*": "attention"}[c] for c in pattern] == [k.mixer for k in kinds]


def test_mamba_state_per_sequence_matches_the_config() -> None:
    m = load_model("nemotron-h-56b")
    raw, _ = read_model_config("nemotron-h-56b")
    inner = raw["mamba_num_heads"] * raw["mamba_head_dim"]
    conv_channels = inner + 2 * raw["n_groups"] * raw["ssm_state_size"]
    per_layer = inner * raw["ssm_state_size"] + conv_channels * (raw["conv_kernel"] - 1)
    assert m.state_bytes_per_sequence("bf16") == 54 * per_layer * 2 == 459_620_352
    assert state_bytes_per_sequence_per_chip(m, 1, 1) == m.state_bytes_per_sequence("bf16")
    assert state_bytes_per_sequence_per_chip(m, 2, 1) == m.state_bytes_per_sequence("bf16") / 2
    assert load_model("llama-3.1-8b").state_bytes_per_sequence() == 0.0


@pytest.mark.parametrize("tp", [1, 4])
def test_mamba_state_traffic_is_constant_in_context_length(tp: int) -> None:
    m = load_model("nemotron-h-56b")

    def scan(past: int):
        graph = build_step_graph(m, StepBatch.make(decode_past=[past] * 2), tp=tp, dtype="bf16")
        return [(op, n) for op, n in graph.all_ops() if op.kind == OpKind.SSM_SCAN]

    short, long = scan(10), scan(100_000)
    assert len(short) == 1 and short[0][1] == 54
    for (a, _), (b, _) in zip(short, long):
        assert a.kv_read_bytes == b.kv_read_bytes == a.kv_write_bytes > 0
        assert a.flops == b.flops
    assert short[0][0].kv_read_bytes * 54 == 2 * state_bytes_per_sequence_per_chip(m, tp, 1)
    # the attention layers' cache does grow
    graph_short = build_step_graph(m, StepBatch.make(decode_past=[10] * 2), tp=tp, dtype="bf16")
    graph_long = build_step_graph(m, StepBatch.make(decode_past=[100_000] * 2), tp=tp, dtype="bf16")
    assert graph_long.total("kv_read_bytes") > graph_short.total("kv_read_bytes")


# --- layout errors through `asicsim run` --------------------------------------------------------------------------
LAYOUT_ERRORS = [
    (["--model", "mixtral-8x7b", "--chips", "6", "--tp", "6", "--ep", "3"], "--ep:", "8 experts"),
    (["--model", "deepseek-v3", "--chips", "12", "--attention-dp"], "--ep:", "256 experts"),
    (["--model", "mixtral-8x7b", "--chips", "8", "--tp", "8", "--ep", "3"], "--ep:", "does not divide tp=8"),
    (["--model", "llama-3.1-8b", "--chips", "2", "--ep", "2"], "--ep:", "no routed experts"),
    (["--model", "mixtral-8x7b", "--chips", "8", "--tp", "8", "--ep", "2", "--attention-dp"], "--attention-dp:",
     "ep = tp"),
    (["--model", "qwen3-32b", "--chips", "3"], "--tp:", "num_attention_heads=64"),
    (["--model", "gemma-3-27b", "--chips", "3", "--tp", "3"], "--tp:", "num_attention_heads=32"),
]


@pytest.mark.parametrize("flags, flag, words", LAYOUT_ERRORS)
def test_layout_errors_name_the_flag(flags, flag, words, capsys) -> None:
    code = main(["run", "--hw", "h100-sxm", "--requests", "2", "--isl", "16", "--osl", "2", *flags])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith(f"asicsim run: error: {flag}")
    assert words in lines[0]


# --- `asicsim models` ---------------------------------------------------------------------------------------------
def test_models_json_lists_every_builtin_with_card_figures(capsys) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert sorted(by_name) == builtin_models()
    for r in rows:
        for key in ("name", "params_total_b", "params_active_b", "kv_bytes_per_token", "layer_kinds"):
            assert key in r
        m = load_model(r["name"])
        assert r["params_total_b"] == m.param_count() / 1e9
        assert r["params_active_b"] == m.param_count(active=True) / 1e9
        assert r["kv_bytes_per_token"] == m.kv_bytes_per_token("bf16")
        assert sum(k["layers"] for k in r["layer_kinds"]) == m.num_hidden_layers
        if r["name"] in CARDS:
            card = CARDS[r["name"]]
            assert r["card_url"] == card["card_url"]
            assert r["card_params_total_b"] == card["params_total_b"]
            assert r["card_params_active_b"] == card["params_active_b"]
            assert r["params_total_rel_diff"] == pytest.approx(
                r["params_total_compared_b"] / card["params_total_b"] - 1)
    assert by_name["deepseek-v3"]["kv_bytes_per_token"] == 70_272
    assert by_name["nemotron-h-56b"]["state_bytes_per_sequence"] == 459_620_352
    assert by_name["gpt-oss-120b"]["kv_bytes_per_token_past_window"] < by_name["gpt-oss-120b"]["kv_bytes_per_token"]
    # gpt-oss's card counts active params without the embedding table: compared like with like
    oss = by_name["gpt-oss-120b"]
    assert oss["params_active_compared_b"] == pytest.approx(oss["params_active_b"] - oss["embedding_params_b"])
    assert abs(oss["params_active_rel_diff"]) < 0.01
    assert "card_url" not in by_name["llama-2-70b"]  # no card entry


def test_models_table_has_units_and_every_model(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0]
    for unit in ("total (B)", "active (B)", "KV (B/tok)", "state (MB/seq)"):
        assert unit in header
    for name in builtin_models():
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert "70,272" in out and "mistral-large-2" in out


@pytest.mark.parametrize("argv", [["models", "no-such-model"], ["models", "--json", "no-such-model"],
                                  ["models", "--bogus"]])
def test_models_bad_input_is_one_line(argv, capsys) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_models_bad_config_file_is_one_line(tmp_path, capsys) -> None:
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", "hidden_size": "big"}')
    assert main(["models", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "hidden_size" in err
