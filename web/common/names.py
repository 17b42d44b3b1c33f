"""Names where people expect names (issue 18): a department key shown in a table becomes the
department's name in the page's language (the key stays in the markup's data attributes)."""

from __future__ import annotations

from flask import Flask, g

from cloudmgr.organisation import services as org
from web.core.i18n import current_locale
from web.core.uow import request_uow


def department_label(key: object) -> str:
    """The department's name for its key; an unknown key is shown as it is."""
    names: dict[str, str] | None = g.get("department_names")
    if names is None:
        locale = current_locale()
        names = {dept.key: dept.display_name(locale) for dept in org.list_departments(request_uow().session)}
        g.department_names = names
    return names.get(str(key), str(key))


def init_app(app: Flask) -> None:
    app.add_template_filter(department_label, "department_label")
