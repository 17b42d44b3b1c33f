"""The password policy of local accounts.

* between ``MIN_LENGTH`` and ``MAX_LENGTH`` characters;
* at least three of four classes: lower-case letters, upper-case letters, digits, other
  characters (letters without case, e.g. Chinese, count as lower-case);
* not the username: the password's letters, lower-cased, must differ from the username's
  (so ``Admin-2026`` is refused for ``admin``, ``demo-admin-2026`` is not).

Messages are English sentences; the web layer shows its own translated copy next to the field.
"""

from __future__ import annotations

from cloudmgr.identity.errors import PasswordRejected

MIN_LENGTH = 10
MAX_LENGTH = 256
MIN_CLASSES = 3


def character_classes(password: str) -> int:
    lower = any(c.islower() or (c.isalpha() and not c.isupper()) for c in password)
    upper = any(c.isupper() for c in password)
    digit = any(c.isdigit() for c in password)
    other = any(not c.isalnum() for c in password)
    return sum((lower, upper, digit, other))


def _letters(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalpha())


def problems(password: str, *, username: str = "") -> list[str]:
    """Every rule ``password`` breaks, as sentences (empty when it is acceptable)."""
    found: list[str] = []
    if len(password) < MIN_LENGTH:
        found.append(f"password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        found.append(f"password must have at most {MAX_LENGTH} characters")
    if character_classes(password) < MIN_CLASSES:
        found.append(
            "password must mix letters with digits or symbols: "
            f"at least {MIN_CLASSES} of lower-case, upper-case, digits and symbols"
        )
    name = _letters(username)
    if username and (password.lower() == username.lower() or (name and _letters(password) == name)):
        found.append("password must not be the username")
    return found


def check_password(password: str, *, username: str = "") -> None:
    """Raise :class:`PasswordRejected` naming every broken rule."""
    found = problems(password, username=username)
    if found:
        raise PasswordRejected("; ".join(found))
