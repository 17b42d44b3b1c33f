"""The programme's jobs: the daily snapshot with the reminders, wave completion, and the
reminder e-mails (work items of kind ``programme.reminder``, sent like every notification)."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudmgr.config import Settings
from cloudmgr.db import Database
from cloudmgr.notifications.services import Message, send_email, send_webhook
from cloudmgr.organisation.models import Department, User
from cloudmgr.programme import tracking
from cloudmgr.programme.config import ProgrammeConfig, read_programme_file
from cloudmgr.programme.services import finish_waves
from cloudmgr.runtime import get_runtime
from cloudmgr.workqueue.models import WorkItem
from cloudmgr.workqueue.services import ClaimedItem, GiveUp, RetryLater, enqueue

log = logging.getLogger(__name__)

REMINDER_KIND = "programme.reminder"
MAX_LISTED = 50


@dataclass(frozen=True)
class DailyResult:
    taken_on: date
    created: bool  # False: the day's snapshot existed and was updated
    reminders: list[str]  # department keys reminded
    finished_waves: list[int]


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


def queue_reminders(session: Session, config: ProgrammeConfig, figures: tracking.Figures) -> list[str]:
    """One reminder per department behind schedule, at most every ``reminder_every_days``."""
    since = figures.today - timedelta(days=config.reminder_every_days)
    overdue: dict[str, list[str]] = {}
    at_risk: dict[str, list[str]] = {}
    for f in figures.overdue:
        overdue.setdefault(f.department_key, []).append(f.hostname)
    for f in figures.at_risk:
        at_risk.setdefault(f.department_key, []).append(f.hostname)
    reminded = []
    for row in figures.departments:
        if not (overdue.get(row.key) or at_risk.get(row.key)):
            continue
        if _reminded_since(session, row.key, since):
            continue
        enqueue(
            session,
            REMINDER_KIND,
            f"{REMINDER_KIND}:{row.key}:{figures.today.isoformat()}",
            {
                "department_id": row.department_id,
                "today": figures.today.isoformat(),
                "in_scope": row.in_scope,
                "done": row.done,
                "overdue": sorted(overdue.get(row.key, [])),
                "at_risk": sorted(at_risk.get(row.key, [])),
            },
        )
        reminded.append(row.key)
    return reminded


def run_daily(db: Database, config: ProgrammeConfig, when: date) -> DailyResult:
    """Finish settled waves, store the day's snapshot, queue the reminders: one unit of work."""
    for attempt in (1, 2):
        try:
            with db.unit_of_work() as uow:
                finished = finish_waves(uow.session)
                _snapshot, created = tracking.take_snapshot(uow.session, config, when)
                figures = tracking.compute(uow.session, config, when)
                reminded = queue_reminders(uow.session, config, figures)
            return DailyResult(when, created, reminded, finished)
        except IntegrityError:
            # Another process stored the same day's snapshot at the same moment (the job is
            # safe to run twice): once more, which finds that row and updates it.
            if attempt == 2:
                raise
            log.info("programme snapshot of %s taken at the same time elsewhere; running again", when)
    raise AssertionError("unreachable")


def programme_daily_job() -> None:
    runtime = get_runtime()
    result = run_daily(runtime.db, read_programme_file(runtime.settings.programme_file), tracking.today())
    log.info(
        "programme snapshot of %s (%s); %d reminders",
        result.taken_on,
        "new" if result.created else "updated",
        len(result.reminders),
    )


def waves_progress_job() -> None:
    runtime = get_runtime()
    with runtime.db.unit_of_work() as uow:
        done = finish_waves(uow.session)
    if done:
        log.info("waves done: %s", ", ".join(f"#{w}" for w in done))
    # Reclassification alerts (issue 14) resolve themselves once their servers have left the cloud.
    from cloudmgr.inventory.reclassification import resolve_cleared_alerts

    with runtime.db.unit_of_work() as uow:
        resolved = resolve_cleared_alerts(uow.session)
    if resolved:
        log.info("%d reclassification alert(s) resolved: the servers left the cloud", resolved)


# --- the reminder e-mail ---------------------------------------------------------------------------


def compose_reminder(session: Session, settings: Settings, payload: dict[str, object]) -> Message | None:
    dept = session.get(Department, int(str(payload.get("department_id"))))
    if dept is None:
        return None
    overdue = [str(h) for h in payload.get("overdue") or []]  # type: ignore[attr-defined]
    at_risk = [str(h) for h in payload.get("at_risk") or []]  # type: ignore[attr-defined]
    recipients = sorted(
        u.email
        for u in session.scalars(select(User).where(User.department_id == dept.id, User.active.is_(True)))
        if u.email
    )
    subject_zh = f"{dept.name_zh}：{len(overdue)} 个系统逾期未上云，{len(at_risk)} 个有逾期风险"
    subject_en = f"{dept.name_en}: {len(overdue)} systems overdue for the cloud, {len(at_risk)} at risk"
    lines = [
        subject_zh,
        subject_en,
        "",
        f"截至 As of {payload.get('today')}: 已完成 done {payload.get('done')}"
        f" / 范围内 in scope {payload.get('in_scope')}",
    ]
    if overdue:
        lines += ["", "逾期 Overdue:"] + [f"  {h}" for h in overdue[:MAX_LISTED]]
        if len(overdue) > MAX_LISTED:
            lines.append(f"  … +{len(overdue) - MAX_LISTED}")
    if at_risk:
        lines += ["", "有风险 At risk:"] + [f"  {h}" for h in at_risk[:MAX_LISTED]]
        if len(at_risk) > MAX_LISTED:
            lines.append(f"  … +{len(at_risk) - MAX_LISTED}")
    lines += ["", f"{settings.public_url.rstrip('/')}/portal/programme"]
    return Message(
        event="programme_reminder",
        subject=f"{subject_zh} / {subject_en}",
        body="\n".join(lines),
        recipients=tuple(recipients),
        data={
            "event": "programme_reminder",
            "department": dept.key,
            "overdue": len(overdue),
            "at_risk": len(at_risk),
        },
    )


def handle_programme_reminder(db: Database, item: ClaimedItem) -> None:
    settings = get_runtime().settings
    try:
        with db.unit_of_work() as uow:
            message = compose_reminder(uow.session, settings, dict(item.payload))
    except (TypeError, ValueError) as exc:
        raise GiveUp(f"bad reminder payload: {exc}") from exc
    if message is None:
        return
    try:
        send_email(settings, message)
        send_webhook(settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        raise RetryLater(f"reminder not delivered: {exc}") from exc
    log.info("reminded %s (%s)", ", ".join(message.recipients) or "nobody", message.data.get("department"))
