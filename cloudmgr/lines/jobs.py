"""The network programme's daily job: reminders to departments at risk or overdue (the at-risk rule of
:mod:`cloudmgr.lines.tracking`) and to departments whose line contracts end within 90 days, queued as
work items of kind ``lines.reminder`` and sent like every notification (e-mail, webhook)."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.config import Settings
from cloudmgr.db import Database
from cloudmgr.lines import tracking
from cloudmgr.notifications.services import Message, send_email, send_webhook
from cloudmgr.organisation.models import Department, User
from cloudmgr.runtime import get_runtime
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater, enqueue

log = logging.getLogger(__name__)

REMINDER_KIND = "lines.reminder"
MAX_LISTED = 50
STATUS_ZH = {"at_risk": "按当前进度无法在期限前完成", "overdue": "已超过期限", "on_track": "进度正常", "done": "已完成"}


def _reminded_since(session: Session, department_key: str, since: date) -> bool:
    keys = session.scalars(select(WorkItem.key).where(WorkItem.key.like(f"{REMINDER_KIND}:{department_key}:%")))
    for key in keys:
        try:
            day = date.fromisoformat(key.rsplit(":", 1)[1])
        except ValueError:
            continue
        if day > since:
            return True
    return False


def queue_reminders(
    session: Session, config: tracking.LinesConfig, figures: tracking.Figures, ending: list[tracking.EndingRow]
) -> list[str]:
    """One reminder per department at risk, overdue, or with contracts ending soon, at most every
    ``reminder_every_days``."""
    since = figures.today - timedelta(days=config.reminder_every_days)
    by_department: dict[str, list[tracking.EndingRow]] = {}
    for row in ending:
        by_department.setdefault(row.line.department.key, []).append(row)
    reminded = []
    for dept in figures.departments:
        behind = dept.status in {"at_risk", "overdue"}
        contracts = by_department.get(dept.key, [])
        if not (behind or contracts) or _reminded_since(session, dept.key, since):
            continue
        enqueue(
            session,
            REMINDER_KIND,
            f"{REMINDER_KIND}:{dept.key}:{figures.today.isoformat()}",
            {
                "department_id": dept.department_id,
                "today": figures.today.isoformat(),
                "deadline": config.deadline.date.isoformat(),
                "status": dept.status,
                "lines": dept.total,
                "remaining": dept.remaining,
                "monthly_rent_remaining": str(dept.rent_remaining),
                "projected_finish": dept.projected_finish.isoformat() if dept.projected_finish else None,
                "contracts": [
                    {"code": r.line.code, "end": r.line.contract_end.isoformat(), "action": r.action} for r in contracts
                ],
            },
        )
        reminded.append(dept.key)
    return reminded


@dataclass(frozen=True)
class DailyResult:
    day: date
    reminded: list[str]


def run_daily(db: Database, config: tracking.LinesConfig, when: date) -> DailyResult:
    with db.unit_of_work() as uow:
        figures = tracking.compute(uow.session, config, when)
        ending = tracking.contracts_ending(uow.session, when, days=config.ending_days)
        reminded = queue_reminders(uow.session, config, figures, ending)
    return DailyResult(when, reminded)


def lines_daily_job() -> None:
    runtime = get_runtime()
    config = tracking.read_lines_config(runtime.settings.programme_file)
    result = run_daily(runtime.db, config, tracking.today())
    if result.reminded:
        log.info("network programme: reminded %s", ", ".join(result.reminded))


# --- the reminder e-mail ---------------------------------------------------------------------------------


def compose_reminder(session: Session, settings: Settings, payload: dict[str, Any]) -> Message | None:
    dept = session.get(Department, int(str(payload.get("department_id"))))
    if dept is None:
        return None
    contracts = list(payload.get("contracts") or [])
    status = str(payload.get("status"))
    recipients = sorted(
        u.email
        for u in session.scalars(select(User).where(User.department_id == dept.id, User.active.is_(True)))
        if u.email
    )
    subject_zh = f"{dept.name_zh}：专线整合{STATUS_ZH.get(status, status)}，剩余 {payload.get('remaining')} 条专线"
    subject_en = f"{dept.name_en}: dedicated lines {status.replace('_', ' ')}, {payload.get('remaining')} left"
    if contracts:
        subject_zh += f"，{len(contracts)} 条合同 90 天内到期"
        subject_en += f", {len(contracts)} contracts ending within 90 days"
    body = [
        subject_zh,
        subject_en,
        "",
        f"截至 As of {payload.get('today')}，期限 deadline {payload.get('deadline')}：",
        f"专线 Lines {payload.get('lines')}，剩余 remaining {payload.get('remaining')}，"
        f"剩余月租 monthly rent left ¥{payload.get('monthly_rent_remaining')}",
        f"按近期进度预计完成 Projected finish: {payload.get('projected_finish') or '无进度 no pace'}",
    ]
    if contracts:
        actions = tracking.ACTIONS
        body += ["", "合同即将到期 Contracts ending:"]
        body += [f"  {c['code']}  {c['end']}  {actions.get(c['action'], c['action'])}" for c in contracts[:MAX_LISTED]]
        if len(contracts) > MAX_LISTED:
            body.append(f"  … +{len(contracts) - MAX_LISTED}")
    body += ["", f"{settings.public_url.rstrip('/')}/portal/lines/programme"]
    return Message(
        event="lines_reminder",
        subject=f"{subject_zh} / {subject_en}",
        body="\n".join(body),
        recipients=tuple(recipients),
        data={
            "event": "lines_reminder",
            "department": dept.key,
            "status": status,
            "remaining": payload.get("remaining"),
            "contracts_ending": len(contracts),
        },
    )


def handle_line_reminder(db: Database, item: ClaimedItem) -> None:
    settings = get_runtime().settings
    try:
        with db.unit_of_work() as uow:
            message = compose_reminder(uow.session, settings, dict(item.payload))
    except (TypeError, ValueError) as exc:
        raise GiveUp(f"bad line reminder payload: {exc}") from exc
    if message is None:
        return
    try:
        send_email(settings, message)
        send_webhook(settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        raise RetryLater(f"line reminder not delivered: {exc}") from exc
    log.info("reminded %s of its lines (%s)", message.data.get("department"), ", ".join(message.recipients) or "nobody")
