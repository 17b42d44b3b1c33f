"""SDK objects and values converted into :mod:`cloudmgr.cloud.types` and back; every SDK
object is converted by one of these before it leaves the package."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import openstack.exceptions as os_exc

from cloudmgr.cloud.types import IMAGE_TAG_PROPERTY, Flavor, Image

#: Prefix of the server tag that indexes the idempotency key (Nova filters servers by tag).
IDEMPOTENCY_TAG_PREFIX = "cloudmgr-key-"


def parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            return None
    # Nova and Glance report UTC, sometimes without an offset.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def as_int(value: Any, default: int = 0) -> int:
    return default if value is None or value == "" else int(value)


def find_or_none(find: Callable[..., Any], name_or_id: str, **query: Any) -> Any | None:
    """``find(name_or_id)``, or None when nothing matches.  (openstacksdk is deprecating
    ``ignore_missing=True`` on its find methods in favour of catching NotFound.)"""
    try:
        return find(name_or_id, ignore_missing=False, **query)
    except os_exc.NotFoundException:
        return None


def idempotency_tag(key: str) -> str:
    """The server tag standing for idempotency key ``key``.

    Nova tags are at most 60 characters and may not contain ``/`` or ``,``, so the tag
    holds a digest; the key itself is kept verbatim in the server's metadata.
    """
    return IDEMPOTENCY_TAG_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40]


def image_tag(image: Any) -> str | None:
    """The idempotency tag a server snapshot was made with: one of the image's own properties
    (openstacksdk keeps the properties it does not know in ``properties``)."""
    properties = getattr(image, "properties", None) or {}
    tag = properties.get(IMAGE_TAG_PROPERTY) if isinstance(properties, dict) else None
    return None if tag is None else str(tag)


def to_image(image: Any) -> Image:
    return Image(
        id=str(image.id),
        name=str(image.name or ""),
        status=str(image.status or "unknown"),
        size_bytes=None if image.size is None else int(image.size),
        disk_format=image.disk_format,
        min_disk_gb=as_int(image.min_disk),
        min_ram_mb=as_int(image.min_ram),
        visibility=str(image.visibility or ""),
        owner_project_id=image.owner_id,
        tag=image_tag(image),
        hash_algo=_text_or_none(getattr(image, "hash_algo", None)),
        hash_value=_text_or_none(getattr(image, "hash_value", None)),
        checksum=_text_or_none(getattr(image, "checksum", None)),
    )


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None


def to_flavor(flavor: Any) -> Flavor:
    return Flavor(
        id=str(flavor.id),
        name=str(flavor.name),
        vcpus=as_int(flavor.vcpus),
        ram_mb=as_int(flavor.ram),
        disk_gb=as_int(flavor.disk),
        is_public=bool(flavor.is_public) if flavor.is_public is not None else True,
    )


def server_addresses(raw: Any) -> dict[str, tuple[str, ...]]:
    addresses: dict[str, tuple[str, ...]] = {}
    for network_name, entries in (raw or {}).items():
        addresses[str(network_name)] = tuple(str(e.get("addr")) for e in entries or () if e.get("addr"))
    return addresses
