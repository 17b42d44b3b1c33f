"""防火墙模板 / Firewall templates: operators list, create, edit and delete (if unused) the templates
departments choose from (issue 16).  A refused rule is explained under the rules field, naming
the rule by its line, in the user's language."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import StringField, SubmitField, TextAreaField

from cloudmgr.firewall import services as firewall
from cloudmgr.firewall.errors import (
    RuleInvalid,
    TemplateInUse,
    TemplateInvalid,
    TemplateNameTaken,
    TemplateNotFound,
    TemplateProblem,
)
from cloudmgr.firewall.services import parse_rule_lines
from web.common.display import rule_problem_text
from web.common.forms import SafeForm
from web.common.selfservice_forms import ButtonForm
from web.core.security import current_actor
from web.core.uow import request_uow, restart_request_uow
from web.operations.blueprint import bp

TEMPLATE_ID = "<int(max=2147483647):template_id>"


class TemplateForm(SafeForm):
    # The service decides what a valid template is (one rule for the pages and the API).
    name = StringField(_l("Name"), render_kw={"maxlength": firewall.NAME_MAX, "autocomplete": "off"})
    description_zh = TextAreaField(_l("Description (Chinese)"), render_kw={"rows": 2})
    description_en = TextAreaField(_l("Description (English)"), render_kw={"rows": 2})
    rules = TextAreaField(
        _l("Rules, one a line"),
        render_kw={"rows": 8, "spellcheck": "false", "autocomplete": "off", "autocapitalize": "none"},
    )
    save = SubmitField(_l("Save the template"))


def template_problem_text(problem: TemplateProblem) -> str:
    text: str
    if problem is TemplateProblem.NAME_EMPTY:
        text = _("Give the template a name.")
    elif problem is TemplateProblem.NAME_TOO_LONG:
        text = _("At most %(max)d characters.", max=firewall.NAME_MAX)
    elif problem is TemplateProblem.NAME_SHAPE:
        text = _("Lower-case letters, digits and '-', starting with a letter or digit.")
    elif problem is TemplateProblem.NAME_TAKEN:
        text = _("A template with this name exists already.")
    elif problem is TemplateProblem.DESCRIPTION_TOO_LONG:
        text = _("At most %(max)d characters, no control characters.", max=firewall.DESCRIPTION_MAX)
    else:
        text = _("A template has at least one rule.")
    return text


def _list_page(form: TemplateForm, status: int = 200) -> ResponseReturnValue:
    templates = firewall.list_templates(request_uow().session)
    return (
        render_template("operations/firewall.html", templates=templates, form=form, delete_form=ButtonForm()),
        status,
    )


def _edit_page(template: firewall.TemplateInfo, form: TemplateForm, status: int = 200) -> ResponseReturnValue:
    return render_template("operations/firewall_edit.html", template=template, form=form), status


def _save(form: TemplateForm, template_id: int | None) -> firewall.TemplateInfo:
    """Parse the form and ask the service; refusals go under their fields (and are raised on)."""
    session = request_uow().session
    try:
        rules = parse_rule_lines(form.rules.data or "")
        name = form.name.data or ""
        description_zh = form.description_zh.data or ""
        description_en = form.description_en.data or ""
        actor = current_actor()
        if template_id is None:
            return firewall.create_template(
                session, actor, name=name, description_zh=description_zh, description_en=description_en, rules=rules
            )
        return firewall.update_template(
            session,
            actor,
            template_id,
            name=name,
            description_zh=description_zh,
            description_en=description_en,
            rules=rules,
        )
    except RuleInvalid as exc:
        restart_request_uow()
        form.rules.errors = [*form.rules.errors, rule_problem_text(exc)]
        raise
    except (TemplateInvalid, TemplateNameTaken) as exc:
        restart_request_uow()
        target = {"description_zh": form.description_zh, "description_en": form.description_en}.get(
            exc.field, form.rules if exc.field == "rules" else form.name
        )
        target.errors = [*target.errors, template_problem_text(exc.problem)]
        raise


@bp.get("/firewall")
def firewall_templates() -> ResponseReturnValue:
    return _list_page(TemplateForm())


@bp.post("/firewall")
def create_firewall_template() -> ResponseReturnValue:
    form = TemplateForm()
    if not form.validate_on_submit():
        return _list_page(form, 400)
    try:
        created = _save(form, None)
    except (RuleInvalid, TemplateInvalid, TemplateNameTaken) as exc:
        return _list_page(form, exc.http_status)
    flash(_("Firewall template “%(name)s” created.", name=created.name), "success")
    return redirect(url_for("ops.firewall_templates"))


def _template_or_404(template_id: int) -> firewall.TemplateInfo:
    try:
        return firewall.get_template(request_uow().session, template_id)
    except TemplateNotFound:
        abort(404)


@bp.get(f"/firewall/{TEMPLATE_ID}")
def firewall_template(template_id: int) -> ResponseReturnValue:
    template = _template_or_404(template_id)
    form = TemplateForm(
        formdata=None,
        data={
            "name": template.name,
            "description_zh": template.description_zh,
            "description_en": template.description_en,
            "rules": "\n".join(rule.as_line() for rule in template.rules),
        },
    )
    return _edit_page(template, form)


@bp.post(f"/firewall/{TEMPLATE_ID}")
def update_firewall_template(template_id: int) -> ResponseReturnValue:
    template = _template_or_404(template_id)
    form = TemplateForm()
    if not form.validate_on_submit():
        return _edit_page(template, form, 400)
    try:
        updated = _save(form, template_id)
    except (RuleInvalid, TemplateInvalid, TemplateNameTaken) as exc:
        return _edit_page(_template_or_404(template_id), form, exc.http_status)
    flash(_("Firewall template “%(name)s” saved.", name=updated.name), "success")
    return redirect(url_for("ops.firewall_templates"))


@bp.post(f"/firewall/{TEMPLATE_ID}/delete")
def delete_firewall_template(template_id: int) -> ResponseReturnValue:
    form = ButtonForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        firewall.delete_template(request_uow().session, current_actor(), template_id)
    except TemplateNotFound:
        abort(404)
    except TemplateInUse as exc:
        restart_request_uow()
        flash(
            _(
                "“%(name)s” is used by %(count)d request(s) and cannot be deleted.",
                name=exc.name,
                count=exc.requests,
            ),
            "error",
        )
        return redirect(url_for("ops.firewall_templates"))
    flash(_("Firewall template deleted."), "success")
    return redirect(url_for("ops.firewall_templates"))
