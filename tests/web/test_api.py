from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from web.api.spec import openapi_path


def _token(runtime: Runtime, username: str, *, expires_in: timedelta | None = timedelta(days=1)) -> str:
    with runtime.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        expires = utcnow() + expires_in if expires_in is not None else None
        return org.issue_token(uow.session, user, name="test", expires_at=expires, actor=Actor.system("test")).token


def _get(client: FlaskClient, path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.get(path, headers=headers)
    assert response.content_type.startswith("application/json"), (path, response.content_type)
    return response.status_code, response.get_json()


def _assert_error(body: Any, code: str) -> None:
    assert set(body) == {"error", "message"}
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]


def test_401_without_token(client: FlaskClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _assert_error(response.get_json(), "unauthorized")


@pytest.mark.parametrize("header", ["Bearer cmt_not-a-real-token", "Basic YWRtaW46YWRtaW4=", "Bearer ", "cmt_x"])
def test_401_with_a_bad_token(client: FlaskClient, header: str) -> None:
    response = client.get("/api/v1/clouds", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"] in {"unauthorized", "invalid_token"}


def test_expired_token_is_refused(client: FlaskClient, seeded: Runtime) -> None:
    token = _token(seeded, "operator", expires_in=timedelta(seconds=-1))
    status, body = _get(client, "/api/v1/me", token)
    assert status == 401
    _assert_error(body, "invalid_token")


def test_session_cookie_does_not_authenticate_the_api(client: FlaskClient, login_as: Any) -> None:
    login_as("admin")
    status, body = _get(client, "/api/v1/me")
    assert status == 401
    _assert_error(body, "unauthorized")


def test_me_with_a_token(client: FlaskClient, seeded: Runtime) -> None:
    status, body = _get(client, "/api/v1/me", _token(seeded, "zhangwei"))
    assert status == 200
    assert body["username"] == "zhangwei"
    assert body["role"] == "dept_staff"
    assert body["department"] == {
        "key": "prov-education",
        "name_zh": "省教育厅",
        "name_en": "Provincial Department of Education",
    }


def test_token_use_is_recorded(client: FlaskClient, seeded: Runtime) -> None:
    from sqlalchemy import select

    from cloudmgr.organisation.models import ApiToken

    token = _token(seeded, "operator")
    assert _get(client, "/api/v1/me", token)[0] == 200
    with seeded.db.unit_of_work() as uow:
        record = uow.session.scalars(select(ApiToken)).one()
        assert record.last_used_at is not None


def test_operator_sees_every_cloud_and_department(client: FlaskClient, seeded: Runtime) -> None:
    token = _token(seeded, "operator")
    with seeded.db.unit_of_work() as uow:
        cloud_keys = [c.key for c in org.list_clouds(uow.session)]
        dept_keys = {d.key for d in org.list_departments(uow.session)}
    status, body = _get(client, "/api/v1/clouds", token)
    assert status == 200
    assert [c["key"] for c in body["items"]] == cloud_keys
    first = body["items"][0]
    assert set(first) >= {"key", "name_zh", "name_en", "kind", "level", "zones", "synced_at"}
    assert {z["zone"] for z in first["zones"]} <= {"internet", "extranet"}
    status, body = _get(client, "/api/v1/departments", token)
    assert {d["key"] for d in body["items"]} == dept_keys
    education = next(d for d in body["items"] if d["key"] == "prov-education")
    assert education["clouds"] == ["province-base", "education"]


def test_department_staff_see_only_their_department_and_its_clouds(client: FlaskClient, seeded: Runtime) -> None:
    token = _token(seeded, "wangfang")  # ts-hrss
    status, body = _get(client, "/api/v1/departments", token)
    assert status == 200
    assert [d["key"] for d in body["items"]] == ["ts-hrss"]
    own_clouds = body["items"][0]["clouds"]
    status, body = _get(client, "/api/v1/clouds", token)
    assert sorted(c["key"] for c in body["items"]) == sorted(own_clouds)
    assert _get(client, "/api/v1/departments/ts-hrss", token)[0] == 200
    status, body = _get(client, "/api/v1/departments/prov-education", token)
    assert status == 404
    _assert_error(body, "unknown_department")


def test_level_filter_and_bad_input(client: FlaskClient, seeded: Runtime) -> None:
    token = _token(seeded, "finance")
    status, body = _get(client, "/api/v1/departments?level=county", token)
    assert status == 200 and body["items"] and {d["level"] for d in body["items"]} == {"county"}
    status, body = _get(client, "/api/v1/departments?level=planet", token)
    assert status == 400
    _assert_error(body, "invalid")


def test_unknown_department_and_unknown_path_are_json_404(client: FlaskClient, seeded: Runtime) -> None:
    token = _token(seeded, "admin")
    status, body = _get(client, "/api/v1/departments/no-such", token)
    assert status == 404
    _assert_error(body, "unknown_department")
    status, body = _get(client, "/api/v1/no/such/thing", token)
    assert status == 404
    _assert_error(body, "not_found")


def test_wrong_method_is_json_405(client: FlaskClient, seeded: Runtime) -> None:
    response = client.post("/api/v1/clouds", headers={"Authorization": f"Bearer {_token(seeded, 'admin')}"})
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    _assert_error(response.get_json(), "method_not_allowed")


def test_api_is_csrf_exempt(client: FlaskClient, seeded: Runtime) -> None:
    # A POST without a CSRF token reaches the API (405 here), not the CSRF check (400).
    response = client.post("/api/v1/me", headers={"Authorization": f"Bearer {_token(seeded, 'admin')}"})
    assert response.status_code == 405


@pytest.mark.parametrize("username", ["zhangwei", "lina", "operator", "finance"])
def test_wrong_role_is_json_403(client: FlaskClient, seeded: Runtime, username: str) -> None:
    status, body = _get(client, "/api/v1/users", _token(seeded, username))
    assert status == 403
    _assert_error(body, "forbidden")


def test_admin_lists_users(client: FlaskClient, seeded: Runtime) -> None:
    status, body = _get(client, "/api/v1/users", _token(seeded, "admin"))
    assert status == 200
    by_name = {u["username"]: u for u in body["items"]}
    assert by_name["zhangwei"]["department"] == "prov-education"
    assert "password_hash" not in by_name["admin"]


def test_openapi_document(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")  # public: no token needed
    assert response.status_code == 200
    doc = json.loads(response.get_data(as_text=True))
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"]
    paths = doc["paths"]
    for path in (
        "/api/v1/me",
        "/api/v1/clouds",
        "/api/v1/departments",
        "/api/v1/departments/{key}",
        "/api/v1/users",
        "/api/v1/openapi.json",
    ):
        assert "get" in paths[path], path
    assert paths["/api/v1/departments/{key}"]["get"]["parameters"][0]["name"] == "key"
    assert paths["/api/v1/openapi.json"]["get"]["security"] == []
    assert "401" in paths["/api/v1/me"]["get"]["responses"]
    assert "Roles: admin." in paths["/api/v1/users"]["get"]["description"]
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    _assert_refs_resolve(doc, doc)


def _assert_refs_resolve(node: Any, doc: dict[str, Any]) -> None:
    if isinstance(node, dict):
        if "$ref" in node:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
        for value in node.values():
            _assert_refs_resolve(value, doc)
    elif isinstance(node, list):
        for value in node:
            _assert_refs_resolve(value, doc)


def test_every_api_route_is_documented(app: Any) -> None:
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path, _params = openapi_path(rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"][path], (method, path)
