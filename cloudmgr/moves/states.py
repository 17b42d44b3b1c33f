"""The state machines of a move, one per kind."""

from __future__ import annotations

import enum

from cloudmgr.messages import N_
from cloudmgr.moves.errors import InvalidMoveTransition
from cloudmgr.statemachine import StateMachine


class MoveKind(enum.StrEnum):
    LIVE = "live"  # live migration to another host of the same cloud
    COLD = "cold"  # cold migration, confirmed (or reverted) by an operator or automatically
    DRAIN = "drain"  # live-migrate every server off a host
    CROSS_CLOUD = "cross_cloud"  # snapshot → image → boot in another cloud → delete the source (or undo)
    SYSTEM = "system"  # a whole legacy system's servers into another cloud, one cross-cloud move each


class MoveState(enum.StrEnum):
    REQUESTED = "requested"  # stored, work queued, nothing asked of a cloud yet
    RUNNING = "running"
    AWAITING_CONFIRM = "awaiting_confirm"  # cold: the server waits in VERIFY_RESIZE
    CONFIRMING = "confirming"
    REVERTING = "reverting"
    DONE = "done"
    PARTIAL = "partial"  # drain: some servers could not be moved
    REVERTED = "reverted"  # cold: back on its source host; cross-cloud: undone, back on its source cloud
    FAILED = "failed"  # the reason is kept; resume carries on from the failed step


class StepState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


S = MoveState

_COMMON: dict[MoveState, frozenset[MoveState]] = {
    S.REQUESTED: frozenset({S.RUNNING, S.FAILED}),
    S.RUNNING: frozenset({S.DONE, S.FAILED}),
    S.FAILED: frozenset({S.RUNNING}),  # resume
    S.DONE: frozenset(),
}

TRANSITIONS: dict[MoveKind, dict[MoveState, frozenset[MoveState]]] = {
    MoveKind.LIVE: dict(_COMMON),
    MoveKind.CROSS_CLOUD: {
        **_COMMON,
        # Undo: a failed move whose source is not being deleted goes back to it (revert).
        S.FAILED: frozenset({S.RUNNING, S.REVERTING}),
        S.REVERTING: frozenset({S.REVERTED, S.FAILED}),
        S.REVERTED: frozenset(),
        # A server of a whole system's move waits, verified on the target and not recorded
        # there yet, until every server of the system is (cloudmgr.moves.run_system): then
        # it goes on (its source deleted), or it is undone with the others.
        S.RUNNING: frozenset({S.DONE, S.FAILED, S.AWAITING_CONFIRM}),
        S.AWAITING_CONFIRM: frozenset({S.RUNNING, S.REVERTING}),
    },
    MoveKind.SYSTEM: {
        **_COMMON,
        S.FAILED: frozenset({S.RUNNING, S.REVERTING}),
        S.REVERTING: frozenset({S.REVERTED, S.FAILED}),
        S.REVERTED: frozenset(),
    },
    MoveKind.DRAIN: {
        **_COMMON,
        S.RUNNING: frozenset({S.DONE, S.PARTIAL, S.FAILED}),
        S.PARTIAL: frozenset({S.RUNNING}),  # resume: try the servers left again
    },
    MoveKind.COLD: {
        **_COMMON,
        S.RUNNING: frozenset({S.AWAITING_CONFIRM, S.DONE, S.FAILED}),
        S.AWAITING_CONFIRM: frozenset({S.CONFIRMING, S.REVERTING, S.DONE, S.REVERTED}),
        S.CONFIRMING: frozenset({S.DONE, S.FAILED}),
        S.REVERTING: frozenset({S.REVERTED, S.FAILED}),
        S.REVERTED: frozenset(),
    },
}

OPEN_STATES = frozenset({S.REQUESTED, S.RUNNING, S.AWAITING_CONFIRM, S.CONFIRMING, S.REVERTING})
FINAL_STATES = frozenset({S.DONE, S.REVERTED})

#: The steps of each kind, in order (a drain's per-server moves are its child moves).
STEPS: dict[MoveKind, tuple[str, ...]] = {
    MoveKind.LIVE: ("migrate",),
    MoveKind.COLD: ("migrate", "confirm"),
    MoveKind.DRAIN: ("disable_host", "migrate_servers", "enable_host"),
    MoveKind.CROSS_CLOUD: (
        "stop_source",
        "snapshot",
        "download",
        "upload",
        # Its data volumes, security groups and public address (issue 16): cloudmgr.moves.run_cross_parts.
        "detach_volumes",
        "volume_images",
        "transfer_volumes",
        "create_volumes",
        "firewall",
        "boot",
        "attach_volumes",
        "public_address",
        "verify",
        "record_target",
        "delete_source",
        "cleanup",
    ),
}

STEPS[MoveKind.SYSTEM] = (
    # Its servers stopped, those that depend on others first; then moved layer by layer, the
    # databases before the applications that need them to boot; each waits, verified, until
    # all are; then each is recorded on the target and its source deleted.
    "stop_servers",
    "move_servers",
    "switch_over",
)

#: The step added to a failed system move that is undone: each server's move undone.
SYSTEM_UNDO_STEPS: tuple[str, ...] = ("undo_servers",)

#: The steps added to a failed cross-cloud move that is undone (cloudmgr.moves.run_undo): the
#: records back to the source, what was made on the target removed, the source as it was.
UNDO_STEPS: tuple[str, ...] = ("undo_record", "undo_target", "undo_source")


#: One machine per kind: a drain may end partial, a cold move waits for its confirmation.
MACHINES: dict[MoveKind, StateMachine[MoveState]] = {
    kind: StateMachine(
        f"a {kind} move",
        MoveState,
        transitions=table,
        error=InvalidMoveTransition,
        message="a {kind} move that is {current} cannot become {target}",
        open_states=OPEN_STATES,
    )
    for kind, table in TRANSITIONS.items()
}


def machine(kind: str) -> StateMachine[MoveState]:
    return MACHINES[MoveKind(kind)]


def check_transition(kind: str, current: str, target: MoveState) -> None:
    machine(kind).check(current, target, kind=kind)


#: Where a move keeps the messages behind its English texts (its state reason, its events'
#: reasons, its steps' errors): ``resources[MESSAGES_KEY] = {english text: {"msgid", "params"}}``
#: (:func:`cloudmgr.moves.records.keep_message`).  A text without an entry (written before its
#: sentence was a message, or a cloud's own words) is shown as it is.
MESSAGES_KEY = "messages"

#: A failed move's reason: the step (its name, as the API and CLI have always said it) and why.
STEP_FAILED = N_("%(step)s: %(reason)s")

#: What each step is called on the pages (the API and the CLI say its name).
STEP_LABELS: dict[str, str] = {
    "migrate": N_("Migrate"),
    "confirm": N_("Confirm"),
    "revert": N_("Revert"),
    "disable_host": N_("Disable the host"),
    "migrate_servers": N_("Move its servers"),
    "enable_host": N_("Enable the host"),
    "stop_source": N_("Stop the source"),
    "snapshot": N_("Snapshot the source"),
    "download": N_("Download the image"),
    "upload": N_("Upload to the target"),
    "boot": N_("Boot in the target"),
    "verify": N_("Verify"),
    "record_target": N_("Record the new server"),
    "delete_source": N_("Delete the source"),
    "cleanup": N_("Delete the snapshot and images"),
    "detach_volumes": N_("Detach the data volumes"),
    "volume_images": N_("Copy the volumes into images"),
    "transfer_volumes": N_("Carry the volume images over"),
    "create_volumes": N_("Make the volumes in the target"),
    "firewall": N_("Make the security groups in the target"),
    "attach_volumes": N_("Attach the volumes"),
    "public_address": N_("Give it a new public address"),
    "undo_record": N_("Undo: records back to the source"),
    "undo_target": N_("Undo: remove what the target got"),
    "undo_source": N_("Undo: the source as it was"),
    "stop_servers": N_("Stop the system's servers"),
    "move_servers": N_("Move the servers, in dependency order"),
    "switch_over": N_("Record them on the target and delete the sources"),
    "undo_servers": N_("Undo: every server back on its source"),
}
