"""The waves as lists: a searched, filtered page of them (SQL), and the waves systems may still join."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from cloudmgr.paging import Page, PageRequest, paginate, search
from cloudmgr.programme.models import MigrationWave, WaveState


def waves_page(session: Session, params: PageRequest, *, state: str | None = None) -> Page[MigrationWave]:
    """Waves newest first, searched in their name and author, narrowed to one state."""
    query = select(MigrationWave).options(joinedload(MigrationWave.cloud))
    if state in {s.value for s in WaveState}:
        query = query.where(MigrationWave.state == state)
    query = search(query, params.q, MigrationWave.id, MigrationWave.name, MigrationWave.created_by)
    return paginate(session, query, params, MigrationWave.id.desc())


def editable_waves(session: Session) -> Sequence[MigrationWave]:
    """The waves whose systems may still change (draft or checked), newest first."""
    query = (
        select(MigrationWave)
        .options(joinedload(MigrationWave.cloud))
        .where(MigrationWave.state.in_((WaveState.DRAFT, WaveState.CHECKED)))
        .order_by(MigrationWave.id.desc())
    )
    return session.scalars(query).unique().all()
