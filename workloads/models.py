"""Model configs: decoder-only transformers (dense, mixture-of-experts, MLA, sliding-window, hybrid Mamba)
loaded from Hugging Face `config.json` files.

Built-in configs live in `workloads/configs/NAME.json`; a path to any config.json (or to the folder that
holds it) works too. The JSON is read directly, never through `transformers`, and checked key by key so a
bad file gets one InputError naming the file and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .architecture import DENSE_LAYER, LayerKind, MlaConfig, MoeConfig, SsmConfig
from .dtypes import dtype_bytes
from .errors import InputError, did_you_mean
from .families import FAMILIES, FAMILY_KEYS, family_fields, text_config

__all__ = ["ModelConfig", "LayerKind", "MoeConfig", "MlaConfig", "SsmConfig", "load_model", "read_model_config", "model_config_path", "builtin_models", "parse_config"]

CONFIG_DIR = Path(__file__).with_name("configs")
MAX_LAYERS = 4096
REQUIRED_INT_KEYS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "vocab_size",
    "max_position_embeddings",
)


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder-only model. Counts, not bytes.

    The shared fields describe a Llama-style layer; `layer_kinds` (one LayerKind per layer; empty: every layer
    is GQA attention + a dense MLP) and the optional `moe`, `mla` and `ssm` records describe what differs.
    Hashable, so per-model constants can be cached with it as the key.
    """

    name: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int
    rope_theta: float
    source: str
    rope_type: str = "default"
    rope_scaling_factor: float = 1.0
    context_tokens: int = 0  # longest prompt + output the model serves (0: max_position_embeddings)
    family: str = "llama"
    layer_kinds: tuple[LayerKind, ...] = ()
    moe: MoeConfig | None = None
    mla: MlaConfig | None = None
    ssm: SsmConfig | None = None
    activation: str = "swiglu"
    attention_bias: bool = False  # Q, K, V projections carry biases
    o_bias: bool = False  # the output projection carries a bias
    qk_norm: bool = False  # RMSNorm over each head's Q and K (weights of head_dim each)
    attention_sinks: bool = False  # a learned sink logit per head (gpt-oss)
    norms_per_layer: int = 2
    mtp_layers: int = 0  # multi-token-prediction modules (DeepSeek-V3), not part of the main model
    dense_intermediate: int = 0  # width of dense-ffn layers where it differs from intermediate_size

    @property
    def max_context_tokens(self) -> int:
        """The model's context window in tokens (prompt plus output)."""
        return self.context_tokens or self.max_position_embeddings

    @property
    def layers(self) -> tuple[LayerKind, ...]:
        """One LayerKind per decoder layer."""
        return self.layer_kinds or (DENSE_LAYER,) * self.num_hidden_layers

    @property
    def is_dense_llama(self) -> bool:
        """Every layer GQA attention + a SwiGLU MLP, no biases or extra norms (the original graph)."""
        return (not self.layer_kinds or all(k == DENSE_LAYER for k in self.layer_kinds)) and self.moe is None \
            and self.mla is None and self.ssm is None and self.activation == "swiglu" and not self.attention_bias \
            and not self.o_bias and not self.qk_norm and not self.attention_sinks and self.norms_per_layer == 2

    @property
    def gated(self) -> bool:
        """Whether the MLP has a gate matmul (SwiGLU/GeGLU) or not (relu2)."""
        return self.activation != "relu2"

    @property
    def q_size(self) -> int:
        """Width of the query projection (all heads)."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of the key (or value) projection (all KV heads)."""
        return self.num_key_value_heads * self.head_dim

    def ffn_width(self, kind: LayerKind) -> int:
        """Intermediate width of a dense ffn of this layer kind."""
        return kind.ffn_intermediate or self.dense_intermediate or self.intermediate_size

    # --- parameters per part of a layer --------------------------------------------------------------
    def mixer_params(self, kind: LayerKind) -> int:
        """Weights of a layer's mixer: attention (projections, biases, QK norms, sinks), MLA or Mamba-2."""
        h = self.hidden_size
        if kind.mixer == "attention":
            params = h * (self.q_size + 2 * self.kv_size) + self.q_size * h
            params += (self.q_size + 2 * self.kv_size) if self.attention_bias else 0
            params += h if self.o_bias else 0
            params += 2 * self.head_dim if self.qk_norm else 0
            params += self.num_attention_heads if self.attention_sinks else 0
            return params
        if kind.mixer == "mla":
            return self.mla.params(h, self.num_attention_heads)
        if kind.mixer == "mamba":
            return self.ssm.params(h)
        return 0

    def ffn_params(self, kind: LayerKind, active: bool = False) -> int:
        """Weights of a layer's feed-forward block; `active`: only the top-k routed experts of an MoE block."""
        h = self.hidden_size
        if kind.ffn == "dense":
            return (3 if self.gated else 2) * h * self.ffn_width(kind)
        if kind.ffn == "moe":
            experts = self.moe.top_k if active else self.moe.num_experts
            return self.moe.block_params(h, experts, self.gated)
        return 0

    def layer_params(self, kind: LayerKind, active: bool = False) -> int:
        """One layer: mixer, feed-forward block and its norms."""
        return self.mixer_params(kind) + self.ffn_params(kind, active) + self.norms_per_layer * self.hidden_size

    def layer_matmul_param_count(self) -> int:
        """Weights of one dense Llama layer's matmuls: Q, K, V, O projections and gate, up, down of the MLP."""
        h = self.hidden_size
        attention = h * (self.q_size + 2 * self.kv_size) + self.q_size * h
        return attention + 3 * h * self.intermediate_size

    def layer_param_count(self) -> int:
        """Parameters of one dense Llama decoder layer: matmuls plus the two RMSNorm weight vectors."""
        return self.layer_matmul_param_count() + 2 * self.hidden_size

    def embedding_param_count(self) -> int:
        """Token-embedding table (vocab x hidden)."""
        return self.vocab_size * self.hidden_size

    def lm_head_param_count(self) -> int:
        """Stored LM-head weights: zero when tied to the embedding table (the matmul still runs)."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def param_count(self, active: bool = False) -> int:
        """All parameters of the main model: embedding, layers, final norm and (untied) LM head; `active`:
        with each MoE block's top-k routed experts only (what one token's forward pass reads). Multi-token-
        prediction modules are excluded (`mtp_param_count`)."""
        layers = sum(self.layer_params(k, active) for k in self.layers)
        return self.embedding_param_count() + layers + self.hidden_size + self.lm_head_param_count()

    def mtp_param_count(self) -> int:
        """DeepSeek-V3 multi-token-prediction modules: each one MoE layer, two norms and a 2h -> h projection
        (sharing the embedding and LM head with the main model)."""
        if not self.mtp_layers:
            return 0
        kind = LayerKind(mixer="mla" if self.mla else "attention", ffn="moe" if self.moe else "dense")
        h = self.hidden_size
        return self.mtp_layers * (self.layer_params(kind) + 2 * h * h + 3 * h)

    def kv_bytes_per_token(self, kv_dtype: str) -> float:
        """KV cache of one token over all layers of the whole model (not per chip), every layer counted (a
        sliding or chunked layer holds at most its span of tokens: see `kv_bytes_per_token_unbounded`)."""
        return self.kv_elements_per_token(bounded=True) * dtype_bytes(kv_dtype, "kv_dtype")

    def kv_bytes_per_token_unbounded(self, kv_dtype: str) -> float:
        """KV bytes per token of the layers that cache the whole context (the growth rate at long context)."""
        return self.kv_elements_per_token(bounded=False) * dtype_bytes(kv_dtype, "kv_dtype")

    def kv_elements_per_token(self, bounded: bool = True) -> int:
        """Cached values per token: 2 x KV heads x head_dim per attention layer, the latent + RoPE key per MLA
        layer; layers with a window or chunk included only with `bounded`."""
        total = 0
        for kind in self.layers:
            if kind.kv_span and not bounded:
                continue
            if kind.mixer == "attention":
                total += 2 * self.kv_size
            elif kind.mixer == "mla":
                total += self.mla.cache_width
        return total

    def state_bytes_per_sequence(self, state_dtype: str = "bf16") -> float:
        """Recurrent state one sequence holds whatever its length (Mamba-2 layers), whole model."""
        if self.ssm is None:
            return 0.0
        layers = sum(1 for k in self.layers if k.mixer == "mamba")
        return float(layers * self.ssm.state_elements()) * dtype_bytes(state_dtype, "kv_dtype")


def builtin_models() -> list[str]:
    """Names of the configs shipped in `workloads/configs/`."""
    return list(_builtin_models())


@lru_cache(maxsize=1)
def _builtin_models() -> tuple[str, ...]:
    """The shipped configs, listed once per process (a sweep resolves a model name per point)."""
    return tuple(sorted(p.stem for p in CONFIG_DIR.glob("*.json")))


def model_config_path(name_or_path: str | Path) -> Path:
    """The config.json behind a built-in name, a file path or a folder holding config.json."""
    text = str(name_or_path)
    if text in builtin_models():
        return CONFIG_DIR / f"{text}.json"
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise InputError(text, "model", f"no such config file and not a built-in model"
                                        f"{did_you_mean(text, builtin_models())} (built-ins: {', '.join(builtin_models())})")
    return path


def read_model_config(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """(raw config dict, source path) before validation, for checks that need keys a ModelConfig drops."""
    path = model_config_path(name_or_path)
    return _read_json(path), str(path)


def load_model(name_or_path: str | Path) -> ModelConfig:
    """Load a built-in model by name, or a user's HF config.json (file, or folder holding config.json)."""
    text = str(name_or_path)
    if text in builtin_models():
        return _load_builtin(text)
    path = model_config_path(name_or_path)
    name = path.parent.name if path.stem == "config" else path.stem
    return parse_config(_read_json(path), source=str(path), name=name or path.stem)


@lru_cache(maxsize=None)
def _load_builtin(name: str) -> ModelConfig:
    path = CONFIG_DIR / f"{name}.json"
    return parse_config(_read_json(path), source=str(path), name=name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(str(path), "file", f"cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise InputError(str(path), "json", f"not valid JSON: {err.msg} at line {err.lineno}") from None
    if not isinstance(raw, dict):
        raise InputError(str(path), "json", "top level must be an object of config keys")
    return raw


def _positive_int(raw: dict[str, Any], key: str, source: str) -> int:
    if key not in raw:
        raise InputError(source, key, "missing")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(source, key, f"must be an integer, got {value!r}")
    if value <= 0:
        raise InputError(source, key, f"must be positive, got {value}")
    return value


def _model_type(raw: dict[str, Any], source: str) -> str:
    """The family reader's key: `model_type`, else inferred from a Llama architecture name; InputError for a
    family without a reader."""
    archs = raw.get("architectures")
    if archs is not None and not isinstance(archs, list):
        raise InputError(source, "architectures", f"must be a list, got {archs!r}")
    if isinstance(archs, list) and len(archs) > 1:
        raise InputError(source, "architectures", f"several architectures {archs!r}; give a config of one")
    model_type = raw.get("model_type")
    if model_type is not None and not isinstance(model_type, str):
        raise InputError(source, "model_type", f"must be a string, got {model_type!r}")
    if model_type is None:
        if archs and archs[0] not in ("LlamaForCausalLM", "MistralForCausalLM"):
            raise InputError(source, "model_type", f"missing, and architecture {archs[0]!r} is not Llama-like")
        model_type = "llama"
    if model_type not in FAMILIES:
        raise InputError(source, "model_type", f"{model_type!r} has no reader; supported: {', '.join(sorted(FAMILIES))}")
    if model_type in ("llama", "mistral", "qwen2", "qwen3", "qwen3_moe", "mixtral", "deepseek_v3", "deepseek_v2",
                      "llama4", "llama4_text", "gpt_oss"):
        act = raw.get("hidden_act", "silu")
        if act != "silu":
            raise InputError(source, "hidden_act", f"{model_type} uses a SiLU-gated MLP, got {act!r}")
    return model_type


# Config keys that change the model's arithmetic in ways a family's reader does not model: a config that sets
# them is refused naming the key, never priced as something else. (key, harmless value, what it means)
_UNMODELLED = (
    ("num_local_experts", 1, "mixture-of-experts layers"), ("n_routed_experts", 1, "mixture-of-experts layers"),
    ("num_experts", 1, "mixture-of-experts layers"), ("moe_num_experts", 1, "mixture-of-experts layers"),
    ("num_experts_per_tok", None, "mixture-of-experts routing"),
    ("sliding_window", None, "sliding-window attention"), ("attention_chunk_size", None, "chunked attention"),
    ("attention_bias", False, "QKV/O projection biases"), ("qkv_bias", False, "QKV projection biases"),
    ("mlp_bias", False, "MLP biases"), ("kv_lora_rank", None, "multi-head latent attention (MLA)"),
    ("q_lora_rank", None, "multi-head latent attention (MLA)"), ("ssm_state_size", None, "state-space layers"),
    ("mamba_d_state", None, "state-space layers"), ("num_nextn_predict_layers", 0, "multi-token prediction layers"),
)


def _check_unmodelled(raw: dict[str, Any], source: str, model_type: str) -> None:
    consumed = FAMILY_KEYS.get(model_type, frozenset())
    if raw.get("use_sliding_window") is False:  # Qwen2-style configs carry a window they do not use
        raw = {k: v for k, v in raw.items() if k != "sliding_window"}
    elif raw.get("use_sliding_window") is True:
        raise InputError(source, "use_sliding_window", "Qwen2-style per-layer sliding windows are not modelled")
    for key, harmless, what in _UNMODELLED:
        value = raw.get(key)
        if key in consumed or value is None or value == harmless or (
                isinstance(harmless, int) and not isinstance(harmless, bool) and isinstance(value, int)
                and value <= harmless):
            continue
        raise InputError(source, key, f"{key} = {value!r} means {what}, which the {model_type} reader does not "
                                      f"model; the model would be priced wrongly")


def _context_tokens(raw: dict[str, Any], max_positions: int, rope_type: str, factor: float) -> int:
    """The context window: max_position_embeddings, or the trained length x the RoPE scaling factor for scaling
    types whose configs keep the trained length there (linear, dynamic, yarn, longrope; llama3-type configs
    already state the extended window)."""
    if rope_type in ("linear", "dynamic", "yarn", "longrope") and factor > 1.0:
        original = raw.get("rope_scaling", {}).get("original_max_position_embeddings", max_positions)
        if isinstance(original, int) and not isinstance(original, bool) and original > 0:
            return max(max_positions, int(original * factor))
    return max_positions


def _rope(raw: dict[str, Any], source: str) -> tuple[float, str, float]:
    theta = raw.get("rope_theta", 10000.0)
    if isinstance(theta, bool) or not isinstance(theta, int | float) or not math.isfinite(theta) or theta <= 0:
        raise InputError(source, "rope_theta", f"must be a positive number, got {theta!r}")
    scaling = raw.get("rope_scaling")
    if scaling is None:
        return float(theta), "default", 1.0
    if not isinstance(scaling, dict):
        raise InputError(source, "rope_scaling", f"must be an object or null, got {scaling!r}")
    rope_type = scaling.get("rope_type", scaling.get("type", "default"))
    factor = scaling.get("factor", 1.0)
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor > 0 or not math.isfinite(factor):
        raise InputError(source, "rope_scaling.factor", f"must be a finite positive number, got {factor!r}")
    return float(theta), str(rope_type), float(factor)


def parse_config(raw: dict[str, Any], source: str, name: str) -> ModelConfig:
    """Validate a parsed HF config dict into a ModelConfig; `source` names the file in errors."""
    raw = text_config(raw)
    model_type = _model_type(raw, source)
    raw = {**FAMILIES[model_type][1], **raw}
    _check_unmodelled(raw, source, model_type)
    ints = {key: _positive_int(raw, key, source) for key in REQUIRED_INT_KEYS}
    if ints["num_hidden_layers"] > MAX_LAYERS:
        raise InputError(source, "num_hidden_layers", f"{ints['num_hidden_layers']} layers is over the "
                                                      f"{MAX_LAYERS} this tool plans for (the largest models have ~200)")
    heads = ints["num_attention_heads"]
    kv_heads = _positive_int(raw, "num_key_value_heads", source) if "num_key_value_heads" in raw else heads
    if heads % kv_heads:
        raise InputError(source, "num_key_value_heads", f"{kv_heads} does not divide num_attention_heads={heads}")
    head_key = "attention_head_dim" if raw.get("attention_head_dim") is not None else "head_dim"
    if raw.get(head_key) is not None:
        head_dim = _positive_int(raw, head_key, source)
    elif ints["hidden_size"] % heads:
        raise InputError(source, "num_attention_heads", f"{heads} does not divide hidden_size and no head_dim given")
    else:
        head_dim = ints["hidden_size"] // heads
    tie = raw.get("tie_word_embeddings", False)
    if not isinstance(tie, bool):
        raise InputError(source, "tie_word_embeddings", f"must be true or false, got {tie!r}")
    theta, rope_type, factor = _rope(raw, source)
    extra = family_fields(model_type, raw, source, ints["num_hidden_layers"])
    return ModelConfig(
        name=name,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        tie_word_embeddings=tie,
        rope_theta=theta,
        source=source,
        rope_type=rope_type,
        rope_scaling_factor=factor,
        # Gemma 3's config states its extended window in max_position_embeddings beside a linear factor
        context_tokens=ints["max_position_embeddings"] if model_type.startswith("gemma3")
        else _context_tokens(raw, ints["max_position_embeddings"], rope_type, factor),
        **ints,
        **extra,
    )
