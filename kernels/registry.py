"""The kernel registry: one record per public jitted kernel, read by tests and benchmarks.

Each `KernelEntry` names the kernel (`module:function`), its slow plain-Python twin in tests/reference/
(a string: tests/ is not installed, so only tests import it), a one-line description, the unit of what it
returns, and a representative call (`example()` builds the arguments, the shapes a Llama-70B run passes).
tests/test_kernel_registry.py checks every entry against its twin on drawn arguments and fails on a
public jitted function in kernels/ that is not registered; benchmarks/bench_kernels.py times every entry.

Scope: public functions (no leading underscore) built by `asicsim.kernels.jit.jit`. Private helpers
(`_ceil_div`, `_bus_factor`, the `_scalesim_memory` ring model, ...) are not registered: they are
implementation details, reached and checked only through the registered kernels that call them.

Adding a kernel: decorate it with `@jit` in a kernels/ module, write its twin in tests/reference/, add a
`KernelEntry` below and a strategy for its arguments in tests/test_kernel_registry.py.
"""

import numpy as np

__all__ = ["KernelEntry", "entries", "load_kernel"]


class KernelEntry:
    """One registered kernel: dotted names of the kernel and its twin, what it computes, its unit.

    `example` is a function of no arguments returning a representative argument tuple (fresh arrays on
    every call, so a caller may not alter the next caller's input).
    """

    __slots__ = ("kernel", "twin", "description", "unit", "example")

    def __init__(self, kernel, twin, description, unit, example):
        for field, value in (("kernel", kernel), ("twin", twin)):
            module, _, function = value.partition(":")
            if not module or not function:
                raise ValueError(f"{field} must be 'package.module:function', got {value!r}")
        object.__setattr__(self, "kernel", kernel)
        object.__setattr__(self, "twin", twin)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "unit", unit)
        object.__setattr__(self, "example", example)

    def __setattr__(self, name, value):
        raise AttributeError("KernelEntry is read-only")

    @property
    def name(self):
        """The kernel's function name, e.g. 'gemm_cycles'."""
        return self.kernel.partition(":")[2]

    def __repr__(self):
        return f"KernelEntry({self.kernel!r} -> {self.unit})"


def load_kernel(entry):
    """Import the kernel an entry (or a 'module:function' string) names and return the jitted function."""
    dotted = entry.kernel if isinstance(entry, KernelEntry) else entry
    module, _, function = dotted.partition(":")
    # The builtin __import__ keeps this module's imports to numpy (tests/test_layering.py).
    return getattr(__import__(module, fromlist=[function]), function)


def entries():
    """Every registered kernel, in registration order."""
    return _ENTRIES


# ---- representative calls: Llama-3-70B at TP 8 (8 query heads and 1 KV head per chip, head_dim 128) ----

_GPU_GEMM_TILES = (128, 256, 128, 0.85, 1024)  # tile_m, tile_n wide / narrow, narrow efficiency, split-k depth
_NCCL_SIZES_BYTES = 2.0 ** np.arange(10, 31, 2)  # 1 KiB .. 1 GiB, as nccl-tests steps
_NCCL_BUSBW_BYTES_PER_S = np.minimum(470e9, 0.07e9 * _NCCL_SIZES_BYTES / 2.0 ** 10)


def _run_rows_example():
    """A 64-step run of 17 values (the step's seconds first) booked into rows of 33 fields."""
    values = np.linspace(1e-3, 2e-3, 64 * 17).reshape(64, 17)
    copied = np.stack((np.arange(7, 23), np.arange(1, 17)), axis=1)
    clock = 12.5 + np.cumsum(np.concatenate(([0.0], values[:, 0])))
    return (values, 48, copied, np.array([1, 4, 5, 23, 24, 28, 29]), np.array([0.0, 0.0, 9.0, 9.0, 2.0, 9.0, 9.0]),
            1000, clock, np.ones(64, dtype=np.int64), np.arange(300, 364, dtype=np.int64), np.array([0, 2, 3, 6, 25]),
            33)


def _book_run_example():
    """`_run_rows_example`'s run booked whole: 64 steps (the step's seconds in column 0), the next arrival after the
    48th step starts, 256 sequences 2,047 tokens in with 2,048-token caps (16-token blocks), 4,000 blocks in use."""
    values, _, copied, constant_columns, constants, first, clock, micro, _, varying, width = _run_rows_example()
    return (values, 0, micro, 12.5, clock[48] - 1e-4, np.full(256, 2047, dtype=np.int64),
            np.full(256, 2048, dtype=np.int64), 16, 4000, copied, constant_columns, constants, first, varying, width)


def _chord_example():
    """A 64-step decode run's ends and midpoint, 17 fields (the first two seconds), the midpoint on the chord."""
    va, vb = np.linspace(1e-3, 2e-3, 17), np.linspace(1.2e-3, 2.4e-3, 17)
    seconds = np.zeros(17, dtype=np.bool_)
    seconds[:2] = True
    return va, vb, (va + vb) / 2, 0, 63, 31, 2.0 ** -10, seconds, 0


def _prefill_seqs():
    """Eight 2048-token prompts, nothing cached: (seq_new, seq_past)."""
    return np.full(8, 2048, dtype=np.int64), np.zeros(8, dtype=np.int64)


def _decode_seqs():
    """256 decode sequences of one new token after 2047 cached: (seq_new, seq_past)."""
    return np.ones(256, dtype=np.int64), np.full(256, 2047, dtype=np.int64)


def _gemm_batch_example():
    """1,000 transformer-like GEMMs on 128 / 256 arrays with mixed SRAM and bandwidth (the `gemm --csv` use)."""
    rng = np.random.default_rng(7)
    count = 1000
    return (rng.choice(np.array([128, 256]), count), rng.choice(np.array([128, 256]), count),
            rng.integers(0, 3, count), rng.choice(np.array([1, 8, 64, 256, 1024, 2048]), count),
            rng.choice(np.array([1024, 4096, 8192, 14336]), count), rng.choice(np.array([1024, 4096, 8192]), count),
            1, rng.choice(np.array([0, 1 << 10, 1 << 20]), count), *(rng.choice(np.array([0.0, 0.0, 64.0, 256.0]), count)
                                                                     for _ in range(3)))


def _schedule_example():
    """Two interleaved micro-batches of an 80-layer stage: norm, matmul, attention, matmul, all-reduce, ..."""
    layer = np.array([[2e-6, 1e-6, 0.0, 0.0, 1e-6], [30e-6, 2e-6, 28e-6, 0.0, 1e-6], [20e-6, 15e-6, 0.0, 0.0, 1e-6],
                      [25e-6, 2e-6, 24e-6, 0.0, 1e-6], [0.0, 0.0, 0.0, 40e-6, 1e-6], [60e-6, 3e-6, 55e-6, 0.0, 1e-6],
                      [0.0, 0.0, 0.0, 40e-6, 1e-6]])
    stream = np.concatenate([layer[:1], layer, layer[:2]])  # pre, layer, post
    ops = np.concatenate([stream, stream])
    collective = np.tile(np.array([False, False, False, False, False, True, False, True, False, False]), 2)
    bounds = np.array([[0, 1, 1, 8, 8, 10], [10, 11, 11, 18, 18, 20]], dtype=np.int64)
    return ops, collective, bounds, 80, True, 1e-12


def _dense_costs_example():
    """One Llama-70B layer's array-free ops at TP 8 on an H100-like GPU, 1,024 tokens: norm, QKV, O, all-reduce,
    residual, norm, gate/up, SiLU, down, all-reduce, residual (op rows, constants, NCCL curve)."""
    matmul, streamed, allreduce_kind, throttled = 0, 1, 2, 128  # kernels.gpu_price: KIND_* codes, THROTTLED
    t, h = 1024, 8192

    def gemm(k, n):  # fp8 weights, bf16 activations
        return 2.0 * t * k * n, k * n * 1.0, t * k * 2.0, t * n * 2.0, 0.0, 0.0, 0.0, 1, t, n, k

    stream = (0.0, 0.0, t * h * 2.0, t * h * 2.0, 0.0, 0.0, 0.0, 1, 0, 0, 0)
    allreduce = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, t * h * 2.0, 8, 0, 0, 0)
    ops = [(streamed, stream), (matmul, gemm(h, 1280)), (matmul, gemm(1024, h)), (allreduce_kind, allreduce),
           (streamed, stream), (streamed, stream), (matmul, gemm(h, 7168)), (streamed, stream),
           (matmul, gemm(3584, h)), (allreduce_kind, allreduce), (streamed, stream)]
    derived = (1978.9e12, 0.7, 1.0, 360e9, 256.0 * 1024)  # peak, GEMM efficiency, element bytes, cap, one-shot limit
    table = np.array([(kind, throttled if kind == matmul else 0, *derived, *v) for kind, v in ops], dtype=np.float64)
    consts = np.array([1.83e9, 1e-6, 4e-6, 2e-6, 3.0e12, 2.6e12, 2.9e12, 132, 128, 256, 128, 0.85, 1024, 1.0, 3e-6,
                       0.9, 150e9, 2e-6, 5e-6, 360e9, 1.0, 4.0])
    return table, consts, _NCCL_SIZES_BYTES.copy(), _NCCL_BUSBW_BYTES_PER_S.copy()


def _accounts_example():
    """Sixteen ops' cost rows at a 1.83 GHz clock: a GEMM, a stream, a collective and a fallback op, in turn."""
    rows = np.zeros((16, 10))
    rows[0::4, 0], rows[0::4, 1], rows[0::4, 2] = 9e4, 2e4, 5e4  # GEMMs: compute, activations, weights
    rows[1::4, 1], rows[2::4, 3], rows[3::4, 4], rows[3::4, 8] = 3e4, 4e4, 2e-5, 2e-5
    rows[:, 4] += 1e-6
    rows[:, 7], rows[:, 9] = 1e7, 1e-4
    return rows, 1 / 1.83e9, 1 / 1.83e9, 1 / 1.83e9, np.array([0, 3, 2, 3] * 4, dtype=np.int64), np.full(16, 3e10)


def _op_step_fields_example():
    """A decode step of Llama-70B's 80 layers on a 1.5 GHz chip: its attention op's cost row, the rest's sums."""
    row = np.array([3.0e3, 1.2e3, 0.0, 0.0, 0.0, 2.5e3, 0.0, 5.0e6, 0.0, 0.0])
    head, tail = np.linspace(1e-4, 2e-3, 16), np.linspace(1e-6, 1e-5, 16)
    return row, 1 / 1.5e9, 1 / 1.5e9, 1 / 1.5e9, 1, 2.6e8, head, 80.0, tail, 10


def _decode_run_example():
    """A 40-step decode run of 8 sequences on an ASIC-like chip (4 arrays of 128 x 128): one norm, matmul, attention,
    matmul and all-reduce per layer of an 80-layer stage, the attention op's row scratch, its split floor untested."""
    layer = np.array([[2e-6, 1e-6, 0.0, 0.0, 0.0], [30e-6, 2e-6, 28e-6, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0],
                      [25e-6, 2e-6, 24e-6, 0.0, 0.0], [0.0, 0.0, 0.0, 40e-6, 0.0]])
    ops = np.concatenate([layer[:1], layer, layer[:1]])
    collective = np.array([False, False, False, False, False, True, False])
    bounds = np.array([[0, 1, 1, 6, 6, 7]], dtype=np.int64)
    steps = np.array([2.6e5, 2048.0, 1 / 1.5e9, 1 / 1.5e9, 1 / 1.5e9, 1.0, 10.0, 80.0, 80.0, 1.0, 0.0, -1.0, 1.05])
    head, tail = np.linspace(1e-4, 2e-3, 16), np.linspace(1e-6, 1e-5, 16)
    seconds = np.array([True] * 8 + [False, False] + [True] * 5 + [False, True])
    return (np.arange(900, 1700, 100, dtype=np.int64), 40, np.inf, np.ones(8, dtype=np.int64), _ATTENTION_TERMS,
            np.array([0.0, 16384.0, 49152.0, 32768.0]), steps, head, tail, ops, collective, bounds, 3, True, 1e-12, 1e-3,
            seconds, 0)


# `decode_run.ATTENTION_TERMS` of Llama-70B's attention at TP 8 on 4 arrays of 128 x 128: 8 query heads over 1 KV
# head, 128 PE steps, weight-stationary, pipelined, 5 softmax operations a score, 4,096 lanes, 2,048 HBM bytes a cycle
# and 32 MiB of SRAM for activations
_ATTENTION_TERMS = np.array([8.0, 1.0, 128.0, 4.0, 128.0, 128.0, 1.0, 1.0, 5.0, 4096.0, 2048.0, 33554432.0])


def _attention_row_example():
    """A prefill chunk of 512 tokens after 1,536 cached beside 8 decoding sequences: (new, cached) tokens per sequence,
    terms, FLOPs, weight, KV-read, KV-write, activation-in and -out bytes (these in HBM: past the SRAM share)."""
    new = np.array([512] + [1] * 8, dtype=np.int64)
    past = np.array([1536] + list(range(900, 1700, 100)), dtype=np.int64)
    return new, past, _ATTENTION_TERMS, 2.6e5 * 1.1e6, 0.0, 2048.0 * 11536, 2048.0 * 520, 3.0e7, 2.5e7


def _mixed_step_example():
    """A prefill chunk of 512 tokens after 1,536 cached beside 8 decoding sequences, on an 80-layer stage: each graph's
    (the whole step's, then its halves': the chunk alone, the decodes alone) layer part (a norm; the layer's norm, QKV,
    attention ops' zero rows, O, all-reduce) with made-up sums, and its final norm as its post op; Llama-70B's
    attention terms at TP 8."""
    norm, qkv = [2e-6, 1e-6, 0.0, 0.0, 0.0], [30e-6, 2e-6, 28e-6, 0.0, 0.0]
    o_proj, allreduce = [25e-6, 2e-6, 24e-6, 0.0, 0.0], [0.0, 0.0, 0.0, 40e-6, 0.0]

    def graph_of(attention_ops, scale):  # (part rows, flags, terms, post rows, post flags)
        layer = [norm, qkv, *[[0.0] * 5] * attention_ops, o_proj, allreduce]
        terms = [*np.linspace(1e-4, 2e-3, 16) * scale, 80.0, 4e-3 * scale, 3e-3, 1.0, float(len(layer)),
                 float(attention_ops), 2.0, 3.0]
        post = np.array([[*norm, *np.linspace(1e-6, 1e-5, 16)]])
        return (np.array([norm, *layer]), np.array([False] * len(layer) + [True]), np.array(terms), post,
                np.array([False]))

    new, past = np.array([512], dtype=np.int64), np.array([1536], dtype=np.int64)
    dec = np.arange(900, 1700, 100, dtype=np.int64)
    none = np.zeros(0, dtype=np.int64)
    graph = np.array([2.6e5, 2048.0, 1280.0, 1024.0, 2.0])
    engine = np.array([1 / 1.5e9, 1 / 1.5e9, 1 / 1.5e9, 10.0, 80.0, 1.0 + 1e-9, 1.0])
    return (new, past, dec, 2, new, past, none, none, none, dec, *graph_of(2, 1.0), *graph_of(1, 0.6),
            *graph_of(1, 0.5), _ATTENTION_TERMS, _ATTENTION_TERMS, graph, engine, True, 1e-12)


def _asic_rows_example():
    """A Llama-70B layer's array-free ops at TP 8 on a Sohu-like chip (16 arrays of 256 x 256), 512 tokens: norm, QKV,
    O, all-reduce, residual, norm, gate/up, SiLU, down, all-reduce (op rows `asic_price.OP_COLUMNS`, chip constants)."""
    t, h, matmul, vector, allreduce = 512, 8192, 0, 1, 2

    def gemm(k, n):  # fp8 weights, bf16 activations, 1 MAC per PE per cycle
        return 2.0 * t * k * n, k * n * 1.0, t * k * 2.0, t * n * 2.0, 0.0, 0.0, 0.0, 1, t, n, k, matmul, 1

    stream = (t * h * 5.0, 0.0, t * h * 2.0, t * h * 2.0, 0.0, 0.0, 0.0, 1, 0, 0, 0, vector, 0)
    reduce = (0.0, 0.0, t * h * 2.0, t * h * 2.0, 0.0, 0.0, t * h * 2.0, 8, 0, 0, 0, allreduce, 0)
    table = np.array([stream, gemm(h, 1280), gemm(1024, h), reduce, stream, stream, gemm(h, 7168), stream,
                      gemm(3584, h), reduce])
    consts = np.array([16, 256, 256, 1, 1, 3680.0, 8192.0, 7.5e6, 1.2e8, 6.0e7, 1.0, 3680.0, 32768, 1.5e9, 1e-6,
                       112.5e9])
    return table, consts


def _entry(module, function, twin, description, unit, example):
    return KernelEntry(f"asicsim.kernels.{module}:{function}", f"tests.reference.{twin}", description, unit, example)


_ENTRIES = (
    # ---- kernels/memory.py ----
    _entry("memory", "transfer_time_s", "gpu_ref:transfer_time_s",
           "latency plus bytes over a bandwidth (GPU point-to-point send)", "s",
           lambda: (16.8e6, 450e9, 2e-6)),
    # ---- kernels/collectives.py ----
    _entry("collectives", "ring_allreduce_time_s", "gpu_ref:ring_allreduce_time_s",
           "alpha-beta ring all-reduce (the ASIC's links)", "s",
           lambda: (16.8e6, 8, 1e-6, 112.5e9)),
    _entry("collectives", "interp_busbw_bytes_per_s", "gpu_ref:interp_busbw_bytes_per_s",
           "log-log interpolation of a measured NCCL bus-bandwidth curve", "bytes/s",
           lambda: (16.8e6, _NCCL_SIZES_BYTES.copy(), _NCCL_BUSBW_BYTES_PER_S.copy())),
    _entry("collectives", "curve_allreduce_time_s", "gpu_ref:curve_allreduce_time_s",
           "all-reduce time from a measured busbw curve, optionally capped (GPU tensor parallelism)", "s",
           lambda: (16.8e6, 8, _NCCL_SIZES_BYTES.copy(), _NCCL_BUSBW_BYTES_PER_S.copy(), 360e9)),
    # ---- kernels/gpu_gemm.py ----
    _entry("gpu_gemm", "gemm_config_time_s", "gpu_ref:gemm_config_time_s",
           "GPU GEMM tensor seconds for one tile shape and split-k factor (waves x tile time)", "s",
           lambda: (256, 8192, 8192, 128, 256, 1, 132, 1978.9e12 * 0.7 / 132, True)),
    _entry("gpu_gemm", "gemm_compute", "gpu_ref:gemm_compute",
           "fastest GPU GEMM tile configuration (wide/narrow tile, split-k)",
           "(s, tile_n columns, split_k count, waves)",
           lambda: (256, 10240, 8192, 132, 1978.9e12, 0.7, *_GPU_GEMM_TILES, True)),
    # ---- kernels/chord.py ----
    _entry("chord", "on_chord", "chord_ref:on_chord",
           "whether a decode step's values lie on the chord of two others (every field, relative)", "bool",
           lambda: _chord_example()),
    _entry("chord", "chord_fill", "chord_ref:chord_fill",
           "a decode run's midpoint checked against its interval's chord, and the rows along it",
           "(accepted, step values per row)", lambda: _chord_example()),
    _entry("chord", "chord_rows", "chord_ref:chord_rows",
           "rows of step values along a chord of a decode curve's piece", "step values per row",
           lambda: (np.linspace(1e-3, 2e-3, 17), np.linspace(1.5e-3, 2.5e-3, 17), 1000, 9000, 1200, 64, 40)),
    # ---- kernels/paging.py ----
    _entry("paging", "blocks_taken", "paging_ref:blocks_taken",
           "KV blocks a run of decode steps has taken by the end of each step (paged cache)", "blocks",
           lambda: (np.full(256, 2047, dtype=np.int64), np.full(256, 2048, dtype=np.int64), 16, 128)),
    # ---- kernels/steplog.py ----
    _entry("steplog", "run_clock", "steplog_ref:run_clock",
           "a decode run's step start times (a running sum) and how many start before the next arrival",
           "(s per step boundary, steps)", lambda: (np.full(64, 4.1e-3), 12.5, 12.7)),
    _entry("steplog", "run_rows", "steplog_ref:run_rows",
           "the step log's rows of a booked decode run: copied values, constants and per-step columns",
           "step fields per row", lambda: _run_rows_example()),
    _entry("steplog", "book_run", "steplog_ref:book_run",
           "a decode run booked in one call: its clock and steps before the next arrival, KV blocks in use per step, "
           "and its rows of the step log", "(s per step boundary, steps, blocks, step fields per row)",
           lambda: _book_run_example()),
    # ---- kernels/accounts.py ----
    _entry("accounts", "summed_accounts", "accounts_ref:summed_accounts",
           "a serial step's ops' StepTiming fields (time alone, busy seconds, wait, FLOPs, bytes, per kind) summed "
           "from their cost rows", "s, FLOP, bytes, J", lambda: _accounts_example()),
    _entry("accounts", "part_sums", "accounts_ref:part_sums",
           "a step engine's layer part from its ops' cost rows: pre + layers x layer sums, each op's seconds, the "
           "layer's weight seconds and the part's serial seconds", "s, FLOP, bytes, J",
           lambda: (*_accounts_example(), 4, 80.0, True)),
    _entry("accounts", "op_step_fields", "accounts_ref:op_step_fields",
           "a step's StepTiming fields with its one per-sequence op priced anew (its account added layers times), and "
           "that op's rounded schedule key", "s, FLOP, bytes, J", lambda: _op_step_fields_example()),
    # ---- kernels/asic_price.py ----
    _entry("asic_price", "dense_rows", "asic_price_ref:dense_rows",
           "the ASIC's matmuls, vector ops and collectives priced in one call (AsicDevice.cost_rows)",
           "cost rows (cycles, s, bytes)", lambda: _asic_rows_example()),
    # ---- kernels/decode_run.py ----
    _entry("decode_run", "attention_row", "decode_run_ref:attention_row",
           "a plain causal attention op's cost row on systolic arrays at the base clock (the ASIC's attention pricing)",
           "cost row (cycles, bytes)", lambda: _attention_row_example()),
    _entry("decode_run", "decode_run_values", "decode_run_ref:decode_run_values",
           "a decode run's step values on a scheduled engine with the ASIC's decode pricer, timed and interpolated in "
           "one call (the serving fast-forward)", "(ok, step values per row: s, FLOP, bytes, J)",
           lambda: _decode_run_example()),
    # ---- kernels/mixed_step.py ----
    _entry("mixed_step", "mixed_step_fields", "decode_run_ref:mixed_step_fields",
           "a prefilling step on a scheduled engine with the ASIC's attention pricing, whole or split into two "
           "interleaved halves, timed in one call (the serving loop's mixed steps)",
           "(StepTiming fields: s, FLOP, bytes, J; halves used)", lambda: _mixed_step_example()),
    # ---- kernels/gpu_price.py ----
    _entry("gpu_price", "dense_costs", "gpu_price_ref:dense_costs",
           "a GPU's GEMMs, memory-bound kernels, all-reduces and sends priced in one call (GpuDevice.cost_rows)",
           "cost rows (cycles, s, bytes, J)", lambda: _dense_costs_example()),
    # ---- kernels/attention.py ----
    _entry("attention", "attention_flops", "gpu_ref:attention_flops",
           "useful QK^T and PV FLOPs of a batch of sequences (causal or not)", "FLOP",
           lambda: (*_prefill_seqs(), 8, 128, True)),
    _entry("attention", "causal_entries", "gpu_ref:causal_entries",
           "unmasked causal score entries per head of a batch of sequences (an integer)", "entries",
           lambda: _prefill_seqs()),
    _entry("attention", "kv_cache_bytes", "gpu_ref:kv_cache_bytes",
           "K and V bytes read for every sequence's cached and new tokens (grouped-query)", "bytes",
           lambda: (*_decode_seqs(), 1, 128, 1.0)),
    _entry("attention", "prefill_attention_compute_s", "gpu_ref:prefill_attention_compute_s",
           "FlashAttention-style prefill tensor seconds over block tiles shared by the SMs", "s",
           lambda: (*_prefill_seqs(), 8, 128, 128, 128, True, 132, 1978.9e12, 0.6)),
    # ---- kernels/vector.py ----
    _entry("vector", "vector_cycles", "systolic_ref:vector_cycles_ref",
           "vector-unit cycles for elements x ops on SIMD lanes (softmax, norms)", "cycles",
           lambda: (8 * 2048 * 2048, 5, 4096)),
    # ---- kernels/systolic.py ----
    _entry("systolic", "fold_shape", "systolic_parts_ref:fold_shape_ref",
           "GEMM dims on the array rows, columns and in time for a dataflow", "(Sr, Sc, T) elements",
           lambda: (1, 64, 8192, 3584)),
    _entry("systolic", "fold_latency_cycles", "systolic_parts_ref:fold_latency_cycles_ref",
           "cycles one systolic fold takes alone (skew fill, T steps, drain)", "cycles",
           lambda: (256, 256, 1, 64)),
    _entry("systolic", "compute_cycles", "systolic_ref:compute_cycles_ref",
           "systolic GEMM cycles with memory never stalling (scalesim or pipelined folds)", "cycles",
           lambda: (256, 256, 1, 64, 8192, 3584, 1)),
    _entry("systolic", "gemm_cycles", "systolic_ref:gemm_cycles_ref",
           "one systolic array, one GEMM, with the SRAM/DRAM stall model",
           "(cycles, stall cycles, SRAM reads, SRAM writes, ifmap/filter DRAM reads, ofmap DRAM writes in words)",
           lambda: (256, 256, 1, 64, 8192, 3584, 1, 1 << 20, 2048.0, 230.0, 2048.0)),
    _entry("systolic", "tiled_gemm_cycles", "systolic_ref:tiled_gemm_cycles_ref",
           "best row-chunk tiling of one GEMM on one array (pipelined mode)",
           "(cycles, stall cycles, tile rows, ...)",
           lambda: (256, 256, 1, 64, 8192, 3584, 1, 1 << 20, 2048.0, 230.0, 2048.0)),
    _entry("systolic", "multi_array_gemm_cycles", "systolic_ref:multi_array_gemm_cycles_ref",
           "one GEMM split over several systolic arrays (the ASIC's matmuls)",
           "(cycles, stall cycles, ideal cycles, DRAM words per port)",
           lambda: (4, 256, 256, 1, 64, 8192, 3584, 1, 1 << 20, 2048.0, 230.0, 2048.0)),
    _entry("systolic", "shared_gemm_cycles", "systolic_ref:shared_gemm_cycles_ref",
           "one GEMM on arrays sharing one SRAM pool and port bandwidth per operand (AsicDevice matmuls)",
           "(cycles, stall cycles, ideal cycles, DRAM words per port)",
           lambda: (16, 256, 256, 1, 256, 1280, 8192, 1, 1 << 22, 32768.0, 3680.0, 32768.0)),
    _entry("systolic", "attention_cycles", "systolic_ref:attention_cycles_ref",
           "QK^T and PV GEMMs of every sequence and KV head on the arrays (the ASIC's attention)",
           "(cycles, ideal cycles)",
           lambda: (np.ones(64, dtype=np.int64), np.full(64, 2047, dtype=np.int64), 8, 1, 128, 4, 128, 128, 1, 1)),
    _entry("systolic", "attention_work", "systolic_ref:attention_work_ref",
           "an attention op's array cycles, score entries and softmax cycles in one call (the ASIC's attention)",
           "(cycles, ideal cycles, score entries, softmax cycles)",
           lambda: (np.ones(64, dtype=np.int64), np.full(64, 2047, dtype=np.int64), 8, 1, 128, 4, 128, 128, 1, 1, 5.0,
                    4096)),
    # ---- kernels/schedule.py ----
    _entry("schedule", "schedule_step_s", "schedule_ref:schedule_step_s_ref",
           "a step's static schedule of op streams on compute, HBM (preemptive priority) and link units, layers "
           "extrapolated once the schedule repeats (the step engine's direct pass)",
           "(s step, s memory wait)", lambda: _schedule_example()),
    _entry("systolic", "gemm_cycles_batch", "systolic_parts_ref:gemm_cycles_batch_ref",
           "gemm_cycles over arrays of GEMMs (the `asicsim gemm --csv` command)",
           "(cycles[], stall cycles[], utilisation[] fraction)",
           _gemm_batch_example),
)
