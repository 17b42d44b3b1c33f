"""Who acts at the console: a cloudmgr user who proves it with their password.

Decisions that the rules tie to a person — an approval step of a request, finance's decision
on a purchase, an administrator's approval of a declassification — are taken at the console
as that user (``--as NAME``), and the person at the keyboard gives NAME's password.  A typed
name alone would let whoever has a shell on the server approve as anyone, and so be their own
"second person".  The password is checked exactly as at the web log-in (local account or the
configured directory; failures counted, locked out and audited alike).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from cloudmgr.errors import CloudmgrError
from cloudmgr.organisation.actor import Actor
from cloudmgr.runtime import get_runtime

F = TypeVar("F", bound=Callable[..., Any])


def console_actor(username: str, password: str) -> Actor:
    """The user ``username``, once ``password`` is theirs; a ClickException (exit 1) otherwise."""
    from cloudmgr.identity import services as identity

    runtime = get_runtime()
    refusal: CloudmgrError | None = None
    with runtime.db.unit_of_work() as uow:
        try:
            actor = Actor.of(identity.login(uow.session, runtime.settings, username, password))
        except CloudmgrError as exc:  # the failure is counted and audited: commit it, then refuse
            refusal = exc
    if refusal is not None:
        raise click.ClickException(f"{username}: {refusal}")
    return actor


def acting_user_options(who: str) -> Callable[[F], F]:
    """``--as NAME`` and ``--password`` (prompted, hidden; read from standard input when it is
    not a terminal) for a command taken as a named user."""

    def decorate(command: F) -> F:
        command = click.option(
            "--password",
            prompt=f"password of {who}",
            hide_input=True,
            help="prompted (hidden) when not given; read from standard input when it is not a terminal",
        )(command)
        return click.option("--as", "username", required=True, help=who)(command)

    return decorate
