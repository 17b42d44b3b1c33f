"""The state-machine helper, and the five machines built with it (issue 15)."""

from __future__ import annotations

import ast
import enum
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloudmgr.errors import Conflict
from cloudmgr.inventory.errors import InvalidSystemTransition
from cloudmgr.inventory.models import SystemState
from cloudmgr.inventory.services import SYSTEM_MACHINE
from cloudmgr.moves.errors import InvalidMoveTransition
from cloudmgr.moves.states import MACHINES as MOVE_MACHINES
from cloudmgr.moves.states import MoveKind, MoveState
from cloudmgr.programme.errors import WaveStateConflict
from cloudmgr.programme.models import WAVE_MACHINE, WaveState
from cloudmgr.purchases.errors import PurchaseTransitionInvalid
from cloudmgr.purchases.models import PurchaseState
from cloudmgr.purchases.services import PURCHASE_MACHINE
from cloudmgr.servicerequests.errors import InvalidTransition
from cloudmgr.servicerequests.states import REQUEST_MACHINE, REQUEST_TRANSITIONS, RequestState
from cloudmgr.statemachine import StateMachine

ROOT = Path(__file__).resolve().parent.parent


class Door(enum.StrEnum):
    OPEN = "open"
    SHUT = "shut"
    LOCKED = "locked"
    GONE = "gone"


class DoorStuck(Conflict):
    code = "door_stuck"


DOOR = StateMachine(
    "door",
    Door,
    transitions={Door.OPEN: {Door.SHUT, Door.GONE}, Door.SHUT: {Door.OPEN}},
    events={"lock": {Door.SHUT: Door.LOCKED}, "unlock": {Door.LOCKED: Door.SHUT}},
    error=DoorStuck,
    message="the {name} of {room} is {current}: it cannot become {target}",
    stamps={Door.LOCKED: "locked_at"},
)


@dataclass
class Room:
    state: str
    locked_at: datetime | None = None


def test_check_allows_the_table_and_raises_the_domain_error_otherwise() -> None:
    assert DOOR.check("open", Door.SHUT) is Door.SHUT
    assert DOOR.check(Door.SHUT, "open") is Door.OPEN
    with pytest.raises(DoorStuck) as refused:
        DOOR.check(Door.OPEN, Door.LOCKED, room="the hall")
    assert refused.value.message == "the door of the hall is open: it cannot become locked"
    assert (refused.value.code, refused.value.http_status) == ("door_stuck", 409)


def test_unknown_states_are_the_domain_error_not_a_value_error() -> None:
    with pytest.raises(DoorStuck, match="unknown door state 'ajar'"):
        DOOR.check("ajar", Door.SHUT)
    with pytest.raises(DoorStuck, match="unknown door state 'ajar'"):
        DOOR.check(Door.OPEN, "ajar")
    assert not DOOR.can("open", "ajar")
    assert not DOOR.can("ajar", "open")


def test_events_name_transitions_and_are_transitions_too() -> None:
    assert DOOR.fire("shut", "lock") is Door.LOCKED
    assert DOOR.fire(Door.LOCKED, "unlock") is Door.SHUT
    assert DOOR.allowed(Door.SHUT) == {Door.OPEN, Door.LOCKED}
    with pytest.raises(DoorStuck, match="door that is open cannot be locked"):
        DOOR.fire(Door.OPEN, "lock")
    with pytest.raises(DoorStuck, match="door that is open cannot be kicked"):
        DOOR.fire(Door.OPEN, "kick")


def test_terminal_and_open_states() -> None:
    assert DOOR.terminal == {Door.GONE}
    assert DOOR.open_states == {Door.OPEN, Door.SHUT, Door.LOCKED}
    assert DOOR.is_terminal("gone") and not DOOR.is_open("gone")
    assert REQUEST_MACHINE.open_states == {
        RequestState.DRAFT,
        RequestState.SUBMITTED,
        RequestState.APPROVED,
        RequestState.PROVISIONING,
    }


def test_apply_sets_the_state_stamps_it_and_returns_the_previous_one() -> None:
    room = Room(state="shut")
    when = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert DOOR.apply(room, Door.LOCKED, now=when) is Door.SHUT
    assert room.state is Door.LOCKED and room.locked_at == when
    assert DOOR.apply(room, Door.SHUT) is Door.LOCKED
    assert room.locked_at == when  # only entering LOCKED stamps


def test_a_refused_apply_changes_nothing() -> None:
    room = Room(state="open")
    with pytest.raises(DoorStuck, match=re.escape("of {room} is open")):  # a field not given shows as itself
        DOOR.apply(room, Door.LOCKED)
    assert room == Room(state="open")


def test_a_table_must_be_made_of_the_enum_members() -> None:
    with pytest.raises(TypeError):
        StateMachine("door", Door, transitions={"open": {Door.SHUT}}, error=DoorStuck)  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        StateMachine("door", Door, transitions={Door.OPEN: {RequestState.DRAFT}}, error=DoorStuck)  # type: ignore[arg-type]


# --- the domains' machines: the same transitions, errors and messages as before ------------------


def test_the_request_machine_is_the_request_table() -> None:
    for state in RequestState:
        assert REQUEST_MACHINE.allowed(state) == REQUEST_TRANSITIONS[state]
    with pytest.raises(InvalidTransition, match=r"^a request that is rejected cannot become active$"):
        REQUEST_MACHINE.check("rejected", RequestState.ACTIVE)


def test_the_purchase_machine_keeps_each_action_and_its_message() -> None:
    p = PurchaseState
    edges = {
        (source, event): target for event, table in PURCHASE_MACHINE.events.items() for source, target in table.items()
    }
    assert edges == {
        (p.DRAFT, "submit"): p.SUBMITTED,
        (p.RETURNED, "resubmit"): p.RESUBMITTED,
        (p.SUBMITTED, "approve"): p.APPROVED,
        (p.SUBMITTED, "block"): p.BLOCKED,
        (p.SUBMITTED, "return"): p.RETURNED,
        (p.RESUBMITTED, "approve"): p.APPROVED,
        (p.RESUBMITTED, "block"): p.BLOCKED,
        (p.RESUBMITTED, "return"): p.RETURNED,
        (p.DRAFT, "withdraw"): p.WITHDRAWN,
        (p.SUBMITTED, "withdraw"): p.WITHDRAWN,
        (p.RETURNED, "withdraw"): p.WITHDRAWN,
        (p.RESUBMITTED, "withdraw"): p.WITHDRAWN,
    }
    assert PURCHASE_MACHINE.terminal == {p.APPROVED, p.BLOCKED, p.WITHDRAWN}
    with pytest.raises(PurchaseTransitionInvalid, match=r"^a purchase request that is approved cannot be withdrawed$"):
        PURCHASE_MACHINE.fire("approved", "withdraw")


def test_each_kind_of_move_has_its_own_machine() -> None:
    assert set(MOVE_MACHINES) == set(MoveKind)
    assert MOVE_MACHINES[MoveKind.DRAIN].can("running", MoveState.PARTIAL)
    assert not MOVE_MACHINES[MoveKind.LIVE].can("running", MoveState.PARTIAL)
    assert MOVE_MACHINES[MoveKind.COLD].can("awaiting_confirm", MoveState.REVERTED)
    with pytest.raises(InvalidMoveTransition, match=r"^a live move that is done cannot become running$"):
        MOVE_MACHINES[MoveKind.LIVE].check("done", MoveState.RUNNING, kind="live")


def test_a_running_wave_is_never_cancelled_and_only_a_checked_wave_starts() -> None:
    assert not WAVE_MACHINE.can("running", WaveState.CANCELLED)
    assert not WAVE_MACHINE.can("draft", WaveState.RUNNING)
    assert WAVE_MACHINE.can("checked", WaveState.RUNNING)
    assert WAVE_MACHINE.terminal == {WaveState.DONE, WaveState.CANCELLED}
    with pytest.raises(WaveStateConflict, match=r"^wave 7 is done: it cannot become draft$"):
        WAVE_MACHINE.check("done", WaveState.DRAFT, wave_id=7)


def test_the_system_machine_keeps_its_messages() -> None:
    assert SYSTEM_MACHINE.terminal == {SystemState.DECOMMISSIONED}
    with pytest.raises(InvalidSystemTransition, match=r"^system h1 cannot go from intranet to on_cloud$"):
        SYSTEM_MACHINE.check("intranet", SystemState.ON_CLOUD, hostname="h1")
    with pytest.raises(InvalidSystemTransition, match=r"^unknown system state 'nonsense'$"):
        SYSTEM_MACHINE.coerce("nonsense")


# --- nothing sets those states behind the machines' backs ----------------------------------------

MACHINE_ENUMS = frozenset({"RequestState", "PurchaseState", "MoveState", "WaveState", "SystemState"})


def _flatten(node: ast.expr) -> list[ast.expr]:
    return [n for element in node.elts for n in _flatten(element)] if isinstance(node, ast.Tuple) else [node]


def test_no_code_assigns_a_machine_state_except_through_its_machine() -> None:
    """``x.state = SomeState.FOO`` anywhere in cloudmgr or web would skip the transition check:
    states of these five machines change only through ``StateMachine.apply``."""
    offences = []
    for path in sorted([*(ROOT / "cloudmgr").rglob("*.py"), *(ROOT / "web").rglob("*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) or node.value is None:
                continue
            targets = [
                t for target in getattr(node, "targets", [getattr(node, "target", None)]) for t in _flatten(target)
            ]
            # ``view`` (moves/jobs.py) is the job's frozen copy of a move, set after the
            # machine moved the row itself.
            if not any(
                isinstance(t, ast.Attribute)
                and t.attr == "state"
                and not (isinstance(t.value, ast.Name) and t.value.id == "view")
                for t in targets
            ):
                continue
            for value in ast.walk(node.value):
                if (
                    isinstance(value, ast.Attribute)
                    and isinstance(value.value, ast.Name)
                    and value.value.id in MACHINE_ENUMS
                ):
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offences == []
