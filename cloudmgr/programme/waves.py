"""Migration waves: draft → checked → running → done | cancelled (the check itself is in
:mod:`cloudmgr.programme.checks`; :mod:`cloudmgr.programme.services` is the public face).


* A wave has a target cloud, a network zone (internet or extranet: its systems' network must
  match) and a window.  Systems join while it is a draft (or checked: any change of members
  makes it a draft again).  A system is in at most one open wave (a partial unique index
  backs the check).  Classified systems are refused through
  :func:`cloudmgr.inventory.classification.ensure_placeable` (entry point ``"wave"``), which
  audits the refusal even though the caller rolls back.  A system whose department may not
  use the wave's cloud (no ``department_clouds`` link) is refused too
  (:func:`ensure_department_may_use`); both rules are checked again when the wave starts and
  when each system's migration work item runs.
* :func:`check_wave` sizes the systems, compares them with each department's quota headroom and
  places them on the cloud's free host capacity (:mod:`cloudmgr.programme.fit`); the result is
  stored on the wave.  Only a wave whose last check fits is "checked", and only a checked wave
  starts.
* :func:`start_wave` stores who/when first, moves every member to "migrating" and enqueues one
  ``runbook.migrate_system`` work item per system (payload ``{"system_id", "wave_id"}``), all in
  the caller's unit of work.
* :func:`finish_waves` (the ``waves.progress`` job) marks running waves done once every member
  is on the cloud, decommissioned or rolled back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from cloudmgr.audit import services as audit
from cloudmgr.db import utcnow
from cloudmgr.inventory.classification import ensure_placeable
from cloudmgr.inventory.models import LegacyNetwork, LegacySystem, SystemState
from cloudmgr.inventory.services import transition_system
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, Department, DepartmentCloud, NetworkZone
from cloudmgr.programme.errors import (
    WaveDoesNotFit,
    WaveInvalid,
    WaveMemberRefused,
    WaveNotFound,
    WaveStateConflict,
)
from cloudmgr.programme.models import WAVE_MACHINE, MigrationWave, MigrationWaveMember, WaveState
from cloudmgr.workqueue.services import enqueue

AUDIT_TARGET = "migration_wave"
MIGRATE_KIND = "runbook.migrate_system"
#: Systems that may join a wave: not yet moved, or rolled back (the source still serves).
JOINABLE_STATES = frozenset({SystemState.LEGACY, SystemState.ROLLED_BACK})
#: A running wave is done when every member is in one of these.
SETTLED_STATES = frozenset({SystemState.ON_CLOUD, SystemState.DECOMMISSIONED, SystemState.ROLLED_BACK})
ZONES = (LegacyNetwork.INTERNET.value, LegacyNetwork.EXTRANET.value)
MAX_NAME = 128
MAX_MEMBERS = 500
#: Who finishes the waves whose systems have all settled (the ``waves.progress`` job).
WAVES_PROGRESS = Actor.system("waves.progress")


# --- reading -------------------------------------------------------------------------------------


def get_wave(session: Session, wave_id: int, *, for_update: bool = False) -> MigrationWave:
    query = (
        select(MigrationWave)
        .where(MigrationWave.id == wave_id)
        .options(joinedload(MigrationWave.cloud), selectinload(MigrationWave.members))
    )
    if for_update:
        query = query.with_for_update(of=MigrationWave)
    wave = session.scalars(query).unique().one_or_none()
    if wave is None:
        raise WaveNotFound(message(N_("no migration wave %(wave)s"), wave=wave_id))
    return wave


def list_waves(session: Session, *, state: str | None = None, limit: int = 200) -> Sequence[MigrationWave]:
    query = select(MigrationWave).options(joinedload(MigrationWave.cloud)).order_by(MigrationWave.id.desc())
    if state:
        query = query.where(MigrationWave.state == state)
    return session.scalars(query.limit(limit)).unique().all()


def member_counts(session: Session, wave_ids: Sequence[int]) -> dict[int, int]:
    if not wave_ids:
        return {}
    rows = session.execute(
        select(MigrationWaveMember.wave_id, func.count(MigrationWaveMember.id))
        .where(MigrationWaveMember.wave_id.in_(wave_ids))
        .group_by(MigrationWaveMember.wave_id)
    )
    return {wave_id: count for wave_id, count in rows}


def members_easy_first(session: Session, wave: MigrationWave) -> list[LegacySystem]:
    """The wave's systems from easy to hard (complexity score, then hostname)."""
    return list(
        session.scalars(
            select(LegacySystem)
            .join(MigrationWaveMember, MigrationWaveMember.system_id == LegacySystem.id)
            .where(MigrationWaveMember.wave_id == wave.id)
            .options(joinedload(LegacySystem.department), joinedload(LegacySystem.server_room))
            .order_by(LegacySystem.complexity_score, LegacySystem.hostname)
        ).unique()
    )


def open_wave_of(session: Session, system_id: int) -> MigrationWave | None:
    return session.scalars(
        select(MigrationWave)
        .join(MigrationWaveMember, MigrationWaveMember.wave_id == MigrationWave.id)
        .where(MigrationWaveMember.system_id == system_id, MigrationWaveMember.active.is_(True))
    ).first()


def candidates(session: Session, wave: MigrationWave, *, limit: int = 500) -> list[LegacySystem]:
    """Systems that may join ``wave``: in scope, on its zone's network, not in an open wave, of a
    department that may use the wave's cloud."""
    taken = select(MigrationWaveMember.system_id).where(MigrationWaveMember.active.is_(True))
    allowed = select(DepartmentCloud.department_id).where(DepartmentCloud.cloud_id == wave.cloud_id)
    return list(
        session.scalars(
            select(LegacySystem)
            .where(
                LegacySystem.state.in_([s.value for s in JOINABLE_STATES]),
                LegacySystem.classification == "non_classified",
                LegacySystem.network == wave.zone,
                LegacySystem.id.not_in(taken),
                LegacySystem.department_id.in_(allowed),
            )
            .options(joinedload(LegacySystem.department))
            .order_by(LegacySystem.complexity_score, LegacySystem.hostname)
            .limit(limit)
        ).unique()
    )


# --- the state machine ---------------------------------------------------------------------------


def create_wave(
    session: Session,
    *,
    name: str,
    cloud_key: str,
    zone: str,
    window_start: date,
    window_end: date,
    actor: Actor,
) -> MigrationWave:
    name = (name or "").strip()
    problems = []
    if not name or len(name) > MAX_NAME:
        problems.append(f"the name must have 1 to {MAX_NAME} characters")
    if zone not in ZONES:
        problems.append(f"the zone must be internet or extranet, not {zone!r}")
    if window_end < window_start:
        problems.append(f"the window ends ({window_end}) before it starts ({window_start})")
    cloud = session.scalar(select(Cloud).where(Cloud.key == cloud_key))
    if cloud is None:
        problems.append(f"no cloud {cloud_key!r}")
    elif not cloud.enabled:
        problems.append(f"cloud {cloud_key} is disabled")
    elif (
        zone in ZONES
        and session.scalar(select(NetworkZone.id).where(NetworkZone.cloud_id == cloud.id, NetworkZone.zone == zone))
        is None
    ):
        problems.append(f"cloud {cloud_key} has no {zone} zone")
    if problems:
        raise WaveInvalid("; ".join(problems))
    assert cloud is not None
    username = actor.username
    wave = MigrationWave(
        name=name,
        cloud_id=cloud.id,
        zone=zone,
        window_start=window_start,
        window_end=window_end,
        state=WaveState.DRAFT,
        created_by=username,
        created_at=utcnow(),
    )
    session.add(wave)
    session.flush()
    audit.record(
        session,
        actor=username,
        action="wave.create",
        target_type=AUDIT_TARGET,
        target_id=wave.id,
        detail={"name": name, "cloud": cloud.key, "zone": zone, "window": [str(window_start), str(window_end)]},
    )
    return wave


#: A wave's state as a word inside a sentence (the pages' labels are capitalised headings).
_STATE_WORDS: dict[WaveState, str] = {
    WaveState.DRAFT: N_("draft"),
    WaveState.CHECKED: N_("checked"),
    WaveState.RUNNING: N_("running"),
    WaveState.DONE: N_("done"),
    WaveState.CANCELLED: N_("cancelled"),
}


def _state_word(wave: MigrationWave) -> Message:
    return Message(_STATE_WORDS[WaveState(wave.state)])


def ensure_editable(wave: MigrationWave) -> None:
    if wave.state not in {WaveState.DRAFT, WaveState.CHECKED}:
        raise WaveStateConflict(
            message(
                N_("wave %(wave)s is %(state)s: its systems can no longer change"),
                wave=wave.id,
                state=_state_word(wave),
            )
        )


def _back_to_draft(wave: MigrationWave, why: str) -> None:
    if wave.state == WaveState.CHECKED:
        WAVE_MACHINE.apply(wave, WaveState.DRAFT, wave_id=wave.id)
        wave.state_reason = why


def ensure_department_may_use(session: Session, system: LegacySystem, cloud_id: int) -> None:
    """Refuse a system whose department may not use the cloud (it has no link to it)."""
    allowed = session.scalar(
        select(DepartmentCloud.id).where(
            DepartmentCloud.department_id == system.department_id, DepartmentCloud.cloud_id == cloud_id
        )
    )
    if allowed is None:
        cloud_key = session.scalar(select(Cloud.key).where(Cloud.id == cloud_id)) or str(cloud_id)
        department_key = session.scalar(select(Department.key).where(Department.id == system.department_id))
        raise WaveMemberRefused(
            message(
                N_("%(host)s belongs to department %(department)s, which may not use cloud %(cloud)s"),
                host=system.hostname,
                department=department_key,
                cloud=cloud_key,
            )
        )


def _find_system(session: Session, ref: int | str) -> LegacySystem:
    if isinstance(ref, int):
        system = session.get(LegacySystem, ref)
    else:
        system = session.scalar(select(LegacySystem).where(LegacySystem.hostname == ref))
    if system is None:
        raise WaveMemberRefused(message(N_("no legacy system %(system)s"), system=repr(ref)))
    return system


def add_systems(session: Session, wave_id: int, refs: Sequence[int | str], *, actor: Actor) -> list[LegacySystem]:
    """Add systems (ids or hostnames) to a draft or checked wave: all of them or none."""
    wave = get_wave(session, wave_id, for_update=True)
    ensure_editable(wave)
    if not refs:
        raise WaveInvalid(Message(N_("name at least one system to add")))
    username = actor.username
    present = {m.system_id for m in wave.members}
    if len(present) + len(refs) > MAX_MEMBERS:
        raise WaveInvalid(message(N_("a wave holds at most %(max)s systems"), max=MAX_MEMBERS))
    position = max((m.position for m in wave.members), default=0)
    added: list[LegacySystem] = []
    for ref in refs:
        system = _find_system(session, ref)
        if system.id in present:
            raise WaveMemberRefused(message(N_("%(host)s is already in this wave"), host=system.hostname))
        ensure_placeable(session, system, actor=actor, entry_point="wave")
        ensure_department_may_use(session, system, wave.cloud_id)
        if system.network != wave.zone:
            raise WaveMemberRefused(
                message(
                    N_("%(host)s is on the %(network)s network; this wave moves %(zone)s systems"),
                    host=system.hostname,
                    network=Message(NETWORK_WORDS.get(system.network, system.network)),
                    zone=Message(NETWORK_WORDS.get(wave.zone, wave.zone)),
                )
            )
        other = open_wave_of(session, system.id)
        if other is not None:
            raise WaveMemberRefused(
                message(
                    N_("%(host)s is already in wave #%(id)s (%(name)s)"),
                    host=system.hostname,
                    id=other.id,
                    name=other.name,
                )
            )
        if system.state not in JOINABLE_STATES:
            raise WaveMemberRefused(
                message(
                    N_("%(host)s is %(state)s; only systems still in their server room or rolled back join"),
                    host=system.hostname,
                    state=Message(SYSTEM_STATE_WORDS.get(str(system.state), str(system.state))),
                )
            )
        position += 1
        wave.members.append(MigrationWaveMember(system_id=system.id, position=position, active=True, added_by=username))
        present.add(system.id)
        transition_system(
            session, system, SystemState.PLANNED, actor=actor, reason=message(N_("joined wave #%(id)s"), id=wave.id)
        )
        system.target_cloud_id = wave.cloud_id
        added.append(system)
    _back_to_draft(wave, "systems were added after the check")
    try:
        session.flush()
    except IntegrityError as exc:  # another wave took one of them meanwhile (the partial unique index)
        raise WaveMemberRefused(
            Message(N_("one of the systems joined another open wave meanwhile; try again"))
        ) from exc
    audit.record(
        session,
        actor=username,
        action="wave.add_systems",
        target_type=AUDIT_TARGET,
        target_id=wave.id,
        detail={"systems": [s.hostname for s in added]},
    )
    return added


def remove_system(session: Session, wave_id: int, system_id: int, *, actor: Actor) -> LegacySystem:
    wave = get_wave(session, wave_id, for_update=True)
    ensure_editable(wave)
    member = next((m for m in wave.members if m.system_id == system_id), None)
    if member is None:
        raise WaveMemberRefused(
            message(N_("system %(system)s is not in wave #%(wave)s"), system=system_id, wave=wave.id)
        )
    system = member.system
    wave.members.remove(member)
    transition_system(session, system, SystemState.LEGACY, actor=actor, reason=f"left wave #{wave.id}")
    system.target_cloud_id = None
    _back_to_draft(wave, "a system was removed after the check")
    session.flush()
    audit.record(
        session,
        actor=actor.username,
        action="wave.remove_system",
        target_type=AUDIT_TARGET,
        target_id=wave.id,
        detail={"system": system.hostname},
    )
    return system


def cancel_wave(session: Session, wave_id: int, *, actor: Actor, reason: str = "") -> MigrationWave:
    """Cancel a draft or checked wave: its systems go back to "legacy".  A running wave's systems
    are being migrated by their runbooks and roll back one by one; it cannot be cancelled."""
    wave = get_wave(session, wave_id, for_update=True)
    if wave.state == WaveState.RUNNING:
        raise WaveStateConflict(
            message(
                N_("wave %(wave)s is running: its runbooks are under way (each system rolls back on its own)"),
                wave=wave.id,
            )
        )
    if wave.state not in {WaveState.DRAFT, WaveState.CHECKED}:
        raise WaveStateConflict(message(N_("wave %(wave)s is %(state)s"), wave=wave.id, state=_state_word(wave)))
    username = actor.username
    WAVE_MACHINE.apply(wave, WaveState.CANCELLED, wave_id=wave.id)
    wave.cancelled_by = username
    wave.state_reason = (reason or "").strip()[:1000] or None
    for member in wave.members:
        member.active = False
        if member.system.state == SystemState.PLANNED:
            transition_system(
                session, member.system, SystemState.LEGACY, actor=actor, reason=f"wave #{wave.id} cancelled"
            )
            member.system.target_cloud_id = None
    audit.record(
        session,
        actor=username,
        action="wave.cancel",
        target_type=AUDIT_TARGET,
        target_id=wave.id,
        reason=reason or None,
    )
    return wave


# A legacy system's state as a word in a sentence.
SYSTEM_STATE_WORDS: dict[str, str] = {
    "legacy": N_("still in its server room"),
    "intranet": N_("on the e-government intranet"),
    "planned": N_("planned in a wave"),
    "migrating": N_("migrating"),
    "on_cloud": N_("on the cloud"),
    "rolled_back": N_("rolled back"),
    "decommissioned": N_("decommissioned"),
}


# The networks as words in a sentence.
NETWORK_WORDS: dict[str, str] = {
    "internet": N_("internet"),
    "extranet": N_("e-government extranet"),
    "intranet": N_("e-government intranet"),
}


def _does_not_fit(wave_id: int, reasons: list[Message]) -> Message:
    """The refusal to start a wave that does not fit: its first reason in words, and how many more
    (a reason is a sentence of its own, translated where it is shown)."""
    if not reasons:
        return message(N_("wave %(wave)s does not fit"), wave=wave_id)
    if len(reasons) == 1:
        return message(N_("wave %(wave)s does not fit: %(why)s"), wave=wave_id, why=reasons[0])
    return message(
        N_("wave %(wave)s does not fit: %(why)s; %(more)s more reasons in its check"),
        wave=wave_id,
        why=reasons[0],
        more=len(reasons) - 1,
    )


def fit_failure_text(result: dict[str, Any]) -> str:
    """Why a checked wave does not fit, in English (the wave's state reason, the CLI)."""
    return "; ".join(str(m) for m in fit_failure_messages(result))


# The quota's resources as words in a sentence; RAM is counted in MB and said in GB.
_SHORT_WORDS: dict[str, str] = {
    "cores": N_("%(n)s vCPU cores"),
    "ram_mb": N_("%(n)s GB RAM"),
    "instances": N_("%(n)s servers"),
}


def fit_failure_messages(result: dict[str, Any]) -> list[Message]:
    """Why a checked wave does not fit (at most 8 reasons, then how many more), as messages."""
    parts: list[Message] = []
    for line in result.get("quota", []):
        if line.get("no_quota"):
            parts.append(message(N_("%(department)s has no quota on the cloud"), department=line["department"]))
        elif line.get("shortfall"):
            short = [
                message(_SHORT_WORDS[k], n=f"{v / 1024:g}" if k == "ram_mb" else v)
                if k in _SHORT_WORDS
                else Message(f"{k} {v}")
                for k, v in sorted(line["shortfall"].items())
            ]
            what = short[0] if len(short) == 1 else _joined(short)
            parts.append(message(N_("%(department)s is short of %(what)s"), department=line["department"], what=what))
    for item in result.get("unplaced", []):
        why = item.get("message")
        reason = Message(why["msgid"], why.get("params", {})) if isinstance(why, dict) else Message(item["reason"])
        parts.append(message(N_("%(host)s: %(why)s"), host=item["hostname"], why=reason))
    stored = result.get("problem_messages")
    if isinstance(stored, list):
        parts.extend(Message(p["msgid"], p.get("params", {})) for p in stored if isinstance(p, dict))
    else:
        parts.extend(Message(str(p)) for p in result.get("problems", []))
    if len(parts) > 8:
        return [*parts[:8], message(N_("(and %(count)s more)"), count=len(parts) - 8)]
    return parts


def _joined(parts: list[Message]) -> Message:
    joined = parts[0]
    for part in parts[1:]:
        joined = message(N_("%(first)s, %(then)s"), first=joined, then=part)
    return joined


def start_wave(session: Session, wave_id: int, *, actor: Actor) -> MigrationWave:
    """Start a checked wave: who/when first, then the systems migrate (one work item each)."""
    wave = get_wave(session, wave_id, for_update=True)
    if wave.state == WaveState.RUNNING:
        raise WaveStateConflict(message(N_("wave %(wave)s is already running"), wave=wave.id))
    if wave.state not in {WaveState.DRAFT, WaveState.CHECKED}:
        raise WaveStateConflict(message(N_("wave %(wave)s is %(state)s"), wave=wave.id, state=_state_word(wave)))
    if not wave.members:
        raise WaveStateConflict(message(N_("wave %(wave)s has no systems"), wave=wave.id))
    result = wave.check_result or {}
    if wave.state != WaveState.CHECKED:
        if result and not result.get("fits") and result.get("members") == sorted(m.system_id for m in wave.members):
            raise WaveDoesNotFit(_does_not_fit(wave.id, fit_failure_messages(result)))
        raise WaveStateConflict(message(N_("wave %(wave)s must be checked (and fit) before it starts"), wave=wave.id))
    username = actor.username
    WAVE_MACHINE.apply(wave, WaveState.RUNNING, wave_id=wave.id)
    wave.started_by = username
    wave.state_reason = None
    audit.record(session, actor=username, action="wave.start", target_type=AUDIT_TARGET, target_id=wave.id)
    session.flush()
    for member in sorted(wave.members, key=lambda m: (m.system.complexity_score, m.system.hostname)):
        system = ensure_placeable(session, member.system, actor=actor, entry_point="wave.start")
        ensure_department_may_use(session, system, wave.cloud_id)
        transition_system(session, system, SystemState.MIGRATING, actor=actor, reason=f"wave #{wave.id} started")
        system.target_cloud_id = wave.cloud_id
        enqueue(
            session,
            MIGRATE_KIND,
            f"{MIGRATE_KIND}:{wave.id}:{system.id}",
            {"system_id": system.id, "wave_id": wave.id},
        )
    return wave


def finish_waves(session: Session, *, actor: Actor = WAVES_PROGRESS) -> list[int]:
    """Running waves whose members have all settled (on the cloud, decommissioned, rolled back) are done."""
    finished = []
    for wave in session.scalars(
        select(MigrationWave)
        .where(MigrationWave.state == WaveState.RUNNING)
        .options(selectinload(MigrationWave.members).joinedload(MigrationWaveMember.system))
    ).unique():
        states = [m.system.state for m in wave.members]
        if states and all(s in SETTLED_STATES for s in states):
            WAVE_MACHINE.apply(wave, WaveState.DONE, wave_id=wave.id)
            for member in wave.members:
                member.active = False
            audit.record(
                session,
                actor=actor.username,
                action="wave.done",
                target_type=AUDIT_TARGET,
                target_id=wave.id,
                detail={s: states.count(s) for s in sorted(set(states))},
            )
            finished.append(wave.id)
    return finished


def department_name(session: Session, key: str, locale: str) -> str:
    dept = session.scalar(select(Department).where(Department.key == key))
    return dept.display_name(locale) if dept else key
