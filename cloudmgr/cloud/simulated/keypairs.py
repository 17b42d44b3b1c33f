"""The simulated Nova's keypairs, per project: the key is checked the way Nova reads an
OpenSSH public key (a known type, base64 that decodes to a blob naming that type) and
fingerprinted like Nova (MD5 of the blob, colon-separated hex)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from typing import Any

from cloudmgr.cloud.checks import check_keypair_name
from cloudmgr.cloud.errors import CloudBadRequest, CloudConflict
from cloudmgr.cloud.simulated.records import require_project
from cloudmgr.cloud.simulated.store import SimulatedStore
from cloudmgr.cloud.types import KeyPair

KEY_TYPES = frozenset(
    {
        "ssh-rsa",
        "ssh-dss",
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
    }
)


def key_fingerprint(public_key: str, action: str) -> str:
    """Nova's fingerprint of an OpenSSH public key, or CloudBadRequest in Nova's words."""
    refused = CloudBadRequest(
        f"{action} rejected as invalid", "Keypair data is invalid: failed to generate fingerprint"
    )
    fields = public_key.split()
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise refused
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise refused from None
    if len(blob) < 4:
        raise refused
    (length,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + length] != fields[0].encode():
        raise refused
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def project_keypairs(state: dict[str, Any], project_id: str) -> dict[str, Any]:
    keypairs: dict[str, Any] = state.setdefault("keypairs", {}).setdefault(project_id, {})
    return keypairs


class SimulatedKeypairs(SimulatedStore):
    def ensure_keypair(self, project_id: str, name: str, public_key: str) -> KeyPair:
        check_keypair_name(name)
        action = f"ensure keypair {name} of project {project_id}"
        with self._transaction() as state:
            require_project(state, project_id)
            keypairs = project_keypairs(state, project_id)
            existing = keypairs.get(name)
            fingerprint = key_fingerprint(public_key, action)
            if existing is None:
                keypairs[name] = {"name": name, "public_key": public_key.strip(), "fingerprint": fingerprint}
            elif existing["fingerprint"] != fingerprint:
                raise CloudConflict(
                    f"{action} refused: the project already has a different key named {name}",
                    f"fingerprint {existing['fingerprint']}; delete it first or choose another name",
                )
            return KeyPair(name=name, fingerprint=fingerprint)

    def delete_keypair(self, project_id: str, name: str) -> None:
        check_keypair_name(name)
        with self._transaction() as state:
            project_keypairs(state, project_id).pop(name, None)
