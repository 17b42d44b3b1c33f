"""The notification work handler: composes a queued event's message and sends it (e-mail, webhook)
with the process's settings (an entry point: it reads the runtime; the services are given the settings)."""

from __future__ import annotations

import logging
import smtplib

from cloudmgr.db import Database
from cloudmgr.notifications.services import compose, send_email, send_webhook
from cloudmgr.runtime import get_runtime
from cloudmgr.workqueue.services import ClaimedItem, RetryLater

log = logging.getLogger(__name__)


def handle_notify(db: Database, item: ClaimedItem) -> None:
    settings = get_runtime().settings
    with db.unit_of_work() as uow:
        message = compose(uow.session, settings, dict(item.payload))
    if message is None:
        return
    try:
        send_email(settings, message)
        send_webhook(settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        raise RetryLater(f"notification not delivered: {exc}") from exc
    log.info("notified %s of %s", ", ".join(message.recipients) or "nobody", message.event)
