"""The order form's catalogue is the service's: a department orders only on its own enabled
clouds, whatever cloud key the form or the URL names (issue 15: the wall out of the view)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from cloudmgr.errors import PermissionDenied
from cloudmgr.organisation import services as org
from cloudmgr.organisation.errors import UnknownCloud
from cloudmgr.organisation.models import Cloud
from cloudmgr.servicerequests import services as sr
from tests.journey_fixtures import Journey


def test_a_department_orders_only_on_its_own_enabled_clouds(journey: Journey) -> None:
    j = journey
    assert j.staff.department_id is not None
    with j.rt.db.unit_of_work() as uow:
        session = uow.session
        own = {link.cloud.key for link in org.clouds_of_department(session, j.staff.department_id)}
        others = set(session.scalars(select(Cloud.key))) - own
        assert own and others, "the demo organisation links some clouds to the department and not others"

        listing = sr.order_catalog(session, j.staff, None)
        assert {c.key for c in listing.clouds} == own
        assert listing.cloud is None and not listing.flavors

        chosen = sr.order_catalog(session, j.staff, "education")
        assert chosen.cloud is not None and chosen.cloud.key == "education"
        assert chosen.flavors and chosen.images
        assert chosen.balance is not None and chosen.balance.cloud_key == "education"

        for key in (sorted(others)[0], "no-such-cloud"):
            with pytest.raises(UnknownCloud):
                sr.order_catalog(session, j.staff, key)


def test_a_disabled_cloud_is_not_offered(journey: Journey) -> None:
    j = journey
    with j.rt.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == "education"))
        assert cloud is not None
        cloud.enabled = False
    with j.rt.db.unit_of_work() as uow:
        assert "education" not in {c.key for c in sr.order_catalog(uow.session, j.staff, None).clouds}
        with pytest.raises(UnknownCloud):
            sr.order_catalog(uow.session, j.staff, "education")


def test_only_department_users_order(journey: Journey) -> None:
    j = journey
    with j.rt.db.unit_of_work() as uow:
        for actor in (j.operator, j.finance):
            with pytest.raises(PermissionDenied):
                sr.order_catalog(uow.session, actor, "education")
