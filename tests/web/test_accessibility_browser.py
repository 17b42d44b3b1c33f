"""Every page every role reaches, in Chromium: accessible, and fitting the screen (issue 18).

The demo world of the language crawl (tests/web/crawl.py) is built; for each role the crawl's
link discovery (a logged-in test client, one page per URL pattern) lists the pages the role
reaches, and Chromium, logged in as that role in the Chinese UI, opens each of them (and, before
logging in, the login page):

* axe-core (vendored in tests/web/vendor/axe-core, injected into every page: nothing is fetched
  from the network) finds no serious or critical violation: every rule at 1280 px, the rules
  that depend on the width (``WIDTH_RULES``: contrast, scrolling regions, names) again at 390 px;
  on each role's first page once more with every menu (``<details>``) open;
* the page has a non-empty title and exactly one ``h1``; every form field has a label (a
  ``label``, ``aria-label``, ``aria-labelledby`` or ``title``); every table has header cells;
  every status mark (``.badge``, ``.state-*``) carries text, so colour is never the only signal;
* at 1280 and at 390 px nothing is wider than the window (``scrollWidth <= innerWidth``; the
  widest element is named), and no text in a table cell is broken one or two characters per line
  (a column squeezed narrower than a few characters; tables scroll in their wrapper instead);
* a full-page screenshot at each width goes to ``test-artifacts/screenshots/<role>/<page>-<width>.png``
  (tests/conftest.py names the folder at the end of the run).

Then every POST form met that asks for something required is sent with its fields empty (once
every role has seen every page: sending may change the data), and the page of errors that
answers gets the same checks at 1280 px (``form-<action>-1280.png``).

``KNOWN`` lists what is still found and may not be fixed here (each entry must still be found, so
the list only shrinks).  Never skipped: without /usr/bin/chromium the test fails.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from cloudmgr.runtime import Runtime
from tests.conftest import ONE_DATABASE
from tests.web.crawl import USERS, crawl, demo_world, url_pattern
from tests.web.helpers import PASSWORDS, Journey, logged_in
from tests.web.test_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium
from web import create_app

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)
# Who walks the pages before logging in (the login page).
ANONYMOUS = "anonymous"
BLOCKING_IMPACTS = ("serious", "critical")
# axe's rules whose answer depends on the window's width (what the page's CSS shows, its colours
# and what scrolls): run again at the narrower widths, the whole set at the first.
WIDTH_RULES = ("color-contrast", "scrollable-region-focusable", "label", "link-name", "button-name")

# axe's violations of the blocking impacts: rule, impact, help and the nodes' targets.
_AXE_RUN = """async ([impacts, rules]) => {
    const options = {resultTypes: ['violations']};
    if (rules) options.runOnly = {type: 'rule', values: rules};
    const result = await axe.run(document, options);
    return result.violations
        .filter(v => impacts.includes(v.impact))
        .map(v => ({id: v.id, impact: v.impact, help: v.help,
                    targets: v.nodes.slice(0, 5).map(n => n.target.join(' ')), count: v.nodes.length}));
}"""

_DESCRIBE = """const describe = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + Array.from(el.classList).map(c => '.' + c).join('')
        + (el.getAttribute('name') ? `[name=${el.getAttribute('name')}]` : '');"""

_NEXT_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"

# The page's structure: title, one h1, labelled fields, tables with headers, statuses in words.
_STRUCTURE = (
    """() => {
    """
    + _DESCRIBE
    + """
    const problems = [];
    if (!document.title.trim()) problems.push('no title');
    const h1 = document.querySelectorAll('h1').length;
    if (h1 !== 1) problems.push(`${h1} h1 elements`);
    for (const field of document.querySelectorAll('input, select, textarea')) {
        if (['hidden', 'submit', 'button', 'reset', 'image'].includes(field.type)) continue;
        const labelled = Array.from(field.labels || []).some(l => l.textContent.trim())
            || (field.getAttribute('aria-label') || '').trim()
            || (field.getAttribute('aria-labelledby') || '').split(/\\s+/)
                .some(id => id && document.getElementById(id) && document.getElementById(id).textContent.trim())
            || (field.getAttribute('title') || '').trim();
        if (!labelled) problems.push('field without a label: ' + describe(field));
    }
    for (const table of document.querySelectorAll('table')) {
        if (!table.querySelector('th')) problems.push('table without header cells: ' + describe(table));
    }
    for (const mark of document.querySelectorAll('.badge, [class^="state-"], [class*=" state-"]')) {
        if (!mark.textContent.trim() && !(mark.getAttribute('aria-label') || '').trim())
            problems.push('a status shown by colour alone: ' + describe(mark));
    }
    return problems;
}"""
)

# The page's width beyond the window, and the element reaching furthest right (the deepest one).
_OVERFLOW = (
    """() => {
    """
    + _DESCRIBE
    + """
    const scroll = document.documentElement.scrollWidth, width = window.innerWidth;
    if (scroll <= width) return null;
    let widest = null, right = 0;
    for (const el of document.body.querySelectorAll('*')) {
        const r = el.getBoundingClientRect();
        if (r.width > 0 && r.right >= right - 0.5) { right = Math.max(right, r.right); widest = el; }
    }
    const path = [];
    for (let el = widest; el && el !== document.body && path.length < 4; el = el.parentElement)
        path.unshift(describe(el));
    return {scroll: scroll, width: width, widest: path.join(' > '), right: Math.round(right),
            text: widest ? widest.textContent.trim().slice(0, 60) : ''};
}"""
)

# Text broken one or two characters per line in a table cell (a column squeezed narrower than a
# few characters: a code, a name or a number read down instead of across), the cell named.
_CRAMPED = (
    """() => {
    """
    + _DESCRIBE
    + """
    const problems = [];
    for (const cell of document.querySelectorAll('table td, table th')) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const text = node.textContent.replace(/\\s+/g, '');
            if (text.length < 4 || node.parentElement.closest('.visually-hidden')) continue;
            const range = document.createRange();
            range.selectNodeContents(node);
            const tops = new Set(Array.from(range.getClientRects())
                .filter(r => r.width > 0 && r.height > 0).map(r => Math.round(r.top)));
            if (tops.size >= 3 && text.length / tops.size < 3) {
                problems.push(`${describe(node.parentElement)} ${JSON.stringify(text.slice(0, 30))} `
                    + `in ${tops.size} lines, ${Math.round(cell.getBoundingClientRect().width)} px wide`);
                break;
            }
        }
        if (problems.length >= 3) break;
    }
    return problems;
}"""
)

_FILLABLE = """const fillable = e => ['INPUT', 'SELECT', 'TEXTAREA'].includes(e.tagName) && !e.disabled
        && !['hidden', 'submit', 'button', 'reset', 'image', 'checkbox', 'radio', 'file'].includes(e.type);"""

# The page's POST forms that ask for something required: sent empty, they must be refused with
# their errors shown (never acting, as a form of optional fields or buttons alone may).
_FORMS = (
    """() => {
    """
    + _FILLABLE
    + """
    return Array.from(document.forms)
        .map((form, index) => ({index: index, action: form.action,
                                method: (form.getAttribute('method') || '').toLowerCase(),
                                required: Array.from(form.elements).some(e => fillable(e) && e.required)}))
        .filter(f => f.method === 'post' && f.required);
}"""
)

# Send form ``index`` with its fields emptied, past the browser's own checks and confirmations.
_SEND_EMPTY = (
    """(index) => {
    """
    + _FILLABLE
    + """
    const form = document.forms[index];
    form.noValidate = true;
    form.removeAttribute('data-confirm');
    for (const e of Array.from(form.elements)) {
        e.removeAttribute('data-confirm');
        if (fillable(e)) { if (e.tagName === 'SELECT') e.selectedIndex = -1; else e.value = ''; }
    }
    form.requestSubmit(Array.from(form.elements).find(e => e.type === 'submit') || undefined);
}"""
)

# (role's user, URL pattern, a piece of the finding): still found, not fixable in this change.
KNOWN: tuple[tuple[str, str, str], ...] = ()


@pytest.fixture
def live_world_server(journey: Journey) -> Iterator[tuple[str, Runtime]]:
    """The demo world served on a free local port (threads: the browser opens pages in parallel)."""
    demo_world(journey)
    app = create_app(runtime=journey.rt)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", journey.rt
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def reachable_pages(rt: Runtime, user: str) -> list[str]:
    """The pages (final URLs, redirects followed) the crawl reaches as ``user`` in Chinese."""
    client = logged_in(create_app(runtime=rt), user)
    client.get("/language/zh")
    pages: list[str] = []
    for visit in crawl(client):
        if visit.page is None:
            continue
        final = visit.response.request
        url = final.path + (f"?{final.query_string.decode()}" if final.query_string else "")
        if url not in pages:
            pages.append(url)
    return pages


def screenshot_name(url: str) -> str:
    parts = urlsplit(url)
    name = re.sub(r"[^A-Za-z0-9]+", "-", parts.path).strip("-") or "home"
    if parts.query:
        name += "_" + re.sub(r"[^A-Za-z0-9]+", "-", parts.query).strip("-")
    return name


class Timings:
    """Seconds spent in each part of the walk (printed with the results: the run time is watched)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def of(self, part: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[part] += time.monotonic() - started

    def __str__(self) -> str:
        parts = sorted(self.seconds.items(), key=lambda item: -item[1])
        return ", ".join(f"{part} {seconds:.0f} s" for part, seconds in parts)


def check_page(page: Any, name: str, shots: Path, timings: Timings, widths: tuple[int, ...] = WIDTHS) -> list[str]:
    """What is wrong with the page open now, at each width; its screenshots are ``<name>-<width>.png``."""
    found: list[str] = list(page.evaluate(_STRUCTURE))
    for width in widths:
        if width != WIDTHS[0]:
            page.set_viewport_size({"width": width, "height": 844})
            page.evaluate(_NEXT_FRAMES)  # the page's resize handlers have run
        rules = None if width == WIDTHS[0] else WIDTH_RULES
        found.extend(axe_violations(page, timings, f"at {width} px", rules))
        found.extend(f"text broken per character at {width} px: {what}" for what in page.evaluate(_CRAMPED))
        overflow = page.evaluate(_OVERFLOW)
        if overflow:
            found.append(
                f"wider than the window at {width} px: {overflow['scroll']} > {overflow['width']} px, "
                f"widest {overflow['widest']} (right edge {overflow['right']} px) {overflow['text']!r}"
            )
        with timings.of("screenshots"):
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    return found


def axe_violations(page: Any, timings: Timings, where: str, rules: tuple[str, ...] | None = None) -> list[str]:
    with timings.of("axe"):
        violations = page.evaluate(_AXE_RUN, [list(BLOCKING_IMPACTS), list(rules) if rules else None])
    return [
        f"axe {v['id']} {where} ({v['impact']}, {v['count']} nodes): {v['help']} -- {'; '.join(v['targets'])}"
        for v in violations
    ]


@dataclass
class Walk:
    """One browser walking the console; what it finds, by (user, URL, what)."""

    browser: Any
    base: str
    screenshots: Path
    axe_source: str
    timings: Timings = field(default_factory=Timings)
    findings: list[tuple[str, str, str]] = field(default_factory=list)
    pages: int = 0

    @contextmanager
    def logged_in(self, user: str) -> Iterator[Any]:
        """A page of a new browser context logged in as ``user`` (Chinese; ``ANONYMOUS``: not
        logged in), axe in every page."""
        context = self.browser.new_context(viewport={"width": WIDTHS[0], "height": 900}, locale="zh-CN")
        # axe arrives with every page through an init script: the console's CSP (no inline
        # scripts) does not apply to it, and nothing is fetched.
        context.add_init_script(script=self.axe_source)
        page = context.new_page()
        page.set_default_timeout(20_000)
        try:
            if user == ANONYMOUS:
                yield page
                return
            page.goto(f"{self.base}/login")
            page.fill("#username", user)
            page.fill("#password", PASSWORDS[user])
            page.click("#submit")
            page.wait_for_load_state()
            assert "/login" not in page.url, f"{user} could not log in"
            yield page
        finally:
            context.close()

    def open(self, page: Any, user: str, url: str) -> bool:
        with self.timings.of("page loads"):
            response = page.goto(f"{self.base}{url}")
        self.pages += 1
        if response is None or response.status >= 400:
            self.findings.append((user, url, f"HTTP {response.status if response else None}"))
            return False
        return True

    def pages_of(self, user: str, urls: list[str]) -> list[FormToSend]:
        """Every page at each width, the header's menus open, and the forms worth sending empty."""
        shots = self.screenshots / user
        shutil.rmtree(shots, ignore_errors=True)  # this run's screenshots only
        shots.mkdir(parents=True)
        forms: dict[str, FormToSend] = {}
        with self.logged_in(user) as page:
            for url in urls:
                if not self.open(page, user, url):
                    continue
                found = check_page(page, screenshot_name(url), shots, self.timings)
                self.findings.extend((user, url, what) for what in found)
                for form in page.evaluate(_FORMS):
                    action = url_pattern(urlsplit(form["action"]).path)
                    forms.setdefault(action, FormToSend(url, form["index"], action))
            # The header's menus (closed <details>) are out of axe's sight on the pages above.
            if self.open(page, user, urls[0]):
                page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
                found = axe_violations(page, self.timings, "with every menu open")
                self.findings.extend((user, urls[0], what) for what in found)
        return list(forms.values())

    def forms_of(self, user: str, forms: list[FormToSend]) -> None:
        """Each form sent with its fields empty: the page that answers (its errors shown) is checked."""
        shots = self.screenshots / user
        with self.logged_in(user) as page:
            for form in forms:
                if not self.open(page, user, form.url):
                    continue
                where = f"{form.url} sent empty to {form.action}"
                with self.timings.of("form posts"), page.expect_navigation():
                    page.evaluate(_SEND_EMPTY, form.index)
                name = "form-" + screenshot_name(form.action.replace("<id>", "id"))
                found = check_page(page, name, shots, self.timings, widths=WIDTHS[:1])
                self.findings.extend((user, where, what) for what in found)


@dataclass
class FormToSend:
    url: str
    index: int
    action: str


def _known(user: str, url: str, what: str) -> tuple[str, str, str] | None:
    pattern = url_pattern(urlsplit(url).path)
    return next((k for k in KNOWN if k[0] == user and k[1] == pattern and k[2] in what), None)


@ONE_DATABASE
def test_every_page_is_accessible_and_fits_1280_and_390_px(
    live_world_server: tuple[str, Runtime], artifacts_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    base, rt = live_world_server
    screenshots = artifacts_dir / "screenshots"
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        walk = Walk(browser, base, screenshots, AXE.read_text(encoding="utf-8"))
        try:
            forms = {ANONYMOUS: walk.pages_of(ANONYMOUS, ["/login"])}
            for user in USERS:
                with walk.timings.of("crawl"):
                    urls = reachable_pages(rt, user)
                assert len(urls) > 3, (user, urls)
                forms[user] = walk.pages_of(user, urls)
            # Sending forms changes the data: only once every role has seen every page.
            for user in (ANONYMOUS, *USERS):
                walk.forms_of(user, forms[user])
        finally:
            browser.close()
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\naccessibility: {walk.pages} pages in {elapsed:.0f} s ({walk.timings}); screenshots in {screenshots}")
    findings = walk.findings
    new = [f"{user} {url}: {what}" for user, url, what in findings if _known(user, url, what) is None]
    seen = {_known(user, url, what) for user, url, what in findings} - {None}
    fixed = [str(k) for k in KNOWN if k not in seen]
    report = "found:\n" + "\n".join(new) + "\nno longer found (remove from KNOWN):\n" + "\n".join(fixed)
    assert not new and not fixed, report


_BROKEN_PAGE = """<!doctype html><html lang="zh-CN"><head><title>坏页面</title></head><body><main>
<h1>一</h1><h1>二</h1>
<p style="color:#bbb;background:#fff">浅灰色的字</p>
<form method="post"><input type="text" name="nameless"></form>
<table><tr><td>没有表头</td></tr></table>
<span class="state state-bad"></span>
<div style="width:2000px">很宽</div>
<table style="width:1px"><tr><th>代码</th></tr>
<tr><td><code style="overflow-wrap:anywhere">prov-education--education</code></td></tr></table>
</main></body></html>"""


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    """Each check fails a page that has its fault (so an empty report means something)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTHS[0], "height": 900})
            page.set_content(_BROKEN_PAGE)
            page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
            found = "\n".join(check_page(page, "broken", tmp_path, Timings()))
        finally:
            browser.close()
    for expected in (
        "axe color-contrast at 1280 px (serious",
        "axe label at 1280 px (critical",
        "axe color-contrast at 390 px",
        "2 h1 elements",
        "field without a label: input[name=nameless]",
        "table without header cells: table",
        "a status shown by colour alone: span.state.state-bad",
        "wider than the window at 1280 px: 2008 > 1280 px, widest main > div",
        "wider than the window at 390 px",
        'text broken per character at 1280 px: code "prov-education--education"',
        "text broken per character at 390 px",
    ):
        assert expected in found, (expected, found)
    assert (tmp_path / "broken-1280.png").exists() and (tmp_path / "broken-390.png").exists()
