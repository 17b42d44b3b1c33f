"""Every role walks the console in Chinese and in English: no other language, no raw keys.

For each role (and each language) a logged-in test client starts at ``/`` and follows every
same-origin link it finds (GET; not logout, the language switch, downloads, the API or static
files), one page per URL pattern (``/portal/requests/7`` and ``/portal/requests/8`` are one
pattern), at most ``MAX_PAGES`` pages (the walk is tests/web/crawl.py).  It fails on:

* an HTTP 5xx, or a page without a ``<title>``;
* in the Chinese UI, visible text (outside ``code``/``kbd``/``pre``/``samp``, ``script``/``style``,
  and elements of class ``mono``/``code``) holding two English words in a row, a raw key
  (``snake_case``, ``auth.login``) or a Python repr (``{'``, ``[{``, ``Decimal(``);
* in the English UI, Chinese characters in visible text.

Names that are data (what the database holds in name-like columns: users' display names, legacy
systems and hosts, request and purchase titles, notes written by people …) are taken out of the
text first; a department's or cloud's name in the other language (``name_zh``/``name_en``) is not
data, it is the wrong name.  A msgid the catalog does not translate yet is left to test_i18n.

Then every form met on the way (one per action pattern) that has fields a person fills in is
sent with bad input, three times (hidden fields and the CSRF token as the page gave them): every
field empty; every field of the wrong type (words in a number, an impossible date, a choice the
list does not offer); every field out of range (negative numbers, dates in the wrong order, text
far longer than any column).  The answer must not be a 5xx, and the page it shows (or redirects
to), with its error messages, must speak the page's language.

``KNOWN`` lists what is still found and not fixed yet (issue 18): each entry must still be found
(the test fails when one is fixed, so the list only shrinks), and anything else found fails.

It reads web/translations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import String, Text, inspect, select
from werkzeug.test import TestResponse

from cloudmgr.db import Base
from tests.conftest import ONE_DATABASE
from tests.web.crawl import ROOT, USERS, crawl, demo_world, parse, same_origin, url_pattern
from tests.web.helpers import Journey, logged_in
from web import create_app
from web.core import i18n

# --- what a page's text must not hold ------------------------------------------------------------

ENGLISH_WORDS = re.compile(r"\b[A-Za-z]{2,}(?:[ \t]+[A-Za-z]{2,})+\b")
RAW_KEY = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b|\b[a-z]{2,}\.[a-z_]{2,}\b")
PYTHON_REPR = re.compile(r"\{'|\[\{|\['|Decimal\(|datetime\.|\bNone\b")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
# Words that are names in every language (products, units, protocols): not English sentences.
NAMES = (
    "OpenStack",
    "Ansible YAML",
    "Windows Server",
    "Red Hat",
    "Grafana",
    "Prometheus",
    "SSH",
    "noVNC",
    "English",
    "中文",
    "IPv4",
    "IPv6",
)


# The name of a file someone uploaded (legacy.yml, servers.csv) is data too.
UPLOADED_FILE = re.compile(r"[\w.-]+\.(?:ya?ml|csv|xlsx)\b")


def _strip_data(text: str, data: list[str]) -> str:
    for value in data:
        if value in text:
            text = text.replace(value, " ")
    text = UPLOADED_FILE.sub(" ", text)
    for name in NAMES:
        text = text.replace(name, " ")
    return text


def problems_in(texts: Iterable[str], lang: str, data: list[str]) -> list[str]:
    """What a page's visible text holds that its language must not."""
    found = []
    for original in texts:
        text = _strip_data(original, data)
        if lang == "zh":
            for pattern in (ENGLISH_WORDS, RAW_KEY, PYTHON_REPR):
                match = pattern.search(text)
                if match:
                    found.append(original)
                    break
        elif CJK.search(text):
            found.append(original)
    return found


# --- the data: every string the database holds that people or files wrote ------------------------

DATA_COLUMNS = re.compile(
    r"(^|_)(name|names|hostname|username|title|description|justification|reason|note|notes|comment|"
    r"application_system|owner|contact|location|key|cloud_name|os_name|os_version|address|fqdn|"
    r"os_family|label|code|number|vendor|model|fingerprint|public_key|city|county|township|site|purpose|summary)$"
)


def data_strings(journey: Journey) -> list[str]:
    """String values of the database's name-like columns, longest first."""
    values: set[str] = set()
    with journey.rt.db.unit_of_work() as uow:
        for mapper in Base.registry.mappers:
            cls = mapper.class_
            columns = [
                c
                for c in inspect(cls).columns
                if isinstance(c.type, String | Text) and DATA_COLUMNS.search(c.key) and c.table is mapper.local_table
            ]
            for column in columns:
                for value in uow.session.scalars(select(column).distinct()):
                    if isinstance(value, str) and len(value.strip()) >= 2:
                        values.add(value.strip())
    return sorted(values, key=len, reverse=True)


# --- the walk ------------------------------------------------------------------------------------

Forms = list[tuple[str, dict[str, object]]]


@dataclass
class Finding:
    lang: str
    user: str
    url: str
    what: str

    def key(self) -> str:
        return f"{self.lang} {url_pattern(urlsplit(self.url).path)} {self.what}"


def _check_page(user: str, lang: str, url: str, response: TestResponse, data: list[str]) -> Iterator[Finding]:
    if response.status_code >= 500:
        yield Finding(lang, user, url, f"HTTP {response.status_code}")
        return
    if not response.content_type.startswith("text/html"):
        return
    page = parse(response.get_data(as_text=True))
    if not page.title.strip():
        yield Finding(lang, user, url, "no title")
    for text in problems_in(page.texts, lang, data):
        yield Finding(lang, user, url, text[:160])


def walk(app: Flask, user: str, lang: str, data: list[str]) -> tuple[list[Finding], int, Forms]:
    client = logged_in(app, user)
    client.get(f"/language/{lang}")
    findings: list[Finding] = []
    forms: dict[str, tuple[str, dict[str, object]]] = {}
    visited = 0
    for visit in crawl(client):
        visited += 1
        findings.extend(_check_page(user, lang, visit.url, visit.response, data))
        for form in visit.page.forms if visit.page else ():
            action = same_origin(str(form["action"]) or visit.url, visit.url)
            if action is not None and form["method"] == "post":
                forms.setdefault(url_pattern(urlsplit(action).path), (visit.url, form))
    return findings, visited, list(forms.values())


Fields = list[tuple[str, str, str, str]]

TOO_LONG = "长" * 3000 + "x" * 3000
# Date fields that open and close a span: sent in the wrong order (the end before the start).
SPAN_START = re.compile(r"(start|from|begin|since|valid_from)", re.I)
SPAN_END = re.compile(r"(end|until|to$|till|expires|valid_until)", re.I)
# A user's own account: bad input there must not lock the crawl's users out (it is tested apart).
KEEP_OUT = re.compile(r"^/admin/users/\d+|^/auth/")


def _empty_input(fields: Fields) -> dict[str, str] | None:
    """The form's hidden fields as given and every field a person fills in empty; None when the
    form has no such field (a button: sending it is not bad input, it acts)."""
    data: dict[str, str] = {}
    filled = False
    for tag, kind, name, value in fields:
        if not name:
            continue
        if tag == "input" and kind == "hidden":
            data[name] = value
        elif tag == "input" and kind in ("submit", "button", "checkbox", "radio", "file"):
            continue
        else:
            data[name] = ""
            filled = True
    return data if filled else None


def _wrong_value(tag: str, kind: str, name: str, variant: str) -> str:
    """A value of the wrong type (``types``) or out of its range (``range``) for one field."""
    if tag == "select":
        return "no-such-choice" if variant == "types" else "-1"
    if kind == "number":
        return "abc" if variant == "types" else "-1"
    if kind == "date":
        if variant == "types":
            return "31/02/2026"
        if SPAN_END.search(name):
            return "2020-01-01"
        return "2030-12-31"  # a start after any end above
    if kind == "email":
        return "not an address"
    return "%(x)s {0} <b>" if variant == "types" else TOO_LONG


def _bad_inputs(fields: Fields) -> list[dict[str, str]]:
    """The form sent with bad input: every field empty, every field of the wrong type (words in a
    number, an impossible date, a choice the list does not offer), and every field out of range
    (negative numbers, dates in the wrong order, text far longer than any field takes)."""
    empty = _empty_input(fields)
    if empty is None:
        return []
    bodies = [empty]
    for variant in ("types", "range"):
        data: dict[str, str] = {}
        for tag, kind, name, value in fields:
            if not name:
                continue
            if tag == "input" and kind == "hidden":
                data[name] = value
            elif tag == "input" and kind in ("submit", "button", "checkbox", "radio", "file"):
                continue
            else:
                data[name] = _wrong_value(tag, kind, name, variant)
        bodies.append(data)
    return bodies


def send_forms(app: Flask, user: str, lang: str, forms: Forms, data: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    for page_url, form in forms:
        fields = form["fields"]
        assert isinstance(fields, list)
        action = same_origin(str(form["action"]) or page_url, page_url)
        assert action is not None
        bodies = _bad_inputs(fields)
        if KEEP_OUT.search(urlsplit(action).path):
            bodies = bodies[:1]
        for body in bodies:
            client = logged_in(app, user)
            client.get(f"/language/{lang}")
            client.get(page_url)  # the session's CSRF token is the page's
            response = client.post(action, data=body, follow_redirects=True)
            for finding in _check_page(user, lang, f"POST {action}", response, data):
                findings.append(finding)
    return findings


# --- what is still found (issue 18): each entry must still be found; fix it and remove it --------
#
# (language, URL pattern, a piece of the text).  Empty: the last ones, the administrators' file-sync
# help texts, name their files and commands in <code> now (code_list), as the other forms do.

KNOWN: tuple[tuple[str, str, str], ...] = ()


def _known(finding: Finding) -> tuple[str, str, str] | None:
    pattern = url_pattern(urlsplit(finding.url).path)
    for entry in KNOWN:
        lang, where, piece = entry
        if finding.lang == lang and pattern == where and piece in finding.what:
            return entry
    return None


def untranslated_messages() -> list[str]:
    """The msgids the Chinese catalog lacks (web/, and cloudmgr/'s N_): test_i18n reports them,
    not this test."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}
    extracted = set()
    for _f, _l, message, _c, _x in extract_from_dir(str(i18n.TRANSLATIONS_DIR.parent), method_map, keywords=keywords):
        extracted.add(message if isinstance(message, str) else message[0])
    domain = extract_from_dir(str(ROOT / "cloudmgr"), [("**.py", "python")], keywords={"N_": None})
    for _f, _l, message, _c, _x in domain:
        extracted.add(message if isinstance(message, str) else message[0])
    with (i18n.TRANSLATIONS_DIR / "zh" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id and m.string and not m.fuzzy}
    return sorted(m for m in extracted - translated if "%(" not in m)


@ONE_DATABASE
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_page_and_form_speaks_its_language(journey: Journey, lang: str) -> None:
    demo_world(journey)
    app = create_app(runtime=journey.rt)
    data = data_strings(journey) + untranslated_messages()
    findings: list[Finding] = []
    for user in USERS:
        found, visited, forms = walk(app, user, lang, data)
        assert visited > 3, (user, visited)
        findings.extend(found)
        findings.extend(send_forms(app, user, lang, forms, data))
    seen = {_known(f) for f in findings} - {None}
    new = sorted({f"{f.key()}   [{f.user} {f.url}]" for f in findings if _known(f) is None})
    fixed = sorted(str(k) for k in KNOWN if k[0] == lang and k not in seen)
    report = "found:\n" + "\n".join(new) + "\nno longer found (remove from KNOWN):\n" + "\n".join(fixed)
    assert not new and not fixed, report


def test_the_checks_tell_english_from_chinese() -> None:
    page = parse(
        "<html><head><title>申请</title></head><body><p>云主机 is out of support</p>"
        "<code>auth.login</code><span class='mono'>jyt-portal-web01</span><td>auth.login</td>"
        "<p>Lines：{'quantity': [1]}</p><p>运行中</p><p>Running servers</p></body></html>"
    )
    assert page.title == "申请"
    assert problems_in(page.texts, "zh", []) == [
        "云主机 is out of support",
        "auth.login",
        "Lines：{'quantity': [1]}",
        "Running servers",
    ]
    # a full-width colon is Chinese punctuation too
    assert problems_in(page.texts, "en", []) == ["云主机 is out of support", "Lines：{'quantity': [1]}", "运行中"]
    assert problems_in(["省教育厅门户网站 on edu"], "en", ["省教育厅门户网站"]) == []


@ONE_DATABASE
def test_a_wave_that_does_not_fit_says_why_in_words(journey: Journey) -> None:
    """The check's reasons are messages: the English page reads sentences with department names
    and words, where the stored text had keys (``prov-education is short of cores 2``)."""
    demo_world(journey)
    app = create_app(runtime=journey.rt)
    ops = logged_in(app, "operator")
    ops.get("/language/en")
    html = ops.get("/ops/waves").get_data(as_text=True)
    wave_id = max(int(m) for m in re.findall(r'href="/ops/waves/(\d+)"', html))
    page = parse(ops.get(f"/ops/waves/{wave_id}").get_data(as_text=True))
    text = " ".join(page.texts)
    assert "jyt-gaokao-db01" in text and "(still in its server room), which stays behind" in text, text
    assert problems_in(page.texts, "en", data_strings(journey)) == []
