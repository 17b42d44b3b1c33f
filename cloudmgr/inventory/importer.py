"""Importing the inventory of legacy servers: an Ansible YAML inventory, or CSV with the same
columns.  All or nothing: every host is validated first and every problem reported (host and
reason); only a clean file is imported, in the caller's one unit of work.

Re-importing updates systems in place (matched by hostname, never duplicated); systems already
past "legacy" keep their state, except that a system the file now marks classified leaves any
wave for "intranet".  Classifying takes effect at once; when servers for the system run on the
cloud an alert for the operators says they must leave it.  Declassifying never does: the file's
lower classification files a request an administrator must approve
(:mod:`cloudmgr.inventory.reclassification`).  ``only_new`` imports the hosts the database does
not have yet and leaves every stored system as it is (``make run``'s demo import).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloudmgr.audit import services as audit
from cloudmgr.automation.values import connection_problems
from cloudmgr.inventory.assessment import assess_all
from cloudmgr.inventory.errors import InventoryInvalid
from cloudmgr.inventory.inventory_file import REQUIRED_TEXT, HostEntry, read_inventory
from cloudmgr.inventory.models import Classification, LegacyNetwork, LegacySystem, OsFamily, ServerRoom, SystemState
from cloudmgr.inventory.services import AUDIT_TARGET, transition_system
from cloudmgr.messages import N_, message
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Department
from cloudmgr.text import bidi_problem

HOSTNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-_]{0,127}$")


ROOM_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9\-]{1,63}$")


#: (column, minimum, maximum): sizes are positive (data may be 0) and fit the columns.
INT_LIMITS = (
    ("vcpus", 1, 1024),
    ("ram_mb", 1, 64 * 1024 * 1024),
    ("disk_gb", 1, 10_000_000),
    ("data_gb", 0, 10_000_000),
)


TEXT_LIMITS = {
    "application_system": 128,
    "os_name": 64,
    "os_version": 32,
    "owner_name": 64,
    "owner_contact": 128,
    "ansible_host": 255,
    "server_room_name_zh": 128,
    "server_room_name_en": 128,
    "server_room_location": 255,
}


#: Systems in these states cannot silently become classified: somebody must look.
MOVING_STATES = frozenset({SystemState.MIGRATING, SystemState.ON_CLOUD, SystemState.DECOMMISSIONED})


MAX_BYTES = 5 * 1024 * 1024


@dataclass
class ValidHost:
    hostname: str
    department: Department
    room_code: str
    room: dict[str, str]
    fields: dict[str, Any]


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    out_of_scope: int = 0
    total: int = 0
    rooms_created: int = 0
    created_hosts: list[str] = field(default_factory=list)
    #: lowerings the file asked for, held for an administrator's approval (not applied)
    declassifications_held: int = 0
    held_hosts: list[str] = field(default_factory=list)
    #: systems classified while servers for them run on the cloud (an alert each)
    alerts_raised: int = 0
    #: stored systems left untouched because the import was "only new"
    skipped_existing: int = 0


def _text(values: Mapping[str, Any], key: str, reasons: list[str], *, required: bool) -> str | None:
    value = values.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            reasons.append(f"{key} is missing")
        return None
    if isinstance(value, (bool, dict, list)):
        reasons.append(f"{key} must be text")
        return None
    text = str(value).strip()
    if "\x00" in text:
        reasons.append(f"{key} contains a NUL character")
        return None
    bidi = bidi_problem(key, text)
    if bidi is not None:
        reasons.append(bidi)
        return None
    limit = TEXT_LIMITS.get(key)
    if limit and len(text) > limit:
        reasons.append(f"{key} is longer than {limit} characters")
    return text


def _integer(values: Mapping[str, Any], key: str, low: int, high: int, reasons: list[str]) -> int | None:
    raw = values.get(key)
    if raw is None or raw == "":
        reasons.append(f"{key} is missing")
        return None
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        reasons.append(f"{key} must be a whole number, not {raw!r}")
        return None
    try:
        value = int(raw) if not isinstance(raw, str) else int(raw.strip())
    except (TypeError, ValueError):
        reasons.append(f"{key} must be a whole number, not {raw!r}")
        return None
    if value < low:
        reasons.append(f"{key} must be {'positive' if low == 1 else f'at least {low}'}, not {value}")
        return None
    if value > high:
        reasons.append(f"{key} {value} is larger than {high}")
        return None
    return value


def _percent(values: Mapping[str, Any], key: str, reasons: list[str]) -> float | None:
    raw = values.get(key)
    if raw is None or raw == "":
        reasons.append(f"{key} is missing")
        return None
    try:
        if isinstance(raw, bool):
            raise ValueError
        value = float(raw)
    except (TypeError, ValueError):
        reasons.append(f"{key} must be a number, not {raw!r}")
        return None
    if math.isnan(value) or not 0 <= value <= 100:
        reasons.append(f"{key} must be between 0 and 100, not {raw}")
        return None
    return value


def _choice(values: Mapping[str, Any], key: str, choices: Iterable[str], reasons: list[str]) -> str | None:
    allowed = list(choices)
    raw = values.get(key)
    if raw is None or raw == "":
        reasons.append(f"{key} is missing (one of {', '.join(allowed)})")
        return None
    if not isinstance(raw, str) or raw.strip() not in allowed:
        reasons.append(f"{key} {raw!r} is not one of {', '.join(allowed)}")
        return None
    return raw.strip()


def _room_problems(
    room_code: str, department: Department | None, rooms: Mapping[str, ServerRoom], room_departments: dict[str, str]
) -> list[str]:
    """A server room's code is well formed and the room belongs to one department (in the file and stored);
    ``room_departments`` remembers, across the file's hosts, whose each room is."""
    if not ROOM_CODE_RE.match(room_code):
        return [f"server_room {room_code!r} must be 2-64 lowercase letters, digits or '-'"]
    if department is None:
        return []
    other = room_departments.setdefault(room_code, department.key)
    stored = rooms.get(room_code)
    if other != department.key:
        return [f"server room {room_code} belongs to department {other} elsewhere in the file"]
    if stored is not None and stored.department_id != department.id:
        return [f"server room {room_code} already belongs to another department"]
    return []


def _dependencies(values: Mapping[str, Any], hostname: str, known_hosts: Set[str], reasons: list[str]) -> list[str]:
    """The hosts a system depends on (each once), every one in the file or already stored."""
    deps_raw = values.get("dependencies") or []
    deps: list[str] = []
    if not isinstance(deps_raw, list) or not all(isinstance(d, str) for d in deps_raw):
        reasons.append("dependencies must be a list of hostnames")
        return deps
    for dep in deps_raw:
        if dep == hostname:
            reasons.append("a system cannot depend on itself")
        elif dep not in known_hosts:
            reasons.append(f"depends on unknown host {dep!r}")
        elif dep not in deps:
            deps.append(dep)
    return deps


def _due_date(values: Mapping[str, Any], reasons: list[str]) -> date | None:
    if values.get("due_date") in (None, ""):
        return None
    raw_due = values["due_date"]
    if isinstance(raw_due, date):
        return raw_due
    try:
        return date.fromisoformat(str(raw_due).strip())
    except ValueError:
        reasons.append(f"due_date {raw_due!r} is not a date (YYYY-MM-DD)")
        return None


def validate(
    session: Session, entries: list[HostEntry], problems: list[tuple[str, str]]
) -> tuple[list[ValidHost], list[tuple[str, str]]]:
    """Check every host against the database and the file itself; every problem is listed."""
    problems = list(problems)
    departments = {d.key: d for d in session.scalars(select(Department))}
    rooms = {r.code: r for r in session.scalars(select(ServerRoom))}
    existing = {s.hostname: s for s in session.scalars(select(LegacySystem))}
    file_hosts = {e.hostname for e in entries}
    room_departments: dict[str, str] = {}
    valid: list[ValidHost] = []
    for entry in entries:
        v = entry.values
        reasons: list[str] = []
        if not HOSTNAME_RE.match(entry.hostname):
            reasons.append("hostname must be 1-128 letters, digits, '.', '-' or '_'")
        texts = {key: _text(v, key, reasons, required=key in REQUIRED_TEXT) for key in TEXT_LIMITS}
        # Ansible connects with these: data of a fixed shape, never a template or a shell word.
        reasons.extend(connection_problems(v, texts["ansible_host"]))
        dept_key = _text(v, "department", reasons, required=True)
        room_code = _text(v, "server_room", reasons, required=True)
        department = departments.get(dept_key) if dept_key else None
        if dept_key and department is None:
            reasons.append(f"unknown department {dept_key!r} (not in the departments file)")
        if room_code:
            reasons.extend(_room_problems(room_code, department, rooms, room_departments))
        classification = _choice(v, "classification", [c.value for c in Classification], reasons)
        network = _choice(v, "network", [n.value for n in LegacyNetwork], reasons)
        os_family = _choice(v, "os_family", [f.value for f in OsFamily], reasons)
        ints = {key: _integer(v, key, low, high, reasons) for key, low, high in INT_LIMITS}
        cpu = _percent(v, "cpu_p95_pct", reasons)
        ram = _percent(v, "ram_p95_pct", reasons)
        deps = _dependencies(v, entry.hostname, file_hosts | existing.keys(), reasons)
        if classification == Classification.CLASSIFIED and network in {LegacyNetwork.INTERNET, LegacyNetwork.EXTRANET}:
            reasons.append(
                f"a classified system cannot be on the {network}: classified business runs on the intranet "
                "(fix the classification or the network)"
            )
        # A system marked classified while already migrating or on the cloud is not refused:
        # the classification applies and the operators are alerted that it must leave the cloud.
        due = _due_date(v, reasons)
        if reasons:
            prefix = f"{entry.where}: " if entry.where.startswith("line") else ""
            problems.extend((entry.hostname, prefix + reason) for reason in reasons)
            continue
        assert department is not None and room_code is not None
        fields = {
            "application_system": texts["application_system"],
            "classification": classification,
            "network": network,
            "os_family": os_family,
            "os_name": texts["os_name"],
            "os_version": texts["os_version"],
            **ints,
            "cpu_p95_pct": cpu,
            "ram_p95_pct": ram,
            "dependencies": deps,
            "owner_name": texts["owner_name"],
            "owner_contact": texts["owner_contact"],
            "ansible_host": texts["ansible_host"],
            "due_date": due,
        }
        room = {
            "name_zh": texts["server_room_name_zh"] or f"{department.name_zh}机房",
            "name_en": texts["server_room_name_en"] or f"{department.name_en} server room",
            "location": texts["server_room_location"] or "",
        }
        valid.append(ValidHost(entry.hostname, department, room_code, room, fields))
    return valid, problems


def _out_of_scope(fields: Mapping[str, Any]) -> bool:
    return bool(fields["classification"] == Classification.CLASSIFIED or fields["network"] == LegacyNetwork.INTRANET)


def import_inventory(
    session: Session,
    text: str,
    *,
    filename: str,
    actor: Actor,
    entry_point: str = "inventory.import",
    only_new: bool = False,
) -> ImportResult:
    """Validate the whole file, then import it; raises InventoryInvalid (with every problem)
    before writing anything when one host is bad.

    ``entry_point`` names the path for the audit log ("inventory.import.cli", ".page", ".api").
    A lowered classification is held for approval; ``only_new`` leaves stored systems alone."""
    username = actor.username
    valid = _checked_hosts(session, text, filename)
    result = ImportResult(total=len(valid))
    rooms = _store_rooms(session, valid, only_new=only_new, result=result)
    existing = {s.hostname: s for s in session.scalars(select(LegacySystem))}
    step = _ImportStep(session, filename=filename, actor=actor, entry_point=entry_point, result=result)
    for host in valid:
        system = existing.get(host.hostname)
        if system is not None and only_new:
            result.skipped_existing += 1
        elif system is None:
            step.create(host, rooms[host.room_code])
        else:
            step.update(system, host, rooms[host.room_code])
    session.flush()
    assess_all(session)
    _audit_import(session, result, username=username, filename=filename, entry_point=entry_point, only_new=only_new)
    return result


def _checked_hosts(session: Session, text: str, filename: str) -> list[ValidHost]:
    """Every host of the file, checked; InventoryInvalid with every problem when one is bad."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise InventoryInvalid("the inventory file is too large", [("(file)", f"larger than {MAX_BYTES} bytes")])
    entries, problems = read_inventory(text, filename=filename)
    valid, problems = validate(session, entries, problems)
    if not problems and not valid:
        problems = [("(file)", "no hosts in the inventory")]
    if problems:
        raise InventoryInvalid(f"{len(problems)} problem(s) in {filename}: nothing was imported", problems)
    return valid


def _store_rooms(
    session: Session, valid: list[ValidHost], *, only_new: bool, result: ImportResult
) -> dict[str, ServerRoom]:
    """The server rooms the hosts name, created when new and (unless ``only_new``) updated."""
    rooms = {r.code: r for r in session.scalars(select(ServerRoom))}
    for host in valid:
        room = rooms.get(host.room_code)
        if room is None:
            room = ServerRoom(code=host.room_code, department_id=host.department.id, **host.room)
            session.add(room)
            rooms[host.room_code] = room
            result.rooms_created += 1
        elif not only_new:
            for key, value in host.room.items():
                if getattr(room, key) != value:
                    setattr(room, key, value)
    session.flush()
    return rooms


@dataclass
class _ImportStep:
    """Creating or updating one system of an import, counted in ``result`` and audited."""

    session: Session
    filename: str
    actor: Actor
    entry_point: str
    result: ImportResult

    def create(self, host: ValidHost, room: ServerRoom) -> None:
        fields = {**host.fields, "department_id": host.department.id}
        out = _out_of_scope(fields)
        self.result.out_of_scope += int(out)
        system = LegacySystem(
            hostname=host.hostname,
            server_room=room,
            state=SystemState.INTRANET if out else SystemState.LEGACY,
            **fields,
        )
        self.session.add(system)
        self.session.flush()
        self.result.created += 1
        self.result.created_hosts.append(host.hostname)
        audit.record(
            self.session,
            actor=self.actor.username,
            action="legacy_system.imported",
            target_type=AUDIT_TARGET,
            target_id=system.id,
            reason=message(N_("imported from %(file)s"), file=self.filename),
            detail={"hostname": host.hostname, "state": system.state},
        )

    def update(self, system: LegacySystem, host: ValidHost, room: ServerRoom) -> None:
        from cloudmgr.inventory import reclassification

        session, result, actor, filename = self.session, self.result, self.actor, self.filename
        username = actor.username
        fields = {**host.fields, "department_id": host.department.id}
        out = _out_of_scope(fields)
        result.out_of_scope += int(out)
        if reclassification.is_lowering(
            system.classification, system.network, fields["classification"], fields["network"]
        ):
            # never lowered by a file: held for an administrator's approval, the rest applies
            reclassification.request_declassification(
                session,
                system,
                to_classification=fields["classification"],
                to_network=fields["network"],
                actor=actor,
                entry_point=self.entry_point,
                reason=f"re-imported from {filename}",
            )
            result.declassifications_held += 1
            result.held_hosts.append(host.hostname)
            fields["classification"], fields["network"] = system.classification, system.network
            result.out_of_scope += int(_out_of_scope(fields)) - int(out)
            out = _out_of_scope(fields)
        raising = reclassification.is_raising(
            system.classification, system.network, fields["classification"], fields["network"]
        )
        changed = sorted(k for k, value in fields.items() if getattr(system, k) != value)
        for key in changed:
            setattr(system, key, fields[key])
        if system.server_room_id != room.id:
            system.server_room = room
            changed.append("server_room")
        state_before = system.state
        if out and system.state in {SystemState.LEGACY, SystemState.PLANNED, SystemState.ROLLED_BACK}:
            transition_system(
                session,
                system,
                SystemState.INTRANET,
                actor=actor,
                reason=message(N_("out of scope in %(file)s"), file=filename),
            )
        if raising and reclassification.alert_if_on_cloud(session, system, actor=actor, entry_point=self.entry_point):
            result.alerts_raised += 1
        if changed:
            result.updated += 1
            audit.record(
                session,
                actor=username,
                action="legacy_system.updated",
                target_type=AUDIT_TARGET,
                target_id=system.id,
                reason=message(N_("re-imported from %(file)s"), file=filename),
                detail={"hostname": host.hostname, "changed": changed, "state": system.state},
            )
        elif system.state == state_before:
            result.unchanged += 1
        else:
            result.updated += 1


def _audit_import(
    session: Session, result: ImportResult, *, username: str, filename: str, entry_point: str, only_new: bool
) -> None:
    audit.record(
        session,
        actor=username,
        action="inventory.imported",
        target_type="inventory",
        target_id=filename[:128],
        detail={
            "total": result.total,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "out_of_scope": result.out_of_scope,
            "declassifications_held": result.declassifications_held,
            "alerts_raised": result.alerts_raised,
            "skipped_existing": result.skipped_existing,
            "entry_point": entry_point,
            "only_new": only_new,
        },
    )
