"""Readers of the model families' Hugging Face config keys into ModelConfig fields.

One reader per `model_type`: it returns the fields beyond the shared ones (hidden size, heads, vocab, ...)
that `models.parse_config` reads for every family. Keys a reader does not know stay unread, so a config
that sets a key changing the arithmetic of a family we do not model is refused by `models._check_unmodelled`.
Layer patterns follow the modelling code of each family in Hugging Face transformers (which layers are
sliding, chunked, MoE, Mamba), read from the config the way that code reads it.
"""

from __future__ import annotations

from typing import Any, Callable

from .architecture import LayerKind, MlaConfig, MoeConfig, SsmConfig
from .errors import InputError

__all__ = ["FAMILIES", "family_fields", "text_config"]


def text_config(raw: dict[str, Any]) -> dict[str, Any]:
    """The language model's keys: a multimodal config (Gemma 3, Llama 4) nests them under `text_config`."""
    text = raw.get("text_config")
    if isinstance(text, dict):
        merged = {k: v for k, v in raw.items() if k not in ("text_config", "vision_config")}
        merged.update(text)
        merged.setdefault("architectures", raw.get("architectures"))
        return merged
    return raw


MAX_COUNT = 1 << 20  # experts, heads, state sizes, windows: far above any model, so absurd configs stay cheap


def _int(raw: dict[str, Any], key: str, source: str, default: int | None = None, minimum: int = 1) -> int:
    value = raw.get(key, default)
    if value is None:
        raise InputError(source, key, "missing")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(source, key, f"must be an integer >= {minimum}, got {value!r}")
    if value > MAX_COUNT and key not in ("sliding_window", "attention_chunk_size"):
        raise InputError(source, key, f"must be at most {MAX_COUNT}, got {value}")
    return value


def _bool(raw: dict[str, Any], key: str, source: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise InputError(source, key, f"must be true or false, got {value!r}")
    return value


def _llama(raw, source, layers):
    return {"family": raw.get("model_type", "llama"), "attention_bias": _bool(raw, "attention_bias", source, False)}


def _qwen2(raw, source, layers):
    # Qwen2 projects Q, K and V with biases (its attention has bias=True for q/k/v, none on o).
    return {"family": "qwen2", "attention_bias": True}


def _qwen3(raw, source, layers):
    return {"family": "qwen3", "qk_norm": True, "attention_bias": _bool(raw, "attention_bias", source, False)}


def _qwen3_moe(raw, source, layers):
    step = _int(raw, "decoder_sparse_step", source, 1)
    dense = raw.get("mlp_only_layers") or []
    if not isinstance(dense, list) or not all(isinstance(i, int) for i in dense):
        raise InputError(source, "mlp_only_layers", f"must be a list of layer indices, got {dense!r}")
    moe = MoeConfig(num_experts=_int(raw, "num_experts", source), top_k=_int(raw, "num_experts_per_tok", source),
                    expert_intermediate=_int(raw, "moe_intermediate_size", source))
    kinds = tuple(LayerKind(ffn="moe" if i not in dense and (i + 1) % step == 0 else "dense") for i in range(layers))
    return {"family": "qwen3_moe", "qk_norm": True, "moe": moe, "layer_kinds": kinds,
            "attention_bias": _bool(raw, "attention_bias", source, False)}


def _mixtral(raw, source, layers):
    window = 0 if raw.get("sliding_window") is None else _int(raw, "sliding_window", source)
    moe = MoeConfig(num_experts=_int(raw, "num_local_experts", source), top_k=_int(raw, "num_experts_per_tok", source),
                    expert_intermediate=_int(raw, "intermediate_size", source))
    return {"family": "mixtral", "moe": moe, "layer_kinds": (LayerKind(window=int(window), ffn="moe"),) * layers}


def _deepseek(raw, source, layers):
    first_dense = _int(raw, "first_k_dense_replace", source, 0, minimum=0)
    freq = _int(raw, "moe_layer_freq", source, 1)
    routed = raw.get("n_routed_experts")
    moe = None
    if routed:
        shared = _int(raw, "n_shared_experts", source, 0, minimum=0)
        width = _int(raw, "moe_intermediate_size", source)
        scoring = raw.get("scoring_func", "softmax")
        moe = MoeConfig(num_experts=_int(raw, "n_routed_experts", source),
                        top_k=_int(raw, "num_experts_per_tok", source), expert_intermediate=width,
                        shared_intermediate=shared * width, router_bias=raw.get("topk_method") == "noaux_tc",
                        scoring=str(scoring))
    mla = MlaConfig(kv_lora_rank=_int(raw, "kv_lora_rank", source),
                    q_lora_rank=_int(raw, "q_lora_rank", source, 0, minimum=0) if raw.get("q_lora_rank") else 0,
                    qk_nope_head_dim=_int(raw, "qk_nope_head_dim", source),
                    qk_rope_head_dim=_int(raw, "qk_rope_head_dim", source), v_head_dim=_int(raw, "v_head_dim", source))
    kinds = tuple(LayerKind(mixer="mla", ffn="moe" if moe and i >= first_dense and i % freq == 0 else "dense")
                  for i in range(layers))
    return {"family": raw.get("model_type", "deepseek_v3"), "moe": moe, "mla": mla, "layer_kinds": kinds,
            "mtp_layers": _int(raw, "num_nextn_predict_layers", source, 0, minimum=0)}


def _gpt_oss(raw, source, layers):
    types = raw.get("layer_types")
    window = _int(raw, "sliding_window", source)
    if not isinstance(types, list) or len(types) != layers:
        # transformers' default for gpt-oss: even layers sliding, odd layers full.
        types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
    bad = [t for t in types if t not in ("sliding_attention", "full_attention")]
    if bad:
        raise InputError(source, "layer_types", f"unknown layer type {bad[0]!r}")
    top_k = raw.get("num_experts_per_tok", raw.get("experts_per_token"))
    moe = MoeConfig(num_experts=_int(raw, "num_local_experts", source), top_k=_int({"k": top_k}, "k", source),
                    expert_intermediate=_int(raw, "intermediate_size", source), expert_bias=True, router_bias=True)
    kinds = tuple(LayerKind(window=window if t == "sliding_attention" else 0, ffn="moe") for t in types)
    return {"family": "gpt_oss", "moe": moe, "layer_kinds": kinds, "attention_bias": True, "o_bias": True,
            "attention_sinks": True, "activation": "swiglu_clamp"}


def _llama4(raw, source, layers):
    step = _int(raw, "interleave_moe_layer_step", source, 1)
    moe_layers = raw.get("moe_layers")
    if moe_layers is None:
        moe_layers = list(range(step - 1, layers, step))
    if not isinstance(moe_layers, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in moe_layers):
        raise InputError(source, "moe_layers", f"must be a list of layer indices, got {moe_layers!r}")
    chunk = _int(raw, "attention_chunk_size", source, 8192)
    no_rope = raw.get("no_rope_layers")
    if not no_rope:  # transformers' default: every fourth layer uses no RoPE (and attends globally)
        no_rope = [int((i + 1) % 4 != 0) for i in range(layers)]
    if not isinstance(no_rope, list) or len(no_rope) != layers or not all(v in (0, 1) for v in no_rope):
        raise InputError(source, "no_rope_layers", f"must list 0/1 for each of the {layers} layers")
    width = _int(raw, "intermediate_size", source)
    dense_width = _int(raw, "intermediate_size_mlp", source, width)
    moe = MoeConfig(num_experts=_int(raw, "num_local_experts", source), top_k=_int(raw, "num_experts_per_tok", source),
                    expert_intermediate=width, shared_intermediate=width)
    kinds = tuple(LayerKind(chunk=chunk if no_rope[i] else 0, rope=bool(no_rope[i]),
                            ffn="moe" if i in moe_layers else "dense", ffn_intermediate=dense_width)
                  for i in range(layers))
    return {"family": "llama4", "moe": moe, "layer_kinds": kinds, "dense_intermediate": dense_width,
            "qk_norm": False}  # Llama 4's QK norm is a weightless L2 norm, counted with the attention


def _gemma3(raw, source, layers):
    window = _int(raw, "sliding_window", source, 4096)
    pattern = _int(raw, "sliding_window_pattern", source, 6)
    types = raw.get("layer_types")
    if isinstance(types, list) and len(types) == layers:
        if not all(t in ("sliding_attention", "full_attention") for t in types):
            raise InputError(source, "layer_types", "must list sliding_attention or full_attention per layer")
        sliding = [t == "sliding_attention" for t in types]
    else:  # transformers' Gemma 3: every `pattern`-th layer is global, the rest slide
        sliding = [(i + 1) % pattern != 0 for i in range(layers)]
    act = raw.get("hidden_activation", "gelu_pytorch_tanh")
    if act not in ("gelu_pytorch_tanh", "gelu"):
        raise InputError(source, "hidden_activation", f"Gemma 3 uses a GELU-gated MLP, got {act!r}")
    kinds = tuple(LayerKind(window=window if s else 0) for s in sliding)
    return {"family": "gemma3", "layer_kinds": kinds, "qk_norm": True, "norms_per_layer": 4, "activation": "geglu"}


def _nemotron_h(raw, source, layers):
    pattern = raw.get("hybrid_override_pattern")
    if not isinstance(pattern, str) or len(pattern) != layers:
        raise InputError(source, "hybrid_override_pattern", f"must be a string of {layers} layer codes (M, *, -)")
    table = {"M": LayerKind(mixer="mamba", ffn="none"), "*": LayerKind(ffn="none"), "-": LayerKind(mixer="none")}
    bad = sorted(set(pattern) - set(table))
    if bad:
        raise InputError(source, "hybrid_override_pattern", f"unknown layer code {bad[0]!r} (known: M, *, -)")
    act = raw.get("mlp_hidden_act", "relu2")
    if act != "relu2":
        raise InputError(source, "mlp_hidden_act", f"Nemotron-H's MLP is relu2, got {act!r}")
    ssm = SsmConfig(num_heads=_int(raw, "mamba_num_heads", source), head_dim=_int(raw, "mamba_head_dim", source),
                    state_size=_int(raw, "ssm_state_size", source), n_groups=_int(raw, "n_groups", source, 1),
                    conv_kernel=_int(raw, "conv_kernel", source, 4),
                    conv_bias=_bool(raw, "use_conv_bias", source, True),
                    proj_bias=_bool(raw, "mamba_proj_bias", source, False))
    return {"family": "nemotron_h", "ssm": ssm, "layer_kinds": tuple(table[c] for c in pattern),
            "norms_per_layer": 1, "activation": "relu2"}


# model_type -> (reader, HF defaults for keys such configs may omit)
FAMILIES: dict[str, tuple[Callable, dict[str, Any]]] = {
    "llama": (_llama, {}),
    "mistral": (_llama, {}),
    "qwen2": (_qwen2, {}),
    "qwen3": (_qwen3, {}),
    "qwen3_moe": (_qwen3_moe, {}),
    "mixtral": (_mixtral, {}),
    "deepseek_v3": (_deepseek, {}),
    "deepseek_v2": (_deepseek, {}),
    "gpt_oss": (_gpt_oss, {}),
    "llama4": (_llama4, {}),
    "llama4_text": (_llama4, {}),
    # transformers' Gemma3TextConfig defaults (the published 27B config relies on several of them)
    "gemma3": (_gemma3, {"vocab_size": 262208, "max_position_embeddings": 131072, "tie_word_embeddings": True,
                         "hidden_act": "gelu_pytorch_tanh"}),
    "gemma3_text": (_gemma3, {"vocab_size": 262208, "max_position_embeddings": 131072, "tie_word_embeddings": True,
                              "hidden_act": "gelu_pytorch_tanh"}),
    "nemotron_h": (_nemotron_h, {}),
}

# Keys each family's reader consumes (they are not "unmodelled" for that family).
FAMILY_KEYS: dict[str, frozenset[str]] = {
    "qwen2": frozenset({"sliding_window"}),  # only used with use_sliding_window, checked separately
    "qwen3_moe": frozenset({"num_experts", "num_experts_per_tok"}),
    "mixtral": frozenset({"num_local_experts", "num_experts_per_tok", "sliding_window"}),
    "deepseek_v3": frozenset({"n_routed_experts", "num_experts_per_tok", "kv_lora_rank", "q_lora_rank",
                              "num_nextn_predict_layers"}),
    "deepseek_v2": frozenset({"n_routed_experts", "num_experts_per_tok", "kv_lora_rank", "q_lora_rank",
                              "num_nextn_predict_layers"}),
    "gpt_oss": frozenset({"num_local_experts", "num_experts_per_tok", "sliding_window", "attention_bias"}),
    "llama4": frozenset({"num_local_experts", "num_experts_per_tok", "attention_chunk_size"}),
    "llama4_text": frozenset({"num_local_experts", "num_experts_per_tok", "attention_chunk_size"}),
    "gemma3": frozenset({"sliding_window"}),
    "gemma3_text": frozenset({"sliding_window"}),
    "nemotron_h": frozenset({"ssm_state_size", "sliding_window", "mlp_bias"}),
}


def family_fields(model_type: str, raw: dict[str, Any], source: str, layers: int) -> dict[str, Any]:
    """ModelConfig fields particular to this family (InputError for a bad key)."""
    reader, _ = FAMILIES[model_type]
    return reader(raw, source, layers)
