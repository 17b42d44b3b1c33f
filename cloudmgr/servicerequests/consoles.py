"""A server's remote console and console log (issue 16): what the department sees of a VM's screen.

Two halves, as the package rule wants.  :func:`console_target` is a service: in the caller's
session it decides who may (the department wall: another department's server is not found;
department users and operators only) and whether the server has a console now, and answers
with a frozen :class:`ConsoleTarget`.  :func:`open_console` and :func:`read_console_log` are
job-shaped: they read the cloud with no transaction open (a view runs them through
``run_job_outside_request``).  Opening a console is audited in a short unit of work of its
own, committed before the cloud is asked, so an attempt is on record even when the cloud
then fails.  Reading the log changes nothing and is not audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.cloud.errors import CloudError
from cloudmgr.cloud.types import ConsoleUrl
from cloudmgr.db import Database
from cloudmgr.errors import DomainError
from cloudmgr.organisation.actor import Actor
from cloudmgr.providers import ProviderRegistry
from cloudmgr.servicerequests.errors import InvalidTransition, NotYourTurn, RequestInvalid
from cloudmgr.servicerequests.lifecycle import SERVER_ACTORS
from cloudmgr.servicerequests.models import ManagedServer
from cloudmgr.servicerequests.reading import get_server
from cloudmgr.servicerequests.states import ServerState

#: A console is a running server's screen.
CONSOLE_STATES = frozenset({ServerState.ACTIVE})
#: The log stays readable once the server stopped or failed, which is when it is most wanted.
CONSOLE_LOG_STATES = frozenset({ServerState.ACTIVE, ServerState.STOPPED, ServerState.ERROR})
#: How many lines of the log are shown unless asked for, and the most that may be asked for.
DEFAULT_LOG_LINES = 200
MAX_LOG_LINES = 1000


class ConsoleUnavailable(DomainError):
    """The cloud was asked and did not answer with a console or a log."""

    code = "console_unavailable"
    http_status = 502


@dataclass(frozen=True)
class ConsoleTarget:
    """What the cloud calls need, read while the request's transaction was open."""

    server_id: int  # ours
    name: str
    cloud_key: str
    os_cloud: str
    region: str | None
    cloud_server_id: str  # the cloud's


def may_open_console(actor: Actor, server: ManagedServer) -> bool:
    """Whether ``actor`` may open ``server``'s console now: the page shows the link only then,
    and :func:`console_target` refuses exactly the rest."""
    return actor.role in SERVER_ACTORS and server.state in CONSOLE_STATES and bool(server.server_id)


def may_read_console_log(actor: Actor, server: ManagedServer) -> bool:
    return actor.role in SERVER_ACTORS and server.state in CONSOLE_LOG_STATES and bool(server.server_id)


def console_target(session: Session, actor: Actor, server_id: int, *, log_only: bool = False) -> ConsoleTarget:
    """The server whose console (or, with ``log_only``, only whose console log) ``actor`` asks for.

    Another department's server is not found; someone who does not act on servers (an
    auditor, finance) is refused; a server that is not running (or, for the log, never
    booted on the cloud) has no console to give."""
    server = get_server(session, actor, server_id)
    if actor.role not in SERVER_ACTORS:
        raise NotYourTurn("only the department or an operator opens a server's console")
    states = CONSOLE_LOG_STATES if log_only else CONSOLE_STATES
    if server.state not in states or not server.server_id:
        wanted = "a console log" if log_only else "a console"
        needed = ", ".join(sorted(s.value for s in states))
        raise InvalidTransition(
            f"server {server.name} is {server.state.value}: it has {wanted} only when {needed} on the cloud"
        )
    cloud = server.cloud
    return ConsoleTarget(
        server_id=server.id,
        name=server.name,
        cloud_key=cloud.key,
        os_cloud=cloud.os_cloud,
        region=cloud.region,
        cloud_server_id=server.server_id,
    )


def open_console(db: Database, providers: ProviderRegistry, target: ConsoleTarget, *, actor: Actor) -> ConsoleUrl:
    """Audit the opening, then ask the cloud for a console URL (Nova mints a token per call).

    Job-shaped: call it with no unit of work open."""
    with db.unit_of_work() as uow:
        audit.record(
            uow.session,
            actor=actor.username,
            action="server.console",
            target_type="managed_server",
            target_id=target.server_id,
            detail={"cloud": target.cloud_key, "server": target.cloud_server_id},
        )
    provider = providers.for_cloud(target.cloud_key, target.os_cloud, target.region)
    try:
        console = provider.console_url(target.cloud_server_id)
    except CloudError as exc:
        raise ConsoleUnavailable(f"the cloud did not give a console: {exc}") from exc
    # The URL becomes a link on a page: nothing but a web address (no javascript: or data:).
    if urlsplit(console.url).scheme not in {"http", "https"}:
        raise ConsoleUnavailable(f"the cloud did not give a console: {console.url[:80]!r} is not a web address")
    return console


def read_console_log(providers: ProviderRegistry, target: ConsoleTarget, lines: int = DEFAULT_LOG_LINES) -> str:
    """The last ``lines`` lines (1..1000) of the server's console output, as the cloud has them now."""
    if not 1 <= lines <= MAX_LOG_LINES:
        raise RequestInvalid(f"ask for 1 to {MAX_LOG_LINES} lines of the console log, not {lines}")
    provider = providers.for_cloud(target.cloud_key, target.os_cloud, target.region)
    try:
        return provider.console_log(target.cloud_server_id, lines)
    except CloudError as exc:
        raise ConsoleUnavailable(f"the cloud did not give the console log: {exc}") from exc
