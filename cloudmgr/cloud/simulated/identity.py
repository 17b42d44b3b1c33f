"""The simulated Keystone: domains and the projects in them."""

from __future__ import annotations

import uuid

from cloudmgr.cloud.errors import CloudBadRequest
from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import ProjectRef


class SimulatedIdentity(SimulatedStore):
    def ensure_project(self, domain_name: str, project_name: str, description: str = "") -> ProjectRef:
        if not domain_name or not project_name:
            raise CloudBadRequest("a domain and a project name are required", f"{domain_name}/{project_name}")
        with self._transaction() as state:
            domain = next((d for d in state["domains"].values() if d["name"] == domain_name), None)
            if domain is None:
                domain = {"id": uuid.uuid4().hex, "name": domain_name}
                state["domains"][domain["id"]] = domain
            project = next(
                (p for p in state["projects"].values() if p["domain_id"] == domain["id"] and p["name"] == project_name),
                None,
            )
            if project is None:
                project = {"id": uuid.uuid4().hex, "name": project_name, "domain_id": domain["id"]}
                state["projects"][project["id"]] = project
            if description or "description" not in project:
                project["description"] = description
            return ProjectRef(id=project["id"], name=project["name"], domain_id=project["domain_id"])
