"""Every dedicated-line page (issue 19), with lines in every state, as department staff and as an operator,
in Chinese and in English: a title, one h1, a label on every field, header cells in every table, and
nothing in the other language (the language crawl's checks, with lines in every state)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from flask import Flask

from cloudmgr.db import utcnow
from cloudmgr.inventory.models import ServerRoom
from cloudmgr.lines.models import LineState, LineTarget
from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.inventory.helpers import make_system
from tests.lines.helpers import make_line
from tests.web.crawl import parse
from tests.web.helpers import Journey, logged_in
from tests.web.test_language_crawl import data_strings, problems_in, untranslated_messages
from web import create_app

# What people typed that the crawl's name-like columns do not hold: the lines' sites and townships.
SITES = ("省教育厅机房", "省政务云", "迁安市人社局", "唐山市人社局", "杨店子镇")


class _Structure(HTMLParser):
    """h1 count, fields without a label, tables without header cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.h1 = 0
        self.labels: set[str] = set()
        self.fields: list[str] = []
        self.tables = 0
        self.headed = 0
        self._in_table = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "h1":
            self.h1 += 1
        elif tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            if not (a.get("aria-label") or a.get("aria-labelledby") or a.get("title")):
                self.fields.append(str(a.get("id") or a.get("name")))
        elif tag == "table":
            self.tables += 1
        elif tag == "th":
            self.headed += 1

    def unlabelled(self) -> list[str]:
        return [f for f in self.fields if f not in self.labels]


def _world(rt: Runtime) -> dict[str, int]:
    with rt.db.unit_of_work() as uow:
        secret = make_system(uow.session, "secret01", classification="classified", network="intranet", state="intranet")
        moved = make_system(uow.session, "moved01", state="on_cloud")
        room = uow.session.query(ServerRoom).filter_by(code="prov-education-room-1").one()
        ids = {
            "secret": make_line(uow.session, "L-SEC", systems=[secret], a_county="长安区").id,
            "planned": make_line(uow.session, "L-PLAN", state=LineState.PLANNED, target=LineTarget.EXTRANET,
                                 cutover_date=utcnow().date(), planned_by="operator").id,
            "done": make_line(uow.session, "L-DONE", state=LineState.CUT_OVER, target=LineTarget.EXTRANET,
                              b_site="迁安市人社局", b_city="唐山市", b_county="迁安市", b_township="杨店子镇",
                              cut_over_at=utcnow()).id,
            "retire": make_line(uow.session, "L-RET", systems=[moved], public_facing=True).id,
            "other": make_line(uow.session, "L-HRSS", dept_key="ts-hrss", b_site="唐山市人社局", b_city="唐山市").id,
        }  # fmt: skip
        room.closed_at = utcnow()
    return ids


def _pages(role: str, ids: dict[str, int]) -> list[str]:
    if role == "zhangwei":
        return ["/portal/lines", f"/portal/lines/{ids['secret']}", f"/portal/lines/{ids['done']}",
                "/portal/lines/new", "/portal/lines/import", "/portal/lines?carrier=telecom&state=planned"]  # fmt: skip
    return ["/ops/lines", *(f"/ops/lines/{ids[k]}" for k in ("secret", "planned", "done", "retire", "other")),
            "/ops/lines/batch", "/ops/lines/coverage", "/ops/lines?target=intranet&city=唐山市"]  # fmt: skip


@ONE_DATABASE
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_lines_page_speaks_its_language_and_is_well_formed(journey: Journey, lang: str) -> None:
    ids = _world(journey.rt)
    app: Flask = create_app(runtime=journey.rt)
    # as the crawl does, a msgid the catalog lacks is test_i18n's to report, not this test's
    data = sorted({*data_strings(journey), *SITES, *untranslated_messages()}, key=len, reverse=True)
    found: list[str] = []
    for user in ("zhangwei", "operator"):
        client = logged_in(app, user)
        client.get(f"/language/{lang}")
        for url in _pages(user, ids):
            response = client.get(url)
            assert response.status_code == 200, (user, url, response.status_code)
            html = response.get_data(as_text=True)
            page = parse(html)
            structure = _Structure()
            structure.feed(html)
            assert page.title.strip(), url
            assert structure.h1 == 1, (url, structure.h1)
            assert not structure.unlabelled(), (url, structure.unlabelled())
            assert structure.headed >= structure.tables, url
            # the page's own text: the menu is every page's, checked by the crawl
            main = parse(html[html.index("<main") : html.index("</main>")])
            found += [f"{lang} {user} {url}: {text}" for text in problems_in([page.title, *main.texts], lang, data)]
    assert not found, "\n".join(found)
    if lang == "zh":  # the Chinese words of the register, once the catalog has them
        client = logged_in(app, "operator")
        client.get("/language/zh")
        html = client.get("/ops/lines").get_data(as_text=True)
        assert re.search(r"<h1>\s*各部门专线\s*</h1>", html) and "电子政务内网" in html and "已割接" in html


def test_the_lines_audit_reasons_read_in_the_pages_language(journey: Journey) -> None:
    """Planning and recording a cut-over leave English audit reasons with their messages: the audit
    log says them in Chinese in the Chinese console, in English in the English one."""
    from cloudmgr.lines.services import plan_line, record_cutover
    from cloudmgr.organisation.actor import Actor
    from cloudmgr.organisation.models import Role

    operator = Actor(username="operator", role=Role.OPERATOR)
    with journey.rt.db.unit_of_work() as uow:
        make_line(uow.session, "L-AUDIT", public_facing=True)
        plan_line(uow.session, "L-AUDIT", LineTarget.INTERNET, actor=operator, entry_point="web")
        record_cutover(uow.session, "L-AUDIT", actor=operator, entry_point="web")
    app: Flask = create_app(runtime=journey.rt)
    client = logged_in(app, "operator")
    client.get("/language/zh")
    chinese = client.get("/ops/audit").get_data(as_text=True)
    assert "规划割接至互联网（web）" in chinese and "已割接（web）" in chinese
    assert "planned onto Internet (web)" not in chinese
    client.get("/language/en")
    english = client.get("/ops/audit").get_data(as_text=True)
    assert "planned onto Internet (web)" in english and "Cut over onto its target (web)" in english
