"""What a page shows as a button is what the service allows: ``may_submit``, ``may_cancel``,
``may_retry`` and ``may_decide`` are the service's own rules (issue 15), and the service
refuses exactly when they say no."""

from __future__ import annotations

import pytest

from cloudmgr.errors import DomainError
from cloudmgr.servicerequests import services as sr
from tests.journey_fixtures import Journey


def _draft(j: Journey) -> int:
    with j.rt.db.unit_of_work() as uow:
        return sr.create_request(uow.session, j.staff, j.form(1), submit=False, settings=j.rt.settings).id


def test_may_submit_and_may_cancel_agree_with_the_service(journey: Journey) -> None:
    j = journey
    request_id = _draft(j)
    with j.rt.db.unit_of_work() as uow:
        draft = sr.get_request(uow.session, j.staff, request_id)
        assert sr.may_submit(j.staff, draft) and sr.may_submit(j.head, draft)
        assert not sr.may_submit(j.operator, draft)
        assert sr.may_cancel(j.staff, draft) and sr.may_cancel(j.head, draft) and sr.may_cancel(j.operator, draft)
        assert not sr.may_cancel(j.finance, draft)
    # The operator is refused the submission the page would not offer them ...
    with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
        sr.submit_request(uow.session, j.operator, request_id, settings=j.rt.settings)
    # ... and finance the cancellation.
    with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
        sr.cancel_request(uow.session, j.finance, request_id, reason="not mine")
    with j.rt.db.unit_of_work() as uow:
        sr.submit_request(uow.session, j.staff, request_id, settings=j.rt.settings)
    with j.rt.db.unit_of_work() as uow:
        submitted = sr.get_request(uow.session, j.staff, request_id)
        assert not sr.may_submit(j.staff, submitted)  # only a draft is submitted
        assert sr.may_decide(uow.session, j.head, submitted)
        assert not sr.may_decide(uow.session, j.staff, submitted)
        assert sr.may_cancel(j.staff, submitted)


def test_may_retry_is_the_operators(journey: Journey) -> None:
    j = journey
    assert sr.may_retry(j.operator)
    for actor in (j.staff, j.head, j.finance):
        assert not sr.may_retry(actor)
        with pytest.raises(DomainError), j.rt.db.unit_of_work() as uow:
            sr.retry_server(uow.session, actor, 1)
