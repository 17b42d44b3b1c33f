"""Several systems into a wave from the systems list: each one through
:func:`~cloudmgr.programme.waves.add_systems` in its own savepoint, so each is checked as if added
alone (classified, the department's clouds, the zone, another open wave, its state) and one refused
system leaves the others added; the outcome names each refused one with the reason."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from cloudmgr.errors import DomainError
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.messages import N_, Message, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.programme.errors import WaveInvalid
from cloudmgr.programme.waves import MAX_MEMBERS, add_systems, ensure_editable, get_wave


@dataclass(frozen=True, slots=True)
class SystemRefused:
    system_id: int
    hostname: str
    error: DomainError


@dataclass(slots=True)
class WaveBulkOutcome:
    added: list[str] = field(default_factory=list)
    refused: list[SystemRefused] = field(default_factory=list)


def add_systems_each(session: Session, wave_id: int, system_ids: Iterable[int], *, actor: Actor) -> WaveBulkOutcome:
    """Add each of ``system_ids`` to the wave on its own (duplicates once, in the order given).

    The wave itself is checked once first: a wave that can no longer change refuses them all."""
    ids = list(dict.fromkeys(system_ids))
    if not ids:
        raise WaveInvalid(Message(N_("name at least one system to add")))
    if len(ids) > MAX_MEMBERS:
        raise WaveInvalid(message(N_("a wave holds at most %(max)s systems"), max=MAX_MEMBERS))
    ensure_editable(get_wave(session, wave_id))
    outcome = WaveBulkOutcome()
    for system_id in ids:
        savepoint = session.begin_nested()
        try:
            added = add_systems(session, wave_id, [system_id], actor=actor)
        except DomainError as exc:
            savepoint.rollback()
            system = session.get(LegacySystem, system_id)
            outcome.refused.append(SystemRefused(system_id, system.hostname if system else f"#{system_id}", exc))
        else:
            savepoint.commit()
            outcome.added.extend(s.hostname for s in added)
    return outcome
