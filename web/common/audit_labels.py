"""The audit log's action keys (``auth.login``, ``request.approve``, ``volume.orphan.adopt.done``)
and target types (``service_request``) as words in the page's language.

A key is the thing acted on (the longest known prefix: ``quota.change``, ``volume.backup``, …)
followed by what happened (one or more known steps: ``orphan``, ``adopt``, ``done``).  A few
keys read better whole and are in ``WHOLE``.  :func:`action_label` answers ``None`` for a key it
cannot read, and the page shows that key as it is (in monospace): ``tests/web/test_audit_labels.py``
fails when any key cloudmgr records has no label.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

SUBJECTS: Mapping[str, object] = {
    "address": _l("Public address"),
    "auth": _l("Sign-in"),
    "capacity": _l("Capacity"),
    "clouds": _l("Clouds"),
    "planner": _l("Capacity planner"),
    "quotas": _l("Quotas"),
    "catalog": _l("Catalog"),
    "cloud": _l("Cloud"),
    "consolidation": _l("Consolidation"),
    "department": _l("Department"),
    "firewall_template": _l("Firewall template"),
    "inventory": _l("Inventory"),
    "legacy_system": _l("Legacy system"),
    "move": _l("Server move"),
    "network_line": _l("Dedicated line"),
    "network_line_rental": _l("Line rental request"),
    "organisation": _l("Organisation"),
    "purchase": _l("Purchase"),
    "quota": _l("Quota"),
    "quota.change": _l("Quota change request"),
    "quota.cloud": _l("Quota on the cloud"),
    "quota.ledger": _l("Quota ledger"),
    "quota.drift": _l("Quota drift"),
    "request": _l("Request"),
    "runbook": _l("Runbook"),
    "server": _l("Server"),
    "server.snapshot": _l("Server snapshot"),
    "server_room": _l("Server room"),
    "ssh_key": _l("SSH key"),
    "token": _l("API token"),
    "user": _l("User"),
    "volume": _l("Volume"),
    "volume.backup": _l("Volume backup"),
    "volume.backup_schedule": _l("Backup schedule"),
    "volume.snapshot": _l("Volume snapshot"),
    "wave": _l("Migration wave"),
    "server_snapshot": _l("Server snapshot"),
    "volume_backup": _l("Volume backup"),
    "volume_snapshot": _l("Volume snapshot"),
}

STEPS: Mapping[str, object] = {
    "active": _l("became active"),
    "add_systems": _l("systems added"),
    "added": _l("added"),
    "address_locked": _l("address locked"),
    "admin_network_set": _l("admin network set"),
    "adopt": _l("adopt"),
    "apply": _l("applied from the files"),
    "sync_now": _l("synced from the files"),
    "row_refused": _l("row refused"),
    "approve": _l("approve"),
    "block": _l("block"),
    "edit": _l("edit"),
    "renewed": _l("renewed"),
    "approved": _l("approved"),
    "associated": _l("associated"),
    "attach": _l("attachment added"),
    "attached": _l("attached"),
    "backup": _l("backup"),
    "cancel": _l("cancel"),
    "check": _l("check"),
    "close": _l("closed"),
    "configure": _l("configure"),
    "confirm": _l("confirm"),
    "console": _l("console opened"),
    "create": _l("create"),
    "create_external": _l("created from the directory"),
    "created": _l("created"),
    "delete": _l("delete"),
    "deleted": _l("deleted"),
    "done": _l("done"),
    "drain_refused": _l("drain refused"),
    "expired_stop": _l("stopped at expiry"),
    "export": _l("export"),
    "extend": _l("extend"),
    "fail": _l("failed"),
    "failed": _l("failed"),
    "finish": _l("finished"),
    "import": _l("import"),
    "imported": _l("imported"),
    "interrupted": _l("interrupted"),
    "issue": _l("issued"),
    "kept": _l("kept"),
    "locked": _l("account locked"),
    "login": _l("signed in"),
    "login_failed": _l("sign-in failed"),
    "login_refused_address_locked": _l("sign-in refused (address locked)"),
    "login_refused_disabled": _l("sign-in refused (account disabled)"),
    "login_refused_locked": _l("sign-in refused (account locked)"),
    "logout": _l("signed out"),
    "migrated": _l("migrated"),
    "move_undone": _l("move undone"),
    "moved": _l("moved"),
    "offer": _l("offer changed"),
    "orphan": _l("orphan found"),
    "password_reset": _l("password reset"),
    "placement_refused": _l("placement refused (classified)"),
    "plan": _l("plan"),
    "private_key_refused": _l("private key refused"),
    "provisioned": _l("provisioned"),
    "prune": _l("old copies pruned"),
    "ready": _l("ready"),
    "reject": _l("reject"),
    "rejected": _l("rejected"),
    "release": _l("release"),
    "released": _l("released"),
    "remove_system": _l("system removed"),
    "request": _l("requested"),
    "resize": _l("resize"),
    "restore_backup": _l("restored from a backup"),
    "restore_failed": _l("restore failed"),
    "restore_snapshot": _l("restore from a snapshot"),
    "restored": _l("restored"),
    "resume": _l("resume"),
    "retire": _l("retire"),
    "retry": _l("retry"),
    "revert": _l("revert"),
    "reverted": _l("reverted"),
    "revoke": _l("revoked"),
    "role_change": _l("role changed"),
    "self_approved": _l("approved by its own author (allowed exception)"),
    "self_decided": _l("decided by its own author (allowed exception)"),
    "self_rejected": _l("rejected by its own author (allowed exception)"),
    "sessions_ended": _l("sessions ended"),
    "set": _l("set"),
    "set_failed": _l("setting failed"),
    "skipped": _l("skipped"),
    "snapshot": _l("snapshot"),
    "start": _l("start"),
    "stop": _l("stop"),
    "submit": _l("submit"),
    "sync": _l("sync"),
    "target_set": _l("target cloud set"),
    "transition": _l("state changed"),
    "undo_record": _l("undo recorded"),
    "unlock": _l("account unlocked"),
    "unlock_address": _l("address unlocked"),
    "update": _l("update"),
    "update_external": _l("updated from the directory"),
    "updated": _l("updated by a re-import"),
    "withdraw": _l("withdraw"),
    "declassification_requested": _l("declassification requested (waits for an administrator)"),
    "declassification_approved": _l("declassification approved"),
    "declassification_rejected": _l("declassification rejected"),
    "reclassified_on_cloud": _l("classified with servers on the cloud (alert)"),
    "reclassification_alert_closed": _l("reclassification alert closed"),
    "adopted": _l("adopted"),
    "reboot": _l("reboot"),
    "move": _l("move"),
    "succeeded": _l("succeeded"),
    "vanished": _l("vanished from the cloud"),
    "disable": _l("disabled"),
    "enable": _l("enabled"),
    "rebuild": _l("rebuild"),
}

TARGET_TYPES: Mapping[str, object] = {
    "address": _l("Public address"),
    "capacity_snapshot": _l("Capacity"),
    "catalog_item": _l("Catalog item"),
    "cloud": _l("Cloud"),
    "consolidation_run": _l("Consolidation"),
    "department": _l("Department"),
    "firewall_template": _l("Firewall template"),
    "inventory": _l("Inventory"),
    "legacy_system": _l("Legacy system"),
    "managed_server": _l("Server"),
    "migration_wave": _l("Migration wave"),
    "organisation": _l("Organisation"),
    "purchase_request": _l("Purchase"),
    "quota": _l("Quota"),
    "quota_change_request": _l("Quota change request"),
    "runbook_run": _l("Runbook"),
    "server": _l("Server"),
    "server_move": _l("Server move"),
    "server_room": _l("Server room"),
    "server_snapshot": _l("Server snapshot"),
    "service_request": _l("Request"),
    "ssh_key": _l("SSH key"),
    "api_token": _l("API token"),
    "user": _l("User"),
    "volume": _l("Volume"),
    "volume_backup": _l("Volume backup"),
    "volume_snapshot": _l("Volume snapshot"),
    "backup_schedule": _l("Backup schedule"),
    "backup_schedules": _l("Backup schedule"),
    "cloud_server": _l("Server on the cloud"),
    "managed_volume": _l("Volume"),
    "move": _l("Server move"),
    "orphan_resource": _l("Orphaned resource"),
    "quota_change": _l("Quota change request"),
    "volume_snapshot_records": _l("Volume snapshot"),
    "volume_backup_records": _l("Volume backup"),
    "server_snapshot_records": _l("Server snapshot"),
    "planner_row": _l("Planner row"),
    "compute_host": _l("Compute host"),
    "work": _l("Background job"),
}


def action_label(key: str) -> str | None:
    """``auth.login`` → 登录 · 已登录, or None when a part of the key is unknown."""
    parts = key.split(".")
    for cut in range(len(parts), 0, -1):
        subject = ".".join(parts[:cut])
        if subject in SUBJECTS:
            steps = parts[cut:]
            if not steps or any(step not in STEPS for step in steps):
                continue  # volume.backup: the volume, backed up
            words = [str(SUBJECTS[subject])] + [str(STEPS[step]) for step in steps]
            label: str = gettext("%(subject)s: %(what)s", subject=words[0], what=" · ".join(words[1:]))
            return label
    if len(parts) == 1 and key in STEPS:
        return str(STEPS[key])
    return None


def target_type_label(key: str) -> str | None:
    label = TARGET_TYPES.get(key) or SUBJECTS.get(key)
    return str(label) if label is not None else None
