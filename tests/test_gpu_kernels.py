"""GPU cost kernels agree with their plain-Python twins (tests/reference/gpu_ref.py) and obey theory."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.kernels import attention, collectives, gpu_gemm, memory
try:  # repo root on sys.path (tests/ a package or pythonpath set)
    from tests.reference import gpu_ref
except ModuleNotFoundError:  # rootdir-relative import: tests/ itself on sys.path
    from reference import gpu_ref

rel = dict(rel=1e-9, abs=1e-15)

sizes = st.floats(min_value=0.0, max_value=1e11, allow_nan=False)
bandwidths = st.floats(min_value=1e8, max_value=1e13)
latencies = st.floats(min_value=0.0, max_value=1e-4)
dims = st.integers(min_value=1, max_value=40000)


# --- memory ---
@settings(deadline=None)
@given(sizes, bandwidths, latencies)
def test_transfer_matches_twin(nbytes, bw, lat):
    assert memory.transfer_time_s(nbytes, bw, lat) == pytest.approx(gpu_ref.transfer_time_s(nbytes, bw, lat), **rel)


# --- collectives ---
CURVE_SIZES = np.array([2.0**10, 2.0**20, 2.0**30])
CURVE_BUSBW = np.array([0.07e9, 43.7e9, 466e9])


@settings(deadline=None)
@given(sizes, st.integers(min_value=1, max_value=64), latencies, bandwidths)
def test_allreduce_models_match_twin(size, n, alpha, busbw):
    assert collectives.ring_allreduce_time_s(size, n, alpha, busbw) == pytest.approx(
        gpu_ref.ring_allreduce_time_s(size, n, alpha, busbw), **rel)
    assert collectives.curve_allreduce_time_s(size, n, CURVE_SIZES, CURVE_BUSBW) == pytest.approx(
        gpu_ref.curve_allreduce_time_s(size, n, CURVE_SIZES, CURVE_BUSBW), **rel)
    assert collectives.curve_allreduce_time_s(size, n, CURVE_SIZES, CURVE_BUSBW, busbw) == pytest.approx(
        gpu_ref.curve_allreduce_time_s(size, n, CURVE_SIZES, CURVE_BUSBW, busbw), **rel)


@settings(deadline=None)
@given(st.floats(min_value=1.0, max_value=1e11))
def test_busbw_interpolation_matches_twin(size):
    assert collectives.interp_busbw_bytes_per_s(size, CURVE_SIZES, CURVE_BUSBW) == pytest.approx(
        gpu_ref.interp_busbw_bytes_per_s(size, CURVE_SIZES, CURVE_BUSBW), rel=1e-9)


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
@given(dims, dims, dims, st.booleans())
def test_gemm_compute_matches_twin(m, n, k, wq):
    got = gpu_gemm.gemm_compute(*_compute_args(m, n, k, wq))
    want = gpu_ref.gemm_compute(*_compute_args(m, n, k, wq))
    assert got[0] == pytest.approx(want[0], **rel)
    assert (got[1], got[2]) == (want[1], want[2])
    assert got[3] == pytest.approx(want[3], **rel)


@settings(deadline=None)
@given(dims, dims, dims, st.sampled_from([(128, 256), (128, 128), (64, 64)]), st.integers(1, 16), st.booleans())
def test_gemm_config_time_matches_twin(m, n, k, tile, split_k, wq):
    args = (m, n, k, tile[0], tile[1], split_k, 132, 1e13, wq)
    assert gpu_gemm.gemm_config_time_s(*args) == pytest.approx(gpu_ref.gemm_config_time_s(*args), **rel)


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
seq_lists = st.lists(st.tuples(st.integers(0, 700), st.integers(0, 3000)), min_size=0, max_size=6)


def _arrays(pairs):
    new = np.array([p[0] for p in pairs], dtype=np.int64)
    past = np.array([p[1] for p in pairs], dtype=np.int64)
    return new, past


@settings(deadline=None)
@given(seq_lists, st.integers(1, 16), st.sampled_from([64, 128]), st.booleans())
def test_attention_counts_match_twin(pairs, heads, head_dim, causal):
    new, past = _arrays(pairs)
    assert attention.attention_flops(new, past, heads, head_dim, causal) == pytest.approx(
        gpu_ref.attention_flops(new, past, heads, head_dim, causal), **rel)
    assert attention.kv_cache_bytes(new, past, heads, head_dim, 2.0) == pytest.approx(
        gpu_ref.kv_cache_bytes(new, past, heads, head_dim, 2.0), **rel)


@settings(deadline=None)
@given(seq_lists, st.integers(1, 8), st.sampled_from([64, 128]), st.booleans())
def test_prefill_attention_matches_twin(pairs, heads, block, causal):
    new, past = _arrays(pairs)
    args = (new, past, heads, 128, block, 128, causal, 132, 989.4e12, 0.75)
    assert attention.prefill_attention_compute_s(*args) == pytest.approx(gpu_ref.prefill_attention_compute_s(*args), **rel)


def test_prefill_blocks_cover_at_least_the_useful_flops():
    new, past = np.array([1000, 37]), np.array([0, 4096])
    t = attention.prefill_attention_compute_s(new, past, 8, 128, 128, 128, True, 132, 1e15, 1.0)
    assert attention.attention_flops(new, past, 8, 128, True) <= t * 1e15
