"""Every public jitted kernel is registered (asicsim.kernels.registry) and equals its plain-Python twin.

One parametrised hypothesis test draws arguments for each registry entry from the strategy below and
compares the kernel with its twin in tests/reference/: integers (cycles, words, counts, tile sizes)
exactly, floats to a relative 1e-9. Properties beyond equality (monotonicity, bounds, the SCALE-Sim
fixture) stay in tests/test_systolic.py and tests/test_gpu_kernels.py.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.core.results import RECORDED_TIMING_FIELDS
from asicsim.kernels import registry

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = registry.entries()
REL = 1e-9

# Names whose call or decoration builds a numba function (asicsim.kernels.jit.jit, and numba's own, so
# a kernel decorated around the project's wrapper is found too).
_JIT_NAMES = frozenset({"jit", "njit", "generated_jit", "vectorize", "guvectorize", "cfunc"})


def _builds_jit(expr: ast.expr) -> bool:
    """`jit`, `numba.njit`, `jit(...)`, `numba.njit(cache=True)`: an expression naming a jit decorator."""
    while isinstance(expr, ast.Call):
        expr = expr.func
    name = expr.id if isinstance(expr, ast.Name) else expr.attr if isinstance(expr, ast.Attribute) else None
    return name in _JIT_NAMES


def jitted_functions() -> set[str]:
    """'asicsim.kernels.module:function' of every function in kernels/*.py built by a jit decorator or call."""
    found = set()
    for path in sorted((ROOT / "kernels").glob("*.py")):
        module = f"asicsim.kernels.{path.stem}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(_builds_jit(d) for d in node.decorator_list):
                found.add(f"{module}:{node.name}")
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _builds_jit(node.value):
                found |= {f"{module}:{t.id}" for t in node.targets if isinstance(t, ast.Name)}
    return found


def load_twin(entry: registry.KernelEntry):
    """The twin a registry entry names; tests/ is importable as `tests` or (rootdir on sys.path) not."""
    module, _, function = entry.twin.partition(":")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError:
        loaded = importlib.import_module(module.removeprefix("tests."))
    return getattr(loaded, function)


# ---- what is registered ----


def test_walker_finds_public_and_private_jitted_functions():
    """The AST walk below is what keeps the registry complete, so check that it sees kernels at all."""
    found = jitted_functions()
    assert "asicsim.kernels.systolic:gemm_cycles" in found
    assert "asicsim.kernels.systolic:_ceil_div" in found
    assert "asicsim.kernels.collectives:_bus_factor" in found


def test_every_public_jitted_function_is_registered_and_nothing_else():
    """Private helpers (leading underscore) are implementation details checked through their callers."""
    public = {name for name in jitted_functions() if not name.partition(":")[2].startswith("_")}
    registered = [e.kernel for e in ENTRIES]
    assert len(registered) == len(set(registered)), "a kernel is registered twice"
    assert sorted(public - set(registered)) == [], "jitted but not in kernels/registry.py"
    assert sorted(set(registered) - public) == [], "registered but not a public jitted function in kernels/"


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_entry_is_complete(entry):
    kernel = registry.load_kernel(entry)
    assert kernel is registry.load_kernel(entry.kernel)
    assert getattr(kernel, "py_func", kernel).__name__ == entry.name
    assert entry.name in importlib.import_module(entry.kernel.partition(":")[0]).__all__
    twin = load_twin(entry)
    assert entry.twin.startswith("tests.reference.") and inspect.isfunction(twin), "twin: plain Python in tests/"
    assert entry.description and "\n" not in entry.description
    assert entry.unit and "\n" not in entry.unit
    # the representative call fits both signatures
    args = entry.example()
    inspect.signature(getattr(kernel, "py_func", kernel)).bind(*args)
    inspect.signature(twin).bind(*args)
    assert entry.kernel in STRATEGIES, "add an argument strategy below"


def test_entries_are_read_only_and_names_checked():
    entry = ENTRIES[0]
    with pytest.raises(AttributeError):
        entry.unit = "ms"
    with pytest.raises(ValueError):
        registry.KernelEntry("asicsim.kernels.memory.transfer_time_s", "x:y", "d", "s", tuple)


@pytest.mark.skipif(os.environ.get("NUMBA_DISABLE_JIT") == "1", reason="realistic shapes are slow without the JIT")
@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_representative_call_gives_finite_numbers(entry):
    """The call benchmarks/bench_kernels.py times runs and returns finite, non-negative numbers."""
    values = np.concatenate([np.ravel(np.asarray(v, dtype=float))
                             for v in _flatten(registry.load_kernel(entry)(*entry.example()))])
    assert np.all(np.isfinite(values)) and np.all(values >= 0.0)


def _flatten(result):
    return [x for item in result for x in _flatten(item)] if isinstance(result, tuple) else [result]


def _bench_kernels():
    spec = importlib.util.spec_from_file_location("bench_kernels", ROOT / "benchmarks" / "bench_kernels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_reads_the_registry(capsys):
    """benchmarks/bench_kernels.py: its targets name registered kernels, and it times what the registry lists."""
    bench = _bench_kernels()
    assert set(bench.TARGET_CALLS_PER_S) <= {e.kernel for e in ENTRIES}
    bench.MIN_SECONDS = 0.01
    assert bench.main(["--match", "memory:"]) == 0
    out = capsys.readouterr().out
    assert "memory:transfer_time_s" in out and "systolic:" not in out


# ---- argument strategies, one per kernel ----
# GPU-side kernels

sizes_bytes = st.floats(min_value=-1e3, max_value=1e11, allow_nan=False)
bandwidths = st.floats(min_value=1e8, max_value=1e13)
latencies = st.floats(min_value=0.0, max_value=1e-4)
ranks = st.integers(min_value=0, max_value=64)
gemm_dims = st.integers(min_value=0, max_value=40000)
wave_quantization = st.booleans()
sm_counts = st.sampled_from([108, 132, 148])
peaks = st.sampled_from([989.4e12, 1978.9e12, 4500e12])
efficiencies = st.floats(min_value=0.3, max_value=1.0)
# token counts, half of them at or next to a multiple of 64 (the attention block edges)
_near_block_edge = st.builds(lambda blocks, off: max(64 * blocks + off, 0), st.integers(0, 40),
                             st.sampled_from([-1, 0, 1]))
seq_lists = st.lists(st.tuples(st.integers(0, 700) | _near_block_edge, st.integers(0, 3000) | _near_block_edge),
                     max_size=6)


def run_rows_args(n, k, fields, first, now):
    """(values, k, copied, constant columns, constants, first, clock, micro, used, varying columns, width): a run of n
    steps of `fields` values booked into rows of 2 fields + 5 per-step columns + constants; k <= n."""
    k = min(k, n)
    rng = np.random.default_rng(n * 1000 + k * 10 + fields)
    values = rng.random((n, fields))
    width = 2 * fields + 9
    columns = rng.permutation(width)
    copied = np.stack((columns[:fields], np.arange(fields)), axis=1)
    constant_columns = columns[fields:fields + 4]
    clock = now + np.concatenate(([0.0], np.cumsum(values[:, 0])))
    return (values, k, copied, constant_columns, rng.random(4), first, clock, rng.integers(1, 3, n),
            rng.integers(0, 500, n), columns[fields + 4:fields + 9], width)


def book_run_args(n, fields, first, now, ahead, seqs, block, used):
    """`kernels.steplog.book_run`'s arguments: `run_rows_args`' run (the step's seconds in column 0, from `now`), the
    next arrival `ahead` seconds on, sequences as (cached, extra tokens their caps hold), `used` blocks in use."""
    values, _, copied, constant_columns, constants, first, _, micro, _, varying, width = run_rows_args(
        n, n, fields, first, now)
    cached = np.array([c for c, _ in seqs], dtype=np.int64)
    caps = np.array([max(c + extra, 0) for c, extra in seqs], dtype=np.int64)
    return (values, 0, micro, now, now + ahead, cached, caps, block, used, copied, constant_columns, constants, first,
            varying, width)


def chord_fill_args(a, span, where, seconds, va, vb, jitter, rtol):
    """(va, vb, vm, a, b, m, rtol, seconds, step column): vm on the chord at m, moved by `jitter` (relative to the
    step column's value for seconds columns, to itself for the others), so both outcomes are drawn."""
    va, vb = np.array(va), np.array(vb)
    b = a + span  # span >= 2: a < m < b
    m = a + 1 + int(where * (span - 2))
    vm = va + (vb - va) * ((m - a) / (b - a))
    mask = np.zeros(len(va), dtype=np.bool_)
    mask[:seconds] = True
    vm = vm + np.array(jitter) * np.where(mask, abs(vm[0]), np.abs(vm))
    return va, vb, vm, a, b, m, rtol, mask, 0


def _seq_arrays(pairs):
    """(seq_new, seq_past) int64 arrays from (new, past) pairs."""
    return (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int64))


@st.composite
def busbw_curves(draw):
    """A measured-curve stand-in: 1-6 sizes at distinct powers of two (as nccl-tests steps), any busbw."""
    exponents = sorted(draw(st.lists(st.integers(0, 40), min_size=1, max_size=6, unique=True)))
    busbw = draw(st.lists(st.floats(1e6, 1e12), min_size=len(exponents), max_size=len(exponents)))
    return 2.0 ** np.array(exponents, dtype=np.float64), np.array(busbw, dtype=np.float64)


def curve_allreduce_args(size, n, curve, cap):
    return (size, n, *curve) if cap is None else (size, n, *curve, cap)


def gemm_compute_args(m, n, k, sm_count, peak, efficiency, tiles, narrow_efficiency, split_k_min_depth, wq):
    return (m, n, k, sm_count, peak, efficiency, *tiles, narrow_efficiency, split_k_min_depth, wq)


def prefill_args(seqs, heads, head_dim, block_q, block_kv, causal, sm_count, peak, efficiency):
    return (*_seq_arrays(seqs), heads, head_dim, block_q, block_kv, causal, sm_count, peak, efficiency)


# Systolic kernels: each argument tuple is built in one function, so a signature change is a one-line edit.

array_sides = st.integers(2, 16)
gemm_sides = st.integers(1, 48)
dataflows = st.integers(0, 2)
modes = st.integers(0, 1)
sram_words = st.sampled_from([0, 16, 17, 64, 100, 256, 1024, 4096])
dram_words_per_cycle = st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 8.0])


def compute_cycles_args(rows, cols, dataflow, m, n, k, mode):
    return (rows, cols, dataflow, m, n, k, mode)


def _ports(mode, bw):
    """(ifmap, filter, ofmap) words/cycle: any three in pipelined mode; in scalesim mode all limited or none (an
    unlimited port beside limited ones takes 1 word/cycle)."""
    if mode != 0 or bw[0] <= 0:
        return (0.0,) * 3 if mode == 0 else bw
    return tuple(b if b > 0 else 1.0 for b in bw)


def gemm_cycles_args(rows, cols, dataflow, m, n, k, mode, sram, bw):
    return (rows, cols, dataflow, m, n, k, mode, sram, *_ports(mode, bw))


def tiled_gemm_cycles_args(rows, cols, dataflow, m, n, k, mode, sram, bw):
    return (rows, cols, dataflow, m, n, k, mode, sram, *_ports(mode, bw))


def multi_array_gemm_cycles_args(arrays, rows, cols, dataflow, m, n, k, mode, sram, bw):
    return (arrays, rows, cols, dataflow, m, n, k, mode, sram, *_ports(mode, bw))


def attention_cycles_args(seqs, kv_heads, group, head_dim, arrays, rows, cols, dataflow, mode):
    return (*_seq_arrays(seqs), kv_heads * group, kv_heads, head_dim, arrays, rows, cols, dataflow, mode)


def gemm_cycles_batch_args(gemms, mode):
    """gemms: (rows, cols, dataflow, m, n, k, sram, ports) per row -> one int64/float64 array per column."""
    gemms = [(*g[:7], _ports(mode, g[7])) for g in gemms]
    columns = list(zip(*gemms)) if gemms else [()] * 8
    ints = [np.array(c, dtype=np.int64) for c in columns[:7]]
    ports = [np.array([p[i] for p in columns[7]], dtype=np.float64) for i in range(3)]
    return (*ints[:6], mode, ints[6], *ports)


port_words_per_cycle = st.tuples(dram_words_per_cycle, dram_words_per_cycle, dram_words_per_cycle)
_gemm = (array_sides, array_sides, dataflows, gemm_sides, gemm_sides, gemm_sides, modes, sram_words,
         port_words_per_cycle)

def schedule_args(streams, layers, prefetch):
    """Op streams as `schedule_step_s` takes them: each a (pre, layer, post) of ops (seconds, collective)."""
    rows, flags, bounds = [], [], []
    for blocks in streams:
        row = []
        for ops in blocks:
            row.append(len(rows))
            rows += [o[:5] for o in ops]
            flags += [o[5] for o in ops]
            row.append(len(rows))
        bounds.append(row)
    return (np.array(rows, dtype=np.float64).reshape(-1, 5), np.array(flags, dtype=np.bool_),
            np.array(bounds, dtype=np.int64).reshape(-1, 6), layers, prefetch, 1e-12)


# op seconds: zero or 1..100 us on each unit, fixed overhead too; a collective has link time only
_unit_s = st.sampled_from([0.0, 0.0]) | st.floats(1e-6, 1e-4)
_op = st.builds(lambda c, m, w, f: (c, m, w, 0.0, f, False), _unit_s, _unit_s, _unit_s, _unit_s) | \
    st.builds(lambda lk, f: (0.0, 0.0, 0.0, lk, f, True), st.floats(1e-6, 1e-4), _unit_s)
_stream = st.tuples(st.lists(_op, max_size=3), st.lists(_op, min_size=1, max_size=8), st.lists(_op, max_size=3))

# cost rows: each column zero or positive; buckets as the engine gives them (4: a fallback op's)
_cost_row = st.lists(st.sampled_from([0.0]) | st.floats(1e-9, 1e6), min_size=10, max_size=10)
_accounts = st.builds(
    lambda ops, clocks: (np.array([o[0] for o in ops], dtype=np.float64).reshape(-1, 10), *clocks,
                         np.array([o[1] for o in ops], dtype=np.int64), np.array([o[2] for o in ops])),
    st.lists(st.tuples(_cost_row, st.integers(0, 4), st.floats(0.0, 1e15)), max_size=12),
    st.tuples(*[st.floats(1e-10, 1e-8)] * 3))

# GPU array-free ops: any kind code and flags, fields zero or positive, group 1-8, shapes up to 5,000
_op_value = st.sampled_from([0.0]) | st.floats(1.0, 1e12)
_dense_op = st.tuples(st.integers(0, 3), st.integers(0, 255),
                      st.tuples(*[_op_value] * 7, st.integers(1, 8), *[st.integers(0, 5000)] * 3),
                      st.tuples(peaks, efficiencies, st.sampled_from([0.5, 1.0, 2.0]), bandwidths,
                                st.sampled_from([0.0, 65536.0, 1e7])))
_gpu_constants = st.builds(
    lambda clock, lat, bw, sms, tiles, narrow, depth, wq, frac, custom: np.array(
        [clock, lat[0], lat[1], lat[2], bw[0], bw[1], bw[2], sms, *tiles, narrow, depth, float(wq), lat[3], frac, bw[3],
         lat[4], lat[5], bw[4], float(custom), 4.0]),
    st.floats(1e9, 2e9), st.tuples(*[latencies] * 6), st.tuples(*[bandwidths] * 5), sm_counts,
    st.sampled_from([(128, 256, 128), (128, 128, 64)]), st.floats(0.5, 1.0), st.sampled_from([512, 1024]),
    wave_quantization, st.floats(0.5, 1.0), st.booleans())
_dense_costs = st.builds(
    lambda ops, consts, curve: (np.array([(*o[:2], *o[3], *o[2]) for o in ops], dtype=np.float64).reshape(-1, 18),
                                consts, *curve),
    st.lists(_dense_op, max_size=8), _gpu_constants, busbw_curves())

def decode_run_args(past, n, horizon_s, attention, op_bytes, steps, sums, stream, at, prefetch, rtol):
    """A decode run's arguments: `stream` one op stream whose layer op `at` (modulo its length) is the attention op."""
    ops, collective, bounds, layers, _, state_rtol = schedule_args([stream], steps[7], prefetch)
    row_at = int(bounds[0, 2] + at % (bounds[0, 3] - bounds[0, 2]))
    collective[row_at] = False
    past0 = np.array(past, dtype=np.int64)
    seconds = np.array([name.endswith("_s") for name in ("step_s", "bubble_s", *RECORDED_TIMING_FIELDS)])
    return (past0, n, horizon_s, np.ones(len(past0), dtype=np.int64), np.array(attention, dtype=np.float64),
            np.array(op_bytes, dtype=np.float64), np.array(steps, dtype=np.float64), np.array(sums[0]),
            np.array(sums[1]), ops, collective, bounds, row_at, prefetch, state_rtol, rtol, seconds, 0)


# `decode_run.ATTENTION_TERMS`: heads, PE steps, arrays and their shape, dataflow, mode, softmax, lanes, HBM bytes per
# cycle, SRAM bytes for activations
_attention_terms = st.tuples(
    st.sampled_from([1.0, 2.0, 8.0]), st.sampled_from([1.0, 2.0]), st.integers(1, 16).map(float),
    st.sampled_from([1.0, 2.0, 4.0]), st.sampled_from([4.0, 8.0, 16.0]), st.sampled_from([4.0, 8.0, 16.0]),
    st.sampled_from([0.0, 1.0, 2.0]), st.sampled_from([0.0, 1.0]), st.sampled_from([1.0, 5.0]),
    st.sampled_from([1.0, 16.0, 64.0]), st.floats(1.0, 4096.0), st.floats(0.0, 1e5))
# an attention op's weight, KV-write, activation-in and -out bytes
_op_bytes = st.tuples(st.sampled_from([0.0]) | st.floats(1.0, 1e4), st.floats(0.0, 1e4), st.floats(0.0, 1e5),
                      st.floats(0.0, 1e5))
# FLOPs per entry, KV bytes per token, seconds per cycle, bucket 1, key bits, layers (summed = scheduled), stages,
# host seconds per sequence, floor (negative: untested), margin
_step_terms = st.builds(
    lambda per_entry, per_token, clocks, bits, layers, pp, host_s, floor_s: (
        per_entry, per_token, *clocks, 1.0, float(bits), float(layers), float(layers), float(pp), host_s, floor_s,
        1.05),
    st.floats(1.0, 1e6), st.floats(1.0, 1e4), st.tuples(*[st.floats(1e-10, 1e-8)] * 3), st.integers(4, 20),
    st.integers(1, 12), st.integers(1, 4), st.sampled_from([0.0]) | st.floats(1e-7, 1e-4),
    st.sampled_from([-1.0]) | st.floats(0.0, 1e-2))
_sequences = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3000)), min_size=1, max_size=6)

def mixed_step_args(prefills, decodes, split, streams, sums, p_terms, d_terms, graph, engine):
    """A prefilling step's arguments: its batch and halves as `serving.split_batch` deals them; per graph (the whole
    step, then each half) a layer part from an op stream's pre and layer ops (its attention ops' zero rows first in the
    layer), made-up sums, and the stream's post ops as its post ops with made-up accounts (layers counted =
    scheduled)."""
    new, past = (np.array([c[i] for c in prefills], dtype=np.int64) for i in (0, 1))
    dec = np.array(decodes, dtype=np.int64)

    def cut(a):  # `serving._split(a, 2)`
        return a[:len(a) - len(a) // 2], a[len(a) - len(a) // 2:]

    (n1, n2), (p1, p2), (d1, d2) = cut(new), cut(past), cut(dec)
    parts = [p for p in ((n1, p1, d2), (n2, p2, d1)) if len(p[0]) or len(p[2])]
    halves = len(parts) if split and len(new) + len(dec) >= 2 else 0
    parts += [(np.zeros(0, dtype=np.int64),) * 3] * (2 - len(parts))
    layers = float(engine[4])

    def graph_of(batch, stream, made_up):
        k = int(len(batch[0]) > 0) + int(len(batch[2]) > 0)
        pre, layer, post = stream
        layer = [(0.0, 0.0, 0.0, 0.0, 0.0, False)] * k + list(layer)
        ops = [*pre, *layer]
        terms = [*made_up[:16], layers, *made_up[16:18], float(len(pre)), float(len(layer)), float(k), 0.0, 1.0]
        post_rows = np.array([[*o[:5], *made_up[18:34]] for o in post], dtype=np.float64).reshape(-1, 21)
        return (np.array([o[:5] for o in ops], dtype=np.float64).reshape(-1, 5), np.array([o[5] for o in ops]),
                np.array(terms), post_rows, np.array([o[5] for o in post], dtype=np.bool_))

    graphs = [graph_of(b, st_, made_up) for b, st_, made_up in zip([(new, past, dec), *parts], streams, sums)]
    return (new, past, dec, halves, *parts[0], *parts[1], *graphs[0], *graphs[1], *graphs[2],
            np.array(p_terms, dtype=np.float64), np.array(d_terms, dtype=np.float64), np.array(graph, dtype=np.float64),
            np.array(engine, dtype=np.float64), True, 1e-12)


_made_up_sums = st.lists(st.floats(0.0, 1e-3), min_size=34, max_size=34)  # a head, two seconds, a post op's account
_graph_terms = st.tuples(st.floats(1.0, 1e6), st.floats(1.0, 1e4), st.integers(1, 2048).map(float),
                         st.integers(1, 2048).map(float), st.sampled_from([1.0, 2.0]))
_engine_terms = st.builds(lambda clocks, bits, layers, fixed: (*clocks, float(bits), float(layers), 1.0 + 1e-9, fixed),
                          st.tuples(*[st.floats(1e-10, 1e-8)] * 3), st.integers(4, 20), st.integers(1, 12),
                          st.sampled_from([0.0, 1.0]))

# ASIC ops (`asic_price.OP_COLUMNS`): a matmul (small, for the twin's full split search; every dimension at least 1, as
# in any graph), a vector op (whole FLOPs, as graphs count lane operations) or a collective
_asic_amount = st.sampled_from([0.0]) | st.floats(1.0, 1e7)
_asic_op = st.one_of(
    st.builds(lambda amounts, shape, per_pe: (*amounts, 0.0, 0.0, 0.0, 1, *shape, 0, per_pe),
              st.tuples(*[_asic_amount] * 4), st.tuples(*[st.integers(1, 300)] * 3), st.sampled_from([1, 2, 4])),
    st.builds(lambda flops, amounts: (float(flops), *amounts, 0.0, 1, 0, 0, 0, 1, 0), st.integers(0, 10**7),
              st.tuples(*[_asic_amount] * 5)),
    st.builds(lambda comm, group, kind: (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, comm, group, 0, 0, 0, kind, 0),
              _asic_amount, st.integers(1, 8), st.sampled_from([2, 3])))
_asic_consts = st.builds(
    lambda shape, df, mode, hbm, sram, sizes, prefetch, feed, lanes, link: np.array(
        [*shape, df, mode, hbm, sram, *sizes, prefetch, feed, lanes, 1.5e9, *link]),
    st.tuples(st.integers(1, 4), st.sampled_from([4, 8, 16]), st.sampled_from([4, 8, 16])), dataflows,
    st.sampled_from([1]), st.floats(1.0, 4096.0), st.floats(1.0, 4096.0), st.tuples(*[st.floats(1e2, 1e7)] * 3),
    st.sampled_from([0.0, 1.0]),
    st.floats(1.0, 4096.0), st.integers(1, 64), st.tuples(st.floats(1e-7, 1e-5), st.floats(1e9, 1e12)))

STRATEGIES = {
    "asicsim.kernels.asic_price:dense_rows": st.builds(
        lambda ops, consts: (np.array(ops, dtype=np.float64).reshape(-1, 13), consts), st.lists(_asic_op, max_size=5),
        _asic_consts),
    "asicsim.kernels.mixed_step:mixed_step_fields": st.builds(
        mixed_step_args, st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3000)), min_size=1, max_size=3),
        st.lists(st.integers(0, 3000), max_size=6), st.sampled_from([True, True, False]),
        st.tuples(_stream, _stream, _stream),
        st.tuples(_made_up_sums, _made_up_sums, _made_up_sums), _attention_terms, _attention_terms,
        _graph_terms, _engine_terms),
    "asicsim.kernels.decode_run:attention_row": st.builds(
        lambda seqs, terms, flops, kv, op_bytes: (np.array([n for n, _ in seqs], dtype=np.int64),
                                                  np.array([p for _, p in seqs], dtype=np.int64),
                                                  np.array(terms, dtype=np.float64), flops, op_bytes[0], kv,
                                                  *op_bytes[1:]),
        _sequences, _attention_terms, st.floats(0.0, 1e12), st.floats(0.0, 1e9), _op_bytes),
    "asicsim.kernels.decode_run:decode_run_values": st.builds(
        decode_run_args, st.lists(st.integers(0, 3000), min_size=1, max_size=6), st.integers(1, 40),
        st.sampled_from([np.inf]) | st.floats(1e-4, 0.5), _attention_terms, _op_bytes, _step_terms,
        st.tuples(*[st.lists(st.floats(0.0, 1e-3), min_size=16, max_size=16)] * 2), _stream, st.integers(0, 7),
        st.booleans(), st.sampled_from([1e-3, 1e-6])),
    "asicsim.kernels.accounts:summed_accounts": _accounts,
    "asicsim.kernels.accounts:part_sums": st.builds(
        lambda args, at, layers, prefetch: (*args, min(at, len(args[0])), layers, prefetch),
        _accounts, st.integers(0, 12), st.sampled_from([1.0, 80.0, 61.0]), st.booleans()),
    "asicsim.kernels.accounts:op_step_fields": st.builds(
        lambda row, clocks, bucket, flops, sums, count, bits: (
            np.array(row, dtype=np.float64), *clocks, bucket, flops, np.array(sums[0]), count, np.array(sums[1]), bits),
        _cost_row, st.tuples(*[st.floats(1e-10, 1e-8)] * 3), st.integers(0, 4), st.floats(0.0, 1e15),
        st.tuples(*[st.lists(st.floats(0.0, 1e3), min_size=16, max_size=16)] * 2), st.sampled_from([1.0, 80.0, 61.0]),
        st.integers(1, 20)),
    "asicsim.kernels.gpu_price:dense_costs": _dense_costs,
    "asicsim.kernels.schedule:schedule_step_s": st.builds(
        schedule_args, st.lists(_stream, min_size=1, max_size=2), st.integers(1, 12), st.booleans()),
    "asicsim.kernels.memory:transfer_time_s": st.tuples(sizes_bytes, bandwidths, latencies),
    "asicsim.kernels.collectives:ring_allreduce_time_s": st.tuples(sizes_bytes, ranks, latencies, bandwidths),
    "asicsim.kernels.collectives:interp_busbw_bytes_per_s": st.builds(
        lambda size, curve: (size, *curve), st.floats(0.0, 1e13), busbw_curves()),
    "asicsim.kernels.collectives:curve_allreduce_time_s": st.builds(
        curve_allreduce_args, sizes_bytes, ranks, busbw_curves(), st.none() | bandwidths),
    "asicsim.kernels.gpu_gemm:gemm_config_time_s": st.builds(
        lambda m, n, k, tile, split_k, sms, rate, wq: (m, n, k, *tile, split_k, sms, rate, wq),
        gemm_dims, gemm_dims, gemm_dims, st.sampled_from([(128, 256), (128, 128), (64, 64)]), st.integers(1, 16),
        sm_counts, st.floats(1e11, 1e14), wave_quantization),
    "asicsim.kernels.gpu_gemm:gemm_compute": st.builds(
        gemm_compute_args, gemm_dims, gemm_dims, gemm_dims, sm_counts, peaks, efficiencies,
        st.sampled_from([(128, 256, 128), (128, 128, 64), (64, 128, 64)]), st.floats(0.5, 1.0),
        st.sampled_from([256, 1024, 4096]), wave_quantization),
    "asicsim.kernels.attention:attention_flops": st.builds(
        lambda seqs, heads, head_dim, causal: (*_seq_arrays(seqs), heads, head_dim, causal),
        seq_lists, st.integers(1, 16), st.sampled_from([64, 128]), st.booleans()),
    "asicsim.kernels.attention:causal_entries": st.builds(_seq_arrays, seq_lists),
    "asicsim.kernels.chord:on_chord": st.builds(
        chord_fill_args, st.integers(0, 50), st.integers(2, 60), st.floats(0.0, 1.0), st.integers(1, 6),
        st.lists(st.floats(-1e3, 1e3), min_size=6, max_size=6), st.lists(st.floats(-1e3, 1e3), min_size=6, max_size=6),
        st.lists(st.floats(-1e-2, 1e-2), min_size=6, max_size=6), st.sampled_from([1e-9, 2.0 ** -10, 0.1])),
    "asicsim.kernels.chord:chord_fill": st.builds(
        chord_fill_args, st.integers(0, 50), st.integers(2, 60), st.floats(0.0, 1.0), st.integers(1, 6),
        st.lists(st.floats(-1e3, 1e3), min_size=6, max_size=6), st.lists(st.floats(-1e3, 1e3), min_size=6, max_size=6),
        st.lists(st.floats(-1e-2, 1e-2), min_size=6, max_size=6), st.sampled_from([1e-9, 2.0 ** -10, 0.1])),
    "asicsim.kernels.chord:chord_rows": st.builds(
        lambda va, vb, a, span, start, step, n: (np.array(va), np.array(vb), a, a + span, start, step, n),
        st.lists(st.floats(-1e3, 1e3), min_size=5, max_size=5), st.lists(st.floats(-1e3, 1e3), min_size=5, max_size=5),
        st.integers(0, 10_000), st.integers(0, 5_000), st.integers(0, 20_000), st.integers(1, 300), st.integers(0, 40)),
    "asicsim.kernels.paging:blocks_taken": st.builds(
        lambda seqs, block, steps: (np.array([c for c, _ in seqs], dtype=np.int64),
                                    np.array([max(c + extra, 0) for c, extra in seqs], dtype=np.int64), block, steps),
        st.lists(st.tuples(st.integers(0, 3000), st.integers(-40, 64)), max_size=12), st.integers(1, 32),
        st.integers(0, 200)),
    "asicsim.kernels.steplog:run_clock": st.builds(
        lambda steps, now, ahead: (np.array(steps), now, now + ahead),
        st.lists(st.floats(0.0, 1.0), max_size=40), st.floats(0.0, 1e4), st.floats(-1.0, 20.0)),
    "asicsim.kernels.steplog:run_rows": st.builds(run_rows_args, st.integers(1, 30), st.integers(0, 30),
                                                  st.integers(1, 8), st.integers(0, 5_000), st.floats(0.0, 1e4)),
    "asicsim.kernels.steplog:book_run": st.builds(
        book_run_args, st.integers(1, 30), st.integers(1, 8), st.integers(0, 5_000), st.floats(0.0, 1e4),
        st.floats(-1.0, 20.0), st.lists(st.tuples(st.integers(0, 3000), st.integers(-40, 64)), max_size=12),
        st.integers(1, 32), st.integers(0, 10_000)),
    "asicsim.kernels.attention:kv_cache_bytes": st.builds(
        lambda seqs, heads, head_dim, elem: (*_seq_arrays(seqs), heads, head_dim, elem),
        seq_lists, st.integers(1, 8), st.sampled_from([64, 128]), st.sampled_from([0.5, 1.0, 2.0])),
    "asicsim.kernels.attention:prefill_attention_compute_s": st.builds(
        prefill_args, seq_lists, st.integers(1, 8), st.sampled_from([64, 128]), st.sampled_from([64, 128]),
        st.sampled_from([64, 128]), st.booleans(), sm_counts, peaks, efficiencies),
    "asicsim.kernels.vector:vector_cycles": st.tuples(st.integers(-5, 5000), st.integers(-1, 8), st.integers(-1, 64)),
    "asicsim.kernels.systolic:fold_shape": st.tuples(dataflows, *[st.integers(0, 1 << 20)] * 3),
    "asicsim.kernels.systolic:fold_latency_cycles": st.tuples(st.integers(1, 512), st.integers(1, 512), dataflows,
                                                              st.integers(0, 1 << 20)),
    "asicsim.kernels.systolic:compute_cycles": st.builds(
        compute_cycles_args, st.integers(1, 32), st.integers(1, 32), dataflows, *[st.integers(1, 256)] * 3, modes),
    "asicsim.kernels.systolic:gemm_cycles": st.builds(gemm_cycles_args, *_gemm),
    "asicsim.kernels.systolic:tiled_gemm_cycles": st.builds(tiled_gemm_cycles_args, *_gemm),
    "asicsim.kernels.systolic:multi_array_gemm_cycles": st.builds(multi_array_gemm_cycles_args, st.integers(1, 6),
                                                                  *_gemm),
    "asicsim.kernels.systolic:shared_gemm_cycles": st.builds(multi_array_gemm_cycles_args, st.integers(1, 6), *_gemm),
    "asicsim.kernels.systolic:attention_cycles": st.builds(
        attention_cycles_args, st.lists(st.tuples(st.integers(0, 24), st.integers(0, 40)), max_size=4),
        st.integers(1, 3), st.sampled_from([1, 2, 4]), st.sampled_from([4, 8, 16]), st.integers(1, 4), array_sides,
        array_sides, dataflows, modes),
    "asicsim.kernels.systolic:attention_work": st.builds(
        lambda args, ops, lanes: (*args, ops, lanes),
        st.builds(attention_cycles_args, st.lists(st.tuples(st.integers(0, 24), st.integers(0, 40)), max_size=4),
                  st.integers(1, 3), st.sampled_from([1, 2, 4]), st.sampled_from([4, 8, 16]), st.integers(1, 4),
                  array_sides, array_sides, dataflows, modes),
        st.sampled_from([1.0, 5.0]), st.integers(1, 64)),
    "asicsim.kernels.systolic:gemm_cycles_batch": st.builds(
        gemm_cycles_batch_args,
        st.lists(st.tuples(array_sides, array_sides, dataflows, gemm_sides, gemm_sides, gemm_sides, sram_words,
                           port_words_per_cycle), max_size=4),
        modes),
}


def test_every_strategy_belongs_to_an_entry():
    assert sorted(set(STRATEGIES) - {e.kernel for e in ENTRIES}) == []


# ---- kernel == twin ----


def assert_same(got, want, where="result"):
    """Kernel result `got` equals twin result `want`: integers exactly (and integers on both sides),
    floats to a relative REL; tuples, lists and arrays element by element."""
    if isinstance(got, np.ndarray):
        got = got.tolist()
    if isinstance(want, np.ndarray):
        want = want.tolist()
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want), f"{where}: {got!r} vs twin {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, (int, np.integer)):
        assert isinstance(got, (int, np.integer)), f"{where}: kernel {got!r} is not an integer (twin {want!r})"
        assert got == want, f"{where}: kernel {got} != twin {want}"
    else:
        assert math.isclose(got, want, rel_tol=REL, abs_tol=0.0), f"{where}: kernel {got!r} vs twin {want!r}"


def test_assert_same_can_fail():
    """The comparison is strict where it should be."""
    assert_same((3, 1.0), (3, 1.0 + 1e-12))
    with pytest.raises(AssertionError):
        assert_same((3, 1.0), (3, 1.0 + 1e-6))
    with pytest.raises(AssertionError):
        assert_same(3.0, 3)  # a count must come back as an integer
    with pytest.raises(AssertionError):
        assert_same(np.array([1, 2]), [1, 3])
    with pytest.raises(AssertionError):
        assert_same((1, 2), (1, 2, 3))


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
@settings(deadline=None)
@given(data=st.data())
def test_kernel_equals_twin(entry, data):
    args = data.draw(STRATEGIES[entry.kernel], label="args")
    assert_same(registry.load_kernel(entry)(*args), load_twin(entry)(*args))
