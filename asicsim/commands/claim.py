"""`asicsim claim`: check a vendor's tokens/s claim (built in, from flags or from a TOML file)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from asicsim.workloads.errors import InputError

__all__ = ["register", "run"]


def register(sub) -> None:
    p = sub.add_parser("claim", help="sanity-check a vendor's tokens/s claim: accounting, roofline, simulation, verdict",
                       description="Check a vendor's tokens/s claim: what it implies per chip (FLOP/s, HBM and link bytes/s, batch, memory), the roofline bound of the hardware, a simulated best case and a verdict naming the binding constraint. `asicsim claim --list` shows the shipped claims; give your own with --tokens-per-s and --hw.")
    p.add_argument("name", nargs="?", help="a built-in claim (see --list) or a claim TOML file")
    p.add_argument("--list", action="store_true", help="list the built-in claims")
    p.add_argument("--tokens-per-s", type=float, help="your own claim: the tokens/s figure")
    p.add_argument("--hw", default="", help="hardware spec name or path (your own claim)")
    p.add_argument("--chips", type=int, default=8, help="chips the claim uses (default: %(default)s)")
    p.add_argument("--model", default="llama-3-70b", help="model name or config.json path")
    p.add_argument("--dtype", default="fp8", help="weight and matmul dtype (bf16, fp8, fp4; int8 counts as fp8)")
    p.add_argument("--isl", type=int, default=2048, help="input tokens per request")
    p.add_argument("--osl", type=int, default=128, help="output tokens per request")
    p.add_argument("--tp", type=int, default=0, help="fix the tensor-parallel degree (default: search)")
    p.add_argument("--accounting", choices=("output", "total", "auto"), default="auto",
                   help="which tokens the figure counts (auto: from the claim's baseline, else total)")
    p.add_argument("--per-user", action="store_true", help="the figure is one stream's decode rate")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--out", help="write the Markdown report to this file")
    p.add_argument("--plot", help="write the roofline chart (PNG) to this file")
    p.set_defaults(func=run)


def _user_claim(args: argparse.Namespace):
    from asicsim.analysis.claims import claim_from_table

    if not args.hw:
        raise InputError("--hw", "hw", "a claim from flags needs --hw NAME|PATH")
    table = {"tokens_per_s": args.tokens_per_s, "hardware": args.hw, "chips": args.chips, "model": args.model,
             "dtype": args.dtype, "isl": args.isl, "osl": args.osl, "tp": args.tp, "per_user": args.per_user,
             "accounting": args.accounting, "system": args.hw, "source": "command-line flags"}
    return claim_from_table("user-claim", table, "flags")


def _clean(obj):
    """JSON-safe: infinities and NaN become null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def run(args) -> int:
    from asicsim.analysis.claim_report import plot_claim, render_markdown
    from asicsim.analysis.claims import builtin_claims, check_claim, load_claim

    if args.list:
        for name, c in builtin_claims().items():
            unit = "tok/s/user" if c.per_user else "tok/s"
            print(f"{name:26s} {c.tokens_per_s:>9,.0f} {unit:10s} {c.vendor} {c.system}: {c.model} {c.dtype}, "
                  f"{c.chips or '?'} chips, {c.isl}/{c.osl}")
        return 0
    if args.tokens_per_s is not None:
        if args.name:
            raise InputError("claim", args.name, "give a claim name or --tokens-per-s flags, not both")
        claim = _user_claim(args)
    elif args.name:
        claim = load_claim(args.name)
    else:
        raise InputError("claim", "name", "give a claim name (see --list), a TOML file, or --tokens-per-s ...")
    result = _clean(check_claim(claim, None if args.accounting == "auto" else args.accounting))
    report = render_markdown(result)
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    if args.plot:
        plot_claim(result, args.plot)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(report, end="")
    return 0
