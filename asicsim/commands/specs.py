"""`asicsim specs`: the built-in hardware specs with their key figures (read through the Device protocol)."""

from __future__ import annotations

from asicsim.core.registry import builtin_specs, make_device

from ._common import add_output_flags, output_format, print_rows

__all__ = ["register", "run", "spec_row"]


def register(sub) -> None:
    p = sub.add_parser("specs", help="list built-in hardware specs",
                       description="The built-in hardware specs with their kind, peak FLOP/s per dtype, memory, links, TDP and native dtypes; every field's source is in the spec TOML (asicsim/specs/NAME.toml) and in --json.")
    add_output_flags(p, "print JSON: one object per spec")
    p.set_defaults(func=run)


def spec_row(name: str) -> dict:
    device = make_device(name, 1)
    spec = device.spec
    link = device.link_limits
    return {
        "name": name,
        "kind": spec.kind,
        # None where the chip has no datapath of its own for the dtype (it would run widened, when asked to)
        **{f"dense_{d}_flops_per_s": device.peak_flops_per_s(d) if d in device.supported_dtypes else None
           for d in ("bf16", "fp8", "fp4", "int8", "int4")},
        "memory_bytes": device.memory_bytes_per_chip,
        "memory_bandwidth_bytes_per_s": device.memory_bandwidth_bytes_per_s,
        "assumed_fields": len(spec.assumed),
        "description": spec.description,
        "supported_dtypes": list(device.supported_dtypes),
        "link_bandwidth_bytes_per_s": link.bandwidth_bytes_per_s,
        "chips_per_domain": link.chips_per_domain,
        "tdp_w": device.power_limits().tdp_w,
    }


def _tflops(flops_per_s: float | None) -> str:
    return f"{'-':>12}" if flops_per_s is None else f"{flops_per_s / 1e12:12,.0f}"


def run(args) -> int:
    rows = [spec_row(n) for n in builtin_specs()]
    fmt = output_format(args)
    if fmt != "table":
        print_rows(rows, fmt)
        return 0
    kind_w = max(len(r["kind"]) for r in rows)
    dtypes_w = max(len(",".join(r["supported_dtypes"])) for r in rows)
    print(f"{'name':14} {'kind':{kind_w}} {'BF16 TFLOP/s':>12} {'FP8 TFLOP/s':>12} {'INT8 TOP/s':>12} {'mem GB':>7} "
          f"{'mem TB/s':>8} {'link GB/s':>9} {'chips':>5} {'TDP W':>6} {'native dtypes':{dtypes_w}} {'assumed':>7}  "
          f"description")
    for r in rows:
        memory_gb = r["memory_bytes"] / 1e9
        print(f"{r['name']:14} {r['kind']:{kind_w}} {_tflops(r['dense_bf16_flops_per_s'])} "
              f"{_tflops(r['dense_fp8_flops_per_s'])} {_tflops(r['dense_int8_flops_per_s'])} "
              f"{memory_gb:7.{0 if memory_gb >= 10 else 2}f} "
              f"{r['memory_bandwidth_bytes_per_s'] / 1e12:8.2f} {r['link_bandwidth_bytes_per_s'] / 1e9:9.0f} "
              f"{r['chips_per_domain']:5d} {r['tdp_w']:6.0f} {','.join(r['supported_dtypes']):{dtypes_w}} "
              f"{r['assumed_fields']:7d}  {r['description']}")
    print("\n'mem': the memory a model's weights and KV cache live in (HBM; SRAM for an SRAM pipeline, LPDDR for a "
          "phone); 'link GB/s' is per direction per chip;\n'chips' per scale-up domain (server, slice, rack); "
          "'native dtypes' have their own matmul rate.\n'assumed' counts fields the vendor never disclosed; `asicsim specs --json` and "
          "the TOML files give each field's source.")
    return 0
