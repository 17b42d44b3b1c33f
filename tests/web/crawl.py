"""Walking the console as a logged-in user, and the demo world worth walking (shared by the
language crawl, tests/web/test_language_crawl.py, and the accessibility crawl in Chromium,
tests/web/test_accessibility_browser.py).

``crawl`` starts at ``/`` with a logged-in Flask test client and follows every same-origin link it
finds (GET; not logout, the language switch, downloads, the API or static files), one page per URL
pattern (``/portal/requests/7`` and ``/portal/requests/8`` are one pattern), at most ``MAX_PAGES``.
``parse`` reads a page's visible text (outside code-like elements), title, forms and links.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.programme import services as waves
from cloudmgr.purchases import services as purchases
from cloudmgr.purchases.findings import context_for
from cloudmgr.purchases.services import ItemInput, PurchaseForm
from tests.web.helpers import Journey

ROOT = Path(__file__).resolve().parents[2]
MAX_PAGES = 150
# One demo login of each role.
USERS = ("zhangwei", "lina", "operator", "finance", "admin")
AS_OPERATOR = Actor(username="operator", role=Role.OPERATOR)

# --- a page's text, title, forms and links -------------------------------------------------------

IGNORED_TAGS = frozenset({"code", "kbd", "pre", "samp", "script", "style", "textarea", "title"})
IGNORED_CLASSES = frozenset({"mono", "code"})
VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)


@dataclass
class PageText:
    """The visible text runs, the title and the forms of one page."""

    texts: list[str] = field(default_factory=list)
    title: str = ""
    forms: list[dict[str, object]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = PageText()
        self._stack: list[tuple[str, bool]] = []  # (tag, ignored)
        self._in_title = False
        self._form: dict[str, object] | None = None

    @property
    def _ignored(self) -> bool:
        return bool(self._stack) and self._stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "a" and attr.get("href"):
            self.page.links.append(attr["href"])
        if tag == "form":
            self._form = {"action": attr.get("action", ""), "method": attr.get("method", "get").lower(), "fields": []}
            self.page.forms.append(self._form)
        if self._form is not None and tag in ("input", "select", "textarea"):
            fields = self._form["fields"]
            assert isinstance(fields, list)
            fields.append((tag, attr.get("type", "text").lower(), attr.get("name", ""), attr.get("value", "")))
        if tag == "title":
            self._in_title = True
        if tag in VOID_TAGS:
            return
        classes = set(attr.get("class", "").split())
        ignored = self._ignored or tag in IGNORED_TAGS or bool(classes & IGNORED_CLASSES)
        self._stack.append((tag, ignored))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        if tag == "title":
            self._in_title = False
        if tag in VOID_TAGS:
            return
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                break

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.page.title += data
        text = " ".join(data.split())
        if text and not self._ignored:
            self.page.texts.append(text)


def parse(html: str) -> PageText:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page


# --- the walk ------------------------------------------------------------------------------------

SKIPPED_PATHS = re.compile(
    r"^/(logout|language/|static/|api/|metrics|healthz|readyz)|\.(csv|json|xlsx|yml|txt)$|export|download"
)


def url_pattern(path: str) -> str:
    """The path with its numeric ids as ``<id>``: one page of each pattern is walked."""
    return re.sub(r"/\d+(?=/|$)", "/<id>", path)


def same_origin(href: str, base: str) -> str | None:
    """The path (and query) of ``href`` seen from ``base`` when the crawl follows it, else None."""
    url = urlsplit(urljoin(base, href))
    if url.scheme not in ("http", "") or url.netloc not in ("", "localhost"):
        return None
    if not url.path.startswith("/") or SKIPPED_PATHS.search(url.path):
        return None
    return url.path + (f"?{url.query}" if url.query else "")


@dataclass
class Visit:
    """One page the crawl fetched (redirects followed); ``page`` is parsed when it is HTML below 400."""

    url: str
    response: TestResponse
    page: PageText | None


def crawl(client: FlaskClient, *, start: str = "/", max_pages: int = MAX_PAGES) -> Iterator[Visit]:
    """Every page of a distinct URL pattern reachable from ``start`` by links, breadth first."""
    seen_patterns: set[str] = set()
    queue: deque[str] = deque([start])
    visited = 0
    while queue and visited < max_pages:
        url = queue.popleft()
        pattern = url_pattern(urlsplit(url).path)
        if pattern in seen_patterns:
            continue
        seen_patterns.add(pattern)
        response = client.get(url, follow_redirects=True)
        visited += 1
        page = None
        if response.content_type.startswith("text/html") and response.status_code < 400:
            page = parse(response.get_data(as_text=True))
            for href in page.links:
                target = same_origin(href, url)
                if target is not None and url_pattern(urlsplit(target).path) not in seen_patterns:
                    queue.append(target)
        yield Visit(url, response, page)


# --- the demo: a province mid-programme --------------------------------------------------------


def demo_world(journey: Journey) -> dict[str, int]:
    """The journey state plus the legacy inventory, a provisioned request, a draft, a waiting
    request, a purchase finance sees with its findings, a wave that fits and one that does not, and
    the demo's dedicated lines (in service, planned, cut over, retired) with renewals waiting for
    finance."""
    from cloudmgr.inventory.importer import import_inventory
    from cloudmgr.lines.demo import seed_demo_lines

    with journey.rt.db.unit_of_work() as uow:
        import_inventory(
            uow.session,
            (ROOT / "inventory" / "legacy.yml").read_text(encoding="utf-8"),
            filename="legacy.yml",
            actor=AS_OPERATOR,
        )
    request_id = journey.active_request(count=1, prefix="crawl")
    journey.submit(count=1, submit=False, prefix="draft")
    journey.submit(count=1, prefix="waiting")
    actor = journey.actor("zhangwei")
    with journey.rt.db.unit_of_work() as uow:
        purchase = purchases.create_purchase(
            uow.session,
            actor,
            PurchaseForm(
                title="机房服务器采购",
                category="server",
                amount_yuan=Decimal("20000"),
                application_system="门户网站",
                justification="自建机房扩容",
                items=[
                    ItemInput(
                        description="机架式服务器",
                        quantity=4,
                        unit_price=Decimal("5000"),
                        vcpus=32,
                        ram_gb=256,
                        disk_gb=2000,
                    )
                ],
            ),
        )
        purchase_id = purchase.id
    with journey.rt.db.unit_of_work() as uow:  # finance sees its findings
        purchases.submit_purchase(uow.session, actor, purchase_id, context=context_for(journey.rt.settings))
    journey.drain()
    with journey.rt.db.unit_of_work() as uow:
        wave = waves.create_wave(
            uow.session,
            name="教育厅第一批",
            cloud_key="education",
            zone="internet",
            window_start=date.today() + timedelta(days=7),
            window_end=date.today() + timedelta(days=8),
            actor=AS_OPERATOR,
        )
        wave_id = wave.id
    with journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, wave_id, ["jyt-portal-web01", "jyt-portal-web02"], actor=AS_OPERATOR)
    waves.check_wave(journey.rt.db, journey.rt.providers, wave_id, actor=AS_OPERATOR)
    with journey.rt.db.unit_of_work() as uow:  # a wave that does not fit: too big, a dependency left behind
        failing = waves.create_wave(
            uow.session,
            name="教育厅第二批",
            cloud_key="education",
            zone="internet",
            window_start=date.today() + timedelta(days=14),
            window_end=date.today() + timedelta(days=15),
            actor=AS_OPERATOR,
        ).id
    with journey.rt.db.unit_of_work() as uow:
        waves.add_systems(uow.session, failing, ["jyt-gaokao-web01"], actor=AS_OPERATOR)
    result = waves.check_wave(journey.rt.db, journey.rt.providers, failing, actor=AS_OPERATOR)
    assert not result["fits"] and result["warnings"], result
    with journey.rt.db.unit_of_work() as uow:  # the lines' pages, the finance review and the programme, with data
        assert seed_demo_lines(uow.session, actor=AS_OPERATOR) > 0
    return {"request": request_id, "purchase": purchase_id, "wave": wave_id}
