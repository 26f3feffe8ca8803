"""`asicsim area --hw NAME|PATH [--json]`: die area by block, the reticle and HBM-edge checks, and power."""

from __future__ import annotations

import csv
from pathlib import Path

from asicsim.core.area import BLOCKS
from asicsim.core.registry import make_device

from ._common import add_output_flags, output_format, print_json, print_rows

__all__ = ["register", "run", "die_shot_reference"]

_DATA = Path(__file__).resolve().parent.parent / "data" / "area_energy.csv"
# a100_die_breakdown labels -> AreaBreakdown.groups() keys
_DIE_SHOT_GROUPS = {"cores": "cores", "interconnect": "interconnect", "L2": "l2_or_sram", "HBM PHY": "hbm_phy",
                    "mem ctrl": "mem_ctrl", "NVLink PHY": "link_phy", "other": "other"}


def register(sub) -> None:
    p = sub.add_parser("area", help="die area by block (reticle and HBM-edge checked) and full-load power",
                       description="Die area of a chip by block (matrix arrays, SRAM, vector units, programmable cores, NoC, HBM PHYs and controllers, links), checked against the reticle and the HBM beachfront, with its full-load power and the clock its TDP allows. Areas in mm2, power in W.")
    p.add_argument("--hw", required=True, help="built-in spec name or path to a spec TOML (ASIC or GPU)")
    add_output_flags(p, "print JSON: total_mm2, blocks (name to mm2), ...")
    p.set_defaults(func=run)


def die_shot_reference(name: str) -> dict[str, float]:
    """The published die-shot groups for a chip (A100 only: area_energy.csv a100_die_breakdown), else {}."""
    if not name.startswith("a100"):
        return {}
    with _DATA.open(encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["quantity"] == "a100_die_breakdown")
    out = {}
    for part in row["value"].split(";"):
        label, mm2 = part.strip().rsplit(" ", 1)
        out[_DIE_SHOT_GROUPS[label]] = float(mm2)
    return out


def _power(device) -> dict[str, float]:
    """Full-load power, TDP, the clock the power is quoted at and the clock the TDP allows (Device.power_limits)."""
    p = device.power_limits()
    return {"full_load_power_w": p.full_load_power_w, "tdp_w": p.tdp_w, "clock_hz": p.clock_hz,
            "tdp_capped_clock_hz": p.capped_clock_hz}


def run(args) -> int:
    device = make_device(args.hw, 1)
    area = device.area()
    ref = die_shot_reference(device.name)
    power = _power(device)
    fmt = output_format(args)
    if fmt == "json":
        print_json(area.to_dict() | {"die_shot_mm2": ref, "power": power})
        return 0
    if fmt in ("csv", "md"):
        blocks = area.to_dict().get("blocks", {})
        print_rows([{"block": name, "mm2": mm2, "reference_mm2": ref.get(name)} for name, mm2 in blocks.items()], fmt)
        return 0
    total = area.total_mm2
    print(f"{device.name} ({area.kind}, {area.node_nm} nm): {total:.1f} mm2 modelled, die {area.die_area_mm2:g} mm2, "
          f"reticle {area.reticle_mm2:g} mm2")
    print(f"{'block':20} {'mm2':>8} {'share':>6}  note")
    for block in BLOCKS:
        mm2 = area.blocks[block]
        if mm2 > 0:
            print(f"{block:20} {mm2:8.1f} {mm2 / total:6.1%}  {area.notes.get(block, '')}")
    print(f"{'total':20} {total:8.1f} {1:6.0%}")
    print(f"\n{'group':14} {'model mm2':>9}" + (f" {'die shot':>9} {'error':>7}" if ref else ""))
    for group, mm2 in area.groups().items():
        line = f"{group:14} {mm2:9.1f}"
        if ref:
            line += f" {ref[group]:9.1f} {mm2 / ref[group] - 1:+7.1%}"
        print(line)
    print(f"\nprogrammable share {area.programmable_share:.1%} ({area.programmable_cores} cores); HBM "
          f"{area.hbm_stacks} stacks of {area.hbm_edge_limit_stacks} that fit the die edge")
    print(f"full-load power {power['full_load_power_w']:.0f} W at {power['clock_hz'] / 1e9:.2f} GHz; TDP "
          f"{power['tdp_w']:g} W allows {power['tdp_capped_clock_hz'] / 1e9:.3f} GHz")
    return 0
