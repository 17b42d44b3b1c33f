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
    RuleProblem,
    TemplateInUse,
    TemplateInvalid,
    TemplateNameTaken,
    TemplateNotFound,
    TemplateProblem,
)
from cloudmgr.firewall.services import MAX_RULES, PORT_MAX, PORT_MIN, parse_rule_lines
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


def rule_problem_text(exc: RuleInvalid) -> str:
    """What an operator reads under the rules (English in the API: ``exc.message``)."""
    problem = exc.problem
    text: str
    if problem is RuleProblem.LINE_SHAPE:
        text = _("Write a rule as: direction protocol [port or from-to] remote, e.g. ingress tcp 443 0.0.0.0/0.")
    elif problem is RuleProblem.DIRECTION_UNKNOWN:
        text = _("The direction must be ingress or egress.")
    elif problem is RuleProblem.PROTOCOL_UNKNOWN:
        text = _("The protocol must be tcp, udp, icmp or any.")
    elif problem is RuleProblem.PORT_NOT_A_NUMBER:
        text = _("The port must be a whole number.")
    elif problem is RuleProblem.PORT_OUT_OF_RANGE:
        text = _("%(value)s is not a port: ports are %(min)d to %(max)d.", value=exc.value, min=PORT_MIN, max=PORT_MAX)
    elif problem is RuleProblem.PORT_ORDER:
        text = _("The port range %(value)s ends before it starts.", value=exc.value)
    elif problem is RuleProblem.PORTS_REQUIRED:
        text = _("tcp and udp rules need a port or a port range.")
    elif problem is RuleProblem.PORTS_NOT_ALLOWED:
        text = _("icmp and any rules have no ports: leave the port out.")
    elif problem is RuleProblem.REMOTE_MISSING:
        text = _("Give the remote: a CIDR, department_admin_network or department_only.")
    elif problem is RuleProblem.CIDR_HOST_BITS:
        text = _(
            "%(value)s has host bits set: write the network address (e.g. 10.20.0.0/16), or /32 for one address.",
            value=exc.value,
        )
    elif problem is RuleProblem.CIDR_INVALID:
        text = _("%(value)s is not an IPv4 or IPv6 network (e.g. 10.20.0.0/16 or 2001:db8::/32).", value=exc.value)
    elif problem is RuleProblem.TOO_MANY_RULES:
        text = _("At most %(max)d rules.", max=MAX_RULES)
    elif problem is RuleProblem.DUPLICATE_RULE:
        text = _("The same rule is listed twice.")
    else:
        text = _("Each rule is an object with direction, protocol, port_min, port_max and remote.")
    if exc.rule_index is None:
        return text
    numbered: str = _("Rule %(number)d: %(problem)s", number=exc.rule_index + 1, problem=text)
    return numbered


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
