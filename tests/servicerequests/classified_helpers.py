"""Helpers of the classified-rule attack tests (issue 14): a legacy system imported, then
re-imported as classified, through the real inventory importer; API clients with tokens;
the refusals in the audit log; what the simulated cloud holds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from cloudmgr.audit.models import AuditEvent
from cloudmgr.cloud import Server
from cloudmgr.inventory.classification import REFUSAL_ACTION
from cloudmgr.inventory.importer import import_inventory
from cloudmgr.inventory.models import LegacySystem
from cloudmgr.organisation import services as org
from cloudmgr.organisation.actor import Actor
from cloudmgr.organisation.models import Cloud, DepartmentCloud, Role
from cloudmgr.runtime import Runtime


def import_system(rt: Runtime, hostname: str, *, classified: bool, dept: str = "prov-education") -> int:
    """Import (or re-import) one host of ``dept`` through the inventory importer, classified
    on the intranet or non-classified on the extranet; returns the system's id."""
    group = dept.replace("-", "_")
    values: dict[str, Any] = {
        "ansible_host": "10.9.0.1",
        "application_system": "学籍管理",
        "classification": "classified" if classified else "non_classified",
        "network": "intranet" if classified else "extranet",
        "os_family": "linux",
        "os_name": "CentOS",
        "os_version": "7.9",
        "vcpus": 2,
        "ram_mb": 2048,
        "disk_gb": 40,
        "data_gb": 5,
        "cpu_p95_pct": 20,
        "ram_p95_pct": 40,
        "dependencies": [],
        "owner_name": "张伟",
        "owner_contact": "0311-87001234",
    }
    document = {
        "all": {
            "children": {
                f"dept_{group}": {
                    "vars": {"department": dept},
                    "children": {
                        f"room_{group}_7": {
                            "vars": {"server_room": f"{dept}-room-7", "server_room_name_zh": "攻击测试机房"},
                            "hosts": {hostname: values},
                        }
                    },
                }
            }
        }
    }
    with rt.db.unit_of_work() as uow:
        import_inventory(
            uow.session,
            yaml.safe_dump(document, allow_unicode=True),
            filename="legacy.yml",
            actor=Actor("ops", Role.OPERATOR),
        )
    with rt.db.unit_of_work() as uow:
        system = uow.session.scalar(select(LegacySystem).where(LegacySystem.hostname == hostname))
        assert system is not None
        assert system.classification == ("classified" if classified else "non_classified")
        return system.id


def refusals(rt: Runtime, entry_point: str | None = None) -> list[AuditEvent]:
    with rt.db.unit_of_work() as uow:
        events = uow.session.scalars(
            select(AuditEvent).where(AuditEvent.action == REFUSAL_ACTION).order_by(AuditEvent.id)
        ).all()
    return [e for e in events if entry_point is None or e.detail.get("entry_point") == entry_point]


@dataclass
class Api:
    """A user of the JSON API, with a real token, on the real app."""

    client: FlaskClient
    token: str

    def post(self, path: str, body: dict[str, Any] | None = None) -> TestResponse:
        return self.client.post(
            f"/api/v1{path}",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            data=json.dumps(body or {}),
        )


def api_as(app: Flask, rt: Runtime, username: str) -> Api:
    with rt.db.unit_of_work() as uow:
        user = org.get_user_by_name(uow.session, username)
        token = org.issue_token(uow.session, user, name="attack", expires_at=None, actor=Actor.system("test")).token
    return Api(app.test_client(), token)


def cloud_servers(rt: Runtime, cloud_key: str, department_key: str = "prov-education") -> list[Server]:
    """Every server in the department's project on ``cloud_key``, as the (simulated) cloud has it."""
    with rt.db.unit_of_work() as uow:
        cloud = uow.session.scalar(select(Cloud).where(Cloud.key == cloud_key))
        assert cloud is not None
        project_ids = {
            row.project_id
            for row in uow.session.scalars(select(DepartmentCloud).where(DepartmentCloud.cloud_id == cloud.id))
            if row.project_id and row.department.key == department_key
        }
        assert project_ids, f"{department_key} has no project on {cloud_key}"
        provider = rt.providers.for_cloud(cloud.key, cloud.os_cloud, cloud.region)
    return [s for s in provider.iter_servers() if s.project_id in project_ids]
