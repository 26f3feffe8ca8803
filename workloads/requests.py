"""Request streams: what arrives when, with how many prompt and output tokens.

Three sources: fixed-size bursts (every request at one instant, the static-batching benchmark setting),
Poisson arrivals at a rate with token lengths drawn from a distribution, and CSV traces (`traces.py`).
All random draws come from one seeded numpy Generator, so a seed fixes the stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import RUN, InputError

__all__ = ["Request", "LengthDist", "fixed_requests", "poisson_requests", "parse_length_dist"]


@dataclass(frozen=True)
class Request:
    """One inference request: arrival time (s), prompt tokens, tokens to generate."""

    request_id: int
    arrival_at: float
    input_tokens: int
    output_tokens: int
    prefilled: bool = False  # the prompt's KV cache arrives with it (a disaggregated decode pool's request)


def _positive_int(field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(RUN, field, f"must be a positive whole number, got {value!r}")
    return int(value)


def fixed_requests(count: int, isl: int, osl: int, arrival_at: float = 0.0) -> tuple[Request, ...]:
    """`count` identical requests arriving together (the static-batching benchmark setting)."""
    for field, value in (("requests", count), ("isl", isl), ("osl", osl)):
        _positive_int(field, value)
    at, isl, osl = float(arrival_at), int(isl), int(osl)
    return tuple(_request(i, at, isl, osl) for i in range(count))


def _request(request_id: int, arrival_at: float, input_tokens: int, output_tokens: int) -> Request:
    """`Request(...)` without the frozen dataclass's per-field `object.__setattr__` (a burst books hundreds; the
    same record, equal and hashable alike)."""
    request = object.__new__(Request)
    request.__dict__.update(request_id=request_id, arrival_at=arrival_at, input_tokens=input_tokens,
                            output_tokens=output_tokens, prefilled=False)
    return request


@dataclass(frozen=True)
class LengthDist:
    """A token-length distribution: `fixed` (mean), `uniform` (low..high), `lognormal` (median, sigma).

    Draws are whole numbers clipped to [1, cap]; lognormal's `mu` is ln(median) and `sigma` the standard
    deviation of ln(length), as fitted by `traces.fit_lognormal`.
    """

    kind: str
    a: float
    b: float = 0.0
    cap: int = 1 << 20

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "fixed":
            out = np.full(n, self.a)
        elif self.kind == "uniform":
            out = rng.integers(int(self.a), int(self.b) + 1, size=n)
        elif self.kind == "lognormal":
            out = np.rint(rng.lognormal(np.log(self.a), self.b, size=n))
        else:  # validated by parse_length_dist
            raise InputError("length", "kind", f"unknown distribution {self.kind!r}")
        return np.clip(out, 1, self.cap).astype(np.int64)


def parse_length_dist(field: str, text: str, default_mean: int) -> LengthDist:
    """`fixed`, `fixed:N`, `uniform:LO:HI`, `lognormal:MEDIAN:SIGMA`; a bare `fixed` uses `default_mean`."""
    parts = text.strip().lower().split(":")
    kind, args = parts[0], parts[1:]
    try:
        nums = [float(x) for x in args]
    except ValueError:
        raise InputError(RUN, field, f"numbers expected after the kind, got {text!r}") from None
    if kind == "fixed" and len(nums) <= 1:
        value = nums[0] if nums else default_mean
        if value < 1:
            raise InputError(RUN, field, f"fixed length must be >= 1, got {value}")
        return LengthDist("fixed", float(int(value)))
    if kind == "uniform" and len(nums) == 2 and 1 <= nums[0] <= nums[1]:
        return LengthDist("uniform", nums[0], nums[1])
    if kind == "lognormal" and len(nums) == 2 and nums[0] >= 1 and nums[1] >= 0:
        return LengthDist("lognormal", nums[0], nums[1])
    raise InputError(RUN, field, "expected fixed[:N], uniform:LO:HI (1 <= LO <= HI) or "
                     f"lognormal:MEDIAN:SIGMA (MEDIAN >= 1, SIGMA >= 0), got {text!r}")


def poisson_requests(count: int, rate_per_s: float, isl: LengthDist, osl: LengthDist, seed: int) -> tuple[Request, ...]:
    """`count` requests with exponential inter-arrival gaps of mean 1/rate; the first arrives at its gap."""
    _positive_int("requests", count)
    if not rate_per_s > 0 or not np.isfinite(rate_per_s):
        raise InputError(RUN, "rate", f"must be a positive number of requests per second, got {rate_per_s!r}")
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_per_s, size=count))
    ins, outs = isl.sample(rng, count), osl.sample(rng, count)
    return tuple(Request(i, float(t), int(a), int(b)) for i, (t, a, b) in enumerate(zip(arrivals, ins, outs)))
