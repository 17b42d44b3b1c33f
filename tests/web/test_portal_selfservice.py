"""The department portal's self-service pages: new request, my requests, servers, approvals, quotas."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cloudmgr.organisation.models import Cloud
from cloudmgr.quotas import ledger
from cloudmgr.quotas.models import QuotaLedgerRow
from cloudmgr.quotas.resources import Resource
from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.models import ServiceRequest
from tests.web.helpers import Journey, logged_in, post_form
from web import create_app

NEW = "/portal/requests/new?cloud=education"


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def _form(journey: Journey, **overrides: Any) -> dict[str, Any]:
    data = {
        "zone": "extranet",
        "flavor": journey.item_id("education", "flavor", "m1.small"),
        "image": journey.item_id("education", "image", "cirros-lab"),
        "count": "3",
        "name_prefix": "lic",
        "application_system": "行政许可系统",
        "justification": "行政许可系统上云，周五前需要三台服务器",
        "expires_on": (date.today() + timedelta(days=180)).isoformat(),
    }
    data.update(overrides)
    return data


def _request_count(journey: Journey) -> int:
    with journey.rt.db.unit_of_work() as uow:
        return uow.session.scalar(select(func.count()).select_from(ServiceRequest)) or 0


def _education_balance(journey: Journey) -> dict[Resource, tuple[int, int, int]]:
    dept = journey.actor("zhangwei").department_id
    cloud_id = _cloud_id(journey)
    assert dept is not None
    with journey.rt.db.unit_of_work() as uow:
        bal = ledger.balance(uow.session, dept, cloud_id)
        return {r: (b.limit, b.reserved, b.used) for r, b in bal.resources.items()}


def test_new_request_shows_only_the_departments_clouds_and_their_catalog(app: Flask, journey: Journey) -> None:
    client = logged_in(app, "zhangwei")
    html = client.get("/portal/requests/new").get_data(as_text=True)
    assert "新建申请" in html and "教育云" in html and "省统一公共基础云平台" in html
    assert "健康云" not in html and "唐山市政务云" not in html  # not the department's clouds
    html = client.get(NEW).get_data(as_text=True)
    assert "电子政务外网" in html and "互联网" in html  # the cloud's zones
    assert "小型 1核 2G" in html and "¥120.00" in html  # flavors in Chinese, with the monthly price
    assert "实验镜像 (CirrOS)" in html
    assert re.search(r'<input checked[^>]*value="extranet"', html)  # the extranet by default
    assert "预览" in html and "保存草稿" in html and "提交" in html
    assert "可用 8 / 共 8" in html  # the quota left, beside the form
    # Another department's cloud: nothing to see.
    assert client.get("/portal/requests/new?cloud=health").status_code == 404
    assert client.get("/portal/requests/new?cloud=no-such-cloud").status_code == 404
    # In English, the English names.
    html = client.get(NEW + "&lang=en").get_data(as_text=True)
    assert "Small 1 vCPU 2 GB" in html and "Education cloud" in html and "Preview" in html


def test_preview_shows_cost_quota_left_and_chain_without_storing(app: Flask, journey: Journey) -> None:
    client = logged_in(app, "zhangwei")
    response = post_form(client, NEW, _form(journey, preview="预览"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    preview = html[html.index('data-testid="preview"') :]
    assert "¥360.00" in preview  # 3 × 120 yuan
    assert "部门负责人" in preview and "云平台运维人员" in preview  # the approval chain
    assert "符合配额" in preview
    # The quota table: limit / reserved / used / free per resource, and what the request needs.
    row = re.search(r"云主机数量</th>(.*?)</tr>", preview, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">(?:<strong>)?([^<]*)', row.group(1))
    assert cells == ["8", "0", "0", "8", "3"]
    memory = re.search(r"内存 \(GB\)</th>(.*?)</tr>", preview, re.S)
    assert memory is not None and ">48<" in memory.group(1)  # 48 GB, shown in GB
    assert _request_count(journey) == 0


def test_form_errors_are_shown_next_to_the_fields(app: Flask, journey: Journey) -> None:
    client = logged_in(app, "zhangwei")
    bad = _form(
        journey,
        count="0",
        name_prefix="Bad Prefix!",
        justification="   ",
        expires_on=date.today().isoformat(),
        submit="提交",
    )
    response = post_form(client, NEW, bad)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    summary = html[html.index('class="error-summary"') :]
    for message in ("数量须在 1 到 100 台之间", "以字母开头", "请说明云主机的用途", "请选择今天以后的日期"):
        assert message in summary, message
    assert 'id="count" aria-describedby' in html or 'aria-invalid="true"' in html
    assert 'href="#name_prefix"' in html  # the summary links to the field
    # Not a number, not a date, a flavor of another cloud.
    response = post_form(
        client,
        NEW,
        _form(journey, count="three", expires_on="next week", flavor=journey.item_id("health", "flavor", "m1.small")),
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "请输入整数" in html and "请按 YYYY-MM-DD 输入日期" in html and "不是有效的选择" in html
    assert _request_count(journey) == 0


def test_submit_then_the_request_page_shows_state_chain_and_servers(app: Flask, journey: Journey) -> None:
    client = logged_in(app, "zhangwei")
    response = post_form(client, NEW, _form(journey, submit="提交"))
    assert response.status_code == 302
    match = re.fullmatch(r"/portal/requests/(\d+)", response.headers["Location"])
    assert match
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "已提交审批" in html  # the flash
    assert "待审批" in html and "等待中" in html  # the state, the head's step waiting
    assert "lic-01" in html and "lic-03" in html and "待创建" in html
    assert "行政许可系统" in html and "¥360.00" in html
    assert _education_balance(journey)[Resource.INSTANCES] == (8, 3, 0)
    # Listed in "my requests", with a state filter.
    listing = client.get("/portal/requests?state=submitted").get_data(as_text=True)
    assert f"#{match.group(1)}" in listing
    assert f"#{match.group(1)}" not in client.get("/portal/requests?state=draft").get_data(as_text=True)


def test_a_draft_is_saved_then_submitted(app: Flask, journey: Journey) -> None:
    client = logged_in(app, "zhangwei")
    response = post_form(client, NEW, _form(journey, save_draft="保存草稿"))
    assert response.status_code == 302
    detail = response.headers["Location"]
    html = client.get(detail).get_data(as_text=True)
    assert "草稿" in html and "提交审批" in html
    assert _education_balance(journey)[Resource.INSTANCES] == (8, 0, 0)  # a draft holds nothing
    response = post_form(client, detail + "/submit", {}, page=detail)
    assert response.status_code == 302
    assert "待审批" in client.get(detail).get_data(as_text=True)
    assert _education_balance(journey)[Resource.INSTANCES] == (8, 3, 0)


def test_quota_exceeded_is_explained_in_the_form_and_nothing_is_kept(app: Flask, journey: Journey) -> None:
    journey.submit(count=3, prefix="one")
    journey.submit(count=3, prefix="two")
    client = logged_in(app, "zhangwei")
    response = post_form(client, NEW, _form(journey, name_prefix="three", submit="提交"))
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    summary = html[html.index('class="error-summary"') :]
    assert "配额不足：云主机数量 上限 8，剩余 2，本次申请 3" in summary
    assert "instances limit 8, 2 free, 3 requested" in summary  # the ledger's own words, as is
    assert 'value="three"' in html  # the form keeps what was typed
    assert _request_count(journey) == 2
    assert _education_balance(journey)[Resource.INSTANCES] == (8, 6, 0)
    # The preview says it too, before anything is tried.
    html = post_form(client, NEW, _form(journey, name_prefix="three", preview="预览")).get_data(as_text=True)
    assert "配额不足" in html and "row-bad" in html


def test_requests_list_pages_and_filters(app: Flask, journey: Journey) -> None:
    for n in range(22):
        journey.submit(count=1, prefix=f"d{n:02d}", submit=False)
    journey.submit(count=1, prefix="base", cloud="province-base")
    client = logged_in(app, "zhangwei")
    first = client.get("/portal/requests").get_data(as_text=True)
    assert "23 个申请" in first and "第 1 / 2 页" in first
    assert len(re.findall(r'href="/portal/requests/\d+"', first)) == 20
    second = client.get("/portal/requests?page=2").get_data(as_text=True)
    assert len(re.findall(r'href="/portal/requests/\d+"', second)) == 3
    only_base = client.get("/portal/requests?cloud=province-base").get_data(as_text=True)
    assert "1 个申请" in only_base and "省统一公共基础云平台" in only_base
    assert "1 个申请" in client.get("/portal/requests?state=submitted").get_data(as_text=True)
    # Nonsense filters are ignored, never an error.
    assert client.get("/portal/requests?state=bogus&cloud=health&page=-3").status_code == 200


def test_the_head_approves_and_rejects_from_the_queue(app: Flask, journey: Journey) -> None:
    first = journey.submit(count=1, prefix="one")
    second = journey.submit(count=1, prefix="two")
    head = logged_in(app, "lina")
    queue = head.get("/portal/approvals").get_data(as_text=True)
    assert "待我审批" in queue and f'data-request="{first}"' in queue and f'data-request="{second}"' in queue
    response = post_form(
        head,
        f"/portal/requests/{first}/decide",
        {"approve": "批准", "next": "/portal/approvals"},
        page="/portal/approvals",
    )
    assert response.status_code == 302 and response.headers["Location"] == "/portal/approvals"
    assert journey.request_state(first) == "submitted"  # now the operator's turn
    # A rejection without a reason is refused in the form.
    response = post_form(
        head, f"/portal/requests/{second}/decide", {"reject": "驳回", "reason": " "}, page="/portal/approvals"
    )
    assert response.status_code == 400
    assert "驳回时必须填写理由" in response.get_data(as_text=True)
    assert journey.request_state(second) == "submitted"
    response = post_form(
        head,
        f"/portal/requests/{second}/decide",
        {"reject": "驳回", "reason": "请使用共享系统"},
        page="/portal/approvals",
    )
    assert response.status_code == 302
    assert journey.request_state(second) == "rejected"
    html = head.get(f"/portal/requests/{second}").get_data(as_text=True)
    assert "已驳回" in html and "请使用共享系统" in html
    queue = head.get("/portal/approvals").get_data(as_text=True)
    assert f'data-request="{first}"' not in queue and f'data-request="{second}"' not in queue
    # The request page shows who approved the first step.
    html = head.get(f"/portal/requests/{first}").get_data(as_text=True)
    assert "lina" in html and "chain-approved" in html and "chain-waiting" in html


def test_staff_may_not_approve(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=1)
    staff = logged_in(app, "zhangwei")
    assert staff.get("/portal/approvals").status_code == 403
    response = post_form(
        staff, f"/portal/requests/{request_id}/decide", {"approve": "批准"}, page=f"/portal/requests/{request_id}"
    )
    assert response.status_code == 403
    assert 'data-testid="approve"' not in staff.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert journey.request_state(request_id) == "submitted"


def test_another_department_sees_nothing(app: Flask, journey: Journey) -> None:
    request_id = journey.active_request(2)
    server_id = journey.servers(request_id)[0][0]
    other = logged_in(app, "wangfang")  # 唐山市人社局
    for path in (f"/portal/requests/{request_id}", f"/portal/servers/{server_id}"):
        response = other.get(path)
        assert response.status_code == 404, path
        assert "lic-01" not in response.get_data(as_text=True)
    for page in ("/portal/requests", "/portal/servers", "/portal/quotas", "/portal/requests/new"):
        html = other.get(page).get_data(as_text=True)
        assert "lic-01" not in html and "省教育厅" not in html and "教育云" not in html, page
    token_page = "/portal/requests"
    for path, data in (
        (f"/portal/requests/{request_id}/cancel", {"reason": "x"}),
        (f"/portal/servers/{server_id}/power", {"action": "stop"}),
        (f"/portal/servers/{server_id}/delete", {"confirm": "lic-01"}),
        (f"/portal/servers/{server_id}/extend", {"expires_on": (date.today() + timedelta(days=400)).isoformat()}),
    ):
        response = post_form(other, path, data, page=token_page)
        assert response.status_code == 404, path
    assert [s[2] for s in journey.servers(request_id)] == ["active", "active"]


def test_delivered_request_shows_running_servers_addresses_and_history(app: Flask, journey: Journey) -> None:
    request_id = journey.active_request(3)
    client = logged_in(app, "zhangwei")
    html = client.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert "已交付" in html
    assert html.count('state-ok">运行中</span>') == 3
    assert re.search(r"lab-extranet: 10\.20\.0\.\d+", html)  # the addresses the cloud gave
    for event in ("创建", "提交", "已批准", "开始创建", "创建完成"):
        assert f"<td>{event}" in html, event
    assert "lina" in html and "operator" in html
    servers = client.get("/portal/servers").get_data(as_text=True)
    assert servers.count('state-ok">运行中</span>') == 3 and "教育云" in servers and "电子政务外网" in servers


def test_a_failed_server_shows_the_clouds_reason(app: Flask, journey: Journey) -> None:
    from cloudmgr.organisation.models import DepartmentCloud
    from cloudmgr.quotas.resources import quota_set_with

    request_id = journey.submit(count=2)
    journey.approve(request_id, "lina", "operator")
    with journey.rt.db.unit_of_work() as uow:
        req = uow.session.get(ServiceRequest, request_id)
        assert req is not None
        link = uow.session.scalar(
            select(DepartmentCloud).where(
                DepartmentCloud.department_id == req.department_id, DepartmentCloud.cloud_id == req.cloud_id
            )
        )
        assert link is not None and link.project_id
        provider = journey.rt.providers.for_cloud(req.cloud.key, req.cloud.os_cloud, req.cloud.region)
        project_id = link.project_id
    provider.set_quota(project_id, quota_set_with(provider.get_quota(project_id), {Resource.INSTANCES: 1}))
    journey.drain()
    client = logged_in(app, "zhangwei")
    html = client.get(f"/portal/requests/{request_id}").get_data(as_text=True)
    assert "部分交付" in html and "错误" in html
    assert re.search(r'<p class="fault" role="note">超出云平台配额：', html)  # a message (console2.po)


def test_server_actions_stop_start_delete_and_extend(app: Flask, journey: Journey) -> None:
    request_id = journey.active_request(1)
    server_id, name, _ = journey.servers(request_id)[0]
    page = f"/portal/servers/{server_id}"
    client = logged_in(app, "zhangwei")
    html = client.get(page).get_data(as_text=True)
    assert name in html and "运行中" in html and 'data-testid="stop"' in html
    assert post_form(client, f"{page}/power", {"action": "stop"}, page=page).status_code == 302
    journey.drain()
    assert journey.servers(request_id)[0][2] == "stopped"
    html = client.get(page).get_data(as_text=True)
    assert "已关机" in html and 'data-testid="start"' in html
    assert post_form(client, f"{page}/power", {"action": "stop"}, page=page).status_code == 409  # already stopped
    assert post_form(client, f"{page}/power", {"action": "reboot"}, page=page).status_code == 400
    assert post_form(client, f"{page}/power", {"action": "start"}, page=page).status_code == 302
    journey.drain()
    assert journey.servers(request_id)[0][2] == "active"
    # Extend: in the past is refused in the form, later works.
    response = post_form(client, f"{page}/extend", {"expires_on": "2000-01-01"}, page=page)
    assert response.status_code == 400 and "请选择今天以后的日期" in response.get_data(as_text=True)
    later = (date.today() + timedelta(days=500)).isoformat()
    assert post_form(client, f"{page}/extend", {"expires_on": later}, page=page).status_code == 302
    assert later in client.get(page).get_data(as_text=True)
    # Delete: the name must be typed.
    response = post_form(client, f"{page}/delete", {"confirm": "not-the-name"}, page=page)
    assert response.status_code == 400
    assert f"name ({name}) to confirm its deletion" in response.get_data(as_text=True)
    assert journey.servers(request_id)[0][2] == "active"
    assert post_form(client, f"{page}/delete", {"confirm": name}, page=page).status_code == 302
    assert journey.servers(request_id)[0][2] == "deleting"
    assert "删除中" in client.get(page).get_data(as_text=True)


def test_resize_is_a_request_of_its_own(app: Flask, journey: Journey) -> None:
    request_id = journey.active_request(1)
    server_id = journey.servers(request_id)[0][0]
    page = f"/portal/servers/{server_id}"
    client = logged_in(app, "zhangwei")
    html = client.get(page).get_data(as_text=True)
    assert "中型 2核 4G" in html and 'value="' in html
    response = post_form(client, f"{page}/resize", {"flavor": "", "justification": ""}, page=page)
    assert response.status_code == 400
    medium = journey.item_id("education", "flavor", "m1.medium")
    response = post_form(client, f"{page}/resize", {"flavor": medium, "justification": "高峰期需要更大内存"}, page=page)
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "调整规格" in html and "待审批" in html and "lic-01" in html


def test_cancel_releases_the_quota(app: Flask, journey: Journey) -> None:
    request_id = journey.submit(count=3)
    client = logged_in(app, "zhangwei")
    page = f"/portal/requests/{request_id}"
    response = post_form(client, f"{page}/cancel", {"reason": "不再需要"}, page=page)
    assert response.status_code == 302
    assert journey.request_state(request_id) == "cancelled"
    assert _education_balance(journey)[Resource.INSTANCES] == (8, 0, 0)
    html = client.get(page).get_data(as_text=True)
    assert "已撤销" in html and "不再需要" in html and 'data-testid="cancel"' not in html


def test_quotas_page_and_asking_for_more(app: Flask, journey: Journey) -> None:
    journey.submit(count=3)
    client = logged_in(app, "zhangwei")
    html = client.get("/portal/quotas").get_data(as_text=True)
    assert "教育云" in html and "省统一公共基础云平台" in html and "唐山" not in html
    row = re.search(r"云主机数量</th>(.*?)</tr>", html, re.S)  # the education cloud comes second
    assert row is not None
    assert 'class="bar' in html and "bar-used w-" in html and "bar-reserved w-" in html
    # Both a size and limits, or neither: refused in the form.
    response = post_form(
        client, "/portal/quotas", {"cloud": "education", "size": "medium", "cores": "32", "reason": "x"}
    )
    assert response.status_code == 400 and "不能同时" in response.get_data(as_text=True)
    response = post_form(client, "/portal/quotas", {"cloud": "education", "size": "", "reason": "x"})
    assert response.status_code == 400 and "请选择规模或至少填写一项" in response.get_data(as_text=True)
    # One size up: approved at once, and the cloud is updated after the commit.
    response = post_form(client, "/portal/quotas", {"cloud": "education", "size": "medium", "reason": "招生季扩容"})
    assert response.status_code == 302
    html = client.get("/portal/quotas").get_data(as_text=True)
    assert "已自动批准" in html
    assert _education_balance(journey)[Resource.INSTANCES][0] == 32
    dept, cloud_id = journey.actor("zhangwei").department_id, _cloud_id(journey)
    journey.drain()  # the push to the cloud is a work item, run by the scheduler's workers
    with journey.rt.db.unit_of_work() as uow:
        cloud_limits = {
            row.resource: row.cloud_limit
            for row in uow.session.scalars(
                select(QuotaLedgerRow).where(QuotaLedgerRow.department_id == dept, QuotaLedgerRow.cloud_id == cloud_id)
            )
        }
    assert cloud_limits["instances"] == 32  # pushed to the cloud
    # Explicit limits: waits for an operator.
    response = post_form(client, "/portal/quotas", {"cloud": "education", "ram_gb": "256", "reason": "大数据分析"})
    assert response.status_code == 302
    html = client.get("/portal/quotas").get_data(as_text=True)
    assert "等待云平台运维人员" in html and "256" in html


def _cloud_id(journey: Journey, key: str = "education") -> int:
    with journey.rt.db.unit_of_work() as uow:
        found = uow.session.scalar(select(Cloud.id).where(Cloud.key == key))
        assert found is not None
        return found


def test_navigation_of_staff_and_heads(app: Flask, journey: Journey) -> None:
    staff = logged_in(app, "zhangwei").get("/portal/").get_data(as_text=True)
    nav = staff[staff.index('class="main-nav"') :]
    for label in ("新建申请", "我的申请", "云主机", "配额"):
        assert label in nav, label
    assert "待我审批" not in nav
    head = logged_in(app, "lina").get("/portal/").get_data(as_text=True)
    assert "待我审批" in head[head.index('class="main-nav"') :]


def test_every_form_needs_the_csrf_token(app: Flask, journey: Journey) -> None:
    request_id = journey.active_request(1)
    server_id = journey.servers(request_id)[0][0]
    staff = logged_in(app, "zhangwei")
    for path, data in (
        (NEW, _form(journey, submit="提交")),
        (f"/portal/requests/{request_id}/cancel", {"reason": "x"}),
        (f"/portal/servers/{server_id}/power", {"action": "stop"}),
        (f"/portal/servers/{server_id}/delete", {"confirm": "lic-01"}),
        ("/portal/quotas", {"cloud": "education", "size": "medium", "reason": "x"}),
    ):
        for token in (None, "forged"):
            response = staff.post(path, data=data if token is None else {**data, "csrf_token": token})
            assert response.status_code == 400, path
            assert "表单已过期" in response.get_data(as_text=True)
    assert _request_count(journey) == 1
    assert [s[2] for s in journey.servers(request_id)] == ["active"]
