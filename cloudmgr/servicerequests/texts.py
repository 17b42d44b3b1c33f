"""The sentences the system stores on a request, its events and its servers, and the messages
behind them.

A request's state reason ("1 active, 1 failed: …"), its events' reasons and its servers'
faults are English text columns: the API, the CLI, the logs and the audit read them as they
are.  The request keeps each text's message in ``ServiceRequest.messages``
(``{english text: {"msgid", "params"}}``) and the pages say it in the reader's language
(:mod:`cloudmgr.stored_messages`).  A text without an entry (a row written before its sentence
was a message, a person's own words, a cloud's own words) is shown as it is.
"""

from __future__ import annotations

from datetime import date

from cloudmgr.messages import N_, Message, message

#: The request's state reason once its servers are done and some failed.
SERVERS_FAILED = N_("%(running)d active, %(failed)d failed")
SERVERS_FAILED_WHY = N_("%(running)d active, %(failed)d failed: %(why)s")


def servers_failed(running: int, failed: int, why: str | Message | None) -> Message:
    """The request's state reason when ``failed`` of its servers failed (``why``: what failed
    them all, e.g. the classified rule's refusal)."""
    if why:
        return message(SERVERS_FAILED_WHY, running=running, failed=failed, why=why)
    return message(SERVERS_FAILED, running=running, failed=failed)


def cloud_fault(kind: str, error: object) -> Message | str:
    """A server's fault when the cloud refused or failed it (``kind`` from FAILURE_REASONS;
    ``error`` is the cloud's own words, kept as they are): the words alone for another kind."""
    msgid = {
        "cloud_quota_exceeded": N_("quota exceeded in the cloud: %(error)s"),
        "no_valid_host": N_("no valid host: %(error)s"),
        "image_or_flavor_missing": N_("image or flavor missing on the cloud: %(error)s"),
        "cloud_refused": N_("the cloud refused the request (is the image or flavor still there?): %(error)s"),
        "cloud_unreachable": N_("cloud unreachable: %(error)s"),
    }.get(kind)
    return str(error) if msgid is None else message(msgid, error=str(error))


#: A server's fault when its department has no project on the cloud (or its zone no network).
NOT_SYNCED = N_("the department has no project on this cloud yet, or the zone's network is unknown (run clouds sync)")
#: A server's fault when the reconcile job finds it gone from the cloud.
DELETED_OUTSIDE = N_("deleted outside cloudmgr")
#: A part of a server whose failure fails it.
KEYPAIR = N_("keypair")
FIREWALL = N_("firewall")
PUBLIC_ADDRESS = N_("public address")


def data_disk(index: int) -> Message:
    return message(N_("data disk %(index)d"), index=index)


def part_failed(part: Message, error: object) -> Message:
    """A server's fault when one of its parts could not be made: the part, then the cloud's words."""
    return message(N_("%(part)s: %(error)s"), part=part, error=error if isinstance(error, Message) else str(error))


def no_external_network(cloud_key: str) -> Message:
    return message(N_("cloud %(cloud)s has no external network for public addresses"), cloud=cloud_key)


#: The reasons of the transitions the system makes for a person.
CANCELLED = N_("cancelled")
EVERY_SERVER_DELETED = N_("every server deleted")
RESIZE = N_("resize")


def rejected(reason: str) -> Message:
    return message(N_("rejected: %(reason)s"), reason=reason)


def retry(server: str) -> Message:
    return message(N_("retry %(server)s"), server=server)


def expired(expires_on: date, grace_days: int) -> Message:
    """Why the expiry job stopped a server (its audit record's reason)."""
    return message(N_("expired on %(date)s, grace %(days)d days"), date=expires_on.isoformat(), days=grace_days)
