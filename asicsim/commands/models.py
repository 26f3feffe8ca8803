"""`asicsim models`: the built-in model configs with their key figures."""

from __future__ import annotations

from asicsim.workloads.models import builtin_models, load_model

from ._common import print_json

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("models", help="list built-in model configs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    rows = []
    for name in builtin_models():
        m = load_model(name)
        rows.append({"name": name, "params": m.param_count(), "layers": m.num_hidden_layers,
                     "hidden_size": m.hidden_size, "intermediate_size": m.intermediate_size,
                     "heads": m.num_attention_heads, "kv_heads": m.num_key_value_heads, "vocab_size": m.vocab_size,
                     "kv_bytes_per_token_bf16": m.kv_bytes_per_token("bf16")})
    if args.json:
        print_json(rows)
        return 0
    print(f"{'name':16} {'params (B)':>10} {'layers':>6} {'hidden':>6} {'ffn':>6} {'heads':>5} {'kv':>3} "
          f"{'vocab':>7} {'KV KB/token (bf16)':>18}")
    for r in rows:
        print(f"{r['name']:16} {r['params'] / 1e9:10.2f} {r['layers']:6d} {r['hidden_size']:6d} "
              f"{r['intermediate_size']:6d} {r['heads']:5d} {r['kv_heads']:3d} {r['vocab_size']:7d} "
              f"{r['kv_bytes_per_token_bf16'] / 1024:18.0f}")
    return 0
