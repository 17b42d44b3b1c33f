"""``cloudmgr users …``: local user accounts, their passwords, roles and API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from cloudmgr.cli_common import cli_actor, cli_system_actor, domain_errors
from cloudmgr.runtime import get_runtime


@click.group("users")
def users() -> None:
    """Local user accounts and API tokens."""


@users.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["dept_staff", "dept_head", "operator", "finance", "admin"]))
@click.option("--department", "department_key", default=None, help="department key (dept_staff, dept_head)")
@click.option("--display-name", default=None)
@click.option("--email", default=None)
@click.option("--password", default=None, help="read from the prompt when omitted")
@domain_errors
def users_create(
    username: str,
    role: str,
    department_key: str | None,
    display_name: str | None,
    email: str | None,
    password: str | None,
) -> None:
    """Create a local user."""
    from cloudmgr.organisation import services as org_services
    from cloudmgr.organisation.models import Role

    if password is None:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    with get_runtime().db.unit_of_work() as uow:
        user = org_services.create_user(
            uow.session,
            username=username,
            password=password,
            role=Role(role),
            department_key=department_key,
            display_name=display_name,
            email=email,
            actor=cli_system_actor(),
        )
        click.echo(f"created user {user.username} ({user.role})")


@users.command("password")
@click.argument("username")
@click.option("--password", default=None, help="read from the prompt when omitted")
@domain_errors
def users_password(username: str, password: str | None) -> None:
    """Set a local user's password (the password policy applies)."""
    from cloudmgr.identity import services as identity
    from cloudmgr.organisation import services as org_services

    if password is None:
        password = click.prompt("new password", hide_input=True, confirmation_prompt=True)
    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        identity.set_password(uow.session, user, password, actor=cli_system_actor())
    click.echo(f"password of {username} changed")


@users.command("unlock")
@click.argument("username")
@domain_errors
def users_unlock(username: str) -> None:
    """Lift the lock-out of USERNAME after too many failed log-ins."""
    from cloudmgr.identity import services as identity

    with get_runtime().db.unit_of_work() as uow:
        found = identity.unlock(uow.session, username, actor=cli_system_actor())
    click.echo(f"{username} unlocked" if found else f"{username} was not locked")


@users.command("token")
@click.argument("username")
@click.option("--name", default="cli", show_default=True, help="what the token is for")
@click.option("--days", default=90, show_default=True, type=click.IntRange(1, 3650))
@domain_errors
def users_token(username: str, name: str, days: int) -> None:
    """Issue an API token for USERNAME (printed once; only its hash is stored)."""
    from cloudmgr.db import utcnow
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        issued = org_services.issue_token(
            uow.session, user, name=name, expires_at=utcnow() + timedelta(days=days), actor=cli_system_actor()
        )
    click.echo(issued.token)


def cli_admin() -> Any:
    """The person at the host's command line acts as an administrator (they hold the database)."""
    from cloudmgr.organisation.actor import Actor
    from cloudmgr.organisation.models import Role

    return Actor(username=cli_actor(), role=Role.ADMIN)


REASON_OPTION = click.option("--reason", required=True, help="why (kept in the audit log)")


@users.command("disable")
@click.argument("username")
@REASON_OPTION
@domain_errors
def users_disable(username: str, reason: str) -> None:
    """Disable USERNAME: no log-in; their sessions and API tokens end at once."""
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        org_services.set_user_active(uow.session, cli_admin(), user.id, active=False, reason=reason)
    click.echo(f"{username} disabled; their sessions and API tokens have ended")


@users.command("enable")
@click.argument("username")
@REASON_OPTION
@domain_errors
def users_enable(username: str, reason: str) -> None:
    """Let a disabled USERNAME log in again (revoked tokens stay revoked)."""
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        org_services.set_user_active(uow.session, cli_admin(), user.id, active=True, reason=reason)
    click.echo(f"{username} enabled")


@users.command("tokens")
@click.argument("username")
@domain_errors
def users_tokens(username: str) -> None:
    """List USERNAME's API tokens (id, name, prefix, expiry, state)."""
    from cloudmgr.db import utcnow
    from cloudmgr.organisation import services as org_services

    now = utcnow()
    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        for token in org_services.list_tokens(uow.session, cli_admin(), user.id):
            if token.revoked_at is not None:
                state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}"
            elif token.expires_at is not None and token.expires_at <= now:
                state = "expired"
            else:
                state = "valid"
            expires = f"{token.expires_at:%Y-%m-%d}" if token.expires_at else "never"
            click.echo(f"{token.id}\t{token.name}\t{token.prefix}…\texpires {expires}\t{state}")


@users.command("revoke-tokens")
@click.argument("username")
@click.option("--id", "token_id", type=int, default=None, help="only this token (see `users tokens`)")
@REASON_OPTION
@domain_errors
def users_revoke_tokens(username: str, token_id: int | None, reason: str) -> None:
    """Revoke USERNAME's API tokens: all, or the one --id."""
    from cloudmgr.organisation import services as org_services

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        revoked = org_services.revoke_tokens(uow.session, cli_admin(), user.id, reason=reason, token_id=token_id)
    click.echo(f"{revoked} API token(s) of {username} revoked")


@users.command("role")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(["dept_staff", "dept_head", "operator", "finance", "admin"]))
@click.option("--department", "department_key", default=None, help="department key (dept_staff, dept_head)")
@REASON_OPTION
@domain_errors
def users_role(username: str, role: str, department_key: str | None, reason: str) -> None:
    """Give USERNAME another role or department; their sessions and API tokens end."""
    from cloudmgr.organisation import services as org_services
    from cloudmgr.organisation.models import Role

    with get_runtime().db.unit_of_work() as uow:
        user = org_services.get_user_by_name(uow.session, username)
        org_services.change_role(
            uow.session, cli_admin(), user.id, role=Role(role), department_key=department_key, reason=reason
        )
    click.echo(f"{username} is now {role}" + (f" of {department_key}" if department_key else ""))


@users.command("unlock-address")
@click.argument("address")
@domain_errors
def users_unlock_address(address: str) -> None:
    """Lift the lock-out of a client ADDRESS after too many failed log-ins from it."""
    from cloudmgr.identity import services as identity

    with get_runtime().db.unit_of_work() as uow:
        found = identity.unlock_address(uow.session, address, actor=cli_system_actor())
    click.echo(f"{address} unlocked" if found else f"{address} was not locked")
