"""Every form, tried with empty, huge, malformed and script-carrying values.

The forms are found the way a person finds them: each role's pages are crawled from its
home page (links inside the app), and every ``<form>`` on them is collected (one per
action pattern and field set).  Each is then submitted with every field set to each bad
value (files too), with a valid CSRF token.  No answer may be a 5xx, no answer (nor the page
a redirect leads to) may carry the script unescaped, and a refused form says why (an error
summary, a field error or the error page).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cloudmgr.db import utcnow
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from tests.conftest import ONE_DATABASE
from tests.web.helpers import Journey, csrf_token, logged_in
from web import create_app

SCRIPT = '<script>alert("xss-f")</script>"><img src=x onerror=alert(1)>'
RAW_MARKERS = ('<script>alert("xss-f")', "<img src=x onerror")
BAD_VALUES = {
    "empty": "",
    "huge": "x" * 100_000,
    "malformed": "-99999999999999999999\x00\u202e2026-02-30%s{0}../../etc/passwd' OR 1=1 --",
    "script": SCRIPT,
}
MAX_PAGES = 70
CLEAR_ERROR = ("error-summary", "field-error", "error-panel", 'role="alert"', "flash-error", "alert-error")
SKIP_LINKS = re.compile(r"^/(static/|language/|logout|metrics|readyz|healthz)|\.(csv|xlsx)$")
SKIP_ACTIONS = {"/logout"}


@dataclass
class Form:
    method: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)  # name -> input type
    multipart: bool = False


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "form":
            self._form = Form(
                method=a.get("method", "get").upper(),
                action=a.get("action", ""),
                multipart="multipart" in a.get("enctype", ""),
            )
            self.forms.append(self._form)
        elif self._form is not None and tag in {"input", "select", "textarea", "button"} and a.get("name"):
            kind = a.get("type", tag) if tag == "input" else tag
            if kind != "submit":
                self._form.fields[a["name"]] = kind

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None


def _crawl(client: FlaskClient, start: str) -> list[tuple[str, Form]]:
    """(page, form) for every form on the pages reachable from ``start``."""
    seen: set[str] = set()
    patterns: set[str] = set()
    queue = [start]
    forms: list[tuple[str, Form]] = []
    form_keys: set[tuple[str, str, tuple[str, ...]]] = set()
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        pattern = re.sub(r"\d+", "N", path)
        if path in seen or (pattern in patterns and pattern != path):
            continue  # one page per pattern: /portal/requests/7 stands for every request page
        seen.add(path)
        patterns.add(pattern)
        response = client.get(path)
        if response.status_code != 200 or "html" not in response.content_type:
            continue
        parser = _Parser()
        parser.feed(response.get_data(as_text=True))
        for href in parser.links:
            parts = urlsplit(urljoin(path, href))
            if parts.netloc or not parts.path.startswith("/") or SKIP_LINKS.search(parts.path):
                continue
            queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        for form in parser.forms:
            action = urlsplit(urljoin(path, form.action or path)).path
            key = (form.method, re.sub(r"\d+", "N", action), tuple(sorted(form.fields)))
            if action in SKIP_ACTIONS or key in form_keys:
                continue
            form_keys.add(key)
            form.action = action
            forms.append((path, form))
    return forms


def _submit(client: FlaskClient, form: Form, value: str, token: str):  # type: ignore[no-untyped-def]
    data: dict[str, object] = {}
    for name, kind in form.fields.items():
        if name == "csrf_token":
            continue
        if kind == "file":
            data[name] = (io.BytesIO(value.encode("utf-8", "surrogatepass")), "bad-input.csv")
        else:
            data[name] = value
    if form.method == "GET":
        return client.get(form.action, query_string={k: v for k, v in data.items() if isinstance(v, str)})
    data["csrf_token"] = token
    response = client.post(form.action, data=data, content_type="multipart/form-data" if form.multipart else None)
    # Werkzeug's test client spools a multipart body over 500 KB into a temporary file it
    # never closes; close it here rather than leave it to the garbage collector.
    response.request.environ["wsgi.input"].close()
    return response


def _problems(client: FlaskClient, page: str, form: Form, kind: str, response) -> list[str]:  # type: ignore[no-untyped-def]
    where = f"{form.method} {form.action} (form on {page}) with {kind} values"
    found = []
    body = response.get_data(as_text=True)
    if response.status_code >= 500:
        found.append(f"{where}: {response.status_code}")
    if any(marker in body for marker in RAW_MARKERS):
        found.append(f"{where}: the script came back unescaped")
    if response.status_code == 400 and not any(sign in body for sign in CLEAR_ERROR):
        found.append(f"{where}: 400 without a message saying what is wrong")
    if response.status_code in (302, 303) and kind == "script":
        target = urlsplit(response.headers["Location"]).path
        shown = client.get(target).get_data(as_text=True)
        if any(marker in shown for marker in RAW_MARKERS):
            found.append(f"{where}: the page it leads to ({target}) shows the script unescaped")
    return found


def _journey_state(journey: Journey) -> None:
    journey.active_request(count=1)  # servers for the server pages
    journey.submit(count=1)  # a request waiting for the head
    journey.submit(count=1, submit=False)  # a draft


@pytest.mark.parametrize("username", ["zhangwei", "lina", "operator", "finance", "admin"])
@ONE_DATABASE
def test_every_form_survives_bad_input(journey: Journey, username: str) -> None:
    _journey_state(journey)
    app: Flask = create_app(runtime=journey.rt)
    client = logged_in(app, username)
    home = client.get("/", follow_redirects=True)
    token = csrf_token(home.get_data(as_text=True))
    forms = _crawl(client, urlsplit(home.request.url).path)
    assert forms, "no form found"
    problems: list[str] = []
    for page, form in forms:
        for kind, value in BAD_VALUES.items():
            response = _submit(client, form, value, token)
            problems += _problems(client, page, form, kind, response)
    assert not problems, "\n".join(problems)


@ONE_DATABASE
def test_login_and_query_strings_survive_bad_input(journey: Journey) -> None:
    app = create_app(runtime=journey.rt)
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    for kind, value in BAD_VALUES.items():
        response = client.post(
            "/login", data={"username": value, "password": value, "next": value, "csrf_token": token}
        )
        assert response.status_code < 500, kind
        assert not any(marker in response.get_data(as_text=True) for marker in RAW_MARKERS), kind
        if response.status_code == 400:
            assert any(sign in response.get_data(as_text=True) for sign in CLEAR_ERROR), kind
    staff = logged_in(app, "zhangwei")
    operator = logged_in(app, "operator")
    for who, path in ((staff, "/portal/requests"), (staff, "/portal/servers"), (operator, "/ops/requests")):
        for kind, value in BAD_VALUES.items():
            query = {"state": value, "cloud": value, "page": value, "department": value, "sort": value, "q": value}
            response = who.get(path, query_string=query)
            assert response.status_code < 500, (path, kind)
            assert not any(marker in response.get_data(as_text=True) for marker in RAW_MARKERS), (path, kind)


def test_submitting_a_request_twice_is_refused_not_a_500(journey: Journey) -> None:
    """Found by the crawl above: a second submit (a double click) added the servers again."""
    draft = journey.submit(count=2, submit=False)
    app = create_app(runtime=journey.rt)
    client = logged_in(app, "zhangwei")
    token = csrf_token(client.get(f"/portal/requests/{draft}").get_data(as_text=True))
    assert client.post(f"/portal/requests/{draft}/submit", data={"csrf_token": token}).status_code == 302
    again = client.post(f"/portal/requests/{draft}/submit", data={"csrf_token": token})
    assert again.status_code == 409
    assert any(sign in again.get_data(as_text=True) for sign in CLEAR_ERROR)
    assert len(journey.servers(draft)) == 2 and journey.request_state(draft) == "submitted"


def test_nul_characters_are_refused_with_a_clear_error(journey: Journey) -> None:
    """PostgreSQL refuses NUL in text (a 500 before the guard): every input is checked first."""
    app = create_app(runtime=journey.rt)
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "admin\x00", "password": "x", "csrf_token": token})
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)
    staff = logged_in(app, "zhangwei")
    assert staff.get("/portal/requests", query_string={"state": "a\x00b"}).status_code == 400
    with journey.rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, "zhangwei")
        bearer = org.issue_token(
            uow.session, user, name="nul", expires_at=utcnow() + timedelta(days=1), actor=Actor.system("t")
        )
    answer = client.post(
        "/api/v1/requests/quote",
        headers={"Authorization": f"Bearer {bearer.token}"},
        data='{"cloud": "education\\u0000"}',
        content_type="application/json",
    )
    assert answer.status_code == 400 and answer.get_json()["error"] == "invalid"
