"""What every command group of ``cloudmgr`` shares: the audit actor of the person at the console and
cloudmgr's own errors as a clear message with a non-zero exit.

``cloudmgr.cli`` (the main command) and the groups that live with their package (e.g.
``cloudmgr.programme.cli``) import it; the groups never import ``cloudmgr.cli`` back.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from cloudmgr.errors import CloudmgrError
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role

F = TypeVar("F", bound=Callable[..., Any])


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def cli_system_actor() -> Actor:
    """The person at the console as an :class:`Actor` for the services: an operator (whoever has a shell on
    the server runs cloudmgr's commands), recorded under the same ``cli:<login>`` name as :func:`cli_actor`.
    Decisions the rules tie to a person take ``--as NAME`` instead (:mod:`cloudmgr.console`)."""
    return Actor(username=cli_actor(), role=Role.OPERATOR)


def domain_errors(func: F) -> F:
    """Turn cloudmgr's own errors into a clear message and a non-zero exit."""

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CloudmgrError as exc:
            raise click.ClickException(str(exc)) from exc

    return run  # type: ignore[return-value]
