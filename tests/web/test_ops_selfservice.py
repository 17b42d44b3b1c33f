"""Operations and finance pages: approval queues, all requests, retry, orphans, audit, catalog, quotas."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import select

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.organisation.models import Cloud, DepartmentCloud
from cloudmgr.quotas import services as quota_services
from cloudmgr.quotas.models import QuotaChangeRequest, QuotaLedgerRow
from cloudmgr.quotas.resources import Resource, quota_set_with
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests import services as sr
from cloudmgr.servicerequests.models import OrphanServer, ServiceRequest
from cloudmgr.servicerequests.services import RequestForm
from tests.web.helpers import HEALTH_HEAD, HEALTH_STAFF, Journey, logged_in, post_form
from web import create_app

OPS_PAGES = (
    "/ops/approvals",
    "/ops/requests",
    "/ops/orphans",
    "/ops/audit",
    "/ops/catalog",
    "/ops/quotas",
)


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _project(journey: Journey, request_id: int) -> tuple[object, str]:
    """The provider and project of a request's cloud (to act behind cloudmgr's back)."""
    with journey.rt.db.unit_of_work() as uow:
        req = uow.session.get(ServiceRequest, request_id)
        assert req is not None
        link = uow.session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == req.department_id, DepartmentCloud.cloud_id == req.cloud_id
            )
        )
        assert link is not None and link.project_id
        return journey.rt.providers.for_cloud(req.cloud.key, req.cloud.os_cloud, req.cloud.region), link.project_id


@pytest.mark.parametrize(
    ("username", "home"), [("zhangwei", "/portal/"), ("lina", "/portal/"), ("finance", "/finance/")]
)
def test_other_roles_cannot_reach_operations_pages(app: Flask, journey: Journey, username: str, home: str) -> None:
    request_id = journey.submit(count=1)
    client = logged_in(app, username)
    for path in (*OPS_PAGES, f"/ops/requests/{request_id}"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "lic-01" not in response.get_data(as_text=True)
    for path in (f"/ops/requests/{request_id}/decide", "/ops/quota-requests/1/decide", "/ops/catalog/1"):
        assert post_form(client, path, {"approve": "1"}, page=home).status_code == 403, path
    if username != "finance":
        assert client.get("/finance/approvals").status_code == 403
        assert client.get(f"/finance/requests/{request_id}").status_code == 403


def test_operator_queue_then_delivery_then_request_page(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=2)
    ops = logged_in(app, "operator")
    assert f'data-request="{request_id}"' not in ops.get("/ops/approvals").get_data(as_text=True)  # the head first
    journey.approve(request_id, "lina")
    queue = ops.get("/ops/approvals").get_data(as_text=True)
    assert f'data-request="{request_id}"' in queue and "省教育厅" in queue
    response = post_form(
        ops, f"/ops/requests/{request_id}/decide", {"approve": "批准", "next": "/ops/approvals"}, page="/ops/approvals"
    )
    assert response.status_code == 302
    assert journey.request_state(request_id) == "approved"
    assert "正在创建" in ops.get("/ops/approvals").get_data(as_text=True)  # the flash
    journey.drain()
    html = ops.get(f"/ops/requests/{request_id}").get_data(as_text=True)
    assert "已交付" in html and html.count('state-ok">运行中</span>') == 2 and "省教育厅" in html
    assert "lina" in html and "operator" in html


def test_operator_filters_all_requests(app: Flask, journey: Journey) -> None:
    education = journey.submit(count=1)
    health_form = journey.form(1, cloud="health", prefix="his")
    health_staff = journey.actor(HEALTH_STAFF)
    with journey.rt.db.unit_of_work() as uow:
        health = sr.create_request(
            uow.session, health_staff, health_form, submit=False, settings=journey.rt.settings
        ).id
    ops = logged_in(app, "operator")
    html = ops.get("/ops/requests").get_data(as_text=True)
    assert f"#{education}<" in html and f"#{health}<" in html and "2 个申请" in html
    html = ops.get("/ops/requests?department=prov-health").get_data(as_text=True)
    assert f"#{health}<" in html and f"#{education}<" not in html
    html = ops.get("/ops/requests?cloud=education&state=submitted").get_data(as_text=True)
    assert f"#{education}<" in html and f"#{health}<" not in html
    html = ops.get("/ops/requests?state=draft&department=no-such").get_data(as_text=True)
    assert f"#{health}<" in html  # an unknown department is ignored


def test_operator_retries_a_failed_server_and_cancels(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=2)
    journey.approve(request_id, "lina", "operator")
    provider, project_id = _project(journey, request_id)
    provider.set_quota(project_id, quota_set_with(provider.get_quota(project_id), {Resource.INSTANCES: 1}))  # type: ignore[attr-defined]
    journey.drain()
    failed = next(s for s in journey.servers(request_id) if s[2] == "error")
    ops = logged_in(app, "operator")
    page = f"/ops/requests/{request_id}"
    html = ops.get(page).get_data(as_text=True)
    assert "超出云平台配额：" in html and f'data-testid="retry-{failed[0]}"' in html  # a message (console2.po)
    # Retrying while the cloud still refuses fails again, with its reason; then the cloud is fixed.
    provider.set_quota(project_id, quota_set_with(provider.get_quota(project_id), {Resource.INSTANCES: 8}))  # type: ignore[attr-defined]
    response = post_form(ops, f"/ops/servers/{failed[0]}/retry", {}, page=page)
    assert response.status_code == 302
    journey.drain()
    assert [s[2] for s in journey.servers(request_id)] == ["active", "active"]
    # Retrying a running server is refused.
    response = post_form(ops, f"/ops/servers/{failed[0]}/retry", {}, page=page)
    assert response.status_code == 409
    assert "only failed servers are retried" in response.get_data(as_text=True)
    # An operator cancels another request that has not booted anything.
    other = journey.submit(count=1, prefix="two")
    response = post_form(ops, f"/ops/requests/{other}/cancel", {"reason": "重复申请"}, page=f"/ops/requests/{other}")
    assert response.status_code == 302
    assert journey.request_state(other) == "cancelled"


def test_orphans_are_listed(app: Flask, journey: Journey) -> None:
    with journey.rt.db.unit_of_work() as uow:
        cloud_id = uow.session.scalar(select(Cloud.id).where(Cloud.key == "education"))
        assert cloud_id is not None
        uow.session.add(
            OrphanServer(
                cloud_id=cloud_id, server_id="srv-123", name="lost-01", project_id="p-1", idempotency_key="cm-r9-s1-a1"
            )
        )
    html = logged_in(app, "operator").get("/ops/orphans").get_data(as_text=True)
    assert "lost-01" in html and "srv-123" in html and "cm-r9-s1-a1" in html and "教育云" in html


def test_audit_log_page_filters(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=1)
    journey.approve(request_id, "lina")
    ops = logged_in(app, "operator")
    html = ops.get("/ops/audit").get_data(as_text=True)
    assert "request.submit" in html and "request.approve" in html and "auth.login" in html
    assert "append-only" in html or "只能追加" in html
    html = ops.get("/ops/audit?action=request.approve").get_data(as_text=True)
    assert "request.approve" in html and "request.submit" not in html and "lina" in html
    html = ops.get(f"/ops/audit?target_type=service_request&target_id={request_id}&limit=50").get_data(as_text=True)
    assert "request.submit" in html and "auth.login" not in html
    assert ops.get("/ops/audit?limit=999999&action=" + "x" * 5000).status_code == 200


def test_catalog_offers_names_and_prices(app: Flask, journey: Journey) -> None:
    small = journey.item_id("education", "flavor", "m1.small")
    ops = logged_in(app, "operator")
    page = "/ops/catalog?cloud=education"
    html = ops.get(page).get_data(as_text=True)
    assert "m1.small" in html and f'id="name_zh-{small}"' in html and 'value="小型 1核 2G"' in html
    assert ops.get("/ops/catalog?cloud=no-such").status_code == 404
    # Validation errors are shown in the item's row.
    bad = {"offered": "y", "name_zh": "", "name_en": "Small", "monthly_price": "abc"}
    response = post_form(ops, f"/ops/catalog/{small}", bad, page=page)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "请填写中文名称" in html and "请输入以元为单位的价格" in html and "row-bad" in html
    response = post_form(ops, f"/ops/catalog/{small}", {**bad, "name_zh": "小型", "monthly_price": "-5"}, page=page)
    assert response.status_code == 400 and "0 到 10,000,000 元" in response.get_data(as_text=True)
    # Saved: a new name and price, then no longer offered.
    response = post_form(
        ops,
        f"/ops/catalog/{small}",
        {"offered": "y", "name_zh": "标准小型", "name_en": "Standard small", "monthly_price": "99.50"},
        page=page,
    )
    assert response.status_code == 302 and response.headers["Location"].endswith(f"#item-{small}")
    staff = logged_in(app, "zhangwei")
    html = staff.get("/portal/requests/new?cloud=education").get_data(as_text=True)
    assert "标准小型" in html and "¥99.50" in html
    post_form(
        ops,
        f"/ops/catalog/{small}",
        {"name_zh": "标准小型", "name_en": "Standard small", "monthly_price": "99.50"},
        page=page,
    )
    with journey.rt.db.unit_of_work() as uow:
        item = uow.session.get(CatalogItem, small)
        assert item is not None and not item.offered
    assert "标准小型" not in staff.get("/portal/requests/new?cloud=education").get_data(as_text=True)
    assert "catalog.offer" in ops.get("/ops/audit?action=catalog.offer").get_data(as_text=True)
    assert post_form(ops, "/ops/catalog/99999999", bad, page=page).status_code == 404


def test_quotas_overview_sorts_and_highlights_near_full_and_drift(app: Flask, journey: Journey) -> None:
    # Fill the education department's instances on the education cloud: 3 + 3 + 2 = 8 of 8.
    for count, prefix in ((3, "one"), (3, "two"), (2, "three")):
        journey.submit(count=count, prefix=prefix)
    # Change a quota behind cloudmgr's back on the Tangshan cloud (drift policy "alert").
    with journey.rt.db.unit_of_work() as uow:
        link = uow.session.scalar(
            select(DepartmentCloud)
            .join(Cloud, Cloud.id == DepartmentCloud.cloud_id)
            .where(Cloud.key == "ts-gov", DepartmentCloud.project_id.is_not(None))
        )
        assert link is not None and link.project_id
        cloud = link.cloud
        provider = journey.rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
        project_id, dept_key = link.project_id, link.department.key
    provider.set_quota(project_id, quota_set_with(provider.get_quota(project_id), {Resource.CORES: 99}))
    result = quota_services.reconcile(journey.rt.db, journey.rt.providers)
    assert result.drifts

    ops = logged_in(app, "operator")
    html = ops.get("/ops/quotas").get_data(as_text=True)  # by fill, fullest first
    rows = re.findall(r'<tr class="([^"]*)" data-quota="([^"]+)"', html)
    assert rows[0] == ("row-full", "prov-education/education")
    assert ("row-drift", f"{dept_key}/ts-gov") in rows
    assert "近满" in html and "漂移" in html
    drift_panel = html[html.index('id="drift-title"') :]
    assert "vCPU 核数" in drift_panel and ">99<" in drift_panel and "已告警" in drift_panel
    by_department = ops.get("/ops/quotas?sort=department&dir=asc").get_data(as_text=True)
    keys = re.findall(r'data-quota="([^"]+)"', by_department)
    assert len(keys) == len(rows) and keys != [r[1] for r in rows]
    assert ops.get("/ops/quotas?sort=nonsense&dir=sideways").status_code == 200


def test_operator_decides_quota_changes(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei")
    post_form(staff, "/portal/quotas", {"cloud": "education", "cores": "40", "reason": "数据分析"})
    with journey.rt.db.unit_of_work() as uow:
        change_id = uow.session.scalars(select(QuotaChangeRequest.id)).one()
    ops = logged_in(app, "operator")
    html = ops.get("/ops/quotas").get_data(as_text=True)
    assert f'id="quota-reason-{change_id}"' in html and "数据分析" in html
    decide = f"/ops/quota-requests/{change_id}/decide"
    response = post_form(ops, decide, {"reject": "驳回", "reason": ""}, page="/ops/quotas")
    assert response.status_code == 400 and "驳回时必须填写理由" in response.get_data(as_text=True)
    response = post_form(ops, decide, {"approve": "批准", "reason": "同意"}, page="/ops/quotas")
    assert response.status_code == 302
    dept = journey.actor("zhangwei").department_id
    journey.drain()  # the push to the cloud is a work item, run by the scheduler's workers
    with journey.rt.db.unit_of_work() as uow:
        rows = {
            r.resource: r
            for r in uow.session.scalars(
                select(QuotaLedgerRow)
                .join(Cloud, Cloud.id == QuotaLedgerRow.cloud_id)
                .where(Cloud.key == "education", QuotaLedgerRow.department_id == dept)
            )
        }
    assert rows["cores"].limit == 40 and rows["cores"].cloud_limit == 40  # the ledger, then the cloud
    assert "已批准" in staff.get("/portal/quotas").get_data(as_text=True)
    # Deciding again is refused; an unknown request is a 404.
    assert post_form(ops, decide, {"approve": "批准"}, page="/ops/quotas").status_code == 400
    assert (
        post_form(ops, "/ops/quota-requests/424242/decide", {"approve": "批准"}, page="/ops/quotas").status_code == 404
    )


def test_finance_reviews_expensive_requests(app: Flask, journey: Journey) -> None:
    # The health cloud adds finance above 1,000 yuan a month: 3 × m1.large = 1,620 yuan.
    form: RequestForm = journey.form(3, cloud="health", flavor="m1.large", prefix="his")
    health_staff = journey.actor(HEALTH_STAFF)
    with journey.rt.db.unit_of_work() as uow:
        request_id = sr.create_request(uow.session, health_staff, form, submit=True, settings=journey.rt.settings).id
    journey.approve(request_id, HEALTH_HEAD)
    finance = logged_in(app, "finance")
    assert f'data-request="{request_id}"' not in finance.get("/finance/approvals").get_data(as_text=True)
    journey.approve(request_id, "operator")
    queue = finance.get("/finance/approvals").get_data(as_text=True)
    assert f'data-request="{request_id}"' in queue and "¥1,620.00" in queue and "省卫生健康委员会" in queue
    ops_queue = logged_in(app, "operator").get("/ops/approvals").get_data(as_text=True)
    assert f'data-request="{request_id}"' not in ops_queue
    html = finance.get(f"/finance/requests/{request_id}").get_data(as_text=True)
    assert "财政审核人员" in html and "chain-waiting" in html
    page = f"/finance/requests/{request_id}"
    response = post_form(finance, f"{page}/decide", {"reject": "驳回"}, page=page)
    assert response.status_code == 400 and "驳回时必须填写理由" in response.get_data(as_text=True)
    response = post_form(finance, f"{page}/decide", {"approve": "批准", "reason": "无重复采购"}, page=page)
    assert response.status_code == 302
    assert journey.request_state(request_id) == "approved"
    # Finance cannot act on a step that is not theirs.
    other = journey.submit(count=1)
    response = post_form(finance, f"/finance/requests/{other}/decide", {"approve": "批准"}, page=page)
    assert response.status_code == 403


def test_navigation_of_operators_and_finance(app: Flask, journey: Journey) -> None:
    html = logged_in(app, "operator").get("/ops/").get_data(as_text=True)
    nav = html[html.index('class="main-nav"') :]
    for label in ("审批队列", "全部申请", "配额", "服务目录", "孤儿资源", "审计日志"):
        assert label in nav, label
    html = logged_in(app, "finance").get("/finance/").get_data(as_text=True)
    assert "待财务审核" in html[html.index('class="main-nav"') :]
