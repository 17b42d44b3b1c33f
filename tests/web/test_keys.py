"""The SSH key pages and API: add, list, delete; refusals explained under the field; a pasted
private key is refused with its message and never echoed, logged or stored (issue 16)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cloudmgr.audit.models import AuditEvent
from cloudmgr.db import utcnow
from cloudmgr.keys.models import SshKey
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import Runtime
from tests.keys.keygen import ed25519_key, openssh_private, pem_private, public_line, rsa_key
from tests.web.helpers import csrf_token, logged_in


def _english(app: Flask, username: str) -> FlaskClient:
    client = logged_in(app, username)
    client.get("/language/en")
    return client


def _add_form(client: FlaskClient, name: str, text: str) -> tuple[int, str]:
    token = csrf_token(client.get("/portal/keys").get_data(as_text=True))
    response = client.post("/portal/keys", data={"csrf_token": token, "name": name, "public_key": text})
    return response.status_code, response.get_data(as_text=True)


def _bearer(rt: Runtime, username: str) -> dict[str, str]:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(
            uow.session, user, name="keys", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    return {"Authorization": f"Bearer {token.token}"}


def _secret_chunks(private: str) -> list[str]:
    body = "".join(private.splitlines()[1:-1])
    return [body[i : i + 24] for i in range(0, len(body) - 24, 24)]


def _stored_keys(rt: Runtime) -> list[str]:
    with rt.db.unit_of_work() as uow:
        return list(uow.session.scalars(select(SshKey.name)))


def test_add_list_and_delete_on_the_pages(app: Flask, seeded: Runtime) -> None:
    client = _english(app, "zhangwei")
    page = client.get("/portal/keys").get_data(as_text=True)
    assert "You have no SSH keys yet." in page and 'href="/portal/keys"' in page  # in the navigation
    line = public_line(ed25519_key(), "zhangwei@laptop")
    status, _html = _add_form(client, "laptop", line)
    assert status == 302
    page = client.get("/portal/keys").get_data(as_text=True)
    assert "laptop" in page and "SHA256:" in page and "ssh-ed25519" in page and "added" in page
    with seeded.db.unit_of_work() as uow:
        key_id = uow.session.scalars(select(SshKey.id)).one()
    token = csrf_token(page)
    assert client.post(f"/portal/keys/{key_id}/delete", data={}).status_code == 400  # no CSRF token
    response = client.post(f"/portal/keys/{key_id}/delete", data={"csrf_token": token})
    assert response.status_code == 302
    assert _stored_keys(seeded) == []


def test_refusals_are_explained_under_the_field(app: Flask) -> None:
    client = _english(app, "zhangwei")
    status, html = _add_form(client, "old", public_line(rsa_key(1024)))
    assert status == 400
    assert "This RSA key has 1024 bits; at least 2048 are needed." in html
    status, html = _add_form(client, "", public_line(ed25519_key()))
    assert status == 400 and "Give the key a name." in html
    status, html = _add_form(client, "x", "ssh-dss AAAAB3NzaC1kc3M=")
    assert status == 400 and "DSA keys are not accepted" in html


@pytest.mark.parametrize("make", [openssh_private, pem_private], ids=["openssh", "pem"])
def test_a_pasted_private_key_is_refused_and_never_echoed_or_logged(
    app: Flask, seeded: Runtime, make: object, caplog: pytest.LogCaptureFixture
) -> None:
    assert callable(make)
    private: str = make(rsa_key(2048))
    client = _english(app, "zhangwei")
    caplog.set_level(logging.DEBUG)
    status, html = _add_form(client, "oops", private)
    assert status == 400
    assert "This is a private key. It was NOT stored." in html
    assert "PRIVATE KEY-----" not in html
    for chunk in _secret_chunks(private):
        assert chunk not in html
        assert chunk not in caplog.text
    # Also when something else is wrong with the form (no name): the text still does not come back.
    status, html = _add_form(client, "", private)
    assert status == 400 and "It was NOT stored." in html
    assert not any(chunk in html for chunk in _secret_chunks(private))
    # The same through the API.
    headers = _bearer(seeded, "zhangwei")
    response = client.post("/api/v1/keys", headers=headers, json={"name": "oops", "public_key": private})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "ssh_private_key_refused" and "NOT stored" in body["message"]
    assert not any(chunk in response.get_data(as_text=True) for chunk in _secret_chunks(private))
    assert not any(chunk in caplog.text for chunk in _secret_chunks(private))
    assert _stored_keys(seeded) == []
    with seeded.db.unit_of_work() as uow:
        details = [json.dumps(e.detail) for e in uow.session.scalars(select(AuditEvent))]
        refusals = uow.session.scalars(select(AuditEvent).where(AuditEvent.action == "ssh_key.private_key_refused"))
        assert len(refusals.all()) >= 2
    assert not any(chunk in detail for chunk in _secret_chunks(private) for detail in details)


def test_the_api_adds_lists_and_deletes(app: Flask, seeded: Runtime) -> None:
    client = app.test_client()
    headers = _bearer(seeded, "zhangwei")
    line = public_line(ed25519_key(), "c1")
    response = client.post("/api/v1/keys", headers=headers, json={"name": "laptop", "public_key": line})
    assert response.status_code == 201, response.get_json()
    added = response.get_json()
    assert added["public_key"] == line.rsplit(" ", 1)[0] and added["comment"] == "c1" and added["bits"] == 256
    again = client.post("/api/v1/keys", headers=headers, json={"name": "laptop", "public_key": line})
    assert again.status_code == 409 and again.get_json()["error"] == "ssh_key_name_taken"
    short = client.post("/api/v1/keys", headers=headers, json={"name": "old", "public_key": public_line(rsa_key(1024))})
    assert short.status_code == 400 and short.get_json()["error"] == "ssh_key_invalid"
    assert [k["name"] for k in client.get("/api/v1/keys", headers=headers).get_json()["items"]] == ["laptop"]
    # Nobody else sees or deletes it; operators read it per department.
    for other in ("lina", "wangfang"):
        other_headers = _bearer(seeded, other)
        assert client.get("/api/v1/keys", headers=other_headers).get_json()["items"] == []
        assert client.delete(f"/api/v1/keys/{added['id']}", headers=other_headers).status_code == 404
    operator = _bearer(seeded, "operator")
    listed = client.get("/api/v1/keys?department=prov-education", headers=operator).get_json()["items"]
    assert [(k["owner"], k["name"]) for k in listed] == [("zhangwei", "laptop")]
    assert client.get("/api/v1/keys?department=ts-hrss", headers=operator).get_json()["items"] == []
    assert client.delete(f"/api/v1/keys/{added['id']}", headers=operator).status_code == 403
    assert client.delete(f"/api/v1/keys/{added['id']}", headers=headers).status_code == 204
    assert client.get("/api/v1/keys", headers=headers).get_json()["items"] == []


def test_pages_of_another_user_cannot_delete_my_key(app: Flask, seeded: Runtime) -> None:
    owner = _english(app, "zhangwei")
    assert _add_form(owner, "zw-home-box", public_line(ed25519_key()))[0] == 302
    with seeded.db.unit_of_work() as uow:
        key_id = uow.session.scalars(select(SshKey.id)).one()
    for other in ("lina", "wangfang"):
        client = _english(app, other)
        page = client.get("/portal/keys").get_data(as_text=True)
        assert "zw-home-box" not in page
        response = client.post(f"/portal/keys/{key_id}/delete", data={"csrf_token": csrf_token(page)})
        assert response.status_code == 404
    assert _stored_keys(seeded) == ["zw-home-box"]
