"""GPU-side cost kernels obey theory (monotone curves, caps, peak bounds, wave steps).

That each kernel equals its plain-Python twin is checked for every registered kernel in
tests/test_kernel_registry.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.kernels import attention, collectives, gpu_gemm

dims = st.integers(min_value=1, max_value=40000)


# --- collectives ---
CURVE_SIZES = np.array([2.0**10, 2.0**20, 2.0**30])
CURVE_BUSBW = np.array([0.07e9, 43.7e9, 466e9])


def test_curve_passes_through_its_points_and_time_never_falls_with_size():
    for size, busbw in zip(CURVE_SIZES, CURVE_BUSBW):
        assert collectives.interp_busbw_bytes_per_s(size, CURVE_SIZES, CURVE_BUSBW) == pytest.approx(busbw)
    times = [collectives.curve_allreduce_time_s(s, 8, CURVE_SIZES, CURVE_BUSBW) for s in np.geomspace(1, 1e11, 200)]
    assert all(b >= a * (1 - 1e-12) for a, b in zip(times, times[1:]))


def test_busbw_cap_only_slows_sizes_whose_curve_busbw_exceeds_it():
    cap = 100e9
    for size in np.geomspace(1e3, 1e11, 50):
        free = collectives.curve_allreduce_time_s(size, 4, CURVE_SIZES, CURVE_BUSBW)
        capped = collectives.curve_allreduce_time_s(size, 4, CURVE_SIZES, CURVE_BUSBW, cap)
        below = collectives.interp_busbw_bytes_per_s(size, CURVE_SIZES, CURVE_BUSBW) <= cap
        assert capped == pytest.approx(free) if below else capped == pytest.approx(size * 1.5 / cap)


def test_ring_latency_is_two_steps_per_extra_rank_and_one_rank_costs_nothing():
    """A one-byte ring all-reduce is all latency: 2(n - 1) steps of alpha."""
    for n in (2, 8, 16):
        assert collectives.ring_allreduce_time_s(1.0, n, 1e-6, 1e12) == pytest.approx(2 * (n - 1) * 1e-6, rel=1e-6)
    assert collectives.ring_allreduce_time_s(1e6, 1, 1e-6, 1e12) == 0.0


# --- GEMM ---
gemm_cfg = dict(sm_count=132, peak=1978.9e12, efficiency=0.7, tile_m=128, tile_n_wide=256, tile_n_narrow=128,
                narrow_efficiency=0.85, split_k_min_depth=1024)


def _compute_args(m, n, k, wq, cfg=gemm_cfg):
    return (m, n, k, cfg["sm_count"], cfg["peak"], cfg["efficiency"], cfg["tile_m"], cfg["tile_n_wide"],
            cfg["tile_n_narrow"], cfg["narrow_efficiency"], cfg["split_k_min_depth"], wq)


@settings(deadline=None)
@given(dims, dims, dims)
def test_gemm_never_beats_peak_and_waves_only_slow_down(m, n, k):
    quantized = gpu_gemm.gemm_compute(*_compute_args(m, n, k, True))[0]
    balanced = gpu_gemm.gemm_compute(*_compute_args(m, n, k, False))[0]
    assert balanced <= quantized * (1 + 1e-12)
    assert 2.0 * m * n * k / balanced <= gemm_cfg["peak"] * (1 + 1e-9)


def test_gemm_wave_quantization_step():
    """One tile more than the SMs hold costs a whole extra wave."""
    one = gpu_gemm.gemm_config_time_s(128 * 132, 256, 8192, 128, 256, 1, 132, 1e13, True)
    two = gpu_gemm.gemm_config_time_s(128 * 133, 256, 8192, 128, 256, 1, 132, 1e13, True)
    assert two == pytest.approx(2 * one)


# --- attention ---
def test_prefill_blocks_cover_at_least_the_useful_flops():
    new, past = np.array([1000, 37]), np.array([0, 4096])
    t = attention.prefill_attention_compute_s(new, past, 8, 128, 128, 128, True, 132, 1e15, 1.0)
    assert attention.attention_flops(new, past, 8, 128, True) <= t * 1e15
