"""Request streams: what arrives when, with how many prompt and output tokens."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

__all__ = ["Request", "fixed_requests"]


@dataclass(frozen=True)
class Request:
    """One inference request: arrival time (s), prompt tokens, tokens to generate."""

    request_id: int
    arrival_at: float
    input_tokens: int
    output_tokens: int


def fixed_requests(count: int, isl: int, osl: int, arrival_at: float = 0.0) -> tuple[Request, ...]:
    """`count` identical requests arriving together (the static-batching benchmark setting)."""
    for flag, value in (("--requests", count), ("--isl", isl), ("--osl", osl)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(flag, flag.lstrip("-"), f"must be a positive whole number, got {value!r}")
    return tuple(Request(i, float(arrival_at), isl, osl) for i in range(count))
