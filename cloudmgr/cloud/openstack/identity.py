"""Keystone: the departments' domains and projects, and cloudmgr's role in each."""

from __future__ import annotations

from typing import Any

import openstack.exceptions as os_exc

from cloudmgr.cloud.errors import CloudError, CloudForbidden
from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.openstack.convert import find_or_none
from cloudmgr.cloud.types import ProjectRef


class OpenStackIdentity(OpenStackConnection):
    def ensure_project(self, domain_name: str, project_name: str, description: str = "") -> ProjectRef:
        identity = self._identity

        def ensure_domain() -> Any:
            domain = find_or_none(identity.find_domain, domain_name)
            if domain is not None:
                return domain
            try:
                return identity.create_domain(name=domain_name, description="created by cloudmgr")
            except os_exc.ConflictException:
                # Someone created it meanwhile: use theirs.
                return identity.find_domain(domain_name, ignore_missing=False)

        domain = self._call(f"ensure domain {domain_name}", ensure_domain)

        def ensure_project() -> Any:
            project = find_or_none(identity.find_project, project_name, domain_id=domain.id)
            if project is None:
                try:
                    return identity.create_project(name=project_name, domain_id=domain.id, description=description)
                except os_exc.ConflictException:
                    return identity.find_project(project_name, ignore_missing=False, domain_id=domain.id)
            if description and project.description != description:
                project = identity.update_project(project, description=description)
            return project

        project = self._call(f"ensure project {domain_name}/{project_name}", ensure_project)

        def grant_roles() -> None:
            user_id = self._admin.current_user_id
            if user_id is None:
                raise CloudForbidden("the cloud did not say which user cloudmgr is authenticated as")
            for role_name in self._project_roles:
                role_id = self._role_id(role_name)
                # A PUT: granting a role the user already holds is a no-op.
                identity.assign_project_role_to_user(project.id, user_id, role_id)

        self._call(f"grant roles in project {project_name}", grant_roles)
        return ProjectRef(id=str(project.id), name=str(project.name), domain_id=str(project.domain_id))

    def _role_id(self, role_name: str) -> str:
        cached = self._role_ids.get(role_name)
        if cached is not None:
            return cached
        role = find_or_none(self._identity.find_role, role_name)
        if role is None:
            raise CloudError(f"the cloud has no role named {role_name!r} to grant cloudmgr in department projects")
        self._role_ids[role_name] = str(role.id)
        return str(role.id)
