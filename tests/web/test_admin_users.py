from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cloudmgr.demo import DemoLogin
from cloudmgr.organisation import services as org
from cloudmgr.organisation.models import User
from cloudmgr.runtime import Runtime
from tests.web.helpers import csrf_token


def _user_count(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count(User.id))) or 0)


def _form(client: FlaskClient, **fields: str) -> dict[str, str]:
    token = csrf_token(client.get("/admin/users/new").get_data(as_text=True))
    data = {
        "username": "zhaolei",
        "display_name": "赵磊",
        "email": "zhaolei@example.gov.cn",
        "role": "dept_staff",
        "department": "prov-finance",
        "password": "good-pass-2026",
        "confirm": "good-pass-2026",
        "csrf_token": token,
    }
    data.update(fields)
    return data


def test_admin_creates_a_user_through_the_form(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], seeded: Runtime
) -> None:
    login_as("admin")
    response = client.post("/admin/users/new", data=_form(client))
    assert response.status_code == 302 and response.headers["Location"] == "/admin/users"
    listing = client.get("/admin/users").get_data(as_text=True)
    assert "已创建用户 zhaolei" in listing and "赵磊" in listing
    with seeded.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "zhaolei")
        assert user.role == "dept_staff" and user.department is not None
        assert user.department.key == "prov-finance"
    # The new user can log in and lands in the portal of their department.
    client.post("/logout", data={"csrf_token": csrf_token(listing)})
    token = csrf_token(client.get("/login").get_data(as_text=True))
    login = client.post("/login", data={"username": "zhaolei", "password": "good-pass-2026", "csrf_token": token})
    assert login.headers["Location"] == "/portal/"
    assert "省财政厅" in client.get("/portal/").get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"username": ""}, "请输入用户名"),
        ({"username": "bad name!"}, "只能使用字母、数字"),
        ({"username": "zhangwei"}, "该用户名已被使用"),
        ({"password": "short1", "confirm": "short1"}, "密码长度须在 10 到 256 个字符之间"),
        ({"password": "onlyletterslong", "confirm": "onlyletterslong"}, "须同时包含字母和数字或符号"),
        ({"confirm": "something-else-1"}, "两次输入的密码不一致"),
        ({"department": ""}, "必须选择所属部门"),
        ({"role": "operator"}, "其他角色请勿选择部门"),
        ({"department": "no-such-dept"}, "请从列表中选择部门"),
        ({"role": "superuser"}, "角色"),
        ({"email": "not-an-email"}, "请输入有效的电子邮箱"),
    ],
)
def test_a_bad_user_gets_a_clear_form_error_and_nothing_is_stored(
    client: FlaskClient,
    login_as: Callable[[str], DemoLogin],
    seeded: Runtime,
    fields: dict[str, str],
    message: str,
) -> None:
    login_as("admin")
    before = _user_count(seeded)
    response = client.post("/admin/users/new", data=_form(client, **fields))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'class="error-summary"' in html
    assert message in html
    assert _user_count(seeded) == before


def test_operator_without_department_is_fine(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], seeded: Runtime
) -> None:
    login_as("admin")
    response = client.post("/admin/users/new", data=_form(client, username="ops2", role="operator", department=""))
    assert response.status_code == 302
    with seeded.db.unit_of_work() as uow:
        assert org.get_user_by_name(uow.session, "ops2").department_id is None


def test_create_user_form_needs_csrf(
    client: FlaskClient, login_as: Callable[[str], DemoLogin], seeded: Runtime
) -> None:
    login_as("admin")
    data = _form(client)
    del data["csrf_token"]
    before = _user_count(seeded)
    assert client.post("/admin/users/new", data=data).status_code == 400
    assert _user_count(seeded) == before


def test_english_form_errors(client: FlaskClient, login_as: Callable[[str], DemoLogin]) -> None:
    login_as("admin")
    client.get("/language/en")
    html = client.post("/admin/users/new", data=_form(client, username="zhangwei")).get_data(as_text=True)
    assert "This username is already taken." in html
