"""The checks every provider makes before a call reaches its cloud (issue 16), so the simulator
and OpenStack refuse the same input the same way: user data, keypair names, security rules as a
provider stores them, volume sizes and idempotency tags."""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import re

from cloudmgr.cloud.errors import CloudBadRequest
from cloudmgr.cloud.types import REMOTE_GROUP_SELF, SecurityRule

# ---- rules shared by every provider's keypairs, security groups and boots (issue 16) ----

#: Nova refuses user data longer than this once base64-encoded.
MAX_USER_DATA_BASE64 = 65535

#: The keypair names every provider accepts (Nova's older, stricter rule, minus length
#: room for the OpenStack provider's project prefix).
KEYPAIR_NAME = re.compile(r"^[A-Za-z0-9_\- ]{1,200}$")


def encode_user_data(user_data: bytes | str | None, action: str) -> str | None:
    """``user_data`` base64-encoded the way Nova takes it, or CloudBadRequest (before
    anything reaches the cloud) when the encoded form is longer than Nova allows."""
    if user_data is None:
        return None
    raw = user_data.encode() if isinstance(user_data, str) else bytes(user_data)
    encoded = base64.b64encode(raw).decode("ascii")
    if len(encoded) > MAX_USER_DATA_BASE64:
        raise CloudBadRequest(
            f"{action} rejected as invalid: the user data is too long",
            f"{len(raw)} bytes are {len(encoded)} once base64-encoded; Nova takes at most {MAX_USER_DATA_BASE64}",
        )
    return encoded


def check_keypair_name(name: str) -> None:
    if not KEYPAIR_NAME.match(name or "") or name != name.strip():
        raise CloudBadRequest(
            f"keypair name {name!r} rejected as invalid",
            "1 to 200 letters, digits, '-', '_' or inner spaces",
        )


def canonical_rule(rule: SecurityRule) -> SecurityRule:
    """The rule the way a provider stores and reports it, so a rule given and the same rule
    read back compare equal: lower-case protocol, a CIDR in its network form, and
    "any address" spelled ``0.0.0.0/0`` (Neutron reports it as no prefix at all).  A
    CIDR that does not parse is kept as it is, for the cloud to refuse."""
    protocol = rule.protocol.lower() if rule.protocol else None
    remote_cidr = rule.remote_cidr
    if remote_cidr is None and rule.remote_group is None:
        remote_cidr = "0.0.0.0/0"
    elif remote_cidr is not None:
        with contextlib.suppress(ValueError):
            remote_cidr = str(ipaddress.ip_network(remote_cidr, strict=False))
    return SecurityRule(
        direction=rule.direction,
        protocol=protocol,
        port_min=rule.port_min,
        port_max=rule.port_max,
        remote_cidr=remote_cidr,
        remote_group=rule.remote_group,
    )


def is_self_reference(rule: SecurityRule) -> bool:
    return rule.remote_group == REMOTE_GROUP_SELF


def check_volume_size(size_gb: object, action: str) -> int:
    """``size_gb`` when it is a positive whole number of GB, else CloudBadRequest before
    anything reaches the cloud (Cinder would take "1.5" or True as sizes)."""
    if isinstance(size_gb, bool) or not isinstance(size_gb, int) or size_gb < 1:
        raise CloudBadRequest(
            f"{action} rejected as invalid", f"the size must be a positive whole number of GB, not {size_gb!r}"
        )
    return size_gb


def check_volume_source(snapshot_id: str | None, image_id: str | None, action: str) -> None:
    """A volume is made from a snapshot or from an image, not from both."""
    if snapshot_id and image_id:
        raise CloudBadRequest(f"{action} rejected as invalid", "make a volume from a snapshot or an image, not both")


def check_volume_fits_image(size_gb: int, image_bytes: int | None, action: str) -> None:
    """CloudBadRequest unless ``size_gb`` holds the image's bytes (Cinder's own rule)."""
    needed = -(-(image_bytes or 0) // 1024**3)
    if size_gb < needed:
        raise CloudBadRequest(
            f"{action} rejected as invalid",
            f"the image has {image_bytes} bytes: the volume needs at least {needed} GB, not {size_gb}",
            status_code=400,
        )


def check_idempotency_tag(tag: str) -> None:
    # Cinder's metadata values hold at most 255 characters.
    if not tag or len(tag) > 255:
        raise CloudBadRequest("an idempotency tag of 1 to 255 characters is required", tag)
