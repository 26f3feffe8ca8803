"""Memory planning: weights, activation workspace and KV cache against device memory per chip.

A run that cannot hold its weights plus one request's KV cache fails with a DoesNotFitError that says how
many bytes are missing and which tensor-parallel degree or batch would fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from asicsim.workloads.errors import DoesNotFitError, InputError
from asicsim.workloads.memory import activation_bytes_per_chip, kv_bytes_per_token_per_chip, weight_bytes_per_chip
from asicsim.workloads.models import ModelConfig

__all__ = ["MemoryPlan", "plan_memory"]


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
) -> MemoryPlan:
    """How many requests of `tokens_per_request` fit per replica; raises DoesNotFitError if none."""
    weights = weight_bytes_per_chip(model, dtype, tp, pp)
    workspace = activation_bytes_per_chip(model, max_tokens_per_step, tp, act_dtype)
    kv_token = kv_bytes_per_token_per_chip(model, kv_dtype, tp, pp)
    free = capacity_bytes - weights - workspace
    per_request = kv_token * tokens_per_request
    fit = int(free // per_request) if free > 0 else 0
    if fit < 1:
        missing = weights + workspace + per_request - capacity_bytes
        raise DoesNotFitError("--model", model.name, _does_not_fit_message(
            model, capacity_bytes, missing, dtype=dtype, kv_dtype=kv_dtype, tp=tp, pp=pp,
            tokens_per_request=tokens_per_request, max_tokens_per_step=max_tokens_per_step,
            act_dtype=act_dtype, chips=chips))
    return MemoryPlan(capacity_bytes, weights, workspace, kv_token, free, fit)


def _does_not_fit_message(model, capacity_bytes, missing, *, dtype, kv_dtype, tp, pp, tokens_per_request,
                          max_tokens_per_step, act_dtype, chips) -> str:
    """Say how much is missing and the smallest tensor-parallel degree that would fit."""
    hint = "no tensor-parallel degree up to 64 fits; use more pipeline stages or a smaller dtype"
    for cand in (1, 2, 4, 8, 16, 32, 64):
        if cand <= tp or model.num_key_value_heads % cand:
            continue
        try:
            w = weight_bytes_per_chip(model, dtype, cand, pp)
            a = activation_bytes_per_chip(model, max_tokens_per_step, cand, act_dtype)
            kv = kv_bytes_per_token_per_chip(model, kv_dtype, cand, pp)
        except InputError:
            continue
        if w + a + kv * tokens_per_request <= capacity_bytes:
            hint = f"--tp {cand} would fit ({cand * pp} chips)"
            break
    return (f"does not fit: weights + workspace + one request's KV cache need "
            f"{(capacity_bytes + missing) / 1e9:.2f} GB per chip, the device has {capacity_bytes / 1e9:.2f} GB "
            f"({missing / 1e9:.2f} GB missing at tp={tp}, pp={pp}); {hint}")
