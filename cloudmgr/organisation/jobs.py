"""Organisation work run by the scheduler's workers: the clouds' sync an administrator asked for
("sync now" on the admin pages).  It calls the clouds, so it never runs inside a request."""

from __future__ import annotations

from cloudmgr.audit import services as audit
from cloudmgr.db import Database
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Role
from cloudmgr.organisation.services import CLOUDS_SYNC_WORK
from cloudmgr.runtime import get_runtime
from cloudmgr.workqueue.services import ClaimedItem, GiveUp


def handle_clouds_sync(db: Database, item: ClaimedItem) -> None:
    """``cloudmgr clouds sync``: the zones' networks, each department's project, then the catalog;
    what it did is recorded in the audit log under the work item (the page shows it)."""
    from cloudmgr.catalog.services import read_rates, sync_catalog
    from cloudmgr.organisation.sync import sync_clouds

    runtime = get_runtime()
    actor = Actor(username=str(item.payload.get("actor", "system")), role=Role.ADMIN)
    results = sync_clouds(db, runtime.providers, actor=actor)
    catalog = sync_catalog(db, runtime.providers, read_rates(runtime.settings.rates_file), actor=actor)
    problems = [f"{r.cloud_key}: {problem}" for r in results for problem in r.problems]
    problems += [f"{c.cloud_key}: {c.problem}" for c in catalog if c.problem]
    with db.unit_of_work() as uow:
        audit.record(
            uow.session,
            actor=actor.username,
            action=CLOUDS_SYNC_WORK,
            target_type="work",
            target_id=item.id,
            detail={
                "clouds": len(results),
                "clouds_ok": sum(1 for r in results if r.ok),
                "projects": sum(r.projects_ensured for r in results),
                "zones": sum(r.zones_resolved for r in results),
                "catalog_added": sum(c.added for c in catalog if not c.problem),
                "catalog_gone": sum(c.gone for c in catalog if not c.problem),
                "problems": problems,
            },
        )
    if problems:
        raise GiveUp("; ".join(problems))
