"""Who is told what.  Messages are bilingual (Chinese first), like the UI."""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.config import Settings
from cloudmgr.organisation.models import Role, User
from cloudmgr.servicerequests.models import ManagedServer, ServiceRequest
from cloudmgr.workqueue.services import GiveUp, RetryLater

log = logging.getLogger(__name__)

SUBJECTS: dict[str, tuple[str, str]] = {
    "submitted": ("云主机申请 #{id} 已提交", "VM request #{id} submitted"),
    "approval_needed": ("云主机申请 #{id} 等待您审批", "VM request #{id} waits for your approval"),
    "approved": ("云主机申请 #{id} 已批准，开始开通", "VM request #{id} approved; provisioning started"),
    "rejected": ("云主机申请 #{id} 被驳回", "VM request #{id} rejected"),
    "provisioned": ("云主机申请 #{id} 已开通", "VM request #{id} provisioned"),
    "provisioning_failed": ("云主机申请 #{id} 开通失败", "VM request #{id} failed to provision"),
    "expiry_reminder": ("云主机 {server} 将于 {date} 到期", "VM {server} expires on {date}"),
    "expired_stopped": ("云主机 {server} 已到期并关机", "VM {server} expired and was stopped"),
}


@dataclass(frozen=True)
class Message:
    event: str
    subject: str
    body: str
    recipients: tuple[str, ...]
    data: dict[str, Any]


def _emails(session: Session, *conditions: Any) -> list[str]:
    return [u.email for u in session.scalars(select(User).where(User.active.is_(True), *conditions)) if u.email]


def compose(session: Session, settings: Settings, payload: dict[str, Any]) -> Message | None:
    event = str(payload.get("event"))
    if event not in SUBJECTS:
        raise GiveUp(f"unknown notification {event!r}")
    zh, en = SUBJECTS[event]
    request = session.get(ServiceRequest, int(payload["request_id"])) if payload.get("request_id") else None
    server = session.get(ManagedServer, int(payload["server_id"])) if payload.get("server_id") else None
    if request is None and server is not None:
        request = server.request
    if request is None:
        return None
    fields = {
        "id": request.id,
        "server": server.name if server else "",
        "date": server.expires_on.isoformat() if server else "",
    }
    recipients: set[str] = set(_emails(session, User.username == request.created_by))
    heads = _emails(session, User.department_id == request.department_id, User.role == Role.DEPT_HEAD.value)
    if event in {"approval_needed", "submitted"} and request.next_role:
        role = request.next_role
        if role == Role.DEPT_HEAD.value:
            recipients.update(heads)
        else:
            recipients.update(_emails(session, User.role == role))
    elif event in {"expiry_reminder", "expired_stopped"}:
        recipients.update(heads)
    link = f"{settings.public_url.rstrip('/')}/portal/requests/{request.id}"
    lines = [
        zh.format(**fields),
        en.format(**fields),
        "",
        f"部门 Department: {request.department.name_zh} / {request.department.name_en}",
        f"云 Cloud: {request.cloud.name_zh} / {request.cloud.name_en}",
        f"状态 State: {request.state}",
    ]
    if request.state_reason:
        lines.append(f"原因 Reason: {request.state_reason}")
    lines += ["", link]
    return Message(
        event=event,
        subject=f"{zh.format(**fields)} / {en.format(**fields)}",
        body="\n".join(lines),
        recipients=tuple(sorted(recipients)),
        data={"event": event, "request_id": request.id, "state": request.state, "server": fields["server"] or None},
    )


def send_email(settings: Settings, message: Message) -> None:
    if not settings.smtp_host or not message.recipients:
        return
    email = EmailMessage()
    email["From"] = settings.smtp_sender
    email["To"] = ", ".join(message.recipients)
    email["Subject"] = message.subject
    email.set_content(message.body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=15) as smtp:
        smtp.send_message(email)


def send_webhook(settings: Settings, message: Message) -> None:
    if not settings.webhook_url:
        return
    if not settings.webhook_url.startswith(("http://", "https://")):
        raise GiveUp("the webhook URL must be http or https")
    body = json.dumps({"subject": message.subject, **message.data}, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(  # noqa: S310 (scheme checked above)
        settings.webhook_url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as response:  # noqa: S310
        if response.status >= 300:
            raise RetryLater(f"webhook answered {response.status}")
