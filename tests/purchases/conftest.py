"""The purchase tests run on the self-service journey state (synced clouds, catalog, quotas),
copied from the web tests' session template on SQLite (built per test on PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import User
from cloudmgr.runtime import Runtime
from tests.journey_fixtures import Journey
from tests.web.conftest import journey_rt  # noqa: F401  (a fixture)


@pytest.fixture
def pj(journey_rt: Runtime) -> Journey:  # noqa: F811
    with journey_rt.db.unit_of_work() as uow:
        users = {u.username: Actor.of(u) for u in uow.session.scalars(select(User))}
    return Journey(journey_rt, users["zhangwei"], users["lina"], users["operator"], users["finance"], users["wangfang"])
