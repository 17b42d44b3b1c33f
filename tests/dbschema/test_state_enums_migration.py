"""Revision 0014: the state columns get their CHECK constraints, the rows stay.

An old database (at 0013) holding requests, servers, moves and runbook runs in various
states is upgraded on each backend: every row and every event row that refers to them is
still there (SQLite's batch mode copies and drops each table: with foreign keys on, the drop
would have deleted the events by cascade), the states load as enum members, stray spelling
is normalised, and the database itself now refuses a state no enum knows.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

import pytest
from alembic import command
from sqlalchemy import Insert, column, func, insert, select, text
from sqlalchemy import table as sa_table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloudmgr.catalog.models import CatalogItem
from cloudmgr.config import Settings
from cloudmgr.db import Base, Database, utcnow
from cloudmgr.dbschema import alembic_config, current_revision, upgrade
from cloudmgr.inventory.models import LegacySystem, ServerRoom
from cloudmgr.moves.models import Move, MoveEvent
from cloudmgr.moves.states import MoveState
from cloudmgr.organisation.models import Cloud, Department
from cloudmgr.runbooks.models import RunbookEvent, RunbookRun, RunState
from cloudmgr.servicerequests.models import ManagedServer, RequestEvent, ServiceRequest
from cloudmgr.servicerequests.states import RequestState, ServerState

TABLES = ("service_requests", "managed_servers", "moves", "runbook_runs")
EVENT_TABLES = ("request_events", "move_events", "runbook_events")


def _insert_old(model: type[Base], **values: object) -> Insert:
    """An INSERT of exactly ``values`` into the model's table: no column of today's model that the
    old schema lacks is named (the model's Python-side defaults would name them)."""
    table = model.__table__
    return insert(sa_table(table.name, *(column(name, table.c[name].type) for name in values))).values(**values)


@pytest.fixture
def old_db(settings: Settings) -> Iterator[Database]:
    """A database at revision 0013 with the demo organisation and a flavor."""
    upgrade(settings.database_url, "0013")
    database = Database(settings.database_url)
    # Written with the columns 0013 has, not through today's models: those have columns later
    # revisions add (clouds.external_network, ...), which the old schema lacks.
    with database.engine.begin() as conn:
        conn.execute(
            _insert_old(
                Cloud,
                key="education",
                name_zh="教育云",
                name_en="Education cloud",
                kind="industry",
                level="province",
                os_cloud="sim",
                enabled=True,
                quota_drift_policy="repair",
                approval_policy={},
            )
        )
        conn.execute(
            _insert_old(
                Department, key="prov-education", name_zh="教育厅", name_en="Education department", level="province"
            )
        )
    yield database
    database.dispose()


def _fill(session: Session) -> dict[str, list[int]]:
    """Rows in several states of each machine, each with an event row."""
    cloud_id = session.scalars(select(Cloud.id).where(Cloud.key == "education")).one()
    dept_id = session.scalars(select(Department.id).where(Department.key == "prov-education")).one()
    flavor = CatalogItem(
        cloud_id=cloud_id, kind="flavor", external_id="1", cloud_name="m1", name_zh="m1", name_en="m1", vcpus=1
    )
    session.add(flavor)
    session.flush()
    ids: dict[str, list[int]] = {table: [] for table in TABLES}
    for n, state in enumerate((RequestState.DRAFT, RequestState.SUBMITTED, RequestState.ACTIVE, RequestState.RETIRED)):
        # The columns 0013 has (the model has more: the choices revision 0018 adds).
        request_id = session.execute(
            _insert_old(
                ServiceRequest,
                kind="create",
                department_id=dept_id,
                cloud_id=cloud_id,
                zone="internet",
                flavor_item_id=flavor.id,
                count=1,
                name_prefix=f"app{n}",
                justification="test",
                expires_on=date(2030, 1, 1),
                monthly_cost=Decimal("10.00"),
                created_by="staff",
                state=state.value,
                approval_steps=[],
                current_step=0,
                created_at=utcnow(),
                updated_at=utcnow(),
            ).returning(column("id"))
        ).scalar_one()
        session.add(RequestEvent(request_id=request_id, actor="t", action="x", from_state="draft", to_state=state))
        server = ManagedServer(
            request_id=request_id,
            index=1,
            department_id=dept_id,
            cloud_id=cloud_id,
            zone="internet",
            name=f"app{n}-01",
            flavor_item_id=flavor.id,
            vcpus=1,
            ram_mb=512,
            idempotency_key=f"k{n}",
            expires_on=date(2030, 1, 1),
            state=(ServerState.PENDING, ServerState.BUILDING, ServerState.ACTIVE, ServerState.DELETED)[n],
        )
        session.add(server)
        session.flush()
        ids["service_requests"].append(request_id)
        ids["managed_servers"].append(server.id)
    for state in (MoveState.REQUESTED, MoveState.AWAITING_CONFIRM, MoveState.FAILED):
        move = Move(kind="cold", cloud_id=cloud_id, reason="test", created_by="ops", state=state)
        session.add(move)
        session.flush()
        session.add(MoveEvent(move_id=move.id, actor="t", action="x", from_state="-", to_state=state))
        ids["moves"].append(move.id)
    # Not tests.inventory.helpers.make_system: it loads the Department model, whose admin_cidr
    # (0016) the old schema lacks.
    room = ServerRoom(code="old-room", name_zh="机房", name_en="room", department_id=dept_id)
    session.add(room)
    session.flush()
    system = LegacySystem(
        hostname="old-host-01",
        department_id=dept_id,
        server_room_id=room.id,
        application_system="测试系统",
        classification="non_classified",
        network="extranet",
        os_family="linux",
        os_name="CentOS",
        os_version="7.9",
        vcpus=4,
        ram_mb=8192,
        disk_gb=100,
        data_gb=20,
        cpu_p95_pct=30.0,
        ram_p95_pct=50.0,
        owner_name="张伟",
        owner_contact="0311-87001234",
    )
    session.add(system)
    session.flush()
    for state in (RunState.QUEUED, RunState.SUCCEEDED, RunState.ROLLED_BACK):
        run = RunbookRun(system_id=system.id, step="precheck", actor="ops", state=state)
        session.add(run)
        session.flush()
        session.add(RunbookEvent(run_id=run.id, counter=1, event="playbook_on_start"))
        ids["runbook_runs"].append(run.id)
    return ids


def _counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in TABLES + EVENT_TABLES}


def _refuses(database: Database, table: str, row_id: int) -> bool:
    try:
        with database.engine.begin() as conn:
            conn.execute(text(f"UPDATE {table} SET state = 'bogus' WHERE id = :id"), {"id": row_id})
    except IntegrityError:
        return True
    return False


def test_upgrade_keeps_the_rows_loads_enums_and_refuses_unknown_states(old_db: Database, settings: Settings) -> None:
    with old_db.unit_of_work() as uow:
        ids = _fill(uow.session)
    # Stray spelling an old version or a hand edit may have left: normalised, not refused.
    with old_db.engine.begin() as conn:
        conn.execute(
            text("UPDATE service_requests SET state = ' Active ' WHERE id = :id"), {"id": ids["service_requests"][2]}
        )
    # Before the upgrade nothing refuses a state no enum knows.
    assert not _refuses(old_db, "moves", ids["moves"][0])
    with old_db.engine.begin() as conn:
        conn.execute(text("UPDATE moves SET state = 'requested' WHERE id = :id"), {"id": ids["moves"][0]})
    before = _counts(old_db)
    old_db.dispose()

    upgrade(settings.database_url, "0014")

    assert current_revision(settings.database_url) == "0014"
    assert _counts(old_db) == before
    with old_db.engine.connect() as conn:
        requests = conn.execute(select(ServiceRequest.state).order_by(ServiceRequest.id)).scalars().all()
        servers = conn.execute(select(ManagedServer.state).order_by(ManagedServer.id)).scalars().all()
        moves = conn.execute(select(Move.state).order_by(Move.id)).scalars().all()
        runs = conn.execute(select(RunbookRun.state).order_by(RunbookRun.id)).scalars().all()
    assert requests == [RequestState.DRAFT, RequestState.SUBMITTED, RequestState.ACTIVE, RequestState.RETIRED]
    assert all(type(s) is RequestState for s in requests)
    assert servers == [ServerState.PENDING, ServerState.BUILDING, ServerState.ACTIVE, ServerState.DELETED]
    assert all(type(s) is ServerState for s in servers)
    assert moves == [MoveState.REQUESTED, MoveState.AWAITING_CONFIRM, MoveState.FAILED]
    assert all(type(s) is MoveState for s in moves)
    assert runs == [RunState.QUEUED, RunState.SUCCEEDED, RunState.ROLLED_BACK]
    assert all(type(s) is RunState for s in runs)
    for table in TABLES:
        assert _refuses(old_db, table, ids[table][0]), table
    # A filter with a string that is no state matches nothing; it does not raise.
    with old_db.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(ServiceRequest.state == "bogus")).scalar_one() == 0

    command.downgrade(alembic_config(settings.database_url), "0013")
    assert _counts(old_db) == before
    assert not _refuses(old_db, "moves", ids["moves"][0])
    old_db.dispose()


def test_upgrade_stops_on_a_state_no_enum_knows_and_changes_nothing(old_db: Database, settings: Settings) -> None:
    with old_db.unit_of_work() as uow:
        ids = _fill(uow.session)
    with old_db.engine.begin() as conn:
        conn.execute(text("UPDATE runbook_runs SET state = 'paused' WHERE id = :id"), {"id": ids["runbook_runs"][1]})
    old_db.dispose()

    with pytest.raises(RuntimeError, match=rf"runbook_runs has rows in a state .*#{ids['runbook_runs'][1]} 'paused'"):
        upgrade(settings.database_url, "0014")

    assert current_revision(settings.database_url) == "0013"
    with old_db.engine.connect() as conn:
        states = conn.execute(text("SELECT state FROM runbook_runs ORDER BY id")).scalars().all()
    assert states == ["queued", "paused", "rolled_back"]
    old_db.dispose()
