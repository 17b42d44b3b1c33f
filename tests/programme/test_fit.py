"""The wave check's pure parts: flavors, quota lines, placement on free capacity."""

from __future__ import annotations

from cloudmgr.programme import fit

HOSTS = [
    fit.HostFree("a", 6, 12288, 100, 8, 16384, 200, False),
    fit.HostFree("b", 4, 8192, 100, 8, 16384, 200, False),
]


def test_placement_uses_cp_sat_when_best_fit_leaves_a_system_out() -> None:
    hosts = [fit.HostFree(f"h{i}", 6, 4, 10, 8, 8, 10, False) for i in range(2)]
    items = [("s0", (4, 3, 1)), ("s1", (1, 4, 1)), ("s2", (2, 2, 1)), ("s3", (4, 1, 1))]
    # best fit, largest first, places two; three fit (s0+s2 cannot share, s1 fills a host's RAM)
    placement = fit.place(items, hosts)
    assert placement.method == "cp-sat" and len(placement.assign) == 3
    for host in hosts:
        on = [d for name, d in items if placement.assign.get(name) == host.name]
        assert sum(d[0] for d in on) <= host.vcpus and sum(d[1] for d in on) <= host.ram_mb
    ((_name, reason),) = placement.unplaced
    assert "no host has room left once the rest of the wave is placed" in reason


def test_a_system_larger_than_any_host_is_unplaced_with_the_reason() -> None:
    placement = fit.place([("big", (16, 1024, 10))], HOSTS)
    assert placement.assign == {} and placement.method == "best-fit"
    ((name, reason),) = placement.unplaced
    assert name == "big" and "no host has that much free (the roomiest, a, has 6 vCPUs" in reason


def test_flavors_and_quota_lines() -> None:
    flavors = [fit.FlavorOption("m1.small", 1, 2048, 20), fit.FlavorOption("m1.large", 4, 8192, 80)]
    assert fit.choose_flavor(2, 1024, flavors) == flavors[1]
    assert fit.choose_flavor(8, 1024, flavors) is None
    system = fit.SystemSize(1, "h1", "dept", 4, 8192, 50, 20.0, 20.0)
    (sized,) = fit.size_systems([system], flavors)
    assert (sized.want_vcpus, sized.want_ram_mb, sized.flavor) == (1, 2048, flavors[0])
    (line,) = fit.quota_lines([sized], {"dept": {"cores": 0, "ram_mb": 4096, "instances": 1}})
    assert line.shortfall == {"cores": 1} and not line.ok
    (none,) = fit.quota_lines([sized], {})
    assert none.as_dict()["no_quota"] and none.shortfall == {"cores": 1, "ram_mb": 2048, "instances": 1}
