"""The capacity page on the lab OpenStack: the compute hosts of its two clouds and their usage."""

from __future__ import annotations

import re

import pytest

from cloudmgr.capacity.config import read_capacity_file
from cloudmgr.capacity.services import latest_snapshots, take_snapshots
from cloudmgr.demo import seed_demo_users
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.helpers import demo_login, logged_in
from web import create_app

pytestmark = pytest.mark.lab


@ONE_DATABASE
def test_the_capacity_page_shows_the_lab_hosts(lab_runtime: Runtime) -> None:
    settings = lab_runtime.settings
    clouds, depts = org.read_organisation(settings.clouds_file, settings.departments_file)
    with lab_runtime.db.unit_of_work() as uow:
        org.import_organisation(uow.session, clouds, depts, actor=Actor.system("test"))
        seed_demo_users(uow.session, actor=Actor.system("test"))
    result = take_snapshots(
        lab_runtime.db, lab_runtime.providers, read_capacity_file(lab_runtime.settings.capacity_file)
    )
    assert result.hosts == 4  # the province cloud's two and the city cloud's two
    with lab_runtime.db.unit_of_work() as uow:
        hosts = {h.name: h for s in latest_snapshots(uow.session) for h in s.hosts}
    assert sorted(hosts) == ["city-compute1", "city-compute2", "compute1", "compute2"]

    app = create_app(runtime=lab_runtime)
    response = logged_in(app, demo_login("operator").username).get("/ops/capacity")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for name, host in hosts.items():
        row = re.search(rf'<tr data-host="{name}">(.*?)</tr>', html, re.S)
        assert row, f"{name} is not on the page"
        cells = row.group(1)
        # The usage of each resource as the page prints it: used / total.
        assert f"{host.vcpus_used:,} / {host.vcpus_total:,}" in cells
        assert f"{host.ram_mb_used // 1024:,} / {host.ram_mb_total // 1024:,}" in cells
        assert f"{host.disk_gb_used:,} / {host.disk_gb_total:,}" in cells
        assert "bar-used w-" in cells
