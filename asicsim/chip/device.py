"""The transformer ASIC as a Device: systolic matrix arrays, a vector unit, SRAM, HBM and links.

Pricing rules (each an explicit modelling choice, see docs/architecture.md):
- Matmuls and attention GEMMs run on the systolic arrays through the cycle-level kernels in
  `kernels.systolic` (pipelined folds, split across arrays); a PE does `macs_per_pe_per_cycle_<dtype>`
  MACs a cycle by consuming that many K-elements per cycle.
- Softmax, norms, activations and residual adds run on the vector unit, pipelined with the arrays.
- Weights stream from HBM (prefetched one op ahead when `prefetch_weights` and they fit the prefetch buffer);
  KV cache always lives in HBM; activations stay in SRAM when an op's activations fit in a quarter of it,
  otherwise they go to HBM.
- Collectives are ring all-reduces over the chip-to-chip links (latency per hop plus bytes over bandwidth).
- Boost clock: a spec with `max_clock_hz` above `clock_hz` (derived under a binding TDP) runs each array or
  vector op at the clock the power budget allows for the work it actually does (`asicsim.chip.power.
  op_clock_hz`: its MACs and lane operations, whatever the split leaves idle or half-filled), capped at
  max_clock_hz. The engine keeps one clock per unit, so the op's compute, ideal and stall cycles are handed
  over at the base clock: cycles x clock_hz / op clock. Memory and link time do not depend on the clock: a
  matmul whose filter port reads HBM counts its cycles with HBM delivering its bytes per second over the boost
  ceiling each cycle (the op clock follows from the cycles; see _matmul).

Memory (matmuls; docs/systolic.md, "The ASIC's memory"). The kernel's stall model prices every matmul
(`systolic.shared_gemm_cycles`, pipelined mode): each array has an ifmap, a filter and an ofmap buffer and
each port its own words/cycle.
- SRAM split (assumed, from sohu.toml's sram_bytes derivation): a quarter for resident activations, half for
  the weight prefetch buffer, a quarter for the arrays' operand buffers, a third of it per operand, shared
  by the arrays in use, in words of the port's widest word (an ifmap or filter word is the per-PE K-elements
  a PE takes a cycle, so its bytes are the op's bytes over the kernel's words).
- Port feeds: a port reading on-chip SRAM runs at `sram_bandwidth_bytes_per_cycle` (each port, shared by the
  arrays in use); a port reading HBM at the achievable HBM bandwidth (hbm_bandwidth_bytes_per_s x
  hbm_efficiency over the clock, the boost ceiling with boost).
- Weights: with `prefetch_weights`, an op whose weights fit the prefetch buffer gets them through the engine's
  prefetch (`weight_cycles`; the engine's HBM unit is their one HBM model) and the filter port reads SRAM.
  Otherwise, with the activations on chip, they stream through the filter port at the HBM bandwidth while the
  op runs: the kernel stalls on them and the same bytes, re-fetches included, are the op's `memory_cycles`.
- Activations that fit the quarter: ifmap and ofmap ports read and write SRAM, no HBM traffic. Larger ones are
  staged: the op runs as token chunks that fit the quarter, read from HBM into SRAM once per block of weights
  that fits the prefetch buffer (one block when prefetched) and written back once, and every port reads SRAM
  (weights that do not fit come into the buffer block by block while the op runs). Chunk boundaries pipeline
  as fold boundaries do, so the kernel runs the whole GEMM; the staging is `memory_cycles`. Feeding the ports
  from HBM instead would re-read the inputs once per column fold (an 8192-token prefill step: 135 -> 249 ms).
- One HBM model: an op ends at max(compute, memory) in the engine. For an op alone the kernel's stalls and the
  engine's HBM time describe the same bytes at the same bandwidth, so they overlap, never add.
- Attention GEMMs (`attention_cycles`) stay memory-unlimited; their KV-cache traffic is the engine's.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from functools import lru_cache
from typing import Any, Mapping

import numpy as np

from asicsim.kernels import asic_price, systolic
from asicsim.kernels.attention import causal_entries
from asicsim.kernels.collectives import ring_allreduce_time_s
from asicsim.kernels.jit import compiled
from asicsim.kernels.vector import vector_cycles
from asicsim.workloads.errors import Infeasible, InputError
from asicsim.workloads.graph_types import Op, OpKind, attention_flops_scale, grouped_as_dense, plain_attention

from asicsim.core.device import MATMUL_DTYPES, AreaBreakdown, SpecDevice, DieFloorplan, LinkLimits, OpCost, PowerLimits
from asicsim.core.specfile import build_spec

from .area import area_breakdown, die_floorplan
from .power import boost_budget_w, elementwise_flop_j, lane_op_j, mac_charge_j
from .power import capped_clock_hz, power_w, static_power_w
from .power import step_energy_j as _step_energy_j
from .programmability import check_model_runs, missing_features
from .spec import ARRAY_DTYPES, AsicSpec

__all__ = ["AsicDevice"]

_DATAFLOW_CODE = {"os": 0, "ws": 1, "is": 2}
_PIPELINED = 1
# Vector-unit operations per attention score: max, subtract, exp, sum, scale. Counted, not measured.
_SOFTMAX_OPS = 5.0
# SRAM split (assumed; sohu.toml's sram_bytes derivation): a quarter for resident activations (a 2048-token
# bf16 block, 33.6 MB of 128 MiB), half for the weight prefetch double buffer (the largest per-chip FP8
# weight double-buffered, 2 x 29.4 MB = 58.7 MB), the last quarter for the arrays' operand buffers. An op's
# weights are prefetched when they fit the whole double buffer: the kernel uses each weight tile once, in fold
# order, so the next op's weights fill the space the running op's spent tiles free.
_ACT_SRAM_SHARE = 0.25
_WEIGHT_SRAM_SHARE = 0.5
_OPERAND_SRAM_SHARE = 0.25
_OPERANDS = 3  # ifmap, filter, ofmap: one buffer each per array


class AsicDevice(SpecDevice):
    """Prices ops for one ASIC chip; `chips` is the server size the run uses."""

    what = "the ASIC model"

    def __init__(self, spec: AsicSpec, chips: int) -> None:
        self.spec = spec = _power_capped(spec)
        self.chips = chips
        s = spec
        self._dataflow = _DATAFLOW_CODE[s.dataflow]
        self._hbm_bytes_per_cycle = s.hbm_bandwidth_bytes_per_s * s.hbm_efficiency / s.clock_hz
        self._act_resident_bytes = s.sram_bytes * _ACT_SRAM_SHARE
        self._weight_buffer_bytes = s.sram_bytes * _WEIGHT_SRAM_SHARE
        self._operand_pool_bytes = s.sram_bytes * _OPERAND_SRAM_SHARE / _OPERANDS  # per operand, all arrays
        self._boost = s.max_clock_hz > s.clock_hz
        self._native = s.native_features
        self._pe_macs_by_dtype: dict[str, int] = {}
        self._attention_shapes: dict[tuple, tuple[int, bool]] = {}  # `_attention_shape`
        if self._boost:
            self._budget_w = boost_budget_w(s)
            self._lane_j = lane_op_j(s)
            self._flop_j = elementwise_flop_j(s)
            self._mac_j: dict[str, float] = {}

    def _base_cycles_per_cycle(self, cycles: float, dynamic_j: float) -> float:
        """clock_hz / the op's boost clock: base-clock cycles per op cycle (1 without boost)."""
        s = self.spec
        if dynamic_j <= 0.0:
            return s.clock_hz / s.max_clock_hz
        return s.clock_hz / min(s.max_clock_hz, max(s.clock_hz, self._budget_w * cycles / dynamic_j))

    def _mac_charge_j(self, dtype: str) -> float:
        joules = self._mac_j.get(dtype)
        if joules is None:
            joules = self._mac_j[dtype] = mac_charge_j(self.spec, dtype)
        return joules

    @classmethod
    def load_spec(cls, table: Mapping[str, Any], source: str) -> AsicSpec:
        return build_spec(AsicSpec, dict(table), source)

    @property
    def compute_unit_name(self) -> str:
        return "systolic arrays + vector unit"

    @property
    def memory_bytes_per_chip(self) -> float:
        return self.spec.hbm_capacity_bytes

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.spec.hbm_bandwidth_bytes_per_s

    def peak_flops_per_s(self, dtype: str) -> float:
        return self.spec.peak_flops_per_s(dtype)

    @property
    def prefetch_weights(self) -> bool:
        return self.spec.prefetch_weights

    @property
    def overlap_collectives(self) -> bool:
        return self.spec.overlap_collectives

    def missing_features(self, model: Any) -> tuple[str, ...]:
        """Features outside native_ops (asicsim.chip.programmability.missing_features)."""
        return tuple(missing_features(self.spec, model))

    def check_model(self, config: Mapping[str, Any], source: str) -> None:
        """A fixed-function chip runs its native op features, the rest on its fallback (or refuses the model)."""
        check_model_runs(self.spec, config, source)

    def step_energy_j(self, step: Any, dtype: str) -> float:
        """Joules one chip spends in one engine step (asicsim.chip.power)."""
        return _step_energy_j(self.spec, step, dtype)

    # --- pricing -------------------------------------------------------------------------------------
    def cost(self, op: Op) -> OpCost:
        if op.features and self._native is not None and not self._native.issuperset(op.features):
            return self._fallback(op)
        kind = op.kind
        if kind == OpKind.MATMUL:
            return self._matmul(op)
        if kind == OpKind.MOE_MATMUL:
            # The active experts' GEMMs as one dense GEMM (graph_types.grouped_as_dense). Side by side, its input
            # is one expert's rows: a weight block (some experts' weights) meets only its experts' tokens.
            dense = grouped_as_dense(op)
            if op.experts_axis == "n":
                dense = dataclasses.replace(dense, act_in_bytes=op.act_in_bytes / max(op.experts, 1.0))
            return self._matmul(dense)
        if kind in (OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE):
            return self._attention(op)
        if kind in (OpKind.ALLREDUCE, OpKind.P2P, OpKind.ALL_TO_ALL):
            return self._collective(op)
        if kind == OpKind.SSM_SCAN:
            cost = self._vector(op)
            state = self._bytes_cycles(op.kv_read_bytes + op.kv_write_bytes)
            return dataclasses.replace(cost, memory_cycles=cost.memory_cycles + state,
                           hbm_bytes=(cost.hbm_bytes or 0.0) + op.kv_read_bytes + op.kv_write_bytes)
        return self._vector(op)

    def cost_rows(self, ops) -> np.ndarray | None:
        """`cost` of ops without per-sequence arrays as rows (`kernels.accounts.COST_COLUMNS`) in one jitted call
        (`kernels.asic_price.dense_rows`), the same floats (the Device protocol's optional member; a step engine prices
        a new token count's layer ops so). None with boost (each op's clock follows its joules), where an op is of
        another kind (grouped expert GEMMs, attention, scans) or runs on the fallback unit, or with the kernels run as
        plain Python (`kernels.jit.compiled`: `cost` memoises its GEMM splits): `cost` op by op then."""
        if self._boost or not compiled():
            return None
        native, pe_macs = self._native, self._pe_macs
        table: list[float] = []
        for op in ops:
            d = op.__dict__
            code = _ROW_KIND.get(d["kind"])
            if code is None or d["seq_new"] is not None or (d["features"] and native is not None
                                                               and not native.issuperset(d["features"])):
                return None
            table += _ROW_VALUES(d)
            table += (code, pe_macs(d["dtype"]) if code == asic_price.KIND_MATMUL else 0)
        consts = self.__dict__.get("_row_constants")
        if consts is None:
            s = self.spec
            consts = self.__dict__["_row_constants"] = np.array((
                s.array_count, s.array_rows, s.array_cols, self._dataflow, _PIPELINED, self._hbm_bytes_per_cycle,
                s.sram_bandwidth_bytes_per_cycle, self._operand_pool_bytes, self._weight_buffer_bytes,
                self._act_resident_bytes, 1.0 if s.prefetch_weights else 0.0,
                s.hbm_bandwidth_bytes_per_s * s.hbm_efficiency / s.boost_clock_hz, s.vector_lanes, s.clock_hz,
                s.link_latency_s, s.link_bandwidth_bytes_per_s), dtype=np.float64)
        values = np.array(table, dtype=np.float64).reshape(len(ops), len(asic_price.OP_COLUMNS))
        return asic_price.dense_rows(values, consts)

    def _fallback(self, op: Op) -> OpCost:
        """An op whose features the datapath lacks, on the spec's fallback unit: hand-off latency, then its
        FLOPs or its bytes (weights, activations, KV) at the fallback's rates, whichever is slower. Serial:
        the arrays wait for it."""
        s = self.spec
        if not s.has_fallback:
            missing = sorted(set(op.features) - self._native)
            raise InputError(s.name, "native_ops", f"no datapath for {', '.join(missing)} (op {op.name}) and no "
                                                   "fallback (fallback_flops_per_s = 0)")
        seconds = s.fallback_latency_s + max(op.flops / s.fallback_flops_per_s,
                                             op.memory_bytes / s.fallback_bandwidth_bytes_per_s)
        return OpCost(fixed_s=seconds, fallback_s=seconds, hbm_bytes=0.0)

    def _bytes_cycles(self, nbytes: float) -> float:
        return nbytes / self._hbm_bytes_per_cycle

    def _activation_hbm_bytes(self, op: Op) -> float:
        """Activation bytes that go to HBM: none when they fit the quarter of SRAM kept for them."""
        act = op.act_in_bytes + op.act_out_bytes
        return 0.0 if act <= self._act_resident_bytes else act

    def _activation_cycles(self, op: Op) -> float:
        return self._bytes_cycles(self._activation_hbm_bytes(op))

    def _hbm_bytes(self, op: Op) -> float:
        """Bytes that really cross HBM: weights, KV cache, and activations that do not stay on chip."""
        return op.weight_bytes + op.kv_read_bytes + op.kv_write_bytes + self._activation_hbm_bytes(op)

    def _pe_macs(self, dtype: str) -> int:
        """MACs one PE does per cycle in `dtype` (the spec resolves fallbacks such as fp4 -> fp8); cached."""
        macs = self._pe_macs_by_dtype.get(dtype)
        if macs is None:
            macs = self._pe_macs_by_dtype[dtype] = max(int(self.spec.macs_per_cycle(dtype) // self.spec.pe_count), 1)
        return macs

    def _matmul(self, op: Op) -> OpCost:
        """A matmul on the arrays with the kernel's SRAM/HBM stall model live (module docstring, "Memory")."""
        s = self.spec
        per_pe = self._pe_macs(op.dtype)
        k_steps = -(-op.k // per_pe)
        hbm = self._hbm_bytes_per_cycle
        sram = s.sram_bandwidth_bytes_per_cycle
        # Bytes of one kernel word per port: an ifmap or filter word is the per_pe K-elements a PE takes a cycle.
        word_bytes = (op.act_in_bytes / max(op.m * k_steps, 1), op.weight_bytes / max(k_steps * op.n, 1),
                      op.act_out_bytes / max(op.m * op.n, 1))
        pool_words = max(int(self._operand_pool_bytes // max(*word_bytes, 1e-9)), 1)
        prefetched = s.prefetch_weights and op.weight_bytes <= self._weight_buffer_bytes
        resident = op.act_in_bytes + op.act_out_bytes <= self._act_resident_bytes
        # The filter port reads HBM only for weights that stream through the arrays: not prefetched, with the
        # activations on chip. Weights of an op whose activations are staged come in blocks through the buffer.
        filter_from_hbm = resident and not prefetched
        # Boost: HBM delivers its bytes per second over the op's clock each cycle, and the clock follows from the
        # cycles (op_clock_hz). The kernel counts them at the boost ceiling, the fastest an op may run: exact for
        # an op that runs there, conservative (HBM looks slower per cycle than it is) for one run below it.
        # Without boost the ceiling is the base clock.
        hbm_feed = s.hbm_bandwidth_bytes_per_s * s.hbm_efficiency / s.boost_clock_hz
        feeds = (sram, hbm_feed if filter_from_hbm else sram, sram)
        cycles, stall, ideal, _, filter_words, _ = _shared_gemm_cycles(
            s.array_count, s.array_rows, s.array_cols, self._dataflow, op.m, op.n, k_steps, _PIPELINED, pool_words,
            *(f / w if w > 0.0 else 0.0 for f, w in zip(feeds, word_bytes)))
        scale = 1.0
        if self._boost and cycles > 0:
            scale = self._base_cycles_per_cycle(float(cycles), 0.5 * op.flops * self._mac_charge_j(op.dtype))
        if resident:
            streamed = float(filter_words) * word_bytes[1] if filter_from_hbm else 0.0
        else:
            # Staged through the activation quarter in token chunks: inputs read from HBM once per weight block
            # (one block if prefetched, else as many as the weight buffer needs), outputs written back once.
            blocks = 1 if prefetched else max(math.ceil(op.weight_bytes / self._weight_buffer_bytes), 1)
            streamed = blocks * op.act_in_bytes + op.act_out_bytes + (0.0 if prefetched else op.weight_bytes)
        prefetch_bytes = op.weight_bytes if prefetched else 0.0
        return OpCost(compute_cycles=float(cycles) * scale, memory_cycles=streamed / hbm,
                      weight_cycles=prefetch_bytes / hbm, ideal_compute_cycles=float(ideal) * scale,
                      stall_cycles=float(stall) * scale, hbm_bytes=prefetch_bytes + streamed)

    def _attention_shape(self, op: Op) -> tuple[int, bool]:
        """(PE steps per head, whether the op is plain causal attention: no window, MLA or sinks, so its arrays
        imply its FLOPs) of an attention op, found once per dtype, head size, features and window (a serving hour
        prices ~10^5 attention ops of a handful of shapes)."""
        key = (op.dtype, op.head_dim, op.features, op.window)
        hit = self._attention_shapes.get(key)
        if hit is None:
            per_pe = self._pe_macs(op.dtype)
            hit = self._attention_shapes[key] = (-(-op.head_dim // per_pe), plain_attention(op))
        return hit

    def _attention(self, op: Op) -> OpCost:
        s = self.spec
        head_steps, plain = self._attention_shape(op)
        new, past = op.seq_new, op.seq_past
        # Windows, MLA, sinks: the op's own FLOPs over what the arrays imply (`attention_flops_scale`, 1.0 if plain).
        scale_work = 1.0 if plain else attention_flops_scale(op)
        if scale_work == 1.0 and new.dtype == np.int64 and past.dtype == np.int64:  # the same numbers in one call
            work = systolic.attention_work(
                new, past, op.q_heads, op.kv_heads, head_steps, s.array_count, s.array_rows, s.array_cols,
                self._dataflow, _PIPELINED, _SOFTMAX_OPS, s.vector_lanes)
        else:
            array_cycles, ideal = systolic.attention_cycles(
                new, past, op.q_heads, op.kv_heads, head_steps, s.array_count, s.array_rows, s.array_cols,
                self._dataflow, _PIPELINED)
            scores = _causal_entries(new, past) * op.q_heads
            if scale_work != 1.0:
                array_cycles, ideal, scores = array_cycles * scale_work, ideal * scale_work, scores * scale_work
            work = (array_cycles, ideal, scores, vector_cycles(scores, _SOFTMAX_OPS, s.vector_lanes))
        return OpCost(*self._attention_row(work, op.flops, op.dtype, op.weight_bytes, op.kv_read_bytes,
                                           op.kv_write_bytes, self._activation_hbm_bytes(op)))

    def _attention_row(self, work: tuple, flops: float, dtype: str, weight_bytes: float, kv_read_bytes: float,
                       kv_write_bytes: float, act_bytes: float) -> tuple[float, ...]:
        """An attention op's cost row (OpCost's fields in order, `kernels.accounts.COST_COLUMNS`) from its work on the
        arrays and lanes (`systolic.attention_work`'s four numbers) and its bytes: `_attention` and the decode pricer
        (`decode_attention_pricer`) share it."""
        array_cycles, ideal, scores, softmax = work
        cycles = float(max(array_cycles, softmax))
        scale = 1.0
        if self._boost and cycles > 0.0:
            dynamic_j = 0.5 * flops * self._mac_charge_j(dtype) + scores * _SOFTMAX_OPS * self._lane_j
            scale = self._base_cycles_per_cycle(cycles, dynamic_j)
        # The sums `_bytes_cycles`, `_activation_cycles` and `_hbm_bytes` give, with the activation bytes found once.
        per_cycle = self._hbm_bytes_per_cycle
        kv_bytes = kv_read_bytes + kv_write_bytes
        return (cycles * scale, kv_bytes / per_cycle + act_bytes / per_cycle, 0.0, 0.0, 0.0, float(ideal) * scale, 0.0,
                weight_bytes + kv_read_bytes + kv_write_bytes + act_bytes, 0.0, 0.0)

    def _plain_head_steps(self, op: Op) -> int | None:
        """PE steps per head of an attention op `cost` prices as plain causal attention on the arrays (its features
        native; no window, MLA or sinks), None for any other: what the pricer and the kernels' terms price."""
        if op.features and self._native is not None and not self._native.issuperset(op.features):
            return None
        head_steps, plain = self._attention_shape(op)
        return head_steps if plain else None

    def decode_attention_pricer(self, op: Op):
        """For decode attention ops equal to `op` but in their cached tokens (`seq_past`, an int64 array as long as
        `op`'s, and the two fields it sets, `flops` and `kv_read_bytes`): a function of (seq_past, flops,
        kv_read_bytes) giving such an op's cost row, `cost`'s fields bit for bit (the Device protocol's optional
        member; a decode run prices thousands). None for an op `cost` would price another way (fallback, not plain
        causal attention, arrays not int64)."""
        if op.kind != OpKind.ATTENTION_DECODE or op.seq_new is None or op.seq_new.dtype != np.int64:
            return None
        head_steps = self._plain_head_steps(op)
        if head_steps is None:
            return None
        s = self.spec
        new, heads, kv_heads, dtype = op.seq_new, op.q_heads, op.kv_heads, op.dtype
        shape = (s.array_count, s.array_rows, s.array_cols, self._dataflow, _PIPELINED, _SOFTMAX_OPS, s.vector_lanes)
        weight_bytes, kv_write_bytes, act_bytes = op.weight_bytes, op.kv_write_bytes, self._activation_hbm_bytes(op)
        work, row = systolic.attention_work, self._attention_row

        def price(past: np.ndarray, flops: float, kv_read_bytes: float) -> tuple[float, ...]:
            return row(work(new, past, heads, kv_heads, head_steps, *shape), flops, dtype, weight_bytes, kv_read_bytes,
                       kv_write_bytes, act_bytes)

        return price

    def systolic_attention_terms(self, op: Op) -> np.ndarray | None:
        """`kernels.decode_run.ATTENTION_TERMS` of an attention op that `cost` prices as that module's `attention_row`
        does (plain causal attention on the arrays, at the base clock: no boost; int64 arrays), for kernels that price
        such ops in a loop (the Device protocol's optional member); None for any other op."""
        if self._boost or op.kind not in (OpKind.ATTENTION_PREFILL, OpKind.ATTENTION_DECODE) or op.seq_new is None \
                or op.seq_new.dtype != np.int64 or op.seq_past is None or op.seq_past.dtype != np.int64:
            return None
        head_steps = self._plain_head_steps(op)
        if head_steps is None:
            return None
        s = self.spec
        return np.array((op.q_heads, op.kv_heads, head_steps, s.array_count, s.array_rows, s.array_cols, self._dataflow,
                         _PIPELINED, _SOFTMAX_OPS, s.vector_lanes, self._hbm_bytes_per_cycle, self._act_resident_bytes),
                        dtype=np.float64)

    def _vector(self, op: Op) -> OpCost:
        # The graph counts elementwise work as FLOPs (one per vector-lane operation).
        cycles = float(vector_cycles(op.flops, 1.0, self.spec.vector_lanes))
        if self._boost and cycles > 0.0:
            cycles *= self._base_cycles_per_cycle(cycles, op.flops * self._flop_j)
        return OpCost(compute_cycles=cycles,
                      memory_cycles=self._activation_cycles(op) + self._bytes_cycles(op.weight_bytes),
                      hbm_bytes=self._hbm_bytes(op))

    def _collective(self, op: Op) -> OpCost:
        s = self.spec
        if op.kind == OpKind.ALLREDUCE:
            # Ring all-reduce: each chip sends at the per-direction link bandwidth (nccl-tests busbw convention).
            seconds = ring_allreduce_time_s(op.comm_bytes, op.group, s.link_latency_s, s.link_bandwidth_bytes_per_s)
        else:
            seconds = s.link_latency_s + op.comm_bytes / s.link_bandwidth_bytes_per_s
        return OpCost(link_cycles=seconds * s.clock_hz, hbm_bytes=0.0)

    # --- what it runs, limits, power, area (the rest of the Device protocol) ---------------------------
    @property
    def supported_dtypes(self) -> tuple[str, ...]:
        """Matmul dtypes whose PE rate field is non-zero (fp16 runs on the bf16 datapath; fp4 at 0 is widened
        to fp8 and so not native)."""
        s = self.spec
        return tuple(d for d in MATMUL_DTYPES if getattr(s, f"macs_per_pe_per_cycle_{ARRAY_DTYPES[d]}") > 0)

    @property
    def op_kinds(self) -> frozenset[str]:
        """Every op kind of the graph: arrays, vector unit and links between them price all of them."""
        return frozenset(OpKind.ALL)

    @property
    def link_limits(self) -> LinkLimits:
        s = self.spec
        return LinkLimits(s.link_bandwidth_bytes_per_s, s.link_latency_s, s.chips_per_server)

    def power_limits(self, dtype: str | None = None) -> PowerLimits:
        """Full-load power at the base clock (asicsim.chip.power); dtype None: the most power-hungry dtype the
        PEs run. Once per dtype per device (a run asks several times; the spec is frozen)."""
        cache = self.__dict__.setdefault("_power_limits", {})
        hit = cache.get(dtype)
        if hit is None:
            s = self.spec
            hit = cache[dtype] = PowerLimits(tdp_w=s.tdp_w, static_power_w=static_power_w(s), clock_hz=s.clock_hz,
                                             full_load_power_w=power_w(s, dtype=dtype),
                                             capped_clock_hz=capped_clock_hz(s, dtype=dtype))
        return hit

    def area(self, *, check: bool = True) -> AreaBreakdown:
        """Die area by block (asicsim.chip.area)."""
        return area_breakdown(self.spec, check=check)

    def die_floorplan(self) -> DieFloorplan:
        """HBM stacks, SRAM, vector lanes, links, TDP and the fixed blocks' area (asicsim.chip.area)."""
        return die_floorplan(self.spec)


# `cost_rows`: each op kind's pricing in `kernels.asic_price` (kinds not named: `cost` op by op), and the Op fields
# that lead its OP_COLUMNS (kind and PE MACs follow).
_ROW_KIND = {OpKind.MATMUL: asic_price.KIND_MATMUL, OpKind.ALLREDUCE: asic_price.KIND_ALLREDUCE,
             OpKind.P2P: asic_price.KIND_SEND, OpKind.ALL_TO_ALL: asic_price.KIND_SEND,
             **{kind: asic_price.KIND_VECTOR for kind in (OpKind.EMBEDDING, OpKind.NORM, OpKind.ELEMENTWISE)}}
_ROW_VALUES = operator.itemgetter(*asic_price.OP_COLUMNS[:-2])


def _causal_entries(new: np.ndarray, past: np.ndarray) -> float:
    """sum(c p + c (c + 1) / 2) over sequences (c new tokens after p cached): the score entries of causal
    attention. Integer arrays are summed as integers in one jitted pass (`kernels.attention.causal_entries`): the
    float sum's terms and partial sums are integers below 2^53, so both are the same number exactly."""
    if new.dtype == np.int64 and past.dtype == np.int64:
        return float(causal_entries(new, past))
    new = new.astype(float)
    return float((new * past + new * (new + 1) / 2).sum())


@lru_cache(maxsize=65536)
def _shared_gemm_cycles(*args) -> tuple:
    """`systolic.shared_gemm_cycles` memoised on its argument values: a sweep's derived chips repeat array shapes,
    pools and feeds, and the split search is the costliest call of a matmul's price."""
    return tuple(int(x) for x in systolic.shared_gemm_cycles(*args))


@lru_cache(maxsize=256)
def _power_capped(spec: AsicSpec) -> AsicSpec:
    """The spec as it runs under its TDP: a base clock whose full-load power exceeds the TDP is lowered to the
    clock the TDP allows (the power manager's rule, asicsim.chip.power.capped_clock_hz), and the asked-for clock
    stays the boost ceiling for ops that keep fewer units busy. So a lower TDP costs throughput, never only
    joules. A chip that cannot even idle within its TDP is left as it is: `description.resolve` refuses it."""
    try:
        capped = capped_clock_hz(spec)
    except Infeasible:
        return spec
    if capped >= spec.clock_hz * (1.0 - 1e-12):
        return spec
    return dataclasses.replace(spec, clock_hz=capped, max_clock_hz=max(spec.max_clock_hz, spec.clock_hz))


DEVICE = AsicDevice  # the registry's name for this package's device class (asicsim.core.registry)
