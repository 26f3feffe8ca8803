"""`asicsim models`: the built-in model configs with their parameter counts, KV cache and state sizes, layer
kinds, and the model card's figures beside ours (workloads/configs/MODEL_CARDS.toml)."""

from __future__ import annotations

import math
import tomllib

from asicsim.workloads.errors import InputError
from asicsim.workloads.models import CONFIG_DIR, ModelConfig, builtin_models, load_model

from ._common import add_output_flags, output_format, print_rows

__all__ = ["register", "run", "model_row", "load_cards", "CARD_BASIS"]

CARDS_PATH = CONFIG_DIR / "MODEL_CARDS.toml"
KV_DTYPE = "bf16"

# Where a card counts differently from `ModelConfig.param_count`, what to compare it with (MODEL_CARDS.toml notes):
# "no_embedding": the card's active count leaves out the embedding table (a token reads one row of it);
# "card_includes_vision": the card's total includes a vision encoder the text model does not have;
# "size_name": the card's figure is a size name, not a count.
CARD_BASIS = {
    "gpt-oss-120b": {"active": "no_embedding"},
    "gpt-oss-20b": {"active": "no_embedding"},
    "llama-4-scout": {"total": "card_includes_vision"},
    "gemma-3-27b": {"total": "size_name", "active": "size_name"},
}
_BASIS_NOTES = {
    "no_embedding": "ours without the embedding table, as the card counts active parameters",
    "card_includes_vision": "the card's total includes the vision encoder; ours is the text model only",
    "size_name": "the card's figure is the model's size name, not a parameter count",
}


def register(sub) -> None:
    p = sub.add_parser("models", help="list built-in model configs with parameter counts checked against model cards",
                       description="Parameters (total and active per token), KV cache per token and recurrent state "
                                   "per sequence of each model, beside the model card's counts.")
    p.add_argument("model", nargs="*", help="built-in names or paths to a config.json (default: every built-in)")
    add_output_flags(p, "print JSON: one object per model")
    p.set_defaults(func=run)


def load_cards() -> dict[str, dict]:
    """MODEL_CARDS.toml as {built-in name: card table}; {} when the file is not installed."""
    try:
        text = CARDS_PATH.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(str(CARDS_PATH), "file", f"cannot read: {err}") from None
    try:
        cards = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(str(CARDS_PATH), "toml", f"not valid TOML: {err}") from None
    return {name: card for name, card in cards.items() if isinstance(card, dict)}


def _number(card: dict, key: str) -> float | None:
    value = card.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _layer_summary(model: ModelConfig) -> list[dict]:
    """Runs of layer kinds in order of first appearance: [{"kind": label, "layers": count}, ...]."""
    counts: dict[str, int] = {}
    for kind in model.layers:
        counts[kind.label] = counts.get(kind.label, 0) + 1
    return [{"kind": label, "layers": n} for label, n in counts.items()]


def model_row(model: ModelConfig, card: dict | None = None) -> dict:
    """One model's figures (JSON-ready); card fields where MODEL_CARDS.toml has the model."""
    total, active = model.param_count(), model.param_count(active=True)
    kv = model.kv_bytes_per_token(KV_DTYPE)
    kv_growth = model.kv_bytes_per_token_unbounded(KV_DTYPE)
    row = {
        "name": model.name,
        "family": model.family,
        "params_total_b": total / 1e9,
        "params_active_b": active / 1e9,
        "params_total": total,
        "params_active": active,
        "params_mtp_b": model.mtp_param_count() / 1e9,
        "embedding_params_b": model.embedding_param_count() / 1e9,
        "kv_dtype": KV_DTYPE,
        "kv_bytes_per_token": kv,
        "kv_bytes_per_token_past_window": kv_growth,
        "state_bytes_per_sequence": model.state_bytes_per_sequence(KV_DTYPE),
        "layers": model.num_hidden_layers,
        "layer_kinds": _layer_summary(model),
        "experts": model.moe.num_experts if model.moe else 0,
        "experts_per_token": model.moe.top_k if model.moe else 0,
        "max_context_tokens": model.max_context_tokens,
    }
    if card is None:
        return row
    basis = CARD_BASIS.get(model.name, {})
    ours = {"total": total, "active": active}
    if basis.get("active") == "no_embedding":
        ours["active"] = active - model.embedding_param_count()
    notes = []
    for part in ("total", "active"):
        figure = _number(card, f"params_{part}_b")
        row[f"card_params_{part}_b"] = figure
        row[f"params_{part}_compared_b"] = ours[part] / 1e9
        row[f"params_{part}_rel_diff"] = ours[part] / (figure * 1e9) - 1.0 if figure else None
        if part in basis:
            note = _BASIS_NOTES[basis[part]]
            row[f"params_{part}_basis"] = note
            if note not in notes:
                notes.append(note)
    non_embedding = _number(card, "params_non_embedding_b")
    if non_embedding is not None:
        row["card_params_non_embedding_b"] = non_embedding
    st_bytes = _number(card, "safetensors_total_bytes")
    if st_bytes is not None:
        row["card_safetensors_total_bytes"] = int(st_bytes)
    row["card_url"] = card.get("card_url")
    row["card_quote"] = card.get("card_quote")
    row["card_checked"] = bool(card.get("checked", False))
    row["card_notes"] = notes
    return row


def _models(names: list[str]) -> list[tuple[str, ModelConfig]]:
    if not names:
        return [(name, load_model(name)) for name in builtin_models()]
    return [(name, load_model(name)) for name in names]


def _fmt(value: float | None, fmt: str, empty: str = "-") -> str:
    return empty if value is None else format(value, fmt)


def run(args) -> int:
    cards = load_cards()
    rows = [model_row(model, cards.get(name) if name in builtin_models() else None)
            for name, model in _models(list(args.model))]
    fmt = output_format(args)
    if fmt != "table":
        print_rows(rows, fmt)
        return 0
    headers = ("model", "total (B)", "card (B)", "diff", "active (B)", "card (B)", "diff",
               "KV (B/tok)", "KV past window (B/tok)", "state (MB/seq)", "layer kinds")
    table = []
    footnotes: list[str] = []
    for r in rows:
        cells = [r["name"]]
        for part in ("total", "active"):
            mark = ""
            if r.get(f"params_{part}_basis"):
                note = r[f"params_{part}_basis"]
                if note not in footnotes:
                    footnotes.append(note)
                mark = "*" * (footnotes.index(note) + 1)
            cells += [_fmt(r.get(f"params_{part}_compared_b", r[f"params_{part}_b"]), ".2f") + mark,
                      _fmt(r.get(f"card_params_{part}_b"), "g"),
                      _fmt(None if r.get(f"params_{part}_rel_diff") is None else 100 * r[f"params_{part}_rel_diff"],
                           "+.1f") + ("%" if r.get(f"params_{part}_rel_diff") is not None else "")]
        past = r["kv_bytes_per_token_past_window"]
        cells += [f"{r['kv_bytes_per_token']:,.0f}", f"{past:,.0f}" if past != r["kv_bytes_per_token"] else "same",
                  f"{r['state_bytes_per_sequence'] / 1e6:,.1f}" if r["state_bytes_per_sequence"] else "-",
                  ", ".join(f"{k['layers']} {k['kind']}" for k in r["layer_kinds"])]
        table.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in table)) if table else len(h) for i, h in enumerate(headers)]
    left = {0, len(headers) - 1}

    def line(cells) -> str:
        padded = (c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    print(line(headers))
    print("-" * len(line(headers)))
    for cells in table:
        print(line(cells))
    print()
    print(f"Parameters in billions (MTP modules excluded); KV in {KV_DTYPE}, whole model; 'KV past window': the "
          "growth per token once sliding/chunked layers are full.")
    print("State: Mamba-2 state per sequence, constant in context length. Card figures and sources: "
          + (str(CARDS_PATH.name) + " (asicsim models --json gives card_url)" if cards else "not installed"))
    for i, note in enumerate(footnotes):
        print(f"{'*' * (i + 1)} {note}")
    missing = sorted(set(cards) - set(builtin_models())) if not args.model else []
    if missing:
        print(f"Model cards without a shipped config (not listed): {', '.join(missing)}")
    return 0
