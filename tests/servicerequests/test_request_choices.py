"""What makes a requested VM usable (issue 16): the SSH key, user data, data disks and a public
address, as the form checks them, the quote prices them and the submission reserves them."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from cloudmgr.catalog.errors import RatesFileInvalid
from cloudmgr.catalog.models import CatalogItem, ItemKind
from cloudmgr.catalog.services import read_rates, sync_catalog
from cloudmgr.cloud import CloudError
from cloudmgr.cloud.simulated.provider import SimulatedProvider
from cloudmgr.keys import services as keys
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.quotas.models import QuotaReservation
from cloudmgr.quotas.resources import Resource
from cloudmgr.servicerequests.errors import ChoiceProblem, RequestInvalid
from cloudmgr.servicerequests.quoting import USER_DATA_MAX_BYTES, DataDisk
from cloudmgr.servicerequests.services import RequestForm, create_request, get_request, quote
from tests.journey_fixtures import Journey
from tests.keys.keygen import ed25519_key, public_line


def _items(journey: Journey, kind: ItemKind, cloud: str = "education") -> dict[str, CatalogItem]:
    with journey.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == cloud))
        found = uow.session.scalars(
            select(CatalogItem).where(CatalogItem.cloud_id == cloud_id, CatalogItem.kind == kind.value)
        ).all()
        uow.session.expunge_all()
        return {i.cloud_name: i for i in found}


def _add_key(journey: Journey, actor: Actor, name: str = "laptop") -> int:
    with journey.rt.db.unit_of_work() as uow:
        return keys.add_key(uow.session, actor, name, public_line(ed25519_key(), "me@laptop")).id


def _internet_form(journey: Journey, **changes: object) -> RequestForm:
    return dataclasses.replace(journey.form(count=2), zone="internet", **changes)  # type: ignore[arg-type]


def _refusal(journey: Journey, actor: Actor, form: RequestForm) -> RequestInvalid:
    with pytest.raises(RequestInvalid) as refused, journey.rt.db.unit_of_work() as uow:
        quote(uow.session, actor, form)
    return refused.value


def _problems(refusal: RequestInvalid) -> set[tuple[str, ChoiceProblem]]:
    return {(p.field, p.code) for p in refusal.problems}


def test_the_sync_brings_volume_types_priced_per_gb_and_the_public_address(journey: Journey) -> None:
    types = _items(journey, ItemKind.VOLUME_TYPE)
    assert set(types) == {"fake", "ssd"}
    assert types["fake"].monthly_price == Decimal("0.30") and types["ssd"].monthly_price == Decimal("0.80")
    assert all(t.offered and t.available for t in types.values())
    (address,) = _items(journey, ItemKind.FLOATING_IP).values()
    assert address.monthly_price == Decimal("25") and address.offered


@pytest.mark.parametrize(
    ("disks", "field"),
    [
        ((DataDisk(10 * 1024, 0),), "data_disks[1].size_gb"),
        ((DataDisk(-5, 0),), "data_disks[1].size_gb"),
        ((DataDisk(0, 0),), "data_disks[1].size_gb"),
        ((DataDisk(10, 0), DataDisk(2049, 0)), "data_disks[2].size_gb"),
    ],
)
def test_a_disk_size_outside_1_to_2048_gb_is_refused(journey: Journey, disks: tuple[DataDisk, ...], field: str) -> None:
    fake = _items(journey, ItemKind.VOLUME_TYPE)["fake"].id
    disks = tuple(DataDisk(d.size_gb, fake) for d in disks)
    refusal = _refusal(journey, journey.staff, dataclasses.replace(journey.form(), data_disks=disks))
    assert (field, ChoiceProblem.DISK_SIZE) in _problems(refusal)
    assert f"{field}: a data disk is a whole number of GB from 1 to 2048" in refusal.message


def test_at_most_four_disks_per_vm(journey: Journey) -> None:
    fake = _items(journey, ItemKind.VOLUME_TYPE)["fake"].id
    form = dataclasses.replace(journey.form(), data_disks=tuple(DataDisk(10, fake) for _ in range(5)))
    assert ("data_disks", ChoiceProblem.TOO_MANY_DISKS) in _problems(_refusal(journey, journey.staff, form))
    with journey.rt.db.unit_of_work() as uow:
        four = quote(uow.session, journey.staff, dataclasses.replace(form, data_disks=form.data_disks[:4]))
    assert four.needs[Resource.VOLUMES] == 4 * 3


def test_a_volume_type_not_offered_on_this_cloud_is_refused(journey: Journey) -> None:
    ssd = _items(journey, ItemKind.VOLUME_TYPE)["ssd"]
    other_cloud = _items(journey, ItemKind.VOLUME_TYPE, "transport")["fake"]
    flavor = _items(journey, ItemKind.FLAVOR)["m1.small"]
    with journey.rt.db.unit_of_work() as uow:
        uow.session.get_one(CatalogItem, ssd.id).offered = False
    for item_id in (ssd.id, other_cloud.id, flavor.id, 999_999):
        form = dataclasses.replace(journey.form(), data_disks=(DataDisk(10, item_id),))
        refusal = _refusal(journey, journey.staff, form)
        assert _problems(refusal) == {("data_disks[1].volume_type", ChoiceProblem.DISK_TYPE)}


def test_user_data_at_most_16_kib_encoded_and_without_nul(journey: Journey) -> None:
    # 16 KiB of characters but three bytes each in UTF-8: too long encoded.
    too_long = "配" * (USER_DATA_MAX_BYTES // 3 + 1)
    assert len(too_long) < USER_DATA_MAX_BYTES
    refusal = _refusal(journey, journey.staff, dataclasses.replace(journey.form(), user_data=too_long))
    assert _problems(refusal) == {("user_data", ChoiceProblem.USER_DATA_TOO_LONG)}
    assert "user_data: at most 16 KiB (UTF-8)" in refusal.message
    refusal = _refusal(journey, journey.staff, dataclasses.replace(journey.form(), user_data="#!/bin/sh\n\x00"))
    assert _problems(refusal) == {("user_data", ChoiceProblem.USER_DATA_NUL)}
    exactly = "a" * USER_DATA_MAX_BYTES
    with journey.rt.db.unit_of_work() as uow:
        quote(uow.session, journey.staff, dataclasses.replace(journey.form(), user_data=exactly))


def test_another_users_key_is_not_found(journey: Journey) -> None:
    theirs = _add_key(journey, journey.other_staff)
    refusal = _refusal(journey, journey.staff, dataclasses.replace(journey.form(), ssh_key_id=theirs))
    assert _problems(refusal) == {("ssh_key_id", ChoiceProblem.SSH_KEY_NOT_FOUND)}
    refusal = _refusal(journey, journey.staff, dataclasses.replace(journey.form(), ssh_key_id=987_654))
    assert _problems(refusal) == {("ssh_key_id", ChoiceProblem.SSH_KEY_NOT_FOUND)}


def test_a_public_address_on_the_extranet_is_refused(journey: Journey) -> None:
    form = dataclasses.replace(journey.form(), public_address=True)
    assert form.zone == "extranet"
    refusal = _refusal(journey, journey.staff, form)
    assert _problems(refusal) == {("public_address", ChoiceProblem.ADDRESS_ZONE)}
    assert "only given in the internet zone, not in extranet" in refusal.message


def test_no_public_address_where_the_cloud_offers_none(journey: Journey) -> None:
    (address,) = _items(journey, ItemKind.FLOATING_IP).values()
    with journey.rt.db.unit_of_work() as uow:
        uow.session.get_one(CatalogItem, address.id).offered = False
    refusal = _refusal(journey, journey.staff, _internet_form(journey, public_address=True))
    assert _problems(refusal) == {("public_address", ChoiceProblem.ADDRESS_NOT_OFFERED)}


def test_every_problem_is_named_at_once(journey: Journey) -> None:
    form = dataclasses.replace(
        journey.form(), data_disks=(DataDisk(4096, 0),), user_data="\x00", ssh_key_id=1_000_000, public_address=True
    )
    assert {field for field, _code in _problems(_refusal(journey, journey.staff, form))} == {
        "data_disks[1].size_gb",
        "user_data",
        "ssh_key_id",
        "public_address",
    }


def test_quote_and_reservation_agree_on_disks_gigabytes_and_addresses(journey: Journey) -> None:
    types = _items(journey, ItemKind.VOLUME_TYPE)
    flavor = _items(journey, ItemKind.FLAVOR)["m1.small"]
    key_id = _add_key(journey, journey.staff)
    form = _internet_form(
        journey,
        data_disks=(DataDisk(100, types["ssd"].id), DataDisk(20, types["fake"].id)),
        public_address=True,
        ssh_key_id=key_id,
        user_data="#cloud-config\npackages: [nginx]\n",
    )
    with journey.rt.db.unit_of_work() as uow:
        quoted = quote(uow.session, journey.staff, form)
    assert quoted.needs == {
        Resource.CORES: flavor.vcpus * 2,
        Resource.RAM_MB: flavor.ram_mb * 2,
        Resource.INSTANCES: 2,
        Resource.VOLUMES: 4,
        Resource.GIGABYTES: 240,
        Resource.FLOATING_IPS: 2,
        # No firewall chosen: the members-only default group is the department's shared one,
        # not reserved per request (a chosen firewall is: tests/servicerequests/test_request_firewall.py).
    }
    per_vm = flavor.monthly_price + Decimal("100") * Decimal("0.80") + Decimal("20") * Decimal("0.30") + 25
    assert quoted.monthly_cost == per_vm * 2
    with journey.rt.db.unit_of_work() as uow:
        request = create_request(uow.session, journey.staff, form, submit=True, settings=journey.rt.settings)
        request_id = request.id
        reservations = uow.session.scalars(
            select(QuotaReservation).where(QuotaReservation.id.in_([s.reservation_id for s in request.servers]))
        ).all()
    reserved: dict[str, int] = {}
    for reservation in reservations:
        for resource, n in reservation.amounts.items():
            reserved[resource] = reserved.get(resource, 0) + n
    assert reserved == {r.value: n for r, n in quoted.needs.items()}
    # The key is a copy: deleting it later leaves the request's.
    with journey.rt.db.unit_of_work() as uow:
        keys.delete_key(uow.session, journey.staff, key_id)
    with journey.rt.db.unit_of_work() as uow:
        stored = get_request(uow.session, journey.staff, request_id)
        assert stored.monthly_cost == quoted.monthly_cost
        assert stored.ssh_key_name == "laptop" and stored.ssh_public_key and stored.ssh_key_fingerprint
        assert stored.ssh_key_fingerprint.startswith("SHA256:")
        assert stored.user_data == form.user_data and stored.public_address is True
        assert stored.data_disks == [
            {"size_gb": 100, "volume_type": "ssd", "volume_type_item_id": types["ssd"].id},
            {"size_gb": 20, "volume_type": "fake", "volume_type_item_id": types["fake"].id},
        ]


def test_a_request_without_choices_reserves_what_it_did_before(journey: Journey) -> None:
    form = journey.form(count=1)
    with journey.rt.db.unit_of_work() as uow:
        quoted = quote(uow.session, journey.staff, form)
        request = create_request(uow.session, journey.staff, form, submit=True, settings=journey.rt.settings)
        (server,) = request.servers
        reservation = uow.session.get_one(QuotaReservation, server.reservation_id)
        # No disk, address or key: nothing of theirs; the members-only default firewall group is
        # the department's shared one, not reserved per request.
        assert set(reservation.amounts) == {"cores", "ram_mb", "instances"}
        assert request.data_disks == [] and request.public_address is False and request.ssh_key_name is None
    assert set(quoted.needs) == {Resource.CORES, Resource.RAM_MB, Resource.INSTANCES}


def test_a_cloud_without_block_storage_syncs_without_volume_types(
    journey: Journey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_cinder(self: SimulatedProvider) -> list[object]:
        raise CloudError("list volume types failed: the cloud does not offer the service needed")

    monkeypatch.setattr(SimulatedProvider, "list_volume_types", no_cinder)
    rates = read_rates(journey.rt.settings.rates_file)
    results = sync_catalog(journey.rt.db, journey.rt.providers, rates, actor=Actor.system("test"))
    education = next(r for r in results if r.cloud_key == "education")
    assert education.problem is None and education.gone == 0
    assert education.volume_types_skipped is not None
    assert "no block storage on this cloud, volume types skipped" in education.volume_types_skipped
    # The types synced before are left as they were, not taken off the catalog.
    assert all(t.available for t in _items(journey, ItemKind.VOLUME_TYPE).values())


def test_the_rates_file_prices_volume_types_per_gb_and_the_address(tmp_path: Path) -> None:
    path = tmp_path / "rates.yaml"
    path.write_text("volume_types: {fake: 0.30, ssd: 0.80}\nfloating_ip: 25\n", encoding="utf-8")
    rates = read_rates(path)
    assert rates.volume_types == {"fake": Decimal("0.30"), "ssd": Decimal("0.80")}
    assert rates.floating_ip == Decimal("25")
    path.write_text("volume_types: {fake: -1, ssd: lots}\nfloating_ip: -3\n", encoding="utf-8")
    with pytest.raises(RatesFileInvalid) as invalid:
        read_rates(path)
    assert "volume_types.fake must not be negative" in str(invalid.value)
    assert "volume_types.ssd is not a number" in str(invalid.value)
    assert "floating_ip must not be negative" in str(invalid.value)
    path.write_text("flavors: {}\n", encoding="utf-8")
    assert read_rates(path).floating_ip is None and read_rates(path).volume_types == {}
