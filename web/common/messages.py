"""Showing the domain's sentences (:class:`cloudmgr.messages.Message`) in the page's language.

``{{ reason|message }}`` takes a Message, or what one was stored as (``{"msgid", "params"}``,
maybe beside an English ``detail`` or ``text``): it answers the msgid translated, its
parameters filled in.  A stored row without a msgid (written before its sentence had one)
shows its English text as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext
from markupsafe import Markup, escape

from cloudmgr.messages import Message

FALLBACK_KEYS = ("detail", "text", "reason", "message")


def render(msgid: str, params: Mapping[str, Any] | None = None) -> str:
    """``msgid`` translated, with ``params`` filled in (a parameter that is a message itself is
    rendered first)."""
    if not params:
        return str(gettext(msgid))
    values = {k: render_message(v) if _is_message(v) else v for k, v in params.items()}
    text: str = gettext(msgid, **values)
    return text


def _is_message(value: object) -> bool:
    return isinstance(value, Message) or (isinstance(value, Mapping) and isinstance(value.get("msgid"), str))


def render_message(value: object) -> str:
    """A Message, a stored message dict, or plain text, in the page's language."""
    if isinstance(value, Message):
        return render(value.msgid, value.params)
    if isinstance(value, Mapping):
        msgid = value.get("msgid")
        if isinstance(msgid, str) and msgid:
            params = value.get("params")
            try:
                return render(msgid, params if isinstance(params, Mapping) else None)
            except (KeyError, TypeError, ValueError):
                pass  # a stored row whose parameters no longer fit: its English text below
        for key in FALLBACK_KEYS:
            text = value.get(key)
            if isinstance(text, str):
                return text
        return ""
    return "" if value is None else str(value)


def field_error_items(field: Any, where: str | None = None) -> list[tuple[str, str, str]]:
    """(anchor id, label, message) of each error of a form field.  A list of sub-forms (a
    purchase's lines) gives each row's field errors under "Lines, row 2 · Quantity", never the
    nested dict WTForms keeps for it (which a page showed as ``{'quantity': [...]}``)."""
    label = where or str(field.label.text)
    errors = field.errors if isinstance(field.errors, list) else []
    # A message may be a lazy string; a list of sub-forms keeps a dict or a list per row.
    items = [(str(field.id), label, str(message)) for message in errors if not isinstance(message, Mapping | list)]
    entries = getattr(field, "entries", None)
    if entries is not None:  # FieldList
        for number, entry in enumerate(entries, 1):
            items += field_error_items(entry, gettext("%(list)s, row %(n)d", list=label, n=number))
    elif getattr(field, "form", None) is not None:  # FormField
        for child in field.form:
            child_label = str(child.label.text)
            items += field_error_items(
                child, gettext("%(row)s · %(field)s", row=label, field=child_label) if where else child_label
            )
    return items


def wave_failure(wave: Any) -> list[Message]:
    """Why a wave's last check failed, as messages, when its state reason is that check's
    English text; [] otherwise (the reason is shown as written)."""
    from cloudmgr.programme.services import fit_failure_messages, fit_failure_text

    result = wave.check_result
    if not result or result.get("fits") or not wave.state_reason:
        return []
    if fit_failure_text(result)[:1000] != wave.state_reason:
        return []
    from web.core.i18n import current_locale

    locale = current_locale()
    names = {m.system.department.key: m.system.department.display_name(locale) for m in wave.members}
    return [
        Message(m.msgid, {**m.params, "department": names.get(m.params["department"], m.params["department"])})
        if "department" in m.params
        else m
        for m in fit_failure_messages(result)
    ]


def move_text(move: Any, text: str | None) -> str:
    """A text a move stored (its state reason, an event's reason, a step's error, a drain
    child's reason) in the page's language when the move kept its message
    (:func:`cloudmgr.moves.records.keep_message`); a text without one (an older row, a
    cloud's own words) as it is.  A failed step's name reads as the step's label."""
    from cloudmgr.moves.states import MESSAGES_KEY, STEP_FAILED, STEP_LABELS

    if not text:
        return ""
    kept = (move.resources or {}).get(MESSAGES_KEY, {})
    stored = kept.get(text) if isinstance(kept, Mapping) else None
    if not isinstance(stored, Mapping):
        return text
    params = stored.get("params")
    if stored.get("msgid") == STEP_FAILED and isinstance(params, Mapping):
        step = params.get("step")
        if isinstance(step, str) and step in STEP_LABELS:
            stored = {**stored, "params": {**params, "step": Message(STEP_LABELS[step])}}
    return render_message({**stored, "text": text})


def kept_text(row: Any, text: str | None) -> str:
    """A text the system stored (a request's state reason, an event's reason, a server's or a
    volume's fault …) in the page's language when ``row`` (the request, the volume …) kept its
    message (:mod:`cloudmgr.stored_messages`); a text without one (an older row, a person's or
    a cloud's own words) as it is."""
    from cloudmgr.stored_messages import kept_message

    if not text:
        return ""
    kept = kept_message(row, text)
    if kept is None:
        return text
    return render_message({**kept.as_dict(), "text": text})


def code_list(names: list[str]) -> Markup:
    """Identifiers (file columns, keywords) in a sentence: each in <code>, joined the page's way."""
    separator = gettext(", ")
    return escape(separator).join(Markup("<code>%s</code>") % name for name in names)
