"""Sentences the domain writes for people (reasons, findings, checks), in any language.

The domain does not know the reader's language.  A sentence it produces is a :class:`Message`:
an English msgid with ``%(name)s`` placeholders, marked for extraction with :func:`N_`, and its
parameters (data: host names, numbers, other names).  The web renders it in the page's
language (``web.common.messages.render``: ``gettext(msgid) % params``); the CLI, the API and
the logs read the English ``str(message)``.  Stored as ``{"msgid": …, "params": {…}}``
beside the English text, so a row written before a sentence had a msgid still shows its
English text::

    Message(N_("%(os)s is out of support"), {"os": "CentOS 6.10"})

``pybabel extract`` reads ``N_`` in ``cloudmgr/`` (see ``web/core/i18n.py``) and
``tests/web/test_i18n.py`` fails when such a msgid has no Chinese translation.  Parameters are
data, never sentences: a list of host names is joined with ", " here, and a word that needs
translating is a msgid of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    """Mark ``msgid`` for extraction; it is translated where it is shown."""
    return msgid


@dataclass(frozen=True)
class Message:
    msgid: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.params:
            return self.msgid
        return self.msgid % {k: str(v) if isinstance(v, Message) else v for k, v in self.params.items()}

    def as_dict(self) -> dict[str, Any]:
        """A parameter may be a Message itself (a reason inside a sentence): stored as its dict."""
        params = {k: v.as_dict() if isinstance(v, Message) else v for k, v in self.params.items()}
        return {"msgid": self.msgid, "params": params}


def message(msgid: str, **params: Any) -> Message:
    return Message(msgid, params)
