"""Model configs: published parameter counts, loading user files, and one InputError per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asicsim.workloads.errors import InputError
from asicsim.workloads.models import ModelConfig, builtin_models, load_model, parse_config

# Published parameter counts (total, embeddings and LM head included):
# - Llama-2-70B: 68.98e9, safetensors total on https://huggingface.co/meta-llama/Llama-2-70b-hf
# - Llama-3-70B: 70.55e9, https://huggingface.co/meta-llama/Meta-Llama-3-70B
# - Llama-3.1-8B: 8.03e9, https://huggingface.co/meta-llama/Llama-3.1-8B
# - Llama-3.1-70B: 70.55e9, https://huggingface.co/meta-llama/Llama-3.1-70B
# - Llama-3.1-405B: 405.85e9, https://huggingface.co/meta-llama/Llama-3.1-405B
PUBLISHED_PARAMS = {
    "llama-2-70b": 68.98e9,
    "llama-3-70b": 70.55e9,
    "llama-3.1-8b": 8.03e9,
    "llama-3.1-70b": 70.55e9,
    "llama-3.1-405b": 405.85e9,
}

LLAMA_TINY = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 688,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 2048,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
}


def write_config(folder: Path, raw: object, name: str = "config.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_param_count_matches_model_card(name: str) -> None:
    assert load_model(name).param_count() == pytest.approx(PUBLISHED_PARAMS[name], rel=0.01)


def test_builtin_models_lists_shipped_configs() -> None:
    assert set(PUBLISHED_PARAMS) <= set(builtin_models())


def test_builtin_is_llama_gqa_shape() -> None:
    model = load_model("llama-3.1-405b")
    assert (model.hidden_size, model.num_hidden_layers, model.num_attention_heads) == (16384, 126, 128)
    assert (model.num_key_value_heads, model.head_dim, model.rope_type) == (8, 128, "llama3")
    assert load_model("llama-2-70b").rope_type == "default"


def test_param_count_is_sum_of_parts() -> None:
    m = load_model("llama-3.1-8b")
    parts = m.embedding_param_count() + m.num_hidden_layers * m.layer_param_count() + m.hidden_size
    assert m.param_count() == parts + m.lm_head_param_count()
    assert m.lm_head_param_count() == m.embedding_param_count()


def test_kv_bytes_per_token_counts_k_and_v_of_all_layers() -> None:
    m = load_model("llama-3.1-70b")
    per_layer_elements = 2 * m.num_key_value_heads * m.head_dim
    assert m.kv_bytes_per_token("bf16") == per_layer_elements * m.num_hidden_layers * 2
    assert m.kv_bytes_per_token("fp8") == m.kv_bytes_per_token("bf16") / 2


def test_kv_bytes_unknown_dtype_is_input_error() -> None:
    with pytest.raises(InputError):
        load_model("llama-3.1-8b").kv_bytes_per_token("int3")


def test_load_user_file_and_folder(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    path = write_config(folder, LLAMA_TINY)
    for target in (path, str(path), folder):
        model = load_model(target)
        assert model.name == "tiny-llama"
        assert model.source == str(path)
        assert model.head_dim == 32 and model.tie_word_embeddings
    # tied: the LM head shares the embedding table
    assert model.param_count() == 1000 * 256 + 4 * model.layer_param_count() + 256


def test_load_user_file_named_after_stem(tmp_path: Path) -> None:
    assert load_model(write_config(tmp_path, LLAMA_TINY, "mine.json")).name == "mine"


def test_optional_keys_take_hf_defaults(tmp_path: Path) -> None:
    raw = {k: v for k, v in LLAMA_TINY.items() if k not in ("num_key_value_heads", "rope_theta", "tie_word_embeddings")}
    model = load_model(write_config(tmp_path, raw))
    assert model.num_key_value_heads == 8
    assert model.rope_theta == 10000.0
    assert not model.tie_word_embeddings


def test_explicit_head_dim_wins(tmp_path: Path) -> None:
    model = load_model(write_config(tmp_path, {**LLAMA_TINY, "head_dim": 64}))
    assert model.head_dim == 64 and model.q_size == 512


def test_missing_file_names_the_argument(tmp_path: Path) -> None:
    target = str(tmp_path / "nope.json")
    with pytest.raises(InputError) as err:
        load_model(target)
    assert err.value.source == target and err.value.field == "model"


def test_unknown_builtin_name() -> None:
    with pytest.raises(InputError) as err:
        load_model("llama-9-9000b")
    assert "llama-3.1-70b" in err.value.problem


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_bad_json(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        load_model(path)
    assert err.value.source == str(path) and err.value.field == "json"


BAD_FIELDS = [
    ({"hidden_size": 0}, "hidden_size"),
    ({"intermediate_size": -5}, "intermediate_size"),
    ({"num_hidden_layers": 2.5}, "num_hidden_layers"),
    ({"vocab_size": "1000"}, "vocab_size"),
    ({"num_attention_heads": True}, "num_attention_heads"),
    ({"num_key_value_heads": 3}, "num_key_value_heads"),
    ({"num_key_value_heads": 0}, "num_key_value_heads"),
    ({"num_attention_heads": 6, "num_key_value_heads": 2}, "num_attention_heads"),
    ({"head_dim": -1}, "head_dim"),
    ({"architectures": ["GPT2LMHeadModel"], "model_type": None}, "model_type"),
    ({"architectures": "LlamaForCausalLM"}, "architectures"),
    ({"model_type": "gpt2"}, "model_type"),
    ({"hidden_act": "gelu"}, "hidden_act"),
    ({"tie_word_embeddings": "yes"}, "tie_word_embeddings"),
    ({"rope_theta": -1.0}, "rope_theta"),
    ({"rope_scaling": 8}, "rope_scaling"),
    ({"rope_scaling": {"rope_type": "linear", "factor": 0}}, "rope_scaling.factor"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS)
def test_bad_field_names_file_and_field(tmp_path: Path, change: dict, field: str) -> None:
    raw = {**LLAMA_TINY, **change}
    path = write_config(tmp_path, raw)
    with pytest.raises(InputError) as err:
        load_model(path)
    assert (err.value.source, err.value.field) == (str(path), field)


@pytest.mark.parametrize("key", ["hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size",
                                 "num_attention_heads", "max_position_embeddings"])
def test_missing_required_key(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, {k: v for k, v in LLAMA_TINY.items() if k != key})
    with pytest.raises(InputError) as err:
        load_model(path)
    assert (err.value.field, err.value.problem) == (key, "missing")


@given(
    kv_heads=st.integers(1, 16),
    group=st.integers(1, 8),
    head_dim=st.sampled_from([32, 64, 128, 256]),
    inter=st.integers(1, 100_000),
    layers=st.integers(1, 200),
    vocab=st.integers(1, 300_000),
    tie=st.booleans(),
)
def test_parse_roundtrip_and_count_identity(kv_heads, group, head_dim, inter, layers, vocab, tie) -> None:
    heads = kv_heads * group
    raw = {**LLAMA_TINY, "hidden_size": heads * head_dim, "num_attention_heads": heads,
           "num_key_value_heads": kv_heads, "intermediate_size": inter, "num_hidden_layers": layers,
           "vocab_size": vocab, "tie_word_embeddings": tie}
    m = parse_config(json.loads(json.dumps(raw)), source="mem", name="x")
    assert isinstance(m, ModelConfig) and m.head_dim == head_dim
    h = m.hidden_size
    layer = h * (h + 2 * kv_heads * head_dim) + h * h + 3 * h * inter + 2 * h
    assert m.layer_param_count() == layer
    assert m.param_count() == vocab * h * (1 if tie else 2) + layers * layer + h
    assert m.kv_bytes_per_token("fp8") == 2 * layers * kv_heads * head_dim
