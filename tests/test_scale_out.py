"""Collectives over more than one scale-up domain priced on the scale-out network (asicsim.core.scale_out)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.cli import main
from asicsim.core.cluster import ScaleOutNetwork, load_network
from asicsim.core.description import RunSpec, resolve
from asicsim.core.registry import make_device
from asicsim.core.runner import run_workload
from asicsim.core.scale_out import ScaleOutDevice
from asicsim.workloads.graph_types import Op, OpKind


def _network(bandwidth: float, latency: float) -> ScaleOutNetwork:
    return dataclasses.replace(load_network("ib-ndr-400"), nic_bandwidth_bytes_per_s=bandwidth,
                               message_latency_s=latency, switch_latency_s=0.0)


def _wrapped(bandwidth: float, latency: float, chips: int = 32) -> ScaleOutDevice:
    inner = make_device("h100-sxm", chips)
    return ScaleOutDevice(inner, inner.cluster.with_network(_network(bandwidth, latency)), chips)


def _op(kind: str, group: int, message: float) -> Op:
    return Op("collective", kind, "bf16", comm_bytes=message, group=group)


def test_an_infinitely_fast_network_leaves_only_the_in_domain_part() -> None:
    device = _wrapped(math.inf, 0.0)
    inner = device.inner
    reduce = _op(OpKind.ALLREDUCE, 16, 4e6)
    assert device.cost(reduce).link_cycles == inner.cost(_op(OpKind.ALLREDUCE, 8, 4e6)).link_cycles
    spread = _op(OpKind.ALL_TO_ALL, 32, 8e6)
    assert device.cost(spread).link_cycles == inner.cost(_op(OpKind.ALL_TO_ALL, 8, 8e6 * 8 / 32)).link_cycles
    # Within one domain nothing changes.
    assert device.cost(_op(OpKind.ALLREDUCE, 8, 4e6)) == inner.cost(_op(OpKind.ALLREDUCE, 8, 4e6))


@settings(deadline=None, max_examples=60)
@given(kind=st.sampled_from([OpKind.ALLREDUCE, OpKind.ALL_TO_ALL]), group=st.sampled_from([16, 24, 32, 64]),
       message=st.floats(1e3, 1e9), bandwidth=st.floats(1e9, 1e12), latency=st.floats(0.0, 1e-4),
       slower=st.floats(1.0, 100.0))
def test_a_slower_network_is_never_faster(kind, group, message, bandwidth, latency, slower) -> None:
    op = _op(kind, group, message)
    fast = _wrapped(bandwidth, latency).cost(op).link_cycles
    assert _wrapped(bandwidth / slower, latency).cost(op).link_cycles >= fast
    assert _wrapped(bandwidth, latency * slower + 1e-9).cost(op).link_cycles >= fast
    # and never faster than the in-domain part alone
    assert fast >= _wrapped(math.inf, 0.0).cost(op).link_cycles


def test_tensor_parallelism_across_servers_is_priced_on_the_nic() -> None:
    base = dict(hardware="h100-sxm", chips=16, tp=16, model="llama-3.1-70b", dtype="fp8", requests=64, isl=512,
                osl=32)
    assert isinstance(resolve(RunSpec(**base)).make_device(), ScaleOutDevice)
    assert not isinstance(resolve(RunSpec(**{**base, "tp": 8})).make_device(), ScaleOutDevice)
    ndr = run_workload(RunSpec(**base)).summary
    ethernet = run_workload(RunSpec(**base, network="ethernet-400")).summary
    assert ethernet["tpot_p50_s"] > ndr["tpot_p50_s"]
    assert ethernet["power_network_w"] != ndr["power_network_w"]


def test_an_unknown_network_is_one_line_and_exit_code_2(capsys) -> None:
    assert main(["run", "--hw", "h100-sxm", "--chips", "8", "--model", "llama-3.1-8b", "--network", "ib-ndr"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--network" in err and "ib-ndr-400" in err and "\n" not in err


@pytest.mark.parametrize("network", ["ib-ndr-400", "ethernet-400"])
def test_wide_expert_parallelism_across_servers_runs(network: str) -> None:
    s = run_workload(RunSpec(hardware="h100-sxm", chips=16, tp=16, attention_dp=True, model="qwen3-30b-a3b",
                             dtype="fp8", requests=64, isl=512, osl=16, network=network)).summary
    assert s["ep"] == 16 and s["output_tokens_total"] == 64 * 16


def test_a_device_with_its_own_multi_domain_fabric_keeps_its_prices() -> None:
    # Groq's chips reach beyond their 8-card node over their own links (the SRAM-pipeline model's route hops): a
    # 32-chip tensor-parallel group is priced there, not on an InfiniBand NIC; a named network changes its power only.
    spec = RunSpec(hardware="groq-lpu", chips=448, tp=32, pp=14, model="llama-3.3-70b", dtype="int8",
                   harness="per-user", isl=128, osl=16)
    device = resolve(spec).make_device()
    inner = device.inner if isinstance(device, ScaleOutDevice) else device
    op = _op(OpKind.ALLREDUCE, 32, 1e5)
    assert device.cost(op) == inner.cost(op)
    plain = run_workload(spec).summary
    swapped = run_workload(dataclasses.replace(spec, network="ethernet-400")).summary
    assert swapped["tpot_p50_s"] == plain["tpot_p50_s"] and swapped["power_network_w"] != plain["power_network_w"]
