"""What each role's pages show."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient

from cloudmgr.demo import DemoLogin
from cloudmgr.organisation import services as org
from cloudmgr.runtime import Runtime


def _html(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def test_department_staff_see_their_department_and_its_clouds_only(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], seeded: Runtime
) -> None:
    login_as("dept_staff")  # zhangwei, 省教育厅
    html = _html(client, "/portal/")
    assert "省教育厅" in html
    with seeded.db.unit_of_work() as uow:
        education = org.get_department(uow.session, "prov-education")
        own = {link.cloud.name_zh for link in org.clouds_of_department(uow.session, education.id)}
        others = [d.name_zh for d in org.list_departments(uow.session) if d.key != "prov-education"]
        all_clouds = {c.name_zh for c in org.list_clouds(uow.session)}
    assert own and all(name in html for name in own)
    for name in all_clouds - own:
        assert f">{name}<" not in html, name
    for name in others:
        assert name not in html, name
    assert "互联网" in html and "电子政务外网" in html  # the zones


def test_staff_of_another_department_see_theirs(client: FlaskClient, login: Callable[[str, str], object]) -> None:
    login("wangfang", "demo-staff-2026")  # 唐山市人社局
    html = _html(client, "/portal/")
    assert "省教育厅" not in html
    assert "唐山" in html


def test_department_head_sees_the_approval_duty(client: FlaskClient, login_as: Callable[[str], DemoLogin]) -> None:
    login_as("dept_head")
    html = _html(client, "/portal/")
    assert "部门负责人" in html and "审批" in html


def test_operator_home_lists_clouds_departments_and_audit(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], seeded: Runtime
) -> None:
    login_as("operator")
    html = _html(client, "/ops/")
    with seeded.db.unit_of_work() as uow:
        clouds = org.list_clouds(uow.session)
        departments = org.list_departments(uow.session)
    for cloud in clouds:
        assert cloud.name_zh in html and cloud.key in html
    assert "从未同步" in html  # nothing synced in the test database
    assert f'<span class="stat-value">{len(departments)}</span>' in html
    assert "user.create" in html  # recent audit events
    assert "auth.login" in html


def test_finance_home_shows_departments_with_cloud_counts_and_the_policy(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], seeded: Runtime
) -> None:
    login_as("finance")
    html = _html(client, "/finance/")
    with seeded.db.unit_of_work() as uow:
        departments = org.list_departments(uow.session)
        counts = {d.name_zh: len(d.cloud_links) for d in departments}
    for name, count in counts.items():
        row = re.search(rf'<th scope="row">{name}</th>\s*<td>.*?</td>\s*<td class="num">(\d+)</td>', html, re.S)
        assert row, name
        assert int(row.group(1)) == count
    assert "不再新建" in html and "不再新购或自建" in html  # the rules
    assert "电子政务内网" in html


def test_admin_pages_list_departments_users_and_clouds(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], seeded: Runtime
) -> None:
    login_as("admin")
    home = _html(client, "/admin/")
    assert "创建用户" in home
    users = _html(client, "/admin/users")
    for username in ("zhangwei", "lina", "wangfang", "operator", "finance", "admin"):
        assert f"<code>{username}</code>" in users
    departments = _html(client, "/admin/departments")
    assert "省教育厅" in departments and "唐山" in departments and "市级" in departments
    clouds = _html(client, "/admin/clouds")
    with seeded.db.unit_of_work() as uow:
        for cloud in org.list_clouds(uow.session):
            assert cloud.name_zh in clouds


def test_simulated_cloud_badge(client: FlaskClient) -> None:
    assert "模拟云" in _html(client, "/login")


def test_error_pages_are_in_the_layout(client: FlaskClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "页面不存在" in html and "cloudmgr" in html and "cloudmgr.css" in html


def test_500_page_in_the_layout(seeded: Runtime) -> None:
    from web import create_app

    app = create_app(runtime=seeded)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "系统内部错误" in html and "RuntimeError" not in html
    assert response.headers["X-Frame-Options"] == "DENY"


def test_static_assets_are_local(client: FlaskClient) -> None:
    html = _html(client, "/login")
    assert "http://" not in html and "https://" not in html
    # Only the one local script file (a progressive enhancement), never an inline script.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts == [(' src="/static/js/cloudmgr.js" defer', "")]
    # Static files are streamed from disk: close each response so its file is closed too.
    with client.get("/static/js/cloudmgr.js") as script:
        assert script.status_code == 200
    assert " style=" not in html
    with client.get("/static/css/cloudmgr.css") as css:
        assert css.status_code == 200
        assert b"@import" not in css.data and b"url(http" not in css.data
