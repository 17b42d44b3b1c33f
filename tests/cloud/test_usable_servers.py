"""The CloudProvider contract for usable servers (issue 16): keypairs, security groups,
floating IPs and consoles, run against the simulator and the lab OpenStack alike."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from cloudmgr.cloud import (
    CloudBadRequest,
    CloudConflict,
    CloudNotFound,
    CloudProvider,
    CloudQuotaExceeded,
    ProjectRef,
    QuotaSet,
    Server,
)
from cloudmgr.cloud.checks import MAX_USER_DATA_BASE64, encode_user_data
from cloudmgr.cloud.types import (
    ALLOW_ALL_EGRESS,
    REMOTE_GROUP_SELF,
    ConsoleUrl,
    FloatingIp,
    KeyPair,
    SecurityGroup,
    SecurityRule,
)

from .conftest import ROOMY_QUOTA, RUN_ID, CloudTestEnv


def _only_our_types(values: object) -> None:
    for value in values if isinstance(values, list | tuple) else [values]:
        assert dataclasses.is_dataclass(value), f"{type(value)!r} is not one of cloudmgr's types"
        assert type(value).__module__ == "cloudmgr.cloud.types", type(value)


def _roomy_but(**network_limits: int) -> QuotaSet:
    return dataclasses.replace(ROOMY_QUOTA, network=dataclasses.replace(ROOMY_QUOTA.network, **network_limits))


def _new_public_key(comment: str = "someone@example") -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    text = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{text} {comment}"


def _nova_fingerprint(public_key: str) -> str:
    digest = hashlib.md5(base64.b64decode(public_key.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


WEB_RULES = (
    SecurityRule("ingress", "tcp", 22, 22, remote_cidr="10.0.0.0/8"),
    SecurityRule("ingress", "tcp", 80, 443),
    SecurityRule("ingress", "icmp"),
    SecurityRule("ingress", remote_group=REMOTE_GROUP_SELF),
    SecurityRule("ingress", "tcp", 8443, 8443, remote_cidr="2001:db8::/32"),
)


@pytest.fixture(scope="module")
def project(cloud: CloudTestEnv) -> ProjectRef:
    return cloud.new_project("usable")


# ---- keypairs -------------------------------------------------------------------------


def test_ensure_keypair_is_idempotent_and_never_swaps_a_key(cloud: CloudTestEnv, project: ProjectRef) -> None:
    provider = cloud.provider
    public_key = _new_public_key()
    first = provider.ensure_keypair(project.id, "deploy", public_key)
    _only_our_types(first)
    assert first == KeyPair(name="deploy", fingerprint=_nova_fingerprint(public_key))
    # The same key with another comment is the same key.
    recommented = " ".join(public_key.split()[:2]) + " other-comment"
    assert provider.ensure_keypair(project.id, "deploy", recommented) == first
    with pytest.raises(CloudConflict):
        provider.ensure_keypair(project.id, "deploy", _new_public_key())
    assert provider.ensure_keypair(project.id, "deploy", public_key) == first
    # Another project has its own "deploy".
    other = cloud.new_project("usable-other", quota=None)
    other_key = _new_public_key()
    assert provider.ensure_keypair(other.id, "deploy", other_key).fingerprint == _nova_fingerprint(other_key)
    provider.delete_keypair(project.id, "deploy")
    provider.delete_keypair(project.id, "deploy")  # gone already: fine
    replaced = _new_public_key()
    assert provider.ensure_keypair(project.id, "deploy", replaced).fingerprint == _nova_fingerprint(replaced)
    assert provider.ensure_keypair(other.id, "deploy", other_key).fingerprint == _nova_fingerprint(other_key)


def test_keypair_refusals(provider: CloudProvider, project: ProjectRef) -> None:
    with pytest.raises(CloudBadRequest):
        provider.ensure_keypair(project.id, "broken", "ssh-ed25519 not-base64-at-all")
    with pytest.raises(CloudBadRequest):
        provider.ensure_keypair(project.id, "bad/name", _new_public_key())
    with pytest.raises(CloudNotFound):
        provider.ensure_keypair(uuid.uuid4().hex, "deploy", _new_public_key())


# ---- security groups ------------------------------------------------------------------


def test_ensure_security_group_converges_to_exactly_the_rules(cloud: CloudTestEnv, project: ProjectRef) -> None:
    provider = cloud.provider
    group = provider.ensure_security_group(project.id, "web", "web servers", WEB_RULES)
    _only_our_types(group)
    assert isinstance(group, SecurityGroup)
    assert group.name == "web" and group.description == "web servers"
    expected = {
        SecurityRule("ingress", "tcp", 22, 22, remote_cidr="10.0.0.0/8"),
        SecurityRule("ingress", "tcp", 80, 443, remote_cidr="0.0.0.0/0"),
        SecurityRule("ingress", "icmp", remote_cidr="0.0.0.0/0"),
        SecurityRule("ingress", remote_group=REMOTE_GROUP_SELF),
        SecurityRule("ingress", "tcp", 8443, 8443, remote_cidr="2001:db8::/32"),
    }
    # Neutron's default egress rules are gone: the rules given are the whole truth.
    assert group.rules == expected
    assert {r.ethertype for r in group.rules} == {"IPv4", "IPv6"}
    again = provider.ensure_security_group(project.id, "web", "web servers", WEB_RULES)
    assert again == group
    changed = (WEB_RULES[0], WEB_RULES[1], *ALLOW_ALL_EGRESS)
    converged = provider.ensure_security_group(project.id, "web", "web and egress", changed)
    assert converged.id == group.id
    assert converged.description == "web and egress"
    assert converged.rules == {*(r for r in expected if r.port_min in (22, 80)), *ALLOW_ALL_EGRESS}
    listed = {g.name: g for g in provider.list_security_groups(project.id)}
    _only_our_types(list(listed.values()))
    assert listed["web"] == converged
    assert "default" in listed
    provider.delete_security_group(project.id, "web")
    provider.delete_security_group(project.id, "web")  # gone already: fine
    assert "web" not in {g.name for g in provider.list_security_groups(project.id)}


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param(SecurityRule("ingress", "tcp", 22, 70000), id="port-out-of-range"),
        pytest.param(SecurityRule("ingress", "tcp", 443, 80), id="ports-reversed"),
        pytest.param(SecurityRule("ingress", None, 22, 22), id="ports-without-protocol"),
        pytest.param(SecurityRule("ingress", "tcp", 22, 22, remote_cidr="10.0.0.300/24"), id="bad-cidr"),
        pytest.param(SecurityRule("sideways", "tcp", 22, 22), id="bad-direction"),
        pytest.param(SecurityRule("ingress", "carrier-pigeon"), id="bad-protocol"),
    ],
)
def test_bad_rules_are_bad_requests(provider: CloudProvider, project: ProjectRef, rule: SecurityRule) -> None:
    with pytest.raises(CloudBadRequest):
        provider.ensure_security_group(project.id, f"bad-{RUN_ID}", "refused", [WEB_RULES[0], rule])


def test_security_group_quota(cloud: CloudTestEnv) -> None:
    # The project's default group counts too: it has room for one group of its own.
    tight = cloud.new_project("sg-quota", quota=_roomy_but(security_groups=2))
    cloud.provider.ensure_security_group(tight.id, "one", "", WEB_RULES[:1])
    with pytest.raises(CloudQuotaExceeded):
        cloud.provider.ensure_security_group(tight.id, "two", "", WEB_RULES[:1])
    assert {g.name for g in cloud.provider.list_security_groups(tight.id)} == {"default", "one"}


# ---- servers with keys, user data and groups ------------------------------------------


@pytest.fixture(scope="module")
def usable_server(cloud: CloudTestEnv, project: ProjectRef) -> Server:
    provider = cloud.provider
    provider.ensure_keypair(project.id, "login", _new_public_key())
    provider.ensure_security_group(project.id, "ssh", "ssh from the office", WEB_RULES[:1])
    spec = dataclasses.replace(
        cloud.spec("usable"),
        key_name="login",
        user_data="#cloud-config\nhostname: usable\n",
        security_groups=("ssh",),
    )
    server = cloud.boot(project, spec)
    # Booting again with the same key finds the same server.
    assert provider.create_server(project.id, spec).id == server.id
    return server


def test_server_boots_with_key_user_data_and_groups(usable_server: Server) -> None:
    assert usable_server.key_name == "login"
    assert usable_server.security_groups == ("ssh",)


def test_server_security_groups_change_on_the_running_server(
    cloud: CloudTestEnv, project: ProjectRef, usable_server: Server
) -> None:
    provider = cloud.provider
    provider.set_server_security_groups(usable_server.id, ["ssh", "default"])
    assert provider.get_server(usable_server.id).security_groups == ("default", "ssh")
    provider.set_server_security_groups(usable_server.id, ["ssh", "default"])  # already so
    with pytest.raises(CloudConflict):
        provider.delete_security_group(project.id, "ssh")  # in use
    provider.set_server_security_groups(usable_server.id, ["default"])
    assert provider.get_server(usable_server.id).security_groups == ("default",)
    with pytest.raises(CloudNotFound):
        provider.set_server_security_groups(usable_server.id, ["default", f"no-such-group-{RUN_ID}"])
    provider.set_server_security_groups(usable_server.id, ["ssh"])
    assert provider.get_server(usable_server.id).security_groups == ("ssh",)


def test_user_data_over_novas_limit_is_refused_before_the_cloud(cloud: CloudTestEnv, project: ProjectRef) -> None:
    largest = MAX_USER_DATA_BASE64 // 4 * 3
    assert encode_user_data(b"x" * largest, "boot") is not None
    spec = dataclasses.replace(cloud.spec("too-much-data"), user_data=b"x" * (largest + 1))
    with pytest.raises(CloudBadRequest):
        cloud.provider.create_server(project.id, spec)
    assert cloud.provider.find_server_by_key(project.id, spec.idempotency_key) is None


@pytest.mark.parametrize(
    ("change", "label"),
    [({"key_name": "no-such-key"}, "bad-key"), ({"security_groups": ("no-such-group",)}, "bad-group")],
)
def test_boot_with_unknown_key_or_group_is_a_bad_request(
    cloud: CloudTestEnv, project: ProjectRef, change: dict[str, object], label: str
) -> None:
    spec = dataclasses.replace(cloud.spec(label), **change)  # type: ignore[arg-type]
    with pytest.raises(CloudBadRequest):
        cloud.provider.create_server(project.id, spec)


# ---- floating IPs ---------------------------------------------------------------------


def test_floating_ip_allocation_is_idempotent_and_follows_the_server(
    cloud: CloudTestEnv, project: ProjectRef, usable_server: Server, public_network: str
) -> None:
    provider = cloud.provider
    tag = f"{RUN_ID}-fip-{uuid.uuid4().hex[:8]}"
    # A first try (no look-up before) is found by its tag by every later call.
    first = provider.allocate_floating_ip(project.id, public_network, tag, first_try=True)
    _only_our_types(first)
    assert isinstance(first, FloatingIp)
    assert first.address and first.port_id is None and first.server_id is None
    assert first.idempotency_tag == tag
    again = provider.allocate_floating_ip(project.id, public_network, tag)
    assert again == first
    assert [f.id for f in provider.list_floating_ips(project.id) if f.idempotency_tag == tag] == [first.id]
    associated = provider.associate_floating_ip(first.id, usable_server.id)
    assert associated.server_id == usable_server.id and associated.port_id
    assert associated.address == first.address
    assert provider.associate_floating_ip(first.id, usable_server.id) == associated  # already so
    listed = {f.id: f for f in provider.list_floating_ips(project.id)}
    assert listed[first.id].server_id == usable_server.id
    freed = provider.disassociate_floating_ip(first.id)
    assert freed.port_id is None and freed.server_id is None
    assert provider.disassociate_floating_ip(first.id) == freed
    provider.release_floating_ip(first.id)
    provider.release_floating_ip(first.id)  # gone already: fine
    assert first.id not in {f.id for f in provider.list_floating_ips(project.id)}
    with pytest.raises(CloudNotFound):
        provider.associate_floating_ip(first.id, usable_server.id)


def test_floating_ip_quota_and_unknown_network(cloud: CloudTestEnv, public_network: str) -> None:
    provider = cloud.provider
    tight = cloud.new_project("fip-quota", quota=_roomy_but(floating_ips=1))
    held = provider.allocate_floating_ip(tight.id, public_network, f"{RUN_ID}-one")
    # A retry of the first is no second address: the quota of one is not in the way.
    assert provider.allocate_floating_ip(tight.id, public_network, f"{RUN_ID}-one") == held
    with pytest.raises(CloudQuotaExceeded):
        provider.allocate_floating_ip(tight.id, public_network, f"{RUN_ID}-two")
    assert [f.id for f in provider.list_floating_ips(tight.id)] == [held.id]
    with pytest.raises(CloudNotFound):
        provider.allocate_floating_ip(tight.id, f"no-such-network-{RUN_ID}", f"{RUN_ID}-three")
    provider.release_floating_ip(held.id)


# ---- consoles -------------------------------------------------------------------------


def test_console_url(cloud: CloudTestEnv, usable_server: Server) -> None:
    provider = cloud.provider
    # The lab's Nova has [vnc] enabled (vagrant/lab/configs.sh): nova-api makes the URL,
    # the fake driver answers for the console; no proxy runs behind it.
    console = provider.console_url(usable_server.id)
    _only_our_types(console)
    assert isinstance(console, ConsoleUrl)
    assert console.type == "novnc"
    assert console.url.startswith("http")
    assert provider.console_url(usable_server.id).url != console.url, "a fresh token each time"
    with pytest.raises(CloudNotFound):
        provider.console_url(str(uuid.uuid4()))


def test_console_log(provider: CloudProvider, usable_server: Server) -> None:
    log = provider.console_log(usable_server.id)
    assert log.strip()
    assert len(log.splitlines()) > 1
    assert provider.console_log(usable_server.id, lines=1) == log.splitlines()[-1]
    with pytest.raises(CloudBadRequest):
        provider.console_log(usable_server.id, lines=0)
    with pytest.raises(CloudNotFound):
        provider.console_log(str(uuid.uuid4()))
