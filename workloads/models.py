"""Model configs: Llama-family transformers loaded from Hugging Face `config.json` files.

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

from .dtypes import dtype_bytes
from .errors import InputError

__all__ = ["ModelConfig", "load_model", "read_model_config", "model_config_path", "builtin_models", "parse_config"]

CONFIG_DIR = Path(__file__).with_name("configs")
LLAMA_ARCHITECTURES = frozenset({"LlamaForCausalLM"})
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
    """Shape of a decoder-only transformer (Llama family). Counts, not bytes.

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

    @property
    def max_context_tokens(self) -> int:
        """The model's context window in tokens (prompt plus output)."""
        return self.context_tokens or self.max_position_embeddings

    @property
    def q_size(self) -> int:
        """Width of the query projection (all heads)."""
        return self.num_attention_heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of the key (or value) projection (all KV heads)."""
        return self.num_key_value_heads * self.head_dim

    def layer_matmul_param_count(self) -> int:
        """Weights of one layer's matmuls: Q, K, V, O projections and gate, up, down of the SwiGLU MLP."""
        h = self.hidden_size
        attention = h * (self.q_size + 2 * self.kv_size) + self.q_size * h
        return attention + 3 * h * self.intermediate_size

    def layer_param_count(self) -> int:
        """Parameters of one decoder layer: matmuls plus the two RMSNorm weight vectors."""
        return self.layer_matmul_param_count() + 2 * self.hidden_size

    def embedding_param_count(self) -> int:
        """Token-embedding table (vocab x hidden)."""
        return self.vocab_size * self.hidden_size

    def lm_head_param_count(self) -> int:
        """Stored LM-head weights: zero when tied to the embedding table (the matmul still runs)."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def param_count(self) -> int:
        """All parameters: embedding, layers, final norm and (untied) LM head."""
        return (
            self.embedding_param_count()
            + self.num_hidden_layers * self.layer_param_count()
            + self.hidden_size
            + self.lm_head_param_count()
        )

    def kv_bytes_per_token(self, kv_dtype: str) -> float:
        """K and V of one token over all layers of the whole model (not per chip)."""
        return 2.0 * self.num_hidden_layers * self.kv_size * dtype_bytes(kv_dtype, "kv_dtype")


def builtin_models() -> list[str]:
    """Names of the configs shipped in `workloads/configs/`."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def model_config_path(name_or_path: str | Path) -> Path:
    """The config.json behind a built-in name, a file path or a folder holding config.json."""
    text = str(name_or_path)
    if text in builtin_models():
        return CONFIG_DIR / f"{text}.json"
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise InputError(
            text, "model", f"no such config file and not a built-in model (built-ins: {', '.join(builtin_models())})"
        )
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


def _check_architecture(raw: dict[str, Any], source: str) -> None:
    archs = raw.get("architectures")
    if archs is not None:
        if not isinstance(archs, list) or not LLAMA_ARCHITECTURES.intersection(archs):
            raise InputError(source, "architectures", f"only Llama-family models are supported, got {archs!r}")
    model_type = raw.get("model_type")
    if model_type is not None and model_type != "llama":
        raise InputError(source, "model_type", f"only 'llama' is supported, got {model_type!r}")
    act = raw.get("hidden_act", "silu")
    if act != "silu":
        raise InputError(source, "hidden_act", f"Llama uses a SiLU-gated MLP, got {act!r}")


# Config keys that change the model's arithmetic in ways the dense Llama graph does not model yet: a config that
# sets them is refused naming the key, never run as a dense Llama. (key, value that is harmless, what it means)
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


def _check_unmodelled(raw: dict[str, Any], source: str) -> None:
    if raw.get("use_sliding_window") is False:  # Qwen2-style configs carry a window they do not use
        raw = {k: v for k, v in raw.items() if k != "sliding_window"}
    for key, harmless, what in _UNMODELLED:
        value = raw.get(key)
        if value is None or value == harmless or (isinstance(harmless, int) and not isinstance(harmless, bool)
                                                  and isinstance(value, int) and value <= harmless):
            continue
        raise InputError(source, key, f"{key} = {value!r} means {what}, which the Llama-family operator graph does "
                                      f"not model; the model would be priced wrongly as a dense Llama")
    archs = raw.get("architectures")
    if isinstance(archs, list) and len(archs) > 1:
        raise InputError(source, "architectures", f"several architectures {archs!r}; give a config of one")


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
    _check_architecture(raw, source)
    _check_unmodelled(raw, source)
    ints = {key: _positive_int(raw, key, source) for key in REQUIRED_INT_KEYS}
    heads = ints["num_attention_heads"]
    kv_heads = _positive_int(raw, "num_key_value_heads", source) if "num_key_value_heads" in raw else heads
    if heads % kv_heads:
        raise InputError(source, "num_key_value_heads", f"{kv_heads} does not divide num_attention_heads={heads}")
    if raw.get("head_dim") is not None:
        head_dim = _positive_int(raw, "head_dim", source)
    elif ints["hidden_size"] % heads:
        raise InputError(source, "num_attention_heads", f"{heads} does not divide hidden_size and no head_dim given")
    else:
        head_dim = ints["hidden_size"] // heads
    tie = raw.get("tie_word_embeddings", False)
    if not isinstance(tie, bool):
        raise InputError(source, "tie_word_embeddings", f"must be true or false, got {tie!r}")
    theta, rope_type, factor = _rope(raw, source)
    return ModelConfig(
        name=name,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        tie_word_embeddings=tie,
        rope_theta=theta,
        source=source,
        rope_type=rope_type,
        rope_scaling_factor=factor,
        context_tokens=_context_tokens(raw, ints["max_position_embeddings"], rope_type, factor),
        **ints,
    )
