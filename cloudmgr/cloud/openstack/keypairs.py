"""Nova's keypairs, one set per department project.

Nova keeps keypairs per *user*, not per project, and cloudmgr's one admin user boots every
department's servers; so the keypair a project calls ``name`` is Nova's keypair
``cm-<project id>-<name>``, and two projects can each have their "deploy" key.  The prefix
is added on the way in (ensure, delete, boot) and taken off on the way out (a server's
``key_name``).
"""

from __future__ import annotations

from typing import Any

import openstack.exceptions as os_exc

from cloudmgr.cloud.checks import check_keypair_name
from cloudmgr.cloud.errors import CloudConflict
from cloudmgr.cloud.openstack.connection import OpenStackConnection
from cloudmgr.cloud.types import KeyPair


def nova_keypair_name(project_id: str, name: str) -> str:
    return f"cm-{project_id}-{name}"


def project_keypair_name(project_id: str | None, nova_name: str | None) -> str | None:
    """The project's name for Nova's keypair ``nova_name`` (as it is when it has no prefix:
    a server booted outside cloudmgr)."""
    if not nova_name:
        return None
    prefix = nova_keypair_name(project_id or "", "")
    return nova_name.removeprefix(prefix) if project_id else nova_name


def key_material(public_key: str) -> tuple[str, ...]:
    """The key type and blob of an OpenSSH public key: what makes it the same key,
    whatever its comment."""
    return tuple(public_key.split()[:2])


class OpenStackKeypairs(OpenStackConnection):
    def ensure_keypair(self, project_id: str, name: str, public_key: str) -> KeyPair:
        check_keypair_name(name)
        self._require_project(project_id)
        compute = self._admin.compute
        nova_name = nova_keypair_name(project_id, name)
        action = f"ensure keypair {name} of project {project_id}"

        def get() -> Any | None:
            try:
                return compute.get_keypair(nova_name)
            except os_exc.NotFoundException:
                return None

        def ensure() -> Any:
            existing = get()
            if existing is None:
                try:
                    return compute.create_keypair(name=nova_name, public_key=public_key.strip(), type="ssh")
                except os_exc.ConflictException:
                    existing = get()  # created meanwhile (a concurrent retry): compare below
                    if existing is None:
                        raise
            if key_material(str(existing.public_key or "")) != key_material(public_key):
                raise CloudConflict(
                    f"{action} refused: the project already has a different key named {name}",
                    f"fingerprint {existing.fingerprint}; delete it first or choose another name",
                )
            return existing

        keypair = self._call(action, ensure)
        return KeyPair(name=name, fingerprint=str(keypair.fingerprint or ""))

    def delete_keypair(self, project_id: str, name: str) -> None:
        check_keypair_name(name)
        nova_name = nova_keypair_name(project_id, name)
        self._call(
            f"delete keypair {name} of project {project_id}",
            lambda: self._admin.compute.delete_keypair(nova_name, ignore_missing=True),
        )
