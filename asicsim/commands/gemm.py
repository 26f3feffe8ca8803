"""`asicsim gemm`: cycles of one GEMM (or a CSV of GEMMs) on one systolic array.

Words are one byte (fp8/int8, as in SCALE-Sim), so `--sram-kb KB` gives each operand buffer 1024 * KB
words; `--bandwidth` is DRAM words/cycle on each operand port (ifmap, filter, ofmap), and
`--ifmap-bandwidth`, `--filter-bandwidth`, `--ofmap-bandwidth` set one port (SCALE-Sim 3.0.0's
`IfmapSRAMBankBandwidth`, `FilterSRAMBankBandwidth` and `Bandwidth`). 0 means unlimited; scalesim mode
takes every port limited or none (SCALE-Sim has no unlimited port beside limited ones). A CSV may carry
`ifmap_bandwidth_words_per_cycle`, `filter_bandwidth_words_per_cycle`, `ofmap_bandwidth_words_per_cycle`
columns the same way (an empty cell takes `bandwidth_words_per_cycle`; the older names
`ifmap_words_per_cycle`, ... are still read).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys

import numpy as np

from asicsim.kernels.systolic import gemm_cycles, gemm_cycles_batch
from asicsim.workloads.errors import InputError

from ._output import add_output_flags, output_format, print_rows

__all__ = ["register", "run", "DATAFLOWS", "MODES"]

DATAFLOWS = {"os": 0, "ws": 1, "is": 2}
MODES = {"scalesim": 0, "pipelined": 1}
_REQUIRED = ("dataflow", "rows", "cols", "M", "N", "K")
_PORTS = ("ifmap", "filter", "ofmap")
_PORT_COLUMNS = tuple(f"{port}_bandwidth_words_per_cycle" for port in _PORTS)
_OLD_PORT_COLUMNS = tuple(f"{port}_words_per_cycle" for port in _PORTS)  # the spelling before SCALE-Sim's ports
_OPTIONAL = ("bandwidth_words_per_cycle", "sram_kb_each", *_PORT_COLUMNS, *_OLD_PORT_COLUMNS)


def register(sub) -> None:
    """Add the `gemm` subcommand to an argparse subparsers object."""
    p = sub.add_parser("gemm", help="cycles of a GEMM on one systolic array (SCALE-Sim compatible)",
                       description=__doc__.splitlines()[0])
    _add_flags(p)
    p.set_defaults(func=run)


def _add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rows", type=int, help="array rows R")
    p.add_argument("--cols", type=int, help="array columns C")
    p.add_argument("--dataflow", help="os, ws or is")
    p.add_argument("--m", type=int, help="GEMM M (rows of the input)")
    p.add_argument("--n", type=int, help="GEMM N (columns of the weights)")
    p.add_argument("--k", type=int, help="GEMM K (reduction)")
    p.add_argument("--bandwidth", type=float, default=0.0, help="DRAM words/cycle per operand (0: unlimited)")
    for port in _PORTS:
        p.add_argument(f"--{port}-bandwidth", type=float, default=None,
                       help=f"DRAM words/cycle of the {port} port (default: --bandwidth; 0: unlimited)")
    p.add_argument("--sram-kb", type=float, default=0.0, help="SRAM kB per operand buffer (0: unlimited)")
    p.add_argument("--mode", default="scalesim",
                   help="scalesim (SCALE-Sim 3.0.0 timing and buffers) or pipelined (overlapped folds, ASIC buffers)")
    add_output_flags(p, "print JSON")
    p.add_argument("--csv", help="CSV with dataflow,rows,cols,M,N,K[,bandwidth_words_per_cycle,sram_kb_each,"
                                 "ifmap_bandwidth_words_per_cycle,filter_bandwidth_words_per_cycle,"
                                 "ofmap_bandwidth_words_per_cycle]")


def _int(source: str, field: str, value, minimum: int = 1) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InputError(source, field, f"must be a whole number, got {value!r}") from None
    if number < minimum:
        raise InputError(source, field, f"must be >= {minimum}, got {number}")
    return number


def _float(source: str, field: str, value) -> float:
    try:
        number = float(str(value).strip()) if str(value).strip() else 0.0
    except ValueError:
        raise InputError(source, field, f"must be a number, got {value!r}") from None
    if not number >= 0.0 or number == float("inf"):
        raise InputError(source, field, f"must be a finite number >= 0, got {value!r}")
    return number


def _check_ports(source: str, field: str, mode: int, ports: tuple[float, float, float]) -> None:
    """scalesim mode takes SCALE-Sim's ports: all three limited (USER) or all unlimited (CALC); refuse a mix."""
    if mode == MODES["scalesim"] and 0.0 in ports and any(ports):
        raise InputError(source, field, "scalesim mode takes every port limited or none, got ifmap/filter/ofmap "
                         f"{ports[0]:g}/{ports[1]:g}/{ports[2]:g} words/cycle (0: unlimited); give all three a "
                         "bandwidth or use --mode pipelined")


def _code(source: str, field: str, value, table: dict) -> int:
    key = str(value).strip().lower()
    if key not in table:
        raise InputError(source, field, f"unknown {field} {value!r}; expected one of {', '.join(table)}")
    return table[key]


def run(args: argparse.Namespace) -> int:
    """Print the result for one GEMM, or the CSV with cycles appended; bad input raises InputError."""
    mode = _code("--mode", "mode", args.mode, MODES)
    if args.csv:
        return _run_csv(args.csv, mode)
    for flag in ("rows", "cols", "dataflow", "m", "n", "k"):
        if getattr(args, flag) is None:
            raise InputError("asicsim gemm", f"--{flag}", "required unless --csv is given")
    rows = _int("--rows", "rows", args.rows)
    cols = _int("--cols", "cols", args.cols)
    m, n, k = (_int(f"--{f}", f, getattr(args, f)) for f in ("m", "n", "k"))
    df = _code("--dataflow", "dataflow", args.dataflow, DATAFLOWS)
    bw = _float("--bandwidth", "bandwidth", args.bandwidth)
    given = {port: getattr(args, f"{port}_bandwidth", None) for port in _PORTS}
    ports = tuple(bw if given[port] is None else _float(f"--{port}-bandwidth", f"{port}_bandwidth", given[port])
                  for port in _PORTS)
    # name the flag that set an unlimited port beside limited ones
    unlimited = [port for port, value in zip(_PORTS, ports) if value == 0.0]
    flag = f"--{unlimited[0]}-bandwidth" if unlimited and given[unlimited[0]] is not None else "--bandwidth"
    _check_ports(flag, flag[2:].replace("-", "_"), mode, ports)
    sram_words = int(_float("--sram-kb", "sram_kb", args.sram_kb) * 1024)
    cycles, stall, sram_r, sram_w, ifmap_r, filter_r, dram_w = gemm_cycles(rows, cols, df, m, n, k, mode,
                                                                           sram_words, *ports)
    result = {"cycles": int(cycles), "stall_cycles": int(stall),
              "utilization": m * n * k / (rows * cols * max(int(cycles), 1)),
              "sram_reads": int(sram_r), "sram_writes": int(sram_w),
              "dram_reads": int(ifmap_r + filter_r), "dram_ifmap_reads": int(ifmap_r),
              "dram_filter_reads": int(filter_r), "dram_writes": int(dram_w)}
    fmt = output_format(args)
    if fmt == "json":
        print(json.dumps(result, indent=2))
    elif fmt != "table":
        print_rows([result], fmt)
    else:
        for key, value in result.items():
            print(f"{key:17} {value:.4f}" if key == "utilization" else f"{key:17} {value}")
    return 0


def _run_csv(path: str, mode: int) -> int:
    try:
        with open(path, newline="") as fh:
            text = fh.read()
    except OSError as exc:
        raise InputError(path, "file", exc.strerror or str(exc)) from None
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    records = list(csv.reader(lines))
    if not records:
        raise InputError(path, "header", "file is empty")
    header = [h.strip() for h in records[0]]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise InputError(path, "header", f"missing column(s) {', '.join(missing)}")
    col = {name: header.index(name) for name in _REQUIRED + _OPTIONAL if name in header}
    for new, old in zip(_PORT_COLUMNS, _OLD_PORT_COLUMNS):
        if new in col and old in col:
            raise InputError(path, "header", f"columns {new} and {old} set the same port; keep one")
        if old in col:
            col[new] = col.pop(old)
    body = records[1:]
    parsed = _columns_at_once(body, header, col, mode)
    if parsed is None:  # a bad cell somewhere: the row-by-row pass below names it
        parsed = _columns_by_row(path, body, header, col, mode)
    ints, bw = parsed
    cycles, stalls, util = gemm_cycles_batch(ints["rows"], ints["cols"], ints["df"], ints["M"], ints["N"],
                                             ints["K"], mode, ints["sram"], *(bw[port] for port in _PORTS))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(records[0] + ["cycles", "stall_cycles", "utilization"])
    for rec, c, s, u in zip(body, cycles.tolist(), stalls.tolist(), util.tolist()):
        writer.writerow(rec + [c, s, f"{u:.6f}"])
    sys.stdout.write(out.getvalue())
    return 0


def _columns_at_once(body: list, header: list, col: dict, mode: int) -> tuple[dict, dict] | None:
    """The CSV's columns parsed column by column (numpy), or None when any cell would be refused: the row-by-row
    pass (`_columns_by_row`) then finds and names it. Both give the same arrays for a valid file."""
    if any(len(rec) < len(header) for rec in body):
        return None
    try:
        ints = {"df": np.array([DATAFLOWS[rec[col["dataflow"]].strip().lower()] for rec in body], dtype=np.int64)}
        for name in ("rows", "cols", "M", "N", "K"):
            ints[name] = np.array([int(rec[col[name]]) for rec in body], dtype=np.int64)

        def floats(name: str, blank: np.ndarray | float) -> np.ndarray:
            cells = [rec[col[name]].strip() for rec in body]
            empty = np.array([not c for c in cells], dtype=bool)
            values = np.array([float(c) if c else 0.0 for c in cells], dtype=np.float64)
            if not (np.isfinite(values) & (values >= 0.0)).all():  # nan, inf or negative: refused below
                raise ValueError(name)
            return np.where(empty, blank, values)

        count = len(body)
        shared = floats("bandwidth_words_per_cycle", 0.0) if "bandwidth_words_per_cycle" in col else np.zeros(count)
        bw = {port: floats(name, shared) if name in col else shared.copy() for port, name in zip(_PORTS, _PORT_COLUMNS)}
        kb = floats("sram_kb_each", 0.0) if "sram_kb_each" in col else np.zeros(count)
    except (KeyError, ValueError, OverflowError):
        return None
    if any((ints[name] < 1).any() for name in ("rows", "cols", "M", "N", "K")):
        return None
    stacked = np.stack([bw[port] for port in _PORTS])
    if mode == MODES["scalesim"] and ((stacked == 0.0).any(axis=0) & (stacked != 0.0).any(axis=0)).any():
        return None
    ints["sram"] = (kb * 1024).astype(np.int64)
    return ints, bw


def _columns_by_row(path: str, body: list, header: list, col: dict, mode: int) -> tuple[dict, dict]:
    """The CSV's columns parsed one row at a time; InputError naming the first bad cell's row and column."""
    count = len(body)
    ints = {name: np.empty(count, dtype=np.int64) for name in ("rows", "cols", "M", "N", "K", "df", "sram")}
    bw = {port: np.zeros(count, dtype=np.float64) for port in _PORTS}
    for i, rec in enumerate(body):
        where = f"row {i + 2}"
        if len(rec) < len(header):
            raise InputError(path, where, f"expected {len(header)} fields, got {len(rec)}")
        ints["df"][i] = _code(path, f"{where}: dataflow", rec[col["dataflow"]], DATAFLOWS)
        for name in ("rows", "cols", "M", "N", "K"):
            ints[name][i] = _int(path, f"{where}: {name}", rec[col[name]])
        shared = 0.0
        if "bandwidth_words_per_cycle" in col:
            shared = _float(path, f"{where}: bandwidth_words_per_cycle", rec[col["bandwidth_words_per_cycle"]])
        source = {}  # the column each port's value came from
        for port, name in zip(_PORTS, _PORT_COLUMNS):
            given = name in col and rec[col[name]].strip()  # an empty cell takes the shared bandwidth
            source[port] = header[col[name]] if given else "bandwidth_words_per_cycle"
            bw[port][i] = _float(path, f"{where}: {source[port]}", rec[col[name]]) if given else shared
        ports = tuple(float(bw[port][i]) for port in _PORTS)
        unlimited = [port for port, value in zip(_PORTS, ports) if value == 0.0]
        _check_ports(path, f"{where}: {source[unlimited[0]] if unlimited else 'bandwidth_words_per_cycle'}", mode,
                     ports)
        kb = _float(path, f"{where}: sram_kb_each", rec[col["sram_kb_each"]]) if "sram_kb_each" in col else 0.0
        ints["sram"][i] = int(kb * 1024)
    return ints, bw


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m asicsim.commands.gemm ...`) with the CLI's error handling."""
    parser = argparse.ArgumentParser(prog="asicsim gemm", description=__doc__.splitlines()[0])
    _add_flags(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except InputError as exc:
        print(f"asicsim gemm: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
