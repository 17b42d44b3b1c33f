"""The messages behind the English texts a row stores (a fault, a state reason).

A row's text columns keep English: the API, the CLI, the logs and the audit read them as they
are.  A row that keeps messages has a JSON column ``messages``, ``{english text: {"msgid",
"params"}}``: the pages look a text up there and say it in the reader's language
(``web.common.messages.stored_text``).  A text without an entry (written before its sentence
was a message, a person's or a cloud's own words) is shown as it is.  Keyed by the text, so a
row with several texts (a reason and a fault, a request's events and servers) needs one column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from cloudmgr.messages import Message

#: How long a stored fault or reason may be (the columns are Text).
MAX_TEXT = 2000


class KeepsMessages(Protocol):
    messages: Any  # dict[str, Any] (a JSON column)


def _json_safe(value: object) -> object:
    """A message's parameters as JSON keeps them: a value of another type as its text."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def keep_message(row: KeepsMessages, text: str, sentence: Message) -> None:
    """Remember on ``row`` that ``text`` (stored on it or on a row it owns) is ``sentence`` in English."""
    row.messages = {**(row.messages or {}), text: _json_safe(sentence.as_dict())}


def stored_text(row: KeepsMessages, value: str | Message | None, limit: int = MAX_TEXT) -> str | None:
    """What to store for ``value``: its English text (at most ``limit`` characters); a
    Message's message is kept on ``row`` under that text."""
    if value is None:
        return None
    text = str(value)[:limit]
    if isinstance(value, Message):
        keep_message(row, text, value)
    return text


def kept_message(row: object, text: str | None) -> Message | None:
    """The message ``row`` kept for ``text``, or None (no text, no entry, or a row that keeps none)."""
    kept = getattr(row, "messages", None)
    entry = kept.get(text) if text and isinstance(kept, Mapping) else None
    if not isinstance(entry, Mapping) or not isinstance(entry.get("msgid"), str):
        return None
    params = entry.get("params")
    return Message(entry["msgid"], params if isinstance(params, Mapping) else {})
