"""Routers: which data-parallel replica a new request joins.

- `round-robin`: requests dealt in arrival order, replica k % R.
- `least-tokens`: the replica with the fewest outstanding tokens (prompt tokens not yet prefilled plus
  output tokens not yet generated, over the requests routed to it and not finished); ties go to the
  lowest index. Replica state is taken at the arrival time (the serving loop routes each arrival before
  any replica steps past it).
"""

from __future__ import annotations

from typing import Sequence

from asicsim.workloads.errors import RUN, InputError

__all__ = ["ROUTERS", "make_router", "RoundRobinRouter", "LeastTokensRouter"]


class RoundRobinRouter:
    name = "round-robin"

    def __init__(self) -> None:
        self._next = 0

    def pick(self, outstanding_tokens: Sequence[int]) -> int:
        k = self._next
        self._next = (k + 1) % len(outstanding_tokens)
        return k


class LeastTokensRouter:
    name = "least-tokens"

    def pick(self, outstanding_tokens: Sequence[int]) -> int:
        return min(range(len(outstanding_tokens)), key=outstanding_tokens.__getitem__)


ROUTERS = {cls.name: cls for cls in (RoundRobinRouter, LeastTokensRouter)}


def make_router(name: str):
    try:
        return ROUTERS[name]()
    except KeyError:
        raise InputError(RUN, "router", f"must be one of {', '.join(ROUTERS)}, got {name!r}") from None
