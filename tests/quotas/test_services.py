"""Plan, apply, reconcile and quota-change requests, on the simulated cloud.

The same flows run against the lab OpenStack in test_lab_quotas.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.config import REPO_ROOT
from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, Role
from cloudmgr.organisation.sync import sync_clouds
from cloudmgr.quotas import ledger
from cloudmgr.quotas import services as quotas
from cloudmgr.quotas.errors import QuotaBelowUsage, QuotaChangeInvalid, QuotaChangeNotFound, QuotaFilesInvalid
from cloudmgr.quotas.files import read_quota_files
from cloudmgr.quotas.models import QuotaLedgerRow
from cloudmgr.quotas.resources import Resource, limits_of, quota_set_with
from cloudmgr.runtime import Runtime


@pytest.fixture
def quota_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "quotas"
    shutil.copytree(REPO_ROOT / "quotas", folder)
    return folder


@pytest.fixture
def synced(seeded: Runtime) -> Runtime:
    results = sync_clouds(seeded.db, seeded.providers, actor=Actor.system("test"))
    assert all(r.ok for r in results)
    return seeded


REQUESTER = "zhangwei"
OPERATOR = Actor(username="operator", role=Role.OPERATOR)


def _provider_and_project(rt: Runtime, dept_key: str, cloud_key: str):  # type: ignore[no-untyped-def]
    with rt.db.unit_of_work() as uow:
        link = uow.session.scalar(
            select(DepartmentCloud)
            .join(Department)
            .join(Cloud)
            .where(Department.key == dept_key, Cloud.key == cloud_key)
        )
        assert link is not None and link.project_id
        cloud = link.cloud
        return rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region), link.project_id


def _ids(rt: Runtime, dept_key: str, cloud_key: str) -> tuple[int, int]:
    with rt.db.unit_of_work() as uow:
        dept = uow.session.scalar(select(Department).where(Department.key == dept_key))
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == cloud_key))
        assert dept and cloud
        return dept.id, cloud.id


def test_apply_sets_ledger_and_clouds_then_plan_is_empty(synced: Runtime, quota_dir: Path) -> None:
    result = quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test"))
    assert result.ok, result.problems
    assert any(line.startswith("prov-education on education") for line in result.cloud_changed)
    provider, project = _provider_and_project(synced, "prov-education", "education")
    limits = limits_of(provider.get_quota(project))
    assert limits[Resource.CORES] == 24 and limits[Resource.RAM_MB] == 48 * 1024 and limits[Resource.INSTANCES] == 8

    again = quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test"))
    assert (again.ledger_changed, again.cloud_changed) == ([], [])
    with synced.db.unit_of_work() as uow:
        definitions = quotas.load_and_check(uow.session, quota_dir)
        lines = quotas.plan(uow.session, definitions)
        quotas.read_clouds(synced.providers, lines)
        assert not any(line.changes_anything for line in lines)
        assert uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "quota.cloud.set")).all()


def test_a_bad_file_is_refused_with_its_line_and_the_ledger_is_untouched(synced: Runtime, quota_dir: Path) -> None:
    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    departments = quota_dir / "departments.yaml"
    text = departments.read_text(encoding="utf-8")
    departments.write_text(
        text.replace(
            "prov-commerce:\n    commerce: small",
            "prov-commerce:\n    commerce: {size: small, cores: -1}\n    atlantis: small",
        ),
        encoding="utf-8",
    )
    with pytest.raises(QuotaFilesInvalid) as info:
        quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test"))
    assert any(":" in p and "cores must not be negative" in p for p in info.value.problems)
    dept, cloud = _ids(synced, "prov-commerce", "commerce")
    with synced.db.unit_of_work() as uow:
        assert ledger.balance(uow.session, dept, cloud).resources[Resource.CORES].limit == 16


def test_check_refuses_unknown_names_and_limits_below_usage(synced: Runtime, quota_dir: Path) -> None:
    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    dept, cloud = _ids(synced, "prov-commerce", "commerce")
    with synced.db.unit_of_work() as uow:
        ledger.reserve(uow.session, department_id=dept, cloud_id=cloud, amounts={Resource.CORES: 10}, owner="vm:x")
    (quota_dir / "extra.yaml").write_text(
        "departments:\n  prov-ghost:\n    commerce: small\n  prov-tourism:\n    nowhere: small\n"
        "  prov-finance:\n    education: small\n",
        encoding="utf-8",
    )
    text = (quota_dir / "departments.yaml").read_text(encoding="utf-8")
    (quota_dir / "departments.yaml").write_text(
        text.replace("prov-commerce:\n    commerce: small", "prov-commerce:\n    commerce: {size: small, cores: 8}"),
        encoding="utf-8",
    )
    with synced.db.unit_of_work() as uow:
        problems = quotas.check(uow.session, read_quota_files(quota_dir))
    extra = str(quota_dir / "extra.yaml")
    assert f"{extra}:3: unknown department 'prov-ghost'" in problems
    assert f"{extra}:5: unknown cloud 'nowhere'" in problems
    assert f"{extra}:7: department 'prov-finance' may not use cloud 'education' (see the departments file)" in problems
    assert any("prov-commerce on commerce: cores 8 is below current usage 10" in p for p in problems)


def test_drift_is_detected_and_repaired_or_alerted_by_policy(synced: Runtime, quota_dir: Path) -> None:
    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    provider, project = _provider_and_project(synced, "prov-education", "education")
    # Someone changes the quota behind cloudmgr's back (Horizon, the CLI).
    provider.set_quota(project, quota_set_with(provider.get_quota(project), {Resource.CORES: 99}))
    result = quotas.reconcile(synced.db, synced.providers)
    assert any("prov-education on education: cores is 99" in d for d in result.drifts)
    assert "prov-education on education" in result.repaired
    assert limits_of(provider.get_quota(project))[Resource.CORES] == 24
    with synced.db.unit_of_work() as uow:
        assert quotas.open_drifts(uow.session) == []
        assert [d.action for d in quotas.recent_drifts(uow.session)] == ["repaired"]

    # The same on a cloud whose policy is to alert only.
    with synced.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == "education"))
        assert cloud is not None
        cloud.quota_drift_policy = "alert"
    provider.set_quota(project, quota_set_with(provider.get_quota(project), {Resource.CORES: 77}))
    alerted = quotas.reconcile(synced.db, synced.providers)
    assert alerted.drifts and not alerted.repaired
    assert limits_of(provider.get_quota(project))[Resource.CORES] == 77
    with synced.db.unit_of_work() as uow:
        drifts = quotas.open_drifts(uow.session)
        assert [(d.resource, d.expected, d.found, d.action) for d in drifts] == [("cores", 24, 77, "alerted")]
    # Reported once, not again on every run.
    assert quotas.reconcile(synced.db, synced.providers).drifts == []


def test_reconcile_takes_usage_from_the_cloud(synced: Runtime, quota_dir: Path) -> None:
    from cloudmgr.cloud import ServerSpec

    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    provider, project = _provider_and_project(synced, "prov-education", "education")
    flavor = next(f for f in provider.list_flavors() if f.name == "m1.small")
    image = provider.list_images()[0]
    network = provider.list_networks()[0]
    provider.create_server(
        project,
        ServerSpec(
            name="outside", flavor_id=flavor.id, image_id=image.id, network_id=network.id, idempotency_key="k-outside"
        ),
    )
    quotas.reconcile(synced.db, synced.providers)
    dept, cloud = _ids(synced, "prov-education", "education")
    with synced.db.unit_of_work() as uow:
        bal = ledger.balance(uow.session, dept, cloud)
    assert bal.resources[Resource.INSTANCES].used == 1
    assert bal.resources[Resource.CORES].used == flavor.vcpus


def test_one_size_up_is_automatic_once_in_30_days(synced: Runtime, quota_dir: Path) -> None:
    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    dept, _cloud = _ids(synced, "prov-commerce", "commerce")
    definitions = read_quota_files(quota_dir)
    with synced.db.unit_of_work() as uow:
        change = quotas.request_change(
            uow.session,
            Actor(username=REQUESTER, role=Role.DEPT_STAFF, department_id=dept),
            definitions,
            cloud_key="commerce",
            reason="new licensing system",
            target_size="medium",
        )
        assert (change.state, change.automatic, change.decided_by) == ("approved", True, "system:auto-approval")
    with synced.db.unit_of_work() as uow:
        second = quotas.request_change(
            uow.session,
            Actor(username=REQUESTER, role=Role.DEPT_STAFF, department_id=dept),
            definitions,
            cloud_key="commerce",
            reason="more",
            target_size="large",
        )
        assert second.state == "pending"  # one step again within 30 days: an operator decides
        second_id = second.id
    with synced.db.unit_of_work() as uow:
        decided = quotas.decide_change(
            uow.session, OPERATOR, second_id, approve=True, reason="ok", definitions=definitions
        )
        assert (decided.state, decided.decided_by) == ("approved", "operator")
        bal = ledger.balance(uow.session, dept, _cloud)
        assert bal.resources[Resource.CORES].limit == 256
    # plan keeps the approved request until export writes it into the file
    with synced.db.unit_of_work() as uow:
        lines = quotas.plan(uow.session, quotas.load_and_check(uow.session, quota_dir))
        line = next(line for line in lines if (line.department, line.cloud) == ("prov-commerce", "commerce"))
        assert line.kept_request == second_id and not line.ledger_changes
    with synced.db.unit_of_work() as uow:
        quotas.export(uow.session, read_quota_files(quota_dir), quota_dir, actor=Actor.system("test"))
    exported = read_quota_files(quota_dir)
    assert exported.entries[("prov-commerce", "commerce")].size == "large"
    with synced.db.unit_of_work() as uow:
        lines = quotas.plan(uow.session, quotas.load_and_check(uow.session, quota_dir))
        assert not any(line.ledger_changes for line in lines)


def test_two_steps_up_or_explicit_limits_need_an_operator(synced: Runtime, quota_dir: Path) -> None:
    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    dept, _cloud = _ids(synced, "prov-commerce", "commerce")
    definitions = read_quota_files(quota_dir)
    with synced.db.unit_of_work() as uow:
        jump = quotas.request_change(
            uow.session,
            Actor(username=REQUESTER, role=Role.DEPT_STAFF, department_id=dept),
            definitions,
            cloud_key="commerce",
            reason="big",
            target_size="large",
        )
        explicit = quotas.request_change(
            uow.session,
            Actor(username=REQUESTER, role=Role.DEPT_STAFF, department_id=dept),
            definitions,
            cloud_key="commerce",
            reason="gpu-less AI",
            limits={Resource.CORES: 20},
        )
        assert (jump.state, explicit.state) == ("pending", "pending")
        rejected = quotas.decide_change(uow.session, OPERATOR, jump.id, approve=False, reason="too big")
        assert rejected.state == "rejected"
        with pytest.raises(QuotaChangeInvalid, match="already decided"):
            quotas.decide_change(uow.session, OPERATOR, jump.id, approve=True, reason="")


def test_a_quota_is_never_lowered_below_usage(synced: Runtime, quota_dir: Path) -> None:
    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    dept, cloud = _ids(synced, "prov-commerce", "commerce")
    with synced.db.unit_of_work() as uow:
        ledger.reserve(uow.session, department_id=dept, cloud_id=cloud, amounts={Resource.INSTANCES: 5}, owner="vm:a")
    definitions = read_quota_files(quota_dir)
    with (
        pytest.raises(QuotaBelowUsage, match="instances cannot be set to 2: 5 already used or reserved"),
        synced.db.unit_of_work() as uow,
    ):
        quotas.request_change(
            uow.session,
            Actor(username=REQUESTER, role=Role.DEPT_STAFF, department_id=dept),
            definitions,
            cloud_key="commerce",
            reason="shrink",
            limits={Resource.INSTANCES: 2},
        )
    with pytest.raises(QuotaChangeInvalid, match="may not use cloud"), synced.db.unit_of_work() as uow:
        quotas.request_change(
            uow.session,
            Actor(username=REQUESTER, role=Role.DEPT_STAFF, department_id=dept),
            definitions,
            cloud_key="health",
            reason="r",
            target_size="small",
        )
    with synced.db.unit_of_work() as uow:
        rows = uow.session.scalars(select(QuotaLedgerRow).where(QuotaLedgerRow.department_id == dept)).all()
        assert {r.resource: r.limit for r in rows if r.cloud_id == cloud}[Resource.INSTANCES.value] == 8


def test_attack_only_an_operator_decides_a_quota_change(synced: Runtime, quota_dir: Path) -> None:
    """The service checks the role itself (not only the blueprint): a department head, an
    administrator or finance calling ``decide_change`` directly is refused and nothing changes."""
    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    dept, cloud = _ids(synced, "prov-commerce", "commerce")
    definitions = read_quota_files(quota_dir)
    with synced.db.unit_of_work() as uow:
        jump = quotas.request_change(
            uow.session,
            Actor(username=REQUESTER, role=Role.DEPT_STAFF, department_id=dept),
            definitions,
            cloud_key="commerce",
            reason="big",
            target_size="large",
        )
        assert jump.state == "pending"
        change_id = jump.id
    intruders = [
        Actor(username="head", role=Role.DEPT_HEAD, department_id=dept),
        Actor(username="admin", role=Role.ADMIN),
        Actor(username="finance", role=Role.FINANCE),
    ]
    for intruder in intruders:
        assert not quotas.may_decide_change(intruder)
        with pytest.raises(PermissionDenied), synced.db.unit_of_work() as uow:
            quotas.decide_change(uow.session, intruder, change_id, approve=True, reason="mine", definitions=definitions)
    with synced.db.unit_of_work() as uow:
        change = quotas.get_change(uow.session, change_id)
        assert (change.state, change.decided_by) == ("pending", None)
        assert ledger.balance(uow.session, dept, cloud).resources[Resource.CORES].limit != 256
    assert quotas.may_decide_change(OPERATOR)


def test_a_missing_quota_change_is_not_found(synced: Runtime) -> None:
    with pytest.raises(QuotaChangeNotFound), synced.db.unit_of_work() as uow:
        quotas.decide_change(uow.session, OPERATOR, 999_999, approve=False, reason="no")


def test_a_department_user_asks_only_for_their_own_department(synced: Runtime, quota_dir: Path) -> None:
    assert quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test")).ok
    with pytest.raises(PermissionDenied), synced.db.unit_of_work() as uow:
        quotas.request_change(
            uow.session, OPERATOR, read_quota_files(quota_dir), cloud_key="commerce", reason="r", target_size="small"
        )


def test_a_cloud_without_block_storage_gets_no_cinder_quota_and_says_so(synced: Runtime, quota_dir: Path) -> None:
    provider, project = _provider_and_project(synced, "prov-education", "education")
    assert _provider_and_project(synced, "prov-education", "education")[0] is provider  # one provider per cloud
    provider.offers_block_storage = False  # the education cloud runs without Cinder
    cinder = ("volumes", "volume_gb", "snapshots", "backups")

    result = quotas.apply(synced.db, synced.providers, quota_dir, actor=Actor.system("test"))
    assert result.ok, result.problems
    assert f"prov-education on education: the cloud has no quota for {', '.join(cinder)}" in result.not_on_cloud
    assert not any("on education" in line and "volume" in line for line in result.cloud_changed)
    quota = provider.get_quota(project)
    assert quota.block_storage is None and quota.compute.cores == 24
    assert quota.network.security_group_rules == 100  # Neutron's firewall limits still reach the cloud
    dept, cloud = _ids(synced, "prov-education", "education")
    with synced.db.unit_of_work() as uow:
        pushed = uow.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "quota.cloud.set", AuditEvent.target_id == "prov-education/education"
            )
        ).all()
        assert [e.detail.get("not_on_cloud") for e in pushed] == [list(cinder)]
        balance = ledger.balance(uow.session, dept, cloud).resources
    # The ledger keeps the files' limits; the overview shows they bind nothing on this cloud.
    assert balance[Resource.GIGABYTES].limit == 500 and not balance[Resource.GIGABYTES].on_cloud
    assert balance[Resource.CORES].on_cloud and not balance[Resource.GIGABYTES].drifted

    # Reconcile finds no drift in a quota the cloud does not have, and plan converges.
    found = quotas.reconcile(synced.db, synced.providers)
    assert found.problems == [] and not [d for d in found.drifts if "on education" in d]
    with synced.db.unit_of_work() as uow:
        lines = quotas.plan(uow.session, quotas.load_and_check(uow.session, quota_dir))
    quotas.read_clouds(synced.providers, lines)
    education = next(line for line in lines if (line.department, line.cloud) == ("prov-education", "education"))
    assert not education.changes_anything
    assert [r.value for r in education.not_on_cloud] == list(cinder)
