"""Every audit action key and target type cloudmgr records has a label in the page's language.

The keys are read from the source: each ``action=`` / ``audit_action=`` / ``target_type=``
keyword of a call in ``cloudmgr/`` that is a string, a module constant, a conditional of two
strings, or an f-string (then its fixed prefix must name a thing, and the values the code puts
in it are listed in ``EXPANSIONS``).  The crawl of every page (test_language_crawl) also checks
the keys its own run recorded.
"""

from __future__ import annotations

import ast
from pathlib import Path

from flask import Flask

from web.common.audit_labels import SUBJECTS, action_label, target_type_label

CLOUDMGR = Path(__file__).resolve().parents[2] / "cloudmgr"

# What the code fills into its f-string keys (see the functions named).
EXPANSIONS: dict[str, tuple[str, ...]] = {
    # lines.finance.decide_rental (DECISIONS)
    "network_line_rental.{decision}": ("approve", "block"),
    # servicerequests.transitions.record_transition's callers
    "request.{action}": ("submit", "approve", "reject", "cancel", "retry", "resize", "self_approved", "self_rejected"),
    # purchases.lifecycle._transition
    "purchase.{action}": ("submit", "approve", "reject", "withdraw", "self_decided"),
    # servicerequests.lifecycle.SERVER_ACTIONS
    "server.{action}": ("stop", "start", "delete"),
    "server.{action}.done": ("stop", "start", "delete"),
    "move.{action}": (
        "create",
        "start",
        "finish",
        "fail",
        "revert",
        "reverted",
        "migrated",
        "undo_record",
        "hold",
        "release",
        "resume",
    ),
    "quota.drift.{action}": ("approve", "reject", "revert"),
    "volume.restore_{kind}": ("backup", "snapshot"),
    "{kind}.orphan": ("server", "volume", "address"),
    "{kind}.orphan.{action}.done": ("server", "volume", "address"),
    "{orphan.kind}.orphan.failed": ("server", "volume", "address"),
    "{orphan.kind}.orphan.{action}": ("server", "volume", "address"),
    "{what.kind.replace(' ', '_')}.deleted": ("volume_snapshot", "volume_backup", "server_snapshot"),
}
ORPHAN_ACTIONS = ("adopt", "delete")


def _constants(tree: ast.Module) -> dict[str, str]:
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _all_constants() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in CLOUDMGR.rglob("*.py"):
        found |= _constants(ast.parse(path.read_text(encoding="utf-8")))
    return found


def recorded(keyword: str) -> tuple[set[str], set[str], list[str]]:
    """(keys, f-string patterns, what could not be read) of the ``keyword=`` arguments in cloudmgr."""
    constants = _all_constants()
    keys: set[str] = set()
    patterns: set[str] = set()
    unreadable: list[str] = []
    for path in sorted(CLOUDMGR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            for kw in node.keywords:
                if kw.arg not in (keyword, f"audit_{keyword}"):
                    continue
                value = kw.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    keys.add(value.value)
                elif isinstance(value, ast.Name) and value.id in constants:
                    keys.add(constants[value.id])
                elif (
                    isinstance(value, ast.IfExp)
                    and isinstance(value.body, ast.Constant)
                    and isinstance(value.orelse, ast.Constant)
                ):
                    keys.update({str(value.body.value), str(value.orelse.value)})
                elif isinstance(value, ast.JoinedStr):
                    patterns.add(ast.unparse(value)[2:-1])
                elif isinstance(value, ast.Name):
                    pass  # a parameter: its callers' literals are read where they call
                else:
                    unreadable.append(f"{path}:{node.lineno} {ast.unparse(value)}")
    return keys, patterns, unreadable


def _expand(pattern: str) -> list[str]:
    values = EXPANSIONS[pattern]
    if pattern.startswith("{") and pattern.count("{") == 2:
        # {kind}.orphan.{action}...: each kind with each orphan action
        _head, _, rest = pattern.partition("}")
        tail = rest.split("{")[0] + "{}" + rest.split("}", 1)[1] if "{" in rest else rest
        return [kind + tail.format(action) for kind in values for action in ORPHAN_ACTIONS]
    prefix, _, rest = pattern.partition("{")
    suffix = rest.partition("}")[2]
    return [prefix + value + suffix for value in values]


def test_every_audit_action_has_a_label(app: Flask) -> None:
    keys, patterns, unreadable = recorded("action")
    assert not unreadable, unreadable
    assert len(keys) > 80
    unknown_patterns = sorted(patterns - EXPANSIONS.keys())
    assert not unknown_patterns, f"add these f-string keys to EXPANSIONS: {unknown_patterns}"
    for pattern in patterns:
        keys.update(_expand(pattern))
    with app.test_request_context("/?lang=en"):
        missing = sorted(k for k in keys if action_label(k) is None)
        assert action_label("auth.login") == "Sign-in: signed in"
    assert not missing, f"audit actions without a label (web/common/audit_labels.py): {missing}"


def test_every_audit_target_type_has_a_label(app: Flask) -> None:
    keys, _patterns, _ = recorded("target_type")
    keys.update({"volume_snapshot_records", "volume_backup_records", "server_snapshot_records", "cloud_server"})
    with app.test_request_context("/?lang=en"):
        missing = sorted(k for k in keys if target_type_label(k) is None)
        assert target_type_label("service_request") == "Request"
    assert not missing, f"audit target types without a label (web/common/audit_labels.py): {missing}"


def test_an_unknown_key_has_no_label(app: Flask) -> None:
    with app.test_request_context("/"):
        assert action_label("auth.teleport") is None
        assert action_label("spaceship.launch") is None
        assert action_label("auth") is None
        assert "quota.change" in SUBJECTS
