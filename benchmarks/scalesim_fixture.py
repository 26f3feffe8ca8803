"""Run GEMMs through SCALE-Sim v3 and write our reference fixtures, tests/data/scalesim_gemm.csv and (with
`--perport`) tests/data/scalesim_gemm_perport.csv.

SCALE-Sim is never a dependency of this project: it lives in its own virtualenv, e.g.

    python3 -m venv /tmp/scalesim-venv && /tmp/scalesim-venv/bin/pip install 'numpy<2' scalesim==3.0.0
    /tmp/venv/bin/python benchmarks/scalesim_fixture.py --scalesim-python /tmp/scalesim-venv/bin/python

For every case this driver writes a SCALE-Sim config, a GEMM topology (``Layer, M, N, K,``) and an empty
layout file into a temp dir, runs ``python -m scalesim.scale -i gemm``, and parses COMPUTE_REPORT.csv
("Total Cycles", "Stall Cycles") and DETAILED_ACCESS_REPORT.csv (SRAM/DRAM access counts).

Ample-bandwidth rows use ``InterfaceBandwidth = CALC`` (SCALE-Sim's estimate-bandwidth mode: reads never
stall). Limited-bandwidth rows use ``InterfaceBandwidth = USER`` with the same words/cycle on each of the
three DRAM ports (``Bandwidth`` for the ofmap, ``IfmapSRAMBankBandwidth``/``FilterSRAMBankBandwidth``
for the two read buffers, which is where SCALE-Sim 3.0.0 takes the read-port bandwidth from). Word size is
1 byte in SCALE-Sim, so ``sram_kb_each`` kB is ``1024 * sram_kb_each`` words per operand buffer.

``--perport`` writes the per-port fixture instead: every row in ``USER`` mode with its own ifmap, filter and
ofmap words/cycle (1..64 each, drawn independently), random dataflow, array sides 8..128, 16..4096 kB per SRAM,
and a ``split`` column (``dev`` or ``holdout``, half each, drawn from the same seed): the model is developed
against ``dev`` rows only and checked on ``holdout`` rows.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

__all__ = ["cases", "perport_cases", "run_case", "main"]

AMPLE_SRAM_KB = 4096
COLUMNS = [
    "dataflow", "rows", "cols", "M", "N", "K", "sram_kb_each", "bandwidth_words_per_cycle",
    "scalesim_total_cycles", "scalesim_stall_cycles", "scalesim_total_cycles_incl_prefetch",
    "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes",
    "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes",
]
PERPORT_SEED = 1405
PERPORT_CASES = 120
PORT_COLUMNS = ["ifmap_bandwidth_words_per_cycle", "filter_bandwidth_words_per_cycle",
                "ofmap_bandwidth_words_per_cycle"]
PERPORT_COLUMNS = [*COLUMNS[:7], *PORT_COLUMNS, "split", *COLUMNS[8:]]

CONFIG = """[general]
run_name = run

[architecture_presets]
ArrayHeight : {rows}
ArrayWidth : {cols}
IfmapSramSzkB : {kb}
FilterSramSzkB : {kb}
OfmapSramSzkB : {kb}
IfmapOffset : 0
FilterOffset : 10000000
OfmapOffset : 20000000
Bandwidth : {bw_o}
Dataflow : {df}
MemoryBanks : 1
ReadRequestBuffer : 32
WriteRequestBuffer : 32

[layout]
IfmapCustomLayout : False
IfmapSRAMBankBandwidth : {bw_i}
IfmapSRAMBankNum : 1
IfmapSRAMBankPort : 2
FilterCustomLayout : False
FilterSRAMBankBandwidth : {bw_f}
FilterSRAMBankNum : 1
FilterSRAMBankPort : 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth : {mode}
UseRamulatorTrace : False
"""


def _demand_lines(df: str, rows: int, cols: int, m: int, n: int, k: int) -> int:
    """SCALE-Sim's per-cycle loop length, used only to keep its run time bounded."""
    sr, sc, t = {"os": (m, n, k), "ws": (k, n, m), "is": (k, m, n)}[df]
    folds = -(-sr // rows) * -(-sc // cols)
    return folds * (2 * rows + cols + t)


def cases(seed: int = 2024) -> list[tuple]:
    """The fixture's GEMMs: (dataflow, rows, cols, M, N, K, sram_kb_each, bandwidth; 0 = ample)."""
    rng = random.Random(seed)
    out: list[tuple] = []
    arrays = [(8, 8), (16, 16), (32, 32), (64, 64), (128, 128), (16, 64), (64, 16), (32, 128)]
    dims = [1, 3, 7, 16, 31, 64, 100, 128, 200, 256, 384, 512]
    while len(out) < 66:
        df = ("os", "ws", "is")[len(out) % 3]
        r, c = rng.choice(arrays)
        m, n, k = rng.choice(dims), rng.choice(dims), rng.choice(dims)
        if _demand_lines(df, r, c, m, n, k) > 60_000:
            continue
        out.append((df, r, c, m, n, k, AMPLE_SRAM_KB, 0))
    for df, r, c, m, n, k in [("os", 16, 16, 1, 1, 1), ("ws", 8, 8, 512, 1, 1), ("is", 128, 128, 1, 512, 512),
                              ("os", 128, 128, 512, 512, 512), ("ws", 128, 128, 512, 512, 512),
                              ("is", 128, 128, 512, 512, 512)]:
        out.append((df, r, c, m, n, k, AMPLE_SRAM_KB, 0))
    limited = 0
    while limited < 30:
        df = ("os", "ws", "is")[limited % 3]
        r, c = rng.choice([(8, 8), (16, 16), (32, 32), (64, 64)])
        m, n, k = rng.choice(dims[5:]), rng.choice(dims[5:]), rng.choice(dims[5:])
        kb = rng.choice([4, 8, 16, 32])
        bw = rng.choice([1, 2, 4, 8, 16])
        if _demand_lines(df, r, c, m, n, k) > 40_000:
            continue
        out.append((df, r, c, m, n, k, kb, bw))
        limited += 1
    return out


def perport_cases(seed: int = PERPORT_SEED, count: int = PERPORT_CASES) -> list[tuple]:
    """Per-port GEMMs: (dataflow, rows, cols, M, N, K, sram_kb_each, (ifmap, filter, ofmap) words/cycle, split).

    Array sides, SRAM kB and each port's words/cycle are drawn log-uniformly (sides 8..128, 16..4096 kB,
    1..64 words/cycle, the three ports independently); `split` is `dev` for a seeded half, `holdout` for the
    rest. GEMMs whose SCALE-Sim run would be long (many demand lines times array width) are redrawn.
    """
    rng = random.Random(seed)
    dims = [32, 64, 100, 128, 200, 256, 384, 512]
    out: list[tuple] = []
    while len(out) < count:
        df = rng.choice(("os", "ws", "is"))
        r, c = (int(round(2 ** rng.uniform(3, 7))) for _ in range(2))
        m, n, k = rng.choice(dims), rng.choice(dims), rng.choice(dims)
        kb = int(round(2 ** rng.triangular(4, 12, 4)))
        ports = tuple(int(round(2 ** rng.uniform(0, 6))) for _ in range(3))
        if _demand_lines(df, r, c, m, n, k) * (r + c) > 3_000_000:
            continue
        out.append((df, r, c, m, n, k, kb, ports))
    dev = set(rng.sample(range(count), count // 2))
    return [(*case, "dev" if i in dev else "holdout") for i, case in enumerate(out)]


def _read_report(path: str) -> list[str]:
    with open(path) as fh:
        lines = [ln for ln in fh.read().splitlines() if ln.strip()]
    return [x.strip() for x in lines[1].split(",")]


def run_case(case: tuple, scalesim_python: str) -> dict:
    """Run one GEMM through SCALE-Sim and return one fixture row.

    `case` is (dataflow, rows, cols, M, N, K, sram_kb_each, bandwidth), bandwidth one words/cycle on every
    port (0: ample, CALC mode) or an (ifmap, filter, ofmap) tuple, optionally followed by the split.
    """
    df, r, c, m, n, k, kb, bw = case[:8]
    perport = isinstance(bw, tuple)
    bw_i, bw_f, bw_o = bw if perport else (max(bw, 1),) * 3
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "scale.cfg")
        topo = os.path.join(tmp, "gemm.csv")
        layout = os.path.join(tmp, "layout.csv")
        with open(cfg, "w") as fh:
            fh.write(CONFIG.format(rows=r, cols=c, kb=kb, bw_i=bw_i, bw_f=bw_f, bw_o=bw_o, df=df,
                                   mode="USER" if perport or bw > 0 else "CALC"))
        with open(topo, "w") as fh:
            fh.write(f"Layer, M, N, K,\ng0, {m}, {n}, {k},\n")
        with open(layout, "w") as fh:
            fh.write("Layer,\n")
        subprocess.run([scalesim_python, "-m", "scalesim.scale", "-c", cfg, "-t", topo, "-l", layout,
                        "-p", tmp, "-i", "gemm", "-s", "N"],
                       check=True, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        comp = _read_report(os.path.join(tmp, "run", "COMPUTE_REPORT.csv"))
        det = _read_report(os.path.join(tmp, "run", "DETAILED_ACCESS_REPORT.csv"))
    row = {"dataflow": df, "rows": r, "cols": c, "M": m, "N": n, "K": k, "sram_kb_each": kb}
    if perport:
        row.update(zip(PORT_COLUMNS, bw))
        if len(case) > 8:
            row["split"] = case[8]
    else:
        row["bandwidth_words_per_cycle"] = bw
    return {
        **row,
        "scalesim_total_cycles": int(float(comp[2])), "scalesim_stall_cycles": int(float(comp[3])),
        "scalesim_total_cycles_incl_prefetch": int(float(comp[1])),
        "sram_ifmap_reads": int(float(det[3])), "sram_filter_reads": int(float(det[6])),
        "sram_ofmap_writes": int(float(det[9])), "dram_ifmap_reads": int(float(det[12])),
        "dram_filter_reads": int(float(det[15])), "dram_ofmap_writes": int(float(det[18])),
    }


def main(argv: list[str] | None = None) -> int:
    """Run every case (in parallel) and write the CSV with a provenance header."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scalesim-python", default="/tmp/scalesim-venv/bin/python")
    p.add_argument("--perport", action="store_true",
                   help=f"write the per-port fixture ({PERPORT_CASES} rows, seed {PERPORT_SEED}, dev/holdout split)")
    p.add_argument("--out", default=None,
                   help="CSV to write (default: tests/data/scalesim_gemm.csv, or scalesim_gemm_perport.csv)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 4)
    args = p.parse_args(argv)
    name = "scalesim_gemm_perport.csv" if args.perport else "scalesim_gemm.csv"
    out = args.out or os.path.join(os.path.dirname(__file__), "..", "tests", "data", name)
    version = subprocess.run([args.scalesim_python, "-c",
                              "import importlib.metadata as m; print(m.version('scalesim'))"],
                             check=True, capture_output=True, text=True).stdout.strip()
    todo = perport_cases() if args.perport else cases()
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda cs: run_case(cs, args.scalesim_python), todo))
    seed = f"seed {PERPORT_SEED}, per-port bandwidths, dev/holdout split" if args.perport else "seed 2024"
    with open(out, "w", newline="") as fh:
        fh.write(f"# SCALE-Sim {version} reference GEMMs, produced by benchmarks/scalesim_fixture.py "
                 f"({seed}); see tests/data/README.md\n")
        w = csv.DictWriter(fh, fieldnames=PERPORT_COLUMNS if args.perport else COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} rows to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
