"""Showback prices what makes a VM usable beside the VM (issue 16): data disks while they exist
(GB x the volume type's price per GB-month) and the public addresses a department holds (the
cloud's address price), at the prices the request's quote showed, and the volume backups the
backup store holds (GB x the rates file's backup_gb)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from sqlalchemy import select, update

from cloudmgr.backups.models import CopyState, VolumeBackupRecord
from cloudmgr.purchases import showback
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.servicerequests.parts import ManagedAddress, ManagedVolume, VolumeState
from tests.journey_fixtures import Journey
from tests.purchases.helpers import provision_disk_and_address


def _row(report: showback.Showback) -> showback.ShowbackRow:
    return next(r for r in report.rows if (r.department_key, r.cloud_key) == ("prov-education", "education"))


def test_disks_and_addresses_are_priced_like_the_quote_and_added_to_the_totals(pj: Journey) -> None:
    request_id = provision_disk_and_address(pj)
    with pj.rt.db.unit_of_work() as uow:
        request = uow.session.get_one(ServiceRequest, request_id)
        form = sr.RequestForm(
            cloud_key="education",
            zone="internet",
            flavor_item_id=request.flavor_item_id,
            image_item_id=request.image_item_id,
            count=1,
            name_prefix="quote",
            justification="the same request again, to compare",
            expires_on=request.expires_on,
            data_disks=tuple(sr.DataDisk(d["size_gb"], d["volume_type_item_id"]) for d in request.data_disks),
            public_address=True,
        )
        quoted = {line.kind.value: line.monthly for line in sr.quote(uow.session, pj.staff, form).cost_lines}
        report = showback.showback(uow.session, pj.finance)
    row = _row(report)
    assert (row.servers, row.servers_yuan) == (1, Decimal("120.00"))
    assert (row.volumes, row.volume_gb, row.volumes_yuan) == (1, 100, Decimal("30.00"))  # 100 GB x 0.30
    assert (row.addresses, row.addresses_yuan) == (1, Decimal("25.00"))
    assert row.monthly_yuan == Decimal("175.00")
    assert quoted == {"flavor": row.servers_yuan, "disk": row.volumes_yuan, "address": row.addresses_yuan}
    # The totals and the department breakdown add the new lines up.
    assert report.volumes_yuan == Decimal("30.00") and report.addresses_yuan == Decimal("25.00")
    assert report.monthly_yuan == sum((r.monthly_yuan for r in report.rows), Decimal(0))
    assert report.monthly_yuan == (
        report.servers_yuan + report.volumes_yuan + report.addresses_yuan + report.unattributed_yuan
    )
    education = next(t for t in report.by_department() if t.department_key == "prov-education")
    assert (education.volumes_yuan, education.addresses_yuan, education.monthly_yuan) == (
        Decimal("30.00"),
        Decimal("25.00"),
        Decimal("175.00"),
    )
    # The export has the columns.
    exported = list(csv.DictReader(io.StringIO(showback.showback_csv(report))))
    line = next(r for r in exported if r["department"] == "prov-education" and r["cloud"] == "education")
    assert (line["volumes"], line["volume_gb"], line["volumes_yuan"]) == ("1", "100", "30.00")
    assert (line["addresses"], line["addresses_yuan"], line["monthly_yuan"]) == ("1", "25.00", "175.00")


def test_a_kept_volume_still_costs_a_released_address_or_deleted_volume_does_not(pj: Journey) -> None:
    request_id = provision_disk_and_address(pj, count=2)
    with pj.rt.db.unit_of_work() as uow:
        first, second = uow.session.scalars(
            select(ManagedServer).where(ManagedServer.request_id == request_id).order_by(ManagedServer.id)
        ).all()
        second_id, second_name = second.id, second.name
        # The first server is deleted keeping its volume; its address is released.
        sr.server_action(uow.session, pj.staff, first.id, "delete", confirm=first.name, volumes="keep")
    pj.drain()
    with pj.rt.db.unit_of_work() as uow:
        kept = uow.session.scalars(select(ManagedVolume).where(ManagedVolume.state == VolumeState.AVAILABLE)).one()
        row = _row(showback.showback(uow.session, pj.finance))
    assert (row.servers, row.servers_yuan) == (1, Decimal("120.00"))
    assert (row.volumes, row.volume_gb, row.volumes_yuan) == (2, 200, Decimal("60.00"))  # attached + kept
    assert (row.addresses, row.addresses_yuan) == (1, Decimal("25.00"))
    assert row.monthly_yuan == Decimal("205.00") and row.unattributed_cores == 0
    with pj.rt.db.unit_of_work() as uow:
        sr.server_action(uow.session, pj.staff, second_id, "delete", confirm=second_name, volumes="delete")
    pj.drain()
    with pj.rt.db.unit_of_work() as uow:
        row = _row(showback.showback(uow.session, pj.finance))
    # The kept volume alone: the deleted one, the servers and their addresses cost nothing.
    assert (row.servers, row.volumes, row.volume_gb, row.addresses) == (0, 1, 100, 0)
    assert row.monthly_yuan == Decimal("30.00")
    with pj.rt.db.unit_of_work() as uow:
        # A volume that failed after the cloud made it still takes storage ...
        uow.session.execute(update(ManagedVolume).where(ManagedVolume.id == kept.id).values(state=VolumeState.FAILED))
    with pj.rt.db.unit_of_work() as uow:
        assert _row(showback.showback(uow.session, pj.finance)).volume_gb == 100
        # ... one the cloud never made (no volume id) does not.
        uow.session.execute(update(ManagedVolume).where(ManagedVolume.id == kept.id).values(volume_id=None))
    with pj.rt.db.unit_of_work() as uow:
        assert all(r.volume_gb == 0 for r in showback.showback(uow.session, pj.finance).rows)


def test_department_users_see_only_their_own_disks_and_addresses(pj: Journey) -> None:
    provision_disk_and_address(pj)
    with pj.rt.db.unit_of_work() as uow:
        other = showback.showback(uow.session, pj.other_staff)
        own = showback.showback(uow.session, pj.staff)
        # Asking for another department does not widen a department user's view.
        narrowed = showback.showback(uow.session, pj.other_staff, department_id=pj.staff.department_id)
    assert other.rows == [] and narrowed.rows == [] and other.monthly_yuan == 0
    assert {r.department_key for r in own.rows} == {"prov-education"}
    assert _row(own).volumes_yuan == Decimal("30.00") and _row(own).addresses_yuan == Decimal("25.00")


def test_backups_are_priced_per_gb_at_the_rates_file_price(pj: Journey) -> None:
    provision_disk_and_address(pj)
    with pj.rt.db.unit_of_work() as uow:
        volume = uow.session.scalars(select(ManagedVolume)).one()
        for n, (state, backup_id) in enumerate(
            (
                (CopyState.READY, "b-1"),
                (CopyState.DELETING, "b-2"),  # still in the store until the work item deletes it
                (CopyState.DELETED, "b-3"),
                (CopyState.FAILED, None),
                (CopyState.PENDING, None),
            )
        ):
            uow.session.add(
                VolumeBackupRecord(
                    volume_row_id=volume.id,
                    department_id=volume.department_id,
                    cloud_id=volume.cloud_id,
                    tag=f"cm-bk-test-{n}",
                    backup_id=backup_id,
                    size_gb=volume.size_gb,
                    state=state,
                    requested_by="zhangwei",
                )
            )
    rate = showback.backup_rate(pj.rt.settings.rates_file)
    assert rate == Decimal("0.10")
    with pj.rt.db.unit_of_work() as uow:
        report = showback.showback(uow.session, pj.finance, backup_gb_price=rate)
        unpriced = showback.showback(uow.session, pj.finance)
        other = showback.showback(uow.session, pj.other_staff, backup_gb_price=rate)
    row = _row(report)
    assert (row.backups, row.backup_gb, row.backups_yuan) == (2, 200, Decimal("20.00"))
    assert row.monthly_yuan == Decimal("195.00")  # 120 + 30 + 25 + 20
    assert report.backups_yuan == Decimal("20.00") and report.backup_gb_price == rate
    assert next(t for t in report.by_department() if t.department_key == "prov-education").backups_yuan == 20
    line = next(r for r in csv.DictReader(io.StringIO(showback.showback_csv(report))) if r["cloud"] == "education")
    assert (line["backups"], line["backup_gb"], line["backups_yuan"]) == ("2", "200", "20.00")
    # Without a rate the backups are counted, at no price.
    assert (_row(unpriced).backup_gb, _row(unpriced).backups_yuan, unpriced.backup_gb_price) == (200, 0, None)
    assert other.rows == []


def test_an_address_without_a_server_is_its_departments(pj: Journey) -> None:
    provision_disk_and_address(pj)
    with pj.rt.db.unit_of_work() as uow:
        address = uow.session.scalars(select(ManagedAddress)).one()
        server = uow.session.get_one(ManagedServer, address.server_id)
        # As an operator's adoption of an orphaned address leaves it: the department's, no server's.
        address.department_id, address.cloud_id, address.server_id = server.department_id, server.cloud_id, None
    with pj.rt.db.unit_of_work() as uow:
        finance = _row(showback.showback(uow.session, pj.finance))
        own = _row(showback.showback(uow.session, pj.staff))
        other = showback.showback(uow.session, pj.other_staff)
    assert (finance.addresses, finance.addresses_yuan) == (own.addresses, own.addresses_yuan) == (1, Decimal("25.00"))
    assert other.rows == []
