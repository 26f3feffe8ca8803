"""A run, resolved once: what the user gave (`RunSpec`) becomes a frozen `RunDescription`.

Every entry point (CLI flags, `asicsim.run(**keywords)`, a sweep row, a claim's search, a validation row)
builds a `RunSpec` with the user's own values, "not given" left as None, and calls `resolve`. Every
default and every cross-field check lives here and nowhere else; the serving loop, the engine and the
summary read only the description.

Defaults:
- parallelism: tp = chips / (pp x replicas) unless given (replicas default 1); with tp given, replicas =
  chips / (tp x pp). tp must divide the model's KV heads or be a multiple of them that divides its query heads
  (KV heads then replicate).
- kv_dtype: the weight dtype, fp8 for fp4 weights (TensorRT-LLM's harness: fp8 for fp8 and fp4 weights).
- requests: a burst of 512 at t=0, `requests` Poisson arrivals with `rate`, or a whole trace.
- scheduler: static for a burst, chunked-prefill for arrivals.
- max_batch: as many requests as memory holds: the memory plan's fit at the longest request for static
  batching; for iteration-level schedulers the KV cache's block count (each running request holds at least
  one block, so admission control is what limits them).
- micro_batches: 1 for static batching, pp otherwise. kv_block_tokens 16. max_tokens_per_step 8192, halved (down to
  MIN_AUTO_TOKENS_PER_STEP) when not given and the activation workspace of a larger step leaves no room for the
  model (an SRAM pipeline's 230 MB chips).

Harness presets (`asicsim.core.harness.HARNESSES`) change these where the user gave nothing.

Errors are `InputError(RUN, field, problem)`: `field` is the RunSpec field the user set; the CLI shows
it as the flag (`--tp`), the Python API as the keyword (`tp`), a sweep as `workload.tp`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral, Real
from typing import Any, Mapping

import numpy as np

from asicsim.workloads.errors import RUN, DoesNotFitError, Infeasible, InputError
from asicsim.workloads.dtypes import WEIGHT_FORMATS, datapath_dtype
from asicsim.workloads.memory import layout_shapes, resolve_kv_dtype
from asicsim.workloads.models import ModelConfig, load_model, model_config_path, read_model_config
from asicsim.workloads.requests import Request, fixed_requests, parse_length_dist, poisson_requests
from asicsim.workloads.routing import DEFAULT_IMBALANCE
from asicsim.workloads.traces import fit_lognormal, load_trace, trace_path

from .harness import (HARNESSES, PYTORCH_EFFECTS, PYTORCH_HOST_S_PER_SEQUENCE, TRTLLM_DEFAULT_REQUESTS,
                      TRTLLM_HARNESSES, TRTLLM_PUBLISHED_REQUESTS, TRTLLM_RUNTIME_KV_FRACTION,
                      trtllm_runtime_reserve_bytes,
                      TRTLLM_TOKENS_PER_BLOCK, VLLM_DEFAULT_PROMPTS, VLLM_GPU_MEMORY_UTILIZATION,
                      trtllm_engine_settings, vllm_batch_defaults)
from .cluster import load_network
from .links import LinkedStageDevice, load_link
from .scale_out import ScaleOutDevice
from .memory_plan import plan_memory, serving_limits
from .registry import load_hardware, make_device, resolve_spec_path
from .router import ROUTERS
from .schedulers import SCHEDULERS

__all__ = ["RUN", "RUN_DTYPES", "HARNESSES", "RunSpec", "RunDescription", "resolve", "resolve_run",
           "build_requests", "DEFAULT_SLO_TTFT_S", "DEFAULT_SLO_TPOT_S", "DEFAULT_REQUESTS",
           "DEFAULT_MAX_TOKENS_PER_STEP", "DEFAULT_KV_BLOCK_TOKENS", "spec_fields"]

RUN_DTYPES = ("bf16", "fp8", "fp4", "int8", "int4")
DEFAULT_REQUESTS = 512
DEFAULT_MAX_TOKENS_PER_STEP = 8192  # TensorRT-LLM's default max_num_tokens
MIN_AUTO_TOKENS_PER_STEP = 512  # the smallest default step a run falls back to when a larger one does not fit
DEFAULT_KV_BLOCK_TOKENS = 16  # vLLM's default block_size
# Default latency SLOs: the MLPerf Inference Llama-2-70B server-scenario limits, TTFT <= 2 s and TPOT <= 200 ms
# (MLCommons LoadGen loadgen/mlperf.conf: llama2-70b.Server.ttft_latency = 2000, tpot_latency = 200, in ms).
DEFAULT_SLO_TTFT_S = 2.0
# Multi-token prediction: each draft token is accepted with this probability given those before it were.
# DeepSeek-V3 technical report (arXiv 2412.19437, sec. 5.4.3): "the acceptance rate of the second token
# prediction ranges between 85% and 90%"; the low end, taken for every draft depth (assumed).
MTP_ACCEPTANCE = 0.85
DEFAULT_SLO_TPOT_S = 0.2




@dataclass(frozen=True)
class RunSpec:
    """What the user gave, in the CLI's flag names (underscored); None means "not given".

    `hardware` is a built-in spec name, a TOML path, or an already loaded spec object (a sweep's derived
    chip). Older callers' zeros for tp, max_batch, micro_batches and "" for kv_dtype mean "not given" too.
    """

    hardware: Any
    chips: int
    model: Any = "llama-3-70b"
    dtype: str = "fp8"
    kv_dtype: str | None = None
    tp: int | None = None
    pp: int = 1
    replicas: int | None = None
    isl: int = 2048
    osl: int = 128
    requests: int | None = None
    max_batch: int | None = None
    max_tokens_per_step: int | None = None
    seed: int = 0
    scheduler: str = "auto"
    router: str = "round-robin"
    rate: float = 0.0
    trace: str = ""
    time_scale: float = 1.0
    isl_dist: str = "fixed"
    osl_dist: str = "fixed"
    slo_ttft_s: float = DEFAULT_SLO_TTFT_S
    slo_tpot_s: float = DEFAULT_SLO_TPOT_S
    kv_block_tokens: int | None = None
    micro_batches: int | None = None
    timeline_steps: int = 0
    exact: bool = False
    harness: str = "default"
    widen: bool = False  # run a dtype the hardware lacks on its next wider datapath (only when asked)
    ep: int | None = None  # expert-parallel chips among the tp chips (default 1; tp with attention_dp)
    attention_dp: bool = False  # attention data parallel over the tp chips (the DEP layout with ep = tp)
    moe_imbalance: float | None = None  # sigma of log expert popularity (default workloads.routing's)
    expert_dtype: str | None = None  # routed experts' weights (default: dtype), e.g. mxfp4 experts, bf16 rest
    mtp: int | None = None  # multi-token prediction: draft tokens per decode step (default 0: off)
    mtp_acceptance: float | None = None  # per-draft acceptance (default MTP_ACCEPTANCE)
    # Modelled effects switched away from the device's defaults, as (name, on) pairs (`asicsim validate
    # --explain`; names from the device's `effects`).
    effects: tuple[tuple[str, bool], ...] = ()
    # Disaggregated serving: "P:D" prefill chips : decode chips (summing to chips; default: aggregated).
    disaggregate: str | None = None
    # Pipeline stages on separate devices joined by a slow link (a profile of asicsim/data/links.toml; default none).
    link: str | None = None
    # The scale-out network between scale-up domains (asicsim/data/clusters.toml [networks]; default: the spec's).
    network: str | None = None


def spec_fields() -> tuple[str, ...]:
    """The RunSpec field names (what every entry point may set)."""
    return tuple(f.name for f in dataclasses.fields(RunSpec))


@dataclass(frozen=True)
class RunDescription:
    """A fully resolved run: no field is "not given", every cross-field check has passed.

    `hardware`/`model` are as the user named them (`hardware_name`/`model_name` as the spec and config
    name themselves); `spec` is the loaded hardware spec; `workload` is "burst", "poisson" or "trace";
    `requests` is the number of requests served; `kv_capacity_blocks` the paged KV cache per replica.
    """

    hardware: str
    hardware_name: str
    spec: Any = dataclasses.field(repr=False)
    chips: int
    model: str
    model_name: str
    dtype: str
    kv_dtype: str
    tp: int
    pp: int
    replicas: int
    workload: str
    isl: int
    osl: int
    requests: int
    rate: float
    trace: str
    time_scale: float
    isl_dist: str
    osl_dist: str
    seed: int
    scheduler: str
    router: str
    max_batch: int
    max_tokens_per_step: int
    micro_batches: int
    kv_block_tokens: int
    kv_capacity_blocks: int
    slo_ttft_s: float
    slo_tpot_s: float
    timeline_steps: int
    exact: bool
    harness: str
    widen: bool
    longest_request_tokens: int
    effects: tuple[tuple[str, bool], ...] = ()
    ep: int = 1
    attention_dp: bool = False
    moe_imbalance: float = DEFAULT_IMBALANCE
    mtp: int = 0
    mtp_acceptance: float = 0.0
    weight_format: str = ""  # block-scaled 4-bit format of the weights (mxfp4, nvfp4) when dtype is fp4
    expert_dtype: str = ""  # routed experts' weight dtype or format ("": as the other weights)
    # Host (CPU) seconds per running request of the tp group per step, overlapped with the previous step's
    # device work (a harness's serving runtime; 0 = none; with attention DP each rank's host loop serves 1/tp of
    # the requests, so the group's figure is the per-rank one / tp).
    host_s_per_sequence: float = 0.0
    # Weights one chip of the most loaded stage holds (the memory plan's): a device that places weights in memory
    # tiers (an SRAM pipeline: `with_resident_weights`) reads them from where they fit.
    weight_bytes_per_chip: float = 0.0
    # The most KV cache one chip holds at once: the largest batch the run can have (max_batch, at most the request
    # count) at its longest request, within the plan's KV capacity; such a device places it after the weights.
    kv_bytes_per_chip: float = 0.0
    # Disaggregated serving ("P:D"; "" aggregated): the prefill and the decode pool, each resolved as a run of its
    # own chips (`asicsim.core.disaggregation`); this description keeps the workload and the whole chip count.
    disaggregate: str = ""
    pools: tuple = ()
    link: str = ""  # pipeline stages on separate devices joined by this links.toml profile ("": none)
    network: str = ""  # scale-out network override (clusters.toml; "": the spec's own)

    @property
    def model_config(self) -> ModelConfig:
        return _model(self.model)

    def make_device(self):
        """The device registered for the spec's kind, for this many chips (a stage's tp chips in a linked pipeline),
        with `effects` switched."""
        device = make_device(self.spec, self.tp if self.link else self.chips)
        place = getattr(device, "with_resident_weights", None)  # optional Device member (docs/architecture.md)
        if place is not None and self.weight_bytes_per_chip:
            device = place(self.weight_bytes_per_chip, self.kv_bytes_per_chip)
        device = device.with_effects(dict(self.effects)) if self.effects else device
        # Collectives over more chips than one scale-up domain cross the scale-out network (core/scale_out.py);
        # a network given by name replaces the spec's for them and for the deployment's power.
        cluster = device.cluster
        if self.network:
            cluster = cluster.with_network(load_network(self.network))
        if self.network or cluster.spans_domains(max(self.tp, self.ep)):
            device = ScaleOutDevice(device, cluster, self.chips)
        return LinkedStageDevice(device) if self.link else device


# --- helpers ------------------------------------------------------------------------------------------------
def _fail(field: str, problem: str) -> InputError:
    return InputError(RUN, field, problem)


def _whole(field: str, value: Any, low: int, *, none_ok: bool = False) -> int | None:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
        raise _fail(field, f"must be a whole number >= {low}, got {value!r}")
    return int(value)


def _number(field: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0 \
            or (positive and value == 0):
        raise _fail(field, f"must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def _given(value: Any) -> Any:
    """None for "not given" (older callers pass 0 or "")."""
    return None if value in (0, "", None) and not isinstance(value, bool) else value


def _model(name: Any) -> ModelConfig:
    """A model config; a user's file is read afresh when it changed (its modification time is in the key)."""
    if isinstance(name, ModelConfig):
        return name
    return _load_model(name, _mtime_ns(model_config_path(name)))


def _hardware(name: str) -> Any:
    """A spec by name or path; a user's file is read afresh each time (it may have been edited since)."""
    path = resolve_spec_path(name)
    return _load_file(str(path), _mtime_ns(path))


@lru_cache(maxsize=32)
def _load_file(path: str, mtime_ns: int) -> Any:  # noqa: ARG001 - the modification time is part of the key
    return load_hardware(path)


def _trace(name: str, time_scale: float, limit: int) -> tuple[Request, ...]:
    """A trace's requests; a user's CSV is read afresh when it changed. A limit at or past the trace's length is the
    whole trace (every row: the same requests), read once: a run without a limit resolves its request count from the
    whole trace, then serves that many."""
    mtime_ns = _mtime_ns(trace_path(name))
    if limit and limit >= _TRACE_ROWS.get((name, mtime_ns), limit + 1):
        limit = 0
    requests = _load_trace(name, time_scale, limit, mtime_ns)
    if not limit:
        _TRACE_ROWS[(name, mtime_ns)] = len(requests)
    return requests


_TRACE_ROWS: dict[tuple[str, int], int] = {}  # (trace, modification time) -> its rows, once read whole


@lru_cache(maxsize=32)
def _load_model(name: str, mtime_ns: int) -> ModelConfig:  # noqa: ARG001 - the modification time is in the key
    return load_model(name)


@lru_cache(maxsize=16)
def _load_trace(name: str, time_scale: float, limit: int, mtime_ns: int) -> tuple[Request, ...]:  # noqa: ARG001
    return load_trace(name, time_scale, limit)


def _mtime_ns(path) -> int:
    return path.stat().st_mtime_ns


def _length_dist(field: str, text: str, default_mean: int, column: str):
    """A length distribution; `fit:TRACE` fits a lognormal to that trace's `column` lengths."""
    if text.startswith("fit:"):
        reqs = _trace(text[len("fit:"):], 1.0, 0)
        return fit_lognormal(np.array([getattr(r, column) for r in reqs]))
    return parse_length_dist(field, text, default_mean)


def build_requests(d: RunDescription) -> tuple[Request, ...]:
    """The request stream `d` describes (trace, Poisson or burst); deterministic in `d.seed`."""
    if d.workload == "trace":
        return _trace(d.trace, d.time_scale, d.requests)
    if d.workload == "poisson":
        isl = _length_dist("isl_dist", d.isl_dist, d.isl, "input_tokens")
        osl = _length_dist("osl_dist", d.osl_dist, d.osl, "output_tokens")
        reqs = poisson_requests(d.requests, d.rate, isl, osl, d.seed)
        if d.time_scale != 1.0:
            reqs = tuple(Request(r.request_id, r.arrival_at * d.time_scale, r.input_tokens, r.output_tokens)
                         for r in reqs)
        return reqs
    return fixed_requests(d.requests, d.isl, d.osl)


# --- resolution -----------------------------------------------------------------------------------------------
def resolve_run(**given: Any) -> RunDescription:
    """`resolve(RunSpec(**given))`, with an unknown keyword named in the error."""
    unknown = sorted(set(given) - set(spec_fields()))
    if unknown:
        raise _fail(unknown[0], f"unknown run setting; known: {', '.join(spec_fields())}")
    for key in ("hardware", "chips"):
        if key not in given:
            raise _fail(key, "missing")
    return resolve(RunSpec(**given))


def resolve(s: RunSpec) -> RunDescription:
    """The one place a run's defaults are chosen and its fields checked against each other."""
    if isinstance(s, RunDescription):
        return s
    if s.chips == "auto":
        return _auto_chips(s)
    if _given(s.disaggregate) is not None:
        return _disaggregated(s)
    harness = s.harness or "default"
    if harness not in HARNESSES:
        raise _fail("harness", f"must be one of {', '.join(HARNESSES)}, got {harness!r}")
    # hardware and model
    if isinstance(s.hardware, str):
        if not s.hardware:
            raise _fail("hardware", "give a spec name or a path to a spec TOML")
        spec = _hardware(s.hardware)
        hardware = s.hardware
    elif hasattr(s.hardware, "kind") and hasattr(s.hardware, "name"):
        spec, hardware = s.hardware, s.hardware.name
    else:
        raise _fail("hardware", f"must be a spec name, a TOML path or a loaded spec, got {s.hardware!r}")
    chips = _whole("chips", s.chips, 1)
    link = _given(s.link)
    if link is not None:
        if not isinstance(link, str):
            raise _fail("link", f"must be a link profile name, got {link!r}")
        load_link(link)  # an unknown name is refused here
    network = _given(s.network)
    if network is not None:
        if not isinstance(network, str):
            raise _fail("network", f"must be a network name, got {network!r}")
        load_network(network)
    device = make_device(spec, 1 if link else chips)  # a linked pipeline: one device per stage
    _check_physics(device, hardware)
    if isinstance(s.model, str):  # what a fixed-function chip cannot run is refused before anything else
        device.check_model(*read_model_config(s.model))
    model = _model(s.model)
    model_label = s.model if isinstance(s.model, str) else model.name
    # dtypes (a block-scaled format runs on its datapath: mxfp4 / nvfp4 on fp4, with its scale bytes)
    if s.dtype not in (*RUN_DTYPES, *WEIGHT_FORMATS):
        raise _fail("dtype", f"must be one of {', '.join((*RUN_DTYPES, *WEIGHT_FORMATS))}, got {s.dtype!r}")
    weight_format = s.dtype if s.dtype in WEIGHT_FORMATS else ""
    s = dataclasses.replace(s, dtype=datapath_dtype(s.dtype))
    expert_dtype = _expert_dtype(s, device, model)
    kv_given = _given(s.kv_dtype)
    if kv_given is not None and kv_given not in RUN_DTYPES:
        raise _fail("kv_dtype", f"must be one of {', '.join(RUN_DTYPES)}, got {kv_given!r}")
    if kv_given is None and harness in TRTLLM_HARNESSES and s.dtype in ("fp8", "fp4"):
        kv_given = "fp8"  # trtllm-bench quantizes the KV cache to FP8 with FP8/FP4 weights
    kv_dtype = resolve_kv_dtype(s.dtype, kv_given)
    if not isinstance(s.widen, bool):
        raise _fail("widen", f"must be true or false, got {s.widen!r}")
    native = device.supported_dtypes
    if s.dtype not in native and not s.widen:
        raise _fail("dtype", f"{spec.name} has no {s.dtype} datapath (native: {', '.join(native)}); "
                             f"widen it to the next wider one only when asked: --widen / widen=True")
    if kv_dtype not in native and not s.widen:  # the attention kernels read the cache in its own format
        raise _fail("kv_dtype", f"{spec.name} has no {kv_dtype} datapath for the KV cache (native: "
                                f"{', '.join(native)}); dequantize it to a wider one only when asked: --widen")
    # parallelism
    tp, pp, replicas = _layout(s, chips, model)
    if link is not None and pp < 2:
        raise _fail("link", "joins the devices of a pipeline: give pp 2 or more (one stage per device)")
    domain = device.link_limits.chips_per_domain
    if link is not None and tp > max(domain, 1):  # a stage's tp group must sit on one device's own scale-up links
        own = (f"{spec.name} joins up to {domain} chips on its own links" if domain > 1
               else f"{spec.name} has no links of its own")
        raise _fail("link", f"tensor parallelism across a slow link is not modelled: every layer's all-reduce would "
                            f"pay a hop's latency (tp is {tp}; {own}); give tp "
                            f"{f'{domain} or less' if domain > 1 else 1}, chips = tp x pp x replicas")
    ep, attention_dp, imbalance = _moe_layout(s, tp, model)
    mtp, mtp_acceptance = _mtp(s, model)
    # workload
    isl, osl = _whole("isl", s.isl, 1), _whole("osl", s.osl, 1)
    rate = _number("rate", s.rate)
    time_scale = _number("time_scale", s.time_scale, positive=True)
    trace = s.trace or ""
    if trace and rate:
        raise _fail("rate", "a trace brings its own arrival times; give trace or rate, not both")
    requests = _whole("requests", _given(s.requests), 1, none_ok=True)
    if trace:
        workload = "trace"
        requests = len(_trace(trace, time_scale, requests or 0))
    elif rate:
        workload = "poisson"
        requests = requests or DEFAULT_REQUESTS
    else:
        workload = "burst"
        requests = requests or _default_burst(harness, isl, osl)
    seed = _whole("seed", s.seed, 0)
    slo_ttft, slo_tpot = _number("slo_ttft_s", s.slo_ttft_s), _number("slo_tpot_s", s.slo_tpot_s)
    timeline_steps = _whole("timeline_steps", s.timeline_steps, 0)
    if not isinstance(s.exact, bool):
        raise _fail("exact", f"must be true or false, got {s.exact!r}")
    # serving
    scheduler = s.scheduler or "auto"
    if scheduler not in ("auto", *SCHEDULERS):
        raise _fail("scheduler", f"must be auto or one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    if scheduler == "auto":
        scheduler = _default_scheduler(harness, workload)
    if s.router not in ROUTERS:
        raise _fail("router", f"must be one of {', '.join(ROUTERS)}, got {s.router!r}")
    max_batch = _whole("max_batch", _given(s.max_batch), 1, none_ok=True)
    max_tokens = _whole("max_tokens_per_step", _given(s.max_tokens_per_step), 1, none_ok=True)
    block = _whole("kv_block_tokens", _given(s.kv_block_tokens), 1, none_ok=True)
    micro = _whole("micro_batches", _given(s.micro_batches), 1, none_ok=True)
    memory = float(device.memory_bytes_per_chip)
    kv_fraction, reserve = 1.0, 0.0
    longest = _longest(workload, trace, time_scale, requests, isl, osl, rate, s, seed)
    _check_context(model, workload, longest, trace, time_scale, requests)
    # Attention-DP ranks are separate schedulers: TensorRT-LLM applies max_batch_size and max_num_tokens to each
    # rank (the DeepSeek-R1 best-practice configs: max_batch_size 896 per rank, concurrency 7168 on 8 GPUs), sizes
    # each rank's decoder buffers for its own batch, and runs each rank's host loop over its own requests. The
    # run's max_batch / max_tokens_per_step are for the whole tp group, so the harness's per-rank values count
    # `ranks` times.
    ranks = tp if attention_dp else 1
    if harness in TRTLLM_HARNESSES:
        eng = trtllm_engine_settings(model, s.dtype, kv_dtype, tp, pp, isl, osl, memory / 2**30)
        max_batch = max_batch or eng.max_batch * ranks
        max_tokens = max_tokens or eng.max_num_tokens * ranks
        block = block or TRTLLM_TOKENS_PER_BLOCK
        kv_fraction = TRTLLM_RUNTIME_KV_FRACTION
        reserve = trtllm_runtime_reserve_bytes(model, math.ceil(max_batch / ranks))
    elif harness == "vllm-throughput":
        seqs, batched = vllm_batch_defaults(memory, spec.name)
        max_batch = max_batch or seqs
        max_tokens = max_tokens or batched
    elif harness == "per-user":
        max_batch = max_batch or 1
    tokens_given = max_tokens is not None
    max_tokens = max_tokens or DEFAULT_MAX_TOKENS_PER_STEP
    block = block or DEFAULT_KV_BLOCK_TOKENS

    def plan_for(tokens: int):
        return plan_memory(model, memory, dtype=weight_format or s.dtype, kv_dtype=kv_dtype, tp=tp, pp=pp,
                           tokens_per_request=longest, max_tokens_per_step=tokens, chips=chips, ep=ep,
                           attention_dp=attention_dp, expert_dtype=expert_dtype or None, mtp=mtp > 0,
                           max_tp=1 if domain <= 1 else (domain if link else 64))

    try:
        plan = plan_for(max_tokens)
    except DoesNotFitError:
        # The default step is what GPU stacks use; a chip with little memory per chip (an SRAM pipeline) holds the
        # model only with a smaller activation workspace: halve the default (never a given value) until it fits.
        smaller = [t for t in (DEFAULT_MAX_TOKENS_PER_STEP >> i for i in range(1, 6)) if t >= MIN_AUTO_TOKENS_PER_STEP]
        if tokens_given or not smaller:
            raise
        plan = None
        for tokens in smaller:
            try:
                plan, max_tokens = plan_for(tokens), tokens
                break
            except DoesNotFitError:
                continue
        if plan is None:
            plan_for(max_tokens)  # raises the message for the default step
    if reserve >= plan.kv_capacity_bytes:
        raise _fail("max_batch", f"the runtime's buffers for {max_batch} requests ({reserve / 1e9:.2f} GB per chip) leave "
                                 f"no KV cache in the {plan.kv_capacity_bytes / 1e9:.2f} GB after weights and activations")
    kv_bytes = (plan.kv_capacity_bytes - reserve) * kv_fraction
    if harness == "vllm-throughput":
        kv_bytes = plan.kv_capacity_bytes - (1.0 - VLLM_GPU_MEMORY_UTILIZATION) * memory
    limits = serving_limits(plan, scheduler=scheduler, pp=pp, kv_block_tokens=block, longest_tokens=longest,
                            max_batch=max_batch, micro_batches=micro, kv_capacity_bytes=kv_bytes)
    max_batch, micro, blocks = limits.max_batch, limits.micro_batches, limits.kv_capacity_blocks
    return RunDescription(
        hardware=hardware, hardware_name=spec.name, spec=spec, chips=chips, model=model_label,
        model_name=model.name, dtype=s.dtype, kv_dtype=kv_dtype, tp=tp, pp=pp, replicas=replicas,
        workload=workload, isl=isl, osl=osl, requests=requests, rate=rate, trace=trace, time_scale=time_scale,
        isl_dist=s.isl_dist, osl_dist=s.osl_dist, seed=seed, scheduler=scheduler, router=s.router,
        max_batch=max_batch, max_tokens_per_step=max_tokens, micro_batches=micro, kv_block_tokens=block,
        kv_capacity_blocks=blocks, slo_ttft_s=slo_ttft, slo_tpot_s=slo_tpot, timeline_steps=timeline_steps,
        exact=s.exact, harness=harness, widen=s.widen, longest_request_tokens=longest,
        effects=_effects(_harness_effects(harness, s.effects, device), device), ep=ep, attention_dp=attention_dp,
        link=link or "", network=network or "",
        moe_imbalance=imbalance, weight_format=weight_format, expert_dtype=expert_dtype, mtp=mtp,
        mtp_acceptance=mtp_acceptance, weight_bytes_per_chip=plan.weight_bytes,
        kv_bytes_per_chip=min(plan.kv_capacity_bytes, min(max_batch, requests) * longest * plan.kv_bytes_per_token),
        host_s_per_sequence=PYTORCH_HOST_S_PER_SEQUENCE / ranks if harness == "trtllm-bench-pytorch" else 0.0)


def _harness_effects(harness: str, given: Any, device: Any) -> Any:
    """The user's effects over the harness's (those the device has; a harness describes GPU software)."""
    if harness != "trtllm-bench-pytorch":
        return given
    implied = {name: on for name, on in PYTORCH_EFFECTS if name in device.effects}
    return {**implied, **dict(given.items() if isinstance(given, Mapping) else (given or ()))}


def _effects(given: Any, device: Any) -> tuple[tuple[str, bool], ...]:
    """(name, on) pairs checked against the device's switchable effects, sorted by name."""
    if not given:
        return ()
    pairs = dict(given.items() if isinstance(given, Mapping) else given)
    known = device.effects
    for name, on in pairs.items():
        if name not in known:
            raise _fail("effects", f"unknown effect {name!r} for {device.name}; known: {', '.join(sorted(known)) or 'none'}")
        if not isinstance(on, bool):
            raise _fail("effects", f"{name} must be true or false, got {on!r}")
    return tuple(sorted(pairs.items()))


def _layout(s: RunSpec, chips: int, model: ModelConfig) -> tuple[int, int, int]:
    """(tp, pp, replicas) with tp x pp x replicas = chips; errors name what the user gave."""
    pp = _whole("pp", s.pp, 1)
    tp = _whole("tp", _given(s.tp), 1, none_ok=True)
    replicas = _whole("replicas", _given(s.replicas), 1, none_ok=True)
    if pp > model.num_hidden_layers:
        raise _fail("pp", f"{pp} stages exceed the {model.num_hidden_layers} layers of {model.name}")
    if tp is None:
        group = pp * (replicas or 1)
        if chips % group:
            what = f"pp {pp}" if replicas is None else f"pp x replicas = {group}"
            raise _fail("chips", f"{chips} chips do not split into {what}; give a multiple of {group}")
        tp, derived = chips // group, True
    else:
        derived = False
        if chips % (tp * pp):
            raise _fail("tp", f"tp x pp = {tp * pp} does not divide chips {chips}")
        if replicas is not None and tp * pp * replicas != chips:
            raise _fail("replicas", f"tp x pp x replicas = {tp * pp * replicas}, not chips {chips}")
        replicas = chips // (tp * pp)
    heads = model.num_key_value_heads
    if model.is_dense_llama and heads % tp and (tp % heads or model.num_attention_heads % tp):
        fits = max(d for d in range(1, tp + 1) if heads % d == 0 and tp % d == 0)
        hint = (f"tp is chips / (pp x replicas) = {tp} when not given; give tp {fits} and the rest of the chips "
                f"become replicas" if derived else f"give a divisor of {heads}, e.g. {fits}")
        raise _fail("tp", f"{tp} neither divides nor is a multiple of the {heads} KV heads of {model.name} (dividing "
                          f"its {model.num_attention_heads} query heads); {hint}")
    return tp, pp, replicas or 1


def _mtp(s: RunSpec, model: ModelConfig) -> tuple[int, float]:
    """(draft tokens, acceptance): multi-token prediction needs a model with an MTP module (DeepSeek-V3/R1)."""
    drafts = _whole("mtp", _given(s.mtp), 1, none_ok=True) or 0
    if s.mtp_acceptance is not None and not drafts:
        raise _fail("mtp_acceptance", "needs --mtp N (draft tokens per step)")
    if not drafts:
        return 0, 0.0
    if not model.mtp_layers:
        raise _fail("mtp", f"{model.name} has no multi-token-prediction module (num_nextn_predict_layers = 0)")
    if drafts > 8:
        raise _fail("mtp", f"at most 8 draft tokens per step, got {drafts}")
    accept = MTP_ACCEPTANCE if s.mtp_acceptance is None else _number("mtp_acceptance", s.mtp_acceptance)
    if accept > 1.0:
        raise _fail("mtp_acceptance", f"must be a probability in [0, 1], got {accept:g}")
    return drafts, accept


AUTO_DOUBLINGS = 11  # chips = group x 1, 2, 4, ..., 1024
AUTO_TPS = (1, 2, 4, 8, 16, 32, 64)  # tensor-parallel degrees the pipeline search tries


def _disaggregated(s: RunSpec) -> RunDescription:
    """A prefill pool and a decode pool ("P:D" chips), each resolved as a run of its own chips; the decode pool's
    requests arrive over time (after their KV transfer), so its default scheduler is an iteration-level one."""
    text = s.disaggregate
    parts = text.split(":") if isinstance(text, str) else []
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise _fail("disaggregate", f"must be PREFILL:DECODE chip counts, e.g. 8:8, got {text!r}")
    prefill, decode = (int(p) for p in parts)
    if s.chips == "auto":
        raise _fail("disaggregate", "give --chips as a number (the two pools' sum), not auto")
    chips = _whole("chips", s.chips, 1)
    if prefill + decode != chips:
        raise _fail("disaggregate", f"{prefill} + {decode} = {prefill + decode} chips, but chips is {chips}")
    if s.exact:
        raise _fail("disaggregate", "the pools run the fast path only (drop --exact)")
    whole = resolve(dataclasses.replace(s, disaggregate=None))
    pools = []
    for pool, n in (("prefill", prefill), ("decode", decode)):
        sched = s.scheduler if pool == "prefill" or (s.scheduler or "auto") != "auto" else "chunked-prefill"
        try:
            pools.append(resolve(dataclasses.replace(s, chips=n, disaggregate=None, scheduler=sched, replicas=None)))
        except InputError as exc:
            raise _fail("disaggregate", f"the {pool} pool of {n} chips: {exc.field}: {exc.problem}") from None
    return dataclasses.replace(whole, disaggregate=f"{prefill}:{decode}", pools=tuple(pools))


def _auto_chips(s: RunSpec) -> RunDescription:
    """`chips = "auto"`: the run at the smallest count, in doublings of the group the user fixed (pp x tp x
    replicas, each 1 when not given), whose layout the model allows and whose memory holds its weights and one
    request (tp = chips / (pp x replicas) unless given). Where no doubling holds it and the user fixed no layout
    (pp 1, tp and replicas not given), the smallest tp x pp pipeline that holds it (chips with little memory each,
    such as SRAM pipelines, need more stages than tensor-parallel degrees the model's heads allow)."""
    group = 1
    for value in (s.pp, _given(s.tp), _given(s.replicas)):
        if isinstance(value, Integral) and not isinstance(value, bool) and value > 0:
            group *= int(value)
    last: InputError | None = None
    for chips in (group << i for i in range(AUTO_DOUBLINGS)):
        try:
            return resolve(dataclasses.replace(s, chips=chips))
        except InputError as exc:
            _auto_keep_going(exc)
            if exc.source == RUN and exc.field == "chips" and isinstance(last, DoesNotFitError):
                raise last from None  # a device that cannot grow (one chip, no links): the last refusal says what fits
            last = exc
    most = f"{group << (AUTO_DOUBLINGS - 1)} chips ({group} x a power of two)"
    if s.pp == 1 and _given(s.tp) is None and _given(s.replicas) is None:
        layers = _model(s.model).num_hidden_layers
        for chips, pp, tp in sorted((tp * pp, pp, tp) for tp in AUTO_TPS for pp in range(2, layers + 1)):
            try:
                return resolve(dataclasses.replace(s, chips=chips, pp=pp, tp=tp))
            except InputError as exc:
                _auto_keep_going(exc)
                if isinstance(exc, DoesNotFitError):
                    last = exc
        most = f"{most}, nor any tp x pp pipeline up to {layers} stages"
    raise DoesNotFitError(RUN, "chips", f"no count up to {most} holds the run; the last that was tried: "
                                        f"{last.problem if last else 'no layout'}")


def _auto_keep_going(exc: InputError) -> None:
    """Re-raise what another chip count cannot fix; a layout or memory refusal lets the search go on."""
    if isinstance(exc, DoesNotFitError):
        return
    if exc.source != RUN or exc.field not in ("tp", "chips", "replicas", "ep", "attention_dp", "pp",
                                              "kv_block_tokens"):
        raise exc


def _expert_dtype(s: RunSpec, device: Any, model: ModelConfig) -> str:
    """The routed experts' weight dtype or format ("" when as the other weights); refused where the chip has no
    datapath for it (unless widen), or for a model without routed experts."""
    given = _given(s.expert_dtype)
    if given is None:
        return ""
    if given not in (*RUN_DTYPES, *WEIGHT_FORMATS):
        raise _fail("expert_dtype", f"must be one of {', '.join((*RUN_DTYPES, *WEIGHT_FORMATS))}, got {given!r}")
    if model.moe is None:
        raise _fail("expert_dtype", f"{model.name} has no routed experts")
    native = device.supported_dtypes
    if datapath_dtype(given) not in native and not s.widen:
        raise _fail("expert_dtype", f"{device.name} has no {datapath_dtype(given)} datapath (native: "
                                    f"{', '.join(native)}); widen it only when asked: --widen / widen=True")
    return given


def _moe_layout(s: RunSpec, tp: int, model: ModelConfig) -> tuple[int, bool, float]:
    """(ep, attention_dp, moe_imbalance): ep defaults to tp with attention data parallelism, else 1; the
    layout is checked against the model's heads and experts (workloads.memory.layout_shapes)."""
    if not isinstance(s.attention_dp, bool):
        raise _fail("attention_dp", f"must be true or false, got {s.attention_dp!r}")
    ep = _whole("ep", _given(s.ep), 1, none_ok=True)
    if ep is None:
        ep = tp if s.attention_dp and model.moe is not None else 1
    imbalance = DEFAULT_IMBALANCE if s.moe_imbalance is None else _number("moe_imbalance", s.moe_imbalance)
    if imbalance > 3.0:
        raise _fail("moe_imbalance", f"must be at most 3 (sigma of log expert popularity), got {imbalance:g}")
    layout_shapes(model, tp, ep, s.attention_dp)
    return ep, s.attention_dp, imbalance


def _default_burst(harness: str, isl: int, osl: int) -> int:
    if harness in TRTLLM_HARNESSES:
        return TRTLLM_PUBLISHED_REQUESTS.get((isl, osl), TRTLLM_DEFAULT_REQUESTS)
    if harness == "vllm-throughput":
        return VLLM_DEFAULT_PROMPTS
    if harness == "per-user":
        return 1
    return DEFAULT_REQUESTS


def _default_scheduler(harness: str, workload: str) -> str:
    return {"static": "static", "per-user": "static", "trtllm-bench": "inflight-chunked",
            "trtllm-bench-pytorch": "inflight", "vllm-throughput": "chunked-prefill"}.get(harness, "static" if workload == "burst" else "chunked-prefill")


def _longest(workload, trace, time_scale, requests, isl, osl, rate, s: RunSpec, seed: int) -> int:
    """Tokens (prompt + output) of the longest request the run serves."""
    if workload == "burst":
        return isl + osl
    if workload == "trace":
        reqs = _trace(trace, time_scale, requests)
    else:
        i = _length_dist("isl_dist", s.isl_dist, isl, "input_tokens")
        o = _length_dist("osl_dist", s.osl_dist, osl, "output_tokens")
        reqs = poisson_requests(requests, rate, i, o, seed)
    return max(r.input_tokens + r.output_tokens for r in reqs)


def _check_physics(device, hardware: str) -> None:
    """A chip that breaks physics is refused with the numbers (Infeasible from the device's own models): blocks
    over the reticle, HBM stacks over the die edge, static + HBM + link power over the TDP. A device without an
    area model (no die description published) has nothing to check there."""
    try:
        device.area(check=True)
        device.power_limits()  # Infeasible when the chip cannot even idle within its TDP
    except Infeasible as exc:
        raise Infeasible(hardware, exc.field, exc.problem) from None
    except InputError:
        pass


def _check_context(model: ModelConfig, workload: str, longest: int, trace: str, time_scale: float,
                   requests: int) -> None:
    """A request longer (prompt + output) than the model's context window is refused."""
    window = model.max_context_tokens
    if longest <= window:
        return
    where = {"burst": ("isl", "isl + osl"), "poisson": ("isl_dist", "the longest drawn request")}.get(workload)
    if where is None:
        reqs = _trace(trace, time_scale, requests)
        row = next(i for i, r in enumerate(reqs) if r.input_tokens + r.output_tokens == longest)
        where = ("trace", f"request {reqs[row].request_id} of {trace}")
    raise _fail(where[0], f"{where[1]} = {longest} tokens exceeds the {window}-token context of {model.name}")
