"""The routing model of mixture-of-experts layers: how many token-expert pairs and distinct experts land on
the busiest chip of an expert-parallel group.

Model (stated, seeded, deterministic):
- Expert popularity: p_e proportional to exp(sigma * z_e), z_e standard normal from `numpy.random.
  default_rng(seed)`; `imbalance` = sigma (the spread of log popularity; 0: uniform routing). Popularity is
  capped so no expert is picked by more than every token (top_k * p_e <= 1), the excess spread over the rest.
- A token picks top_k distinct experts, expert e with probability top_k * p_e, independently of other tokens.
  So over T tokens expert e expects T * top_k * p_e tokens and is used at all (its weights read) with
  probability 1 - (1 - top_k * p_e)^T.
- Experts are placed on the `ep` chips in contiguous blocks of E / ep (expert e on chip e // (E / ep)); the step
  waits for the busiest chip, the one with the most expected token-expert pairs.
Expected values, not samples: a step's cost is smooth in T and equal runs give equal numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["ExpertLoad", "expert_popularity", "busiest_chip_load", "DEFAULT_IMBALANCE", "DEFAULT_ROUTING_SEED"]

# sigma of log expert popularity. Assumed: balanced routers (auxiliary-loss or bias balanced) keep per-expert
# load within tens of percent of the mean over a batch; 0.3 gives a coefficient of variation of about 0.31.
DEFAULT_IMBALANCE = 0.3
DEFAULT_ROUTING_SEED = 0


@dataclass(frozen=True, slots=True)
class ExpertLoad:
    """What the busiest chip of the expert-parallel group computes in one MoE layer for T routed tokens."""

    pairs: float  # expected token-expert pairs (rows through its expert GEMMs)
    active_experts: float  # expected experts with at least one token (whose weights it reads)
    local_experts: int  # experts placed on each chip
    total_pairs: float  # T * top_k over the whole group

    @property
    def tokens_per_active_expert(self) -> float:
        return self.pairs / self.active_experts if self.active_experts > 0.0 else 0.0


@lru_cache(maxsize=256)
def expert_popularity(num_experts: int, top_k: int, imbalance: float, seed: int) -> np.ndarray:
    """p_e (sums to 1, top_k * p_e <= 1), read-only."""
    if imbalance == 0.0:
        p = np.full(num_experts, 1.0 / num_experts)
    else:
        z = np.random.default_rng(seed).standard_normal(num_experts)
        p = np.exp(imbalance * z)
        p /= p.sum()
        cap = 1.0 / top_k
        for _ in range(num_experts):  # water-fill the excess of capped experts onto the others
            over = p > cap
            if not over.any():
                break
            excess = float((p[over] - cap).sum())
            p[over] = cap
            free = ~over & (p < cap)
            p[free] += excess * p[free] / p[free].sum()
    p.flags.writeable = False
    return p


@lru_cache(maxsize=65536)
def busiest_chip_load(num_experts: int, top_k: int, tokens: int, ep: int, imbalance: float,
                      seed: int) -> ExpertLoad:
    """Expected load of the busiest chip for `tokens` tokens routed over `ep` chips (ep divides num_experts)."""
    p = expert_popularity(num_experts, top_k, imbalance, seed)
    pick = np.minimum(top_k * p, 1.0)
    pairs = tokens * pick
    used = 1.0 - np.power(1.0 - pick, tokens)
    local = num_experts // ep
    per_chip_pairs = pairs.reshape(ep, local).sum(axis=1)
    busiest = int(np.argmax(per_chip_pairs))
    return ExpertLoad(pairs=float(per_chip_pairs[busiest]),
                      active_experts=float(used.reshape(ep, local)[busiest].sum()),
                      local_experts=local, total_pairs=float(tokens * top_k))
