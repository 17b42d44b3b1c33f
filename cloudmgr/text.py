"""Rules for text that people type or import, shared by every entry point.

Bidirectional control characters (the embeddings and overrides U+202A–U+202E, the isolates
U+2066–U+2069, the marks U+200E/U+200F and the Arabic letter mark U+061C) make a string show
in another order than it is stored: ``invoice‮fdp.exe`` reads as ``invoiceexe.pdf``, a
justification or a host name can show something else than what finance or an operator
approves.  No field of cloudmgr needs them (Chinese and English are both left to right), so
every text field refuses them at input: the API's body reader, the web forms' common base
and the file importers, each naming the field.
"""

from __future__ import annotations

import re

BIDI_CONTROLS = frozenset(
    [*(chr(c) for c in range(0x202A, 0x202F)), *(chr(c) for c in range(0x2066, 0x206A)), "\u200e", "\u200f", "\u061c"]
)
_BIDI = re.compile("[" + "".join(sorted(BIDI_CONTROLS)) + "]")


def has_bidi_control(text: str) -> bool:
    return _BIDI.search(text) is not None


def first_bidi_control(text: str) -> str | None:
    """The first bidirectional control character of ``text`` as ``U+XXXX``, or None."""
    found = _BIDI.search(text)
    return f"U+{ord(found.group()):04X}" if found else None


def bidi_problem(field: str, text: str) -> str | None:
    """The English message for ``field`` when ``text`` carries a bidirectional control, else None."""
    code = first_bidi_control(text)
    if code is None:
        return None
    return f"{field} contains a text-direction control character ({code}), which is not allowed"
