"""The cluster layer (asicsim.core.cluster) and rack systems (kind `system`): fat-tree counts worked by hand, power
that sums over chips, hosts, network and facility, and racks that run as their chip with the rack's domain."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asicsim.core.cluster import ScaleOutNetwork, cluster_for, load_network, network_names
from asicsim.core.registry import load_hardware, make_device
from asicsim.core.runner import RunSpec, run_workload
from asicsim.workloads.errors import InputError

NET = ScaleOutNetwork(name="test", nic_bandwidth_bytes_per_s=50e9, message_latency_s=5e-6, switch_latency_s=100e-9,
                      switch_radix=64, switch_power_w=700.0, transceiver_power_w=10.0)


def test_fat_tree_counts_worked_by_hand() -> None:
    # One 64-port switch takes 64 NICs; two tiers take 2 x 32^2 = 2048; three take 2 x 32^3 = 65536.
    assert [NET.tiers(n) for n in (1, 2, 64, 65, 2048, 2049, 65536)] == [0, 1, 1, 2, 2, 3, 3]
    # 576 NICs, two tiers: 18 leaves (32 down each) and 9 spines (64 down each).
    assert NET.switches(576) == 18 + 9
    # 4608 NICs, three tiers: 144 leaves, 144 middle switches, 72 top switches.
    assert NET.switches(4608) == 144 + 144 + 72
    assert NET.transceivers(576) == 2 * 576 * 2
    assert NET.power_w(576) == pytest.approx(27 * 700.0 + 2304 * 10.0)
    # Across the diameter of a 3-tier tree: 5 switches, the first in the message latency.
    assert NET.latency_s(4608) == pytest.approx(5e-6 + 4 * 100e-9)


@settings(deadline=None, max_examples=60)
@given(domain=st.sampled_from([1, 8, 72]), chips=st.integers(1, 20000), chip_w=st.floats(0.0, 2000.0),
       host_w=st.floats(0.0, 1000.0), pue=st.floats(1.0, 2.0))
def test_power_sums_over_chips_hosts_network_and_facility(domain, chips, chip_w, host_w, pue) -> None:
    cluster = dataclasses.replace(cluster_for("h100-sxm", domain, 700.0), chips_per_domain=domain,
                                  host_power_w_per_chip=host_w, network=NET, pue=pue)
    power = cluster.power(chips, chip_w)
    assert power.chips_w == pytest.approx(chips * chip_w)
    assert power.host_w == pytest.approx(chips * host_w)
    assert power.network_w == (NET.power_w(chips) if chips > domain else 0.0)
    assert power.it_w == pytest.approx(power.chips_w + power.host_w + power.network_w)
    assert power.total_w == pytest.approx(power.it_w * pue)
    # More chips never draw less power, nor less network power per chip past one domain.
    more = cluster.power(chips + domain, chip_w)
    assert more.total_w >= power.total_w
    assert more.network_w >= power.network_w


def test_network_power_is_zero_within_one_domain() -> None:
    cluster = cluster_for("gb200", 72, 1200.0)
    assert cluster.power(72, 1000.0).network_w == 0.0
    assert cluster.power(144, 1000.0).network_w > 0.0


def test_every_network_figure_has_a_source() -> None:
    for name in network_names():
        network = load_network(name)
        assert set(network.sources) == {"nic_bandwidth_bytes_per_s", "message_latency_s", "switch_latency_s",
                                        "switch_radix", "switch_power_w", "transceiver_power_w"}
        assert all(note for note in network.sources.values()), name


def test_unknown_network_names_the_field_and_suggests() -> None:
    with pytest.raises(InputError, match="network.*ib-ndr-400"):
        load_network("ib-ndr-40")


@pytest.mark.parametrize("rack, chip", [("gb200-nvl72", "gb200"), ("gb300-nvl72", "gb300"), ("sohu-rack", "sohu")])
def test_a_rack_runs_as_its_chip_with_the_racks_domain_and_power(rack: str, chip: str) -> None:
    spec = load_hardware(rack)
    system, bare = make_device(rack, 8), make_device(chip, 8)
    assert system.name == rack
    assert system.link_limits.chips_per_domain == spec.chips_per_domain
    assert system.link_limits.bandwidth_bytes_per_s == bare.link_limits.bandwidth_bytes_per_s
    assert system.peak_flops_per_s("fp8") == bare.peak_flops_per_s("fp8")
    # Host power per chip is what the rack's power leaves after its chips' TDP.
    tdp = bare.power_limits().tdp_w
    assert system.cluster.host_power_w_per_chip == pytest.approx(spec.rack_power_w / spec.chips_per_rack - tdp)
    # Same chips, same layout: the rack prices every step as the chip does; only power around the chips differs.
    kw = dict(chips=8, tp=8, model="llama-3.1-8b", dtype="fp8", requests=16, isl=256, osl=32)
    on_rack, on_chip = run_workload(RunSpec(hardware=rack, **kw)), run_workload(RunSpec(hardware=chip, **kw))
    assert on_rack.summary["output_tokens_per_s"] == on_chip.summary["output_tokens_per_s"]
    assert on_rack.summary["avg_power_w_per_chip"] == on_chip.summary["avg_power_w_per_chip"]
    assert on_rack.summary["power_host_w"] == pytest.approx(8 * system.cluster.host_power_w_per_chip)


def test_a_rack_below_its_chips_tdp_is_refused(tmp_path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text('kind = "system"\nname = "tiny"\ndescription = "x"\nchip = "gb200"\nchips_per_rack = 72\n'
                    'chips_per_domain = 72\nrack_power_w = 50000\nnetwork = "ib-ndr-400"\n')
    with pytest.raises(InputError, match="rack_power_w.*72 x 1200"):
        load_hardware(str(path))
