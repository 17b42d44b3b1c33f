"""Helpers of the web tests (imported by the tests and by conftest)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.demo import DEMO_LOGINS, DemoLogin
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud
from cloudmgr.runtime import Runtime
from cloudmgr.scheduler.jobs import work_handlers
from cloudmgr.servicerequests import services
from cloudmgr.servicerequests.models import ServiceRequest
from cloudmgr.servicerequests.services import RequestForm
from cloudmgr.workqueue.services import Worker

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')

# Where each role lands after logging in.
HOME_PATHS = {
    "dept_staff": "/portal/",
    "dept_head": "/portal/",
    "operator": "/ops/",
    "finance": "/finance/",
    "admin": "/admin/",
}


# Two users of the health department (the health cloud adds finance above 1,000 yuan a month),
# created by the journey fixtures.
HEALTH_STAFF = "zhaomin"
HEALTH_HEAD = "sunqiang"
HEALTH_PASSWORD = "demo-health-2026"

PASSWORDS = {login.username: login.password for login in DEMO_LOGINS} | {
    HEALTH_STAFF: HEALTH_PASSWORD,
    HEALTH_HEAD: HEALTH_PASSWORD,
}


def logged_in(app: Flask, username: str) -> FlaskClient:
    """A new test client of ``app``, logged in as ``username`` through the login form."""
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": PASSWORDS[username], "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def post_form(client: FlaskClient, path: str, data: dict[str, Any], *, page: str | None = None) -> TestResponse:
    """POST a form the way a browser does: with the CSRF token of ``page`` (default ``path``)."""
    html = client.get(page or path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(html), **data})


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def demo_login(role: str) -> DemoLogin:
    return next(login for login in DEMO_LOGINS if login.role.value == role)


@dataclass
class Journey:
    """Shortcuts over the services for the web tests (the pages and the API are what is tested)."""

    rt: Runtime

    def actor(self, username: str) -> Actor:
        with self.rt.db.unit_of_work() as uow:
            return Actor.of(org.get_user_by_name(uow.session, username))

    def item_id(self, cloud: str, kind: str, cloud_name: str) -> int:
        with self.rt.db.unit_of_work() as uow:
            found = uow.session.scalar(
                select(CatalogItem.id)
                .join(Cloud, Cloud.id == CatalogItem.cloud_id)
                .where(Cloud.key == cloud, CatalogItem.kind == kind, CatalogItem.cloud_name == cloud_name)
            )
        assert found is not None, (cloud, kind, cloud_name)
        return found

    def form(
        self, count: int = 3, *, cloud: str = "education", flavor: str = "m1.small", prefix: str = "lic"
    ) -> RequestForm:
        return RequestForm(
            cloud_key=cloud,
            zone="extranet",
            flavor_item_id=self.item_id(cloud, "flavor", flavor),
            image_item_id=self.item_id(cloud, "image", "cirros-lab"),
            count=count,
            name_prefix=prefix,
            justification="licensing system needs servers by Friday",
            expires_on=date.today() + timedelta(days=180),
            application_system="行政许可系统",
        )

    def submit(self, username: str = "zhangwei", count: int = 3, *, submit: bool = True, **kwargs: Any) -> int:
        form, actor = self.form(count, **kwargs), self.actor(username)
        with self.rt.db.unit_of_work() as uow:
            request = services.create_request(uow.session, actor, form, submit=submit, settings=self.rt.settings)
            return request.id

    def approve(self, request_id: int, *usernames: str) -> None:
        for username in usernames:
            actor = self.actor(username)
            with self.rt.db.unit_of_work() as uow:
                services.approve_request(uow.session, actor, request_id, reason="ok")

    def drain(self) -> int:
        return Worker(self.rt.db, work_handlers()).drain(max_items=200)

    def active_request(self, count: int = 2, **kwargs: Any) -> int:
        """A request of zhangwei's, approved by lina and the operator, provisioned."""
        request_id = self.submit(count=count, **kwargs)
        self.approve(request_id, "lina", "operator")
        self.drain()
        return request_id

    def request_state(self, request_id: int) -> str:
        with self.rt.db.unit_of_work() as uow:
            request = uow.session.get(ServiceRequest, request_id)
            assert request is not None
            return request.state

    def servers(self, request_id: int) -> list[tuple[int, str, str]]:
        """(id, name, state) of the request's servers."""
        with self.rt.db.unit_of_work() as uow:
            request = uow.session.get(ServiceRequest, request_id)
            assert request is not None
            return [(s.id, s.name, s.state) for s in request.servers]


def click_nav(page: Any, text: str) -> None:
    """Click the header menu's page called ``text`` (a Playwright page), opening its group first
    when the page sits in one (web/common/navigation.py groups the menu by task)."""
    link = page.locator(f".main-nav a:text-is('{text}')")
    if not link.is_visible():
        page.locator(".main-nav details", has=page.locator(f"a:text-is('{text}')")).locator("summary").click()
    link.click()
