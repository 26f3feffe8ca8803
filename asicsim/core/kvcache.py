"""Paged KV cache of one replica: fixed-size blocks of `block_tokens` tokens, counted per request.

A request holds ceil(cached tokens / block_tokens) blocks (vLLM-style paging: no contiguous reservation,
at most one partly filled block per request). The allocator only counts blocks; which physical block
holds what does not change timing. Capacity is the KV budget the memory plan leaves per chip after
weights and the activation workspace. Use over time is integrated so the mean can be reported.
"""

from __future__ import annotations

import numpy as np

from asicsim.kernels.paging import blocks_taken as _blocks_taken

__all__ = ["PagedKVCache", "growth_steps", "blocks_taken"]


class PagedKVCache:
    """Block accounting with admission checks; never exceeds `capacity_blocks` (raises if asked to)."""

    def __init__(self, capacity_blocks: int, block_tokens: int) -> None:
        if capacity_blocks < 1 or block_tokens < 1:
            raise ValueError(f"capacity_blocks and block_tokens must be >= 1, got {capacity_blocks}, {block_tokens}")
        self.capacity_blocks = int(capacity_blocks)
        self.block_tokens = int(block_tokens)
        self.used_blocks = 0
        self.peak_blocks = 0
        self._held: dict[int, int] = {}
        self._area = 0.0  # block-seconds
        self._last_at = 0.0

    def blocks_for(self, tokens: int) -> int:
        return -(-int(tokens) // self.block_tokens)

    @property
    def free_blocks(self) -> int:
        return self.capacity_blocks - self.used_blocks

    def held(self, rid: int) -> int:
        return self._held.get(rid, 0)

    def extra_blocks(self, rid: int, tokens: int) -> int:
        """Blocks request `rid` needs beyond what it holds to cache `tokens` tokens in all."""
        return max(self.blocks_for(tokens) - self._held.get(rid, 0), 0)

    def can_grow(self, rid: int, tokens: int) -> bool:
        return self.extra_blocks(rid, tokens) <= self.free_blocks

    def grow(self, rid: int, tokens: int) -> None:
        """Make request `rid` hold enough blocks for `tokens` cached tokens."""
        extra = self.extra_blocks(rid, tokens)
        if extra > self.free_blocks:
            raise RuntimeError(f"KV cache overflow: request {rid} needs {extra} blocks, {self.free_blocks} free")
        if extra:
            self._held[rid] = self._held.get(rid, 0) + extra
            self.used_blocks += extra
            if self.used_blocks > self.peak_blocks:
                self.peak_blocks = self.used_blocks

    def fitting_prefix(self, requests) -> list[int]:
        """Blocks each leading (rid, tokens) of `requests` (any iterable, read lazily) needs beyond what it holds,
        for as many as fit the free blocks together."""
        free, out = self.free_blocks, []
        for rid, tokens in requests:
            need = self.extra_blocks(rid, tokens)
            if need > free:
                break
            free -= need
            out.append(need)
        return out

    def take_blocks(self, needs: list[tuple[int, int]]) -> None:
        """`grow` for many requests at once: request rid takes `blocks` more blocks, for each (rid, blocks)."""
        total = sum(n for _, n in needs)
        if total > self.free_blocks:
            raise RuntimeError(f"KV cache overflow: {total} blocks asked for, {self.free_blocks} free")
        held = self._held
        for rid, blocks in needs:
            if blocks:
                held[rid] = held.get(rid, 0) + blocks
        self.used_blocks += total
        if self.used_blocks > self.peak_blocks:
            self.peak_blocks = self.used_blocks

    def free(self, rid: int) -> None:
        self.used_blocks -= self._held.pop(rid, 0)

    def advance(self, now_at: float) -> None:
        """Integrate use up to `now_at` (call before every change of use at a later time)."""
        if now_at > self._last_at:
            self._area += self.used_blocks * (now_at - self._last_at)
            self._last_at = now_at

    def bulk_decode(self, held_blocks: dict[int, int], used_blocks, starts_at, ends_at) -> None:
        """Book consecutive decode steps at once: `used_blocks[j]` held during step j (after its growth; never
        falling), steps back to back from `starts_at[0]`; `held_blocks` the final blocks of each grown request."""
        last = int(used_blocks[-1])
        if last > self.capacity_blocks:
            raise RuntimeError(f"KV cache overflow: {last} blocks of {self.capacity_blocks}")
        self.advance(float(starts_at[0]))
        self._area += float(np.dot(used_blocks, ends_at - starts_at))
        end = float(ends_at[-1])
        if end > self._last_at:
            self._last_at = end
        self._held.update(held_blocks)
        self.used_blocks = last
        if last > self.peak_blocks:
            self.peak_blocks = last

    def mean_blocks(self, until_at: float) -> float:
        self.advance(until_at)
        return self._area / until_at if until_at > 0 else float(self.used_blocks)


def growth_steps(cached_tokens, cap_tokens, block_tokens: int, steps: int):
    """Sorted step indices (0-based, < `steps`) at which decoding sequences need one more KV block.

    Sequence i caches `cached_tokens[i]` tokens in blocks holding `cap_tokens[i]` (a whole number of
    blocks); step j adds one token, so it needs a block at j = cap - cached, then every `block_tokens`.
    One entry per block, so the k-th entry is the step at which the k-th extra block is taken.
    """
    first = np.asarray(cap_tokens, dtype=np.int64) - np.asarray(cached_tokens, dtype=np.int64)
    first = first[first < steps]
    if not first.size:
        return np.zeros(0, dtype=np.int64)
    counts = (steps - 1 - first) // block_tokens + 1
    starts = np.repeat(first, counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.sort(starts + offsets * block_tokens)


def blocks_taken(cached_tokens: np.ndarray, cap_tokens: np.ndarray, block_tokens: int, steps: int) -> np.ndarray:
    """Blocks the decoding sequences have taken beyond their `cap_tokens` by the end of each step 0..steps-1 (int64,
    non-decreasing; `kernels.paging.blocks_taken`): sequence i takes one at step cap - cached, then every
    `block_tokens` steps (`growth_steps`)."""
    return _blocks_taken(np.asarray(cached_tokens, dtype=np.int64), np.asarray(cap_tokens, dtype=np.int64),
                         int(block_tokens), int(steps))
