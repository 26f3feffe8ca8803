"""Memory planning: weights, activation workspace and KV cache against device memory per chip.

A run that cannot hold its weights plus one request's KV cache fails with a DoesNotFitError that says how
many bytes are missing and which tensor-parallel degree or batch would fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from asicsim.workloads.errors import RUN, DoesNotFitError, InputError
from asicsim.workloads.memory import (activation_bytes_per_chip, kv_bytes_per_token_per_chip,
                                      kv_span_bytes_per_sequence_per_chip, state_bytes_per_sequence_per_chip,
                                      weight_bytes_per_chip)
from asicsim.workloads.models import ModelConfig

__all__ = ["MemoryPlan", "plan_memory", "ServingLimits", "serving_limits"]


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per chip: what is reserved and how many whole requests' KV caches fit in the rest."""

    capacity_bytes: float
    weight_bytes: float
    activation_bytes: float
    kv_bytes_per_token: float
    kv_capacity_bytes: float
    max_batch_fit: int

    def peak_bytes(self, kv_tokens: int) -> float:
        """Weights + workspace + KV for `kv_tokens` cached tokens on one chip."""
        return self.weight_bytes + self.activation_bytes + kv_tokens * self.kv_bytes_per_token


def plan_memory(
    model: ModelConfig,
    capacity_bytes: float,
    *,
    dtype: str,
    kv_dtype: str,
    tp: int,
    pp: int,
    tokens_per_request: int,
    max_tokens_per_step: int,
    act_dtype: str = "bf16",
    chips: int | None = None,
    ep: int = 1,
    attention_dp: bool = False,
    expert_dtype: str | None = None,
    mtp: bool = False,
    max_tp: int = 64,
) -> MemoryPlan:
    """How many requests of `tokens_per_request` fit per replica; raises DoesNotFitError if none.

    KV bytes per token: the layers that cache the whole context, plus what a request of `tokens_per_request`
    tokens holds per sequence (sliding-window / chunked layers' min(tokens, span) tokens, Mamba state) spread
    over its tokens, so the paged cache (which counts tokens) holds as many such requests as memory does;
    shorter requests are charged the same rate (an approximation that errs towards fewer of them).
    `max_tp`: the largest tensor-parallel degree the hardware can join (its scale-up domain); a refusal suggests
    none beyond it, and on a single device (1) names the built-in models that would fit instead."""
    weights = weight_bytes_per_chip(model, dtype, tp, pp, act_dtype=act_dtype, ep=ep, attention_dp=attention_dp,
                                    expert_dtype=expert_dtype, mtp=mtp)
    workspace = activation_bytes_per_chip(model, max_tokens_per_step, tp, act_dtype)
    kv_token = kv_bytes_per_token_per_chip(model, kv_dtype, tp, pp, ep=ep, attention_dp=attention_dp, mtp=mtp)
    if not model.is_dense_llama:
        span = kv_span_bytes_per_sequence_per_chip(model, kv_dtype, tp, pp, ep=ep, attention_dp=attention_dp,
                                                   tokens=tokens_per_request)
        state = state_bytes_per_sequence_per_chip(model, tp, pp, ep=ep, attention_dp=attention_dp)
        kv_token += (span + state) / tokens_per_request
    free = capacity_bytes - weights - workspace
    per_request = kv_token * tokens_per_request
    fit = int(free // per_request) if free > 0 else 0
    if fit < 1:
        missing = weights + workspace + per_request - capacity_bytes
        raise DoesNotFitError(RUN, "model", _does_not_fit_message(
            model, capacity_bytes, missing, dtype=dtype, kv_dtype=kv_dtype, tp=tp, pp=pp,
            tokens_per_request=tokens_per_request, max_tokens_per_step=max_tokens_per_step,
            act_dtype=act_dtype, chips=chips, max_tp=max_tp))
    return MemoryPlan(capacity_bytes, weights, workspace, kv_token, free, fit)


@dataclass(frozen=True)
class ServingLimits:
    """What memory allows a replica: requests running at once, pipeline micro-batches, KV-cache blocks."""

    max_batch: int
    micro_batches: int
    kv_capacity_blocks: int


def serving_limits(plan: MemoryPlan, *, scheduler: str, pp: int, kv_block_tokens: int, longest_tokens: int,
                   max_batch: int | None = None, micro_batches: int | None = None,
                   kv_capacity_bytes: float | None = None) -> ServingLimits:
    """The defaults of a run's serving limits, decided here only (`description.resolve` and `serving.simulate`
    call it): the KV cache is `kv_capacity_bytes` (default: what the plan leaves) in whole blocks; static
    batching runs as many requests as the plan fits at the longest request, iteration-level schedulers as
    many as the KV cache has blocks (each running request holds at least one; admission control does the
    rest); micro-batches 1 for static batching, pp otherwise. Errors name the run setting at fault."""
    kv_bytes = plan.kv_capacity_bytes if kv_capacity_bytes is None else kv_capacity_bytes
    blocks = int(kv_bytes // (plan.kv_bytes_per_token * kv_block_tokens))
    if blocks * kv_block_tokens < longest_tokens:
        raise InputError(RUN, "kv_block_tokens",
                         f"the KV cache holds {blocks} blocks of {kv_block_tokens} tokens, fewer than the longest "
                         f"request's {longest_tokens} tokens; use smaller blocks")
    static = scheduler == "static"
    if static and max_batch is not None and max_batch > plan.max_batch_fit:
        raise InputError(RUN, "max_batch",
                         f"{max_batch} requests of {longest_tokens} tokens need "
                         f"{plan.peak_bytes(max_batch * longest_tokens) / 1e9:.2f} GB per chip, the device has "
                         f"{plan.capacity_bytes / 1e9:.2f} GB; at most {plan.max_batch_fit} fit")
    if max_batch is None:
        max_batch = plan.max_batch_fit if static else blocks
    return ServingLimits(max_batch, micro_batches or (1 if static else pp), blocks)


def _does_not_fit_message(model, capacity_bytes, missing, *, dtype, kv_dtype, tp, pp, tokens_per_request,
                          max_tokens_per_step, act_dtype, chips, max_tp=64) -> str:
    """Say how much is missing and the layout of fewest chips that would fit, tp up to `max_tp` (the run's pp first
    among equal counts; chips with little memory each need many pipeline stages); with `max_tp` 1 (one device, no
    scale-up links), which built-in models would fit at this dtype."""
    if max_tp <= 1:
        return _message(model, capacity_bytes, missing, tp, pp, _models_that_fit(
            capacity_bytes, dtype=dtype, kv_dtype=kv_dtype, tokens_per_request=tokens_per_request,
            max_tokens_per_step=max_tokens_per_step, act_dtype=act_dtype))
    args = (model, capacity_bytes, dtype, kv_dtype, tokens_per_request, max_tokens_per_step, act_dtype)
    try:
        hash(model)
    except TypeError:
        layouts = _fitting_layouts.__wrapped__(*args)
    else:
        layouts = _fitting_layouts(*args)
    # the fewest chips; among equal counts, the run's own pp first
    layouts = [(t, p) for t, p in layouts if t <= max_tp]
    best = min(layouts, key=lambda tp_pp: (tp_pp[0] * tp_pp[1], tp_pp[1] != pp, tp_pp[1]), default=None)
    if best is None:
        hint = (f"no tp x pp layout (tp up to {min(max_tp, 64)}, pp up to {model.num_hidden_layers}) fits; use a smaller dtype, "
                f"fewer tokens per step (workspace) or a chip with more memory")
        for chunk in (1024, 256):  # the activation workspace grows with the tokens per step
            if chunk < max_tokens_per_step:
                smaller = [(t, p) for t, p in (_fitting_layouts(*args[:5], chunk, act_dtype) if args[0].__hash__ else ())
                           if t <= max_tp]
                if smaller:
                    t, p = smaller[0]
                    hint = (f"no tp x pp layout fits with {max_tokens_per_step} tokens per step (the activation "
                            f"workspace); with {chunk} (--max-tokens-per-step), tp {t} x pp {p} would ({t * p} chips)")
                    break
    elif best[1] == pp:
        hint = f"tp {best[0]} would fit ({best[0] * pp} chips)"
    else:
        hint = f"tp {best[0]} x pp {best[1]} would fit ({best[0] * best[1]} chips)"
    return _message(model, capacity_bytes, missing, tp, pp, hint)


def _message(model, capacity_bytes, missing, tp, pp, hint) -> str:
    return (f"{model.name} does not fit: weights + workspace + one request's KV cache need "
            f"{(capacity_bytes + missing) / 1e9:.2f} GB per chip, the device has {capacity_bytes / 1e9:.2f} GB "
            f"({missing / 1e9:.2f} GB missing at tp={tp}, pp={pp}); {hint}")


@lru_cache(maxsize=256)
def _fitting_layouts(model, capacity_bytes, dtype, kv_dtype, tokens_per_request, max_tokens_per_step,
                     act_dtype) -> tuple[tuple[int, int], ...]:
    """Every (tp, pp) whose chips hold the weights, the workspace and one request's KV cache, fewest chips first
    (tp a power of two up to 64 the model's heads allow, pp up to the layers)."""
    def fits(t: int, p: int) -> bool:
        try:
            w = weight_bytes_per_chip(model, dtype, t, p)
            a = activation_bytes_per_chip(model, max_tokens_per_step, t, act_dtype)
            kv = kv_bytes_per_token_per_chip(model, kv_dtype, t, p)
        except InputError:
            return False
        return w + a + kv * tokens_per_request <= capacity_bytes

    layouts = sorted((t * p, p, t) for t in (1, 2, 4, 8, 16, 32, 64) for p in range(1, model.num_hidden_layers + 1))
    return tuple((t, p) for _, p, t in layouts if fits(t, p))


def _models_that_fit(capacity_bytes, *, dtype, kv_dtype, tokens_per_request, max_tokens_per_step, act_dtype) -> str:
    """The hint of a one-device refusal: the built-in models whose weights, workspace and one request's KV cache
    fit `capacity_bytes` at this dtype, largest first."""
    from asicsim.workloads.models import builtin_models, load_model

    fits = []
    for name in builtin_models():
        try:
            other = load_model(name)
            need = (weight_bytes_per_chip(other, dtype, 1, 1)
                    + activation_bytes_per_chip(other, max_tokens_per_step, 1, act_dtype)
                    + kv_bytes_per_token_per_chip(other, kv_dtype, 1, 1) * tokens_per_request)
        except InputError:
            continue
        if need <= capacity_bytes:
            fits.append((need, name))
    if not fits:
        return f"one device with no scale-up links: no built-in model fits at {dtype}"
    names = ", ".join(name for _, name in sorted(fits, reverse=True))
    return f"one device with no scale-up links: at {dtype} these fit: {names}"
