"""Helpers of the web tests (imported by the tests and by conftest)."""

from __future__ import annotations

import re

from cloudmgr.demo import DEMO_LOGINS, DemoLogin

_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')

# Where each role lands after logging in.
HOME_PATHS = {
    "dept_staff": "/portal/",
    "dept_head": "/portal/",
    "operator": "/ops/",
    "finance": "/finance/",
    "admin": "/admin/",
}


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def demo_login(role: str) -> DemoLogin:
    return next(login for login in DEMO_LOGINS if login.role.value == role)
