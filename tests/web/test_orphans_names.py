"""The orphans page names the department whose project holds an orphan (issue 18): the project
id alone told an operator nothing; it stays beside the name, small and monospace."""

from __future__ import annotations

import pytest
from flask import Flask

from cloudmgr.runtime import Runtime
from cloudmgr.servicerequests.jobs import reconcile_requests
from tests.web.helpers import Journey, logged_in
from tests.web.test_orphans import _education
from web import create_app


@pytest.fixture
def app(journey_rt: Runtime) -> Flask:
    return create_app(runtime=journey_rt)


def test_an_orphans_project_is_shown_with_its_departments_name(app: Flask, journey: Journey) -> None:
    provider, project, _public = _education(journey)
    provider.create_volume(project, "stray-disk", 20, None, "cm-r801-s1-d1")
    reconcile_requests(journey.rt.db, journey.rt.providers, hold_days=14)
    html = logged_in(app, "operator").get("/ops/orphans").get_data(as_text=True)
    # The whole row of the orphan (its bulk-action checkbox names it too).
    row = next(part for part in html.split("<tr") if "stray-disk" in part).split("</tr>")[0]
    assert f'省教育厅<br><code class="small">{project}</code>' in row
