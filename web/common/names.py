"""Names where people expect names (issue 18): a department key shown in a table becomes the
department's name in the page's language (the key stays in the markup's data attributes), and
a project's id on a cloud is shown with the name of the department it belongs to."""

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


def project_department(project_id: object) -> str:
    """The name of the department whose project on a cloud has this id ("" when none has)."""
    owners: dict[str, str] | None = g.get("project_departments")
    if owners is None:
        locale = current_locale()
        rows = org.project_owners(request_uow().session)
        owners = {project_id: dept.display_name(locale) for project_id, dept in rows}
        g.project_departments = owners
    return owners.get(str(project_id), "")


def init_app(app: Flask) -> None:
    app.add_template_filter(department_label, "department_label")
    app.add_template_filter(project_department, "project_department")
