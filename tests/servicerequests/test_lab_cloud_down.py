"""The city cloud's Keystone stops for a minute during the province's provisioning (issue 17), on
the lab's two independent OpenStacks (vagrant/lab: the province's cloudmgr-lab, the city's
cloudmgr-lab-city with its own Keystone).

A department uses the province's education cloud and the Shijiazhuang city cloud (sjz-gov).  With
the city's Keystone stopped: a request for the city is still accepted; the province's request is
provisioned, its server ACTIVE on the province's Nova; the city's waits (its work is retried, not
failed) and the pages say the city cloud cannot be reached.  Once Keystone is back the city's
request completes, its server ACTIVE on the city's Nova, and the pages no longer warn.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.organisation import reachability
from cloudmgr.organisation.models import Cloud
from cloudmgr.runtime import Runtime, set_runtime
from cloudmgr.servicerequests import services as requests_service
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.states import RequestState
from tests.conftest import lab_connection
from tests.journey_fixtures import Journey
from tests.lab_paths import CITY, PROVINCE
from tests.moves.test_lab_moves import database_url, lab
from tests.web.helpers import csrf_token
from web import create_app

__all__ = ["database_url", "lab"]  # the fixtures, imported to be used here

pytestmark = pytest.mark.lab
REPO = Path(__file__).resolve().parents[2]
CTL = REPO / "vagrant" / "lab" / "ctl.sh"
CITY_CLOUD = "sjz-gov"  # on cloudmgr-lab-city
PROVINCE_CLOUD = "education"  # on cloudmgr-lab
OUTAGE_SECONDS = 60


def city_keystone(action: str) -> None:
    """Stop or start the city cloud's Keystone (start returns once it issues tokens again)."""
    done = subprocess.run(
        ["bash", str(CTL), "city", action, "keystone"], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"ctl.sh city {action} keystone: {done.stdout}{done.stderr}"


@pytest.fixture
def keystone_restored() -> Iterator[None]:
    """Whatever happens, the city's Keystone runs again after the test (other tests need it)."""
    try:
        yield
    finally:
        city_keystone("start")


@pytest.fixture
def quick_retries(lab: Journey) -> Iterator[Runtime]:
    """The lab's runtime, retrying work on an unreachable cloud every 5 s (instead of a minute)."""
    rt = lab.rt
    quick = Runtime(
        settings=rt.settings.with_overrides(cloud_unreachable_retry_seconds=5), db=rt.db, providers=rt.providers
    )
    previous = set_runtime(quick)
    yield quick
    set_runtime(previous)


def _request(j: Journey, cloud: str, prefix: str) -> int:
    with j.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == cloud))
        image = uow.session.scalar(
            select(CatalogItem.id).where(
                CatalogItem.cloud_id == cloud_id,
                CatalogItem.kind == "image",
                CatalogItem.cloud_name == "cirros-lab",
                CatalogItem.offered.is_(True),
            )
        )
    assert image is not None, f"the lab image cirros-lab is not in {cloud}'s catalog"
    form = replace(j.form(1, cloud=cloud, flavor="m1.tiny", prefix=prefix), image_item_id=image)
    with j.rt.db.unit_of_work() as uow:
        request_id = requests_service.create_request(uow.session, j.staff, form, submit=True, settings=j.rt.settings).id
    for actor in (j.head, j.operator):
        with j.rt.db.unit_of_work() as uow:
            requests_service.approve_request(uow.session, actor, request_id)
    return request_id


def _request_state(j: Journey, request_id: int) -> tuple[str, list[str], list[str]]:
    with j.rt.db.unit_of_work() as uow:
        request = uow.session.get(ServiceRequest, request_id)
        assert request is not None
        return (
            request.state,
            [s.state for s in request.servers],
            [s.server_id for s in request.servers if s.server_id],
        )


def _drain_until(j: Journey, request_id: int, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        j.drain()
        if _request_state(j, request_id)[0] == state:
            return
        time.sleep(2)
    raise AssertionError(f"request {request_id} is {_request_state(j, request_id)}, not {state}, after {timeout}s")


def _logged_in(rt: Runtime, username: str) -> FlaskClient:
    client = create_app(runtime=rt).test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": "moves-password-1", "csrf_token": token})
    assert response.status_code == 302
    return client


BANNER = 'class="flash flash-warning cloud-unreachable" role="alert" data-cloud="'


def _warned(client: FlaskClient, path: str) -> list[str]:
    """The clouds the page warns about (web/templates/_cloud_status.html)."""
    html = client.get(f"{path}?lang=en").get_data(as_text=True)
    return [part.split('"')[0] for part in html.split(BANNER)[1:]]


def _nova_status(clouds_yaml: Path, cloud: str, server_id: str) -> str:
    return str(lab_connection(clouds_yaml, cloud).compute.get_server(server_id).status)


def test_city_keystone_down_for_a_minute_during_the_provinces_provisioning(
    lab: Journey, quick_retries: Runtime, keystone_restored: None, lab_clouds_yaml: Path
) -> None:
    j = lab
    province_request = _request(j, PROVINCE_CLOUD, "prov")

    city_keystone("stop")
    stopped_at = time.monotonic()
    # A request for the city while it is down is accepted: approved, its provisioning queued.
    city_request = _request(j, CITY_CLOUD, "city")
    assert _request_state(j, city_request)[0] == RequestState.APPROVED

    _drain_until(j, province_request, RequestState.ACTIVE, timeout=240)
    _state, servers, [province_server] = _request_state(j, province_request)
    assert servers == ["active"]
    assert _nova_status(lab_clouds_yaml, PROVINCE, province_server) == "ACTIVE"
    assert time.monotonic() - stopped_at < OUTAGE_SECONDS + 30, "the province's request was held up by the city's"

    # The city's work ran and found its cloud unreachable: waiting, not failed; the pages say so.
    city_state = _request_state(j, city_request)
    assert city_state[0] in {RequestState.APPROVED, RequestState.PROVISIONING} and "error" not in city_state[1]
    with j.rt.db.unit_of_work() as uow:
        statuses = {s.cloud_key: s for s in reachability.cloud_statuses(uow.session)}
    assert not statuses[CITY_CLOUD].reachable, statuses[CITY_CLOUD]
    assert statuses[PROVINCE_CLOUD].reachable
    staff, operator = _logged_in(j.rt, "zhangwei"), _logged_in(j.rt, "operator")
    assert _warned(staff, "/portal/requests/new") == [CITY_CLOUD]
    assert _warned(operator, "/ops/capacity") == [CITY_CLOUD]

    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped_at)))
    city_keystone("start")

    _drain_until(j, city_request, RequestState.ACTIVE, timeout=300)
    _state, servers, [city_server] = _request_state(j, city_request)
    assert servers == ["active"]
    assert _nova_status(lab_clouds_yaml, CITY, city_server) == "ACTIVE"
    with j.rt.db.unit_of_work() as uow:
        (city,) = reachability.cloud_statuses(uow.session, cloud_keys=[CITY_CLOUD])
    assert city.reachable and city.last_success_at is not None
    assert _warned(staff, "/portal/requests/new") == []
    assert _warned(operator, "/ops/capacity") == []
