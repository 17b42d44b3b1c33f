"""Carrying an image from one cloud to another, proven by checksum (issue 17).

The image (a server's snapshot, a data volume's copy) is downloaded into the move's folder a
chunk at a time and digested in the same pass (:meth:`CloudProvider.download_image`): its
SHA-256, and its digest in the algorithm the source Glance hashed it with, which must equal
the source image's ``os_hash_value``.  The file is then uploaded to the target as a stream,
and the target Glance's ``os_hash_value`` (computed as it stored the data) must equal the
file's digest in the target's algorithm.  A mismatch deletes what was made from the bad copy
and carries the image again, up to :data:`TRANSFER_ATTEMPTS` times; then the step fails with
the reason (the move is resumable or undoable, and its source is never deleted).

What was checked is kept with the move (:func:`checksum_rows` reads it for the pages and
the API): the size, the SHA-256, each side's Glance hash and how many tries it took.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from cloudmgr.cloud import CloudProvider, Image, ImageDownload
from cloudmgr.cloud.digests import file_digest
from cloudmgr.messages import N_, Message, message
from cloudmgr.moves.stepping import StepFailed

log = logging.getLogger(__name__)

#: How many times one step carries an image whose digests do not match before it fails.
TRANSFER_ATTEMPTS = 3

#: The move's resources keys: the snapshot's checksum record, the volumes' by index.
SNAPSHOT_CHECKSUM = "snapshot_checksum"
VOLUME_CHECKSUMS = "volume_checksums"


def _hash(algo: str | None, value: str | None) -> dict[str, str] | None:
    return {"algo": algo, "value": value} if algo and value else None


def _download_problem(image: Image, got: ImageDownload, what: Message) -> Message | None:
    if image.size_bytes is not None and got.size_bytes != image.size_bytes:
        return message(
            N_("the download of %(what)s has %(got)s bytes, the source image %(expected)s"),
            what=what,
            got=got.size_bytes,
            expected=image.size_bytes,
        )
    if image.hash_value and got.hash_value is not None and got.hash_value != image.hash_value:
        return message(
            N_("the download of %(what)s has %(algo)s checksum %(got)s, the source image %(expected)s"),
            what=what,
            algo=image.hash_algo or "",
            got=got.hash_value,
            expected=image.hash_value,
        )
    return None


def download_verified(source: CloudProvider, image_id: str, path: Path, *, what: Message) -> dict[str, Any]:
    """``image_id`` of ``source`` in ``path``, its digests matching the source image's;
    returns the checksum record.  A file an interrupted attempt left there is digested
    (streamed) and kept if it matches, downloaded again if not."""
    image = source.get_image(image_id)
    problem: Message | None = None
    attempts = 0
    if path.exists():
        problem = _download_problem(image, file_digest(path, image.hash_algo), what)
        if problem is None:
            return _download_record(image, file_digest(path, image.hash_algo), attempts=0)
        path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    while attempts < TRANSFER_ATTEMPTS:
        attempts += 1
        got = source.download_image(image_id, path)
        problem = _download_problem(image, got, what)
        if problem is None:
            return _download_record(image, got, attempts=attempts)
        log.warning("attempt %s of %s: %s", attempts, TRANSFER_ATTEMPTS, problem)
        path.unlink(missing_ok=True)
    assert problem is not None
    raise StepFailed(_given_up(problem))


def _download_record(image: Image, got: ImageDownload, *, attempts: int) -> dict[str, Any]:
    return {
        "bytes": got.size_bytes,
        "sha256": got.sha256,
        # Glance's own hash of the source image; the downloaded bytes' digest equals it.
        "source": _hash(image.hash_algo, image.hash_value),
        "source_verified": bool(image.hash_value and got.hash_value == image.hash_value),
        "download_attempts": attempts,
    }


def _file_value(path: Path, record: dict[str, Any], algo: str) -> str | None:
    """The downloaded file's digest in ``algo``: from the record when the download made it,
    else read again from the file (streamed)."""
    algo = algo.lower()
    if algo == "sha256":
        return str(record["sha256"])
    source = record.get("source") or {}
    if source.get("algo", "").lower() == algo and record.get("source_verified"):
        return str(source["value"])
    return file_digest(path, algo).hash_value


def target_problem(image: Image, path: Path | None, record: dict[str, Any], what: Message) -> Message | None:
    """Why the target's ``image`` is not the downloaded copy, or None.  Without the file (an
    earlier attempt uploaded it and removed it) the image is compared with the record."""
    if image.size_bytes is not None and image.size_bytes != record.get("bytes"):
        return message(
            N_("the copy of %(what)s on the target has %(got)s bytes, the download %(expected)s"),
            what=what,
            got=image.size_bytes,
            expected=record.get("bytes"),
        )
    if not (image.hash_algo and image.hash_value):
        return None  # a Glance without multihash: the size is all it tells
    if path is not None and path.exists():
        expected = _file_value(path, record, image.hash_algo)
    elif image.hash_algo.lower() == "sha256":
        expected = record.get("sha256")
    else:
        source = record.get("source") or {}
        expected = source.get("value") if source.get("algo", "").lower() == image.hash_algo.lower() else None
    if expected is not None and expected != image.hash_value:
        return message(
            N_("the copy of %(what)s on the target has %(algo)s checksum %(got)s, the download %(expected)s"),
            what=what,
            algo=image.hash_algo,
            got=image.hash_value,
            expected=expected,
        )
    return None


def upload_verified(
    target: CloudProvider,
    name: str,
    path: Path,
    record: dict[str, Any],
    *,
    what: Message,
    disk_format: str,
    project_id: str,
) -> tuple[Image, dict[str, Any]]:
    """``path`` uploaded to ``target`` as image ``name``, the target Glance's hash matching
    the file's; returns the image and the checksum record with the target's hash.  A copy
    that does not match is deleted and the file uploaded again."""
    problem: Message | None = None
    attempts = 0
    while attempts < TRANSFER_ATTEMPTS:
        attempts += 1
        made = target.upload_image(name, path, disk_format=disk_format, project_id=project_id)
        problem = target_problem(made, path, record, what)
        if problem is None:
            return made, target_record(made, record, attempts=attempts)
        log.warning("attempt %s of %s: %s", attempts, TRANSFER_ATTEMPTS, problem)
        target.delete_image(made.id)
    assert problem is not None
    raise StepFailed(_given_up(problem))


def target_record(image: Image, record: dict[str, Any], *, attempts: int) -> dict[str, Any]:
    return {
        **record,
        "target": _hash(image.hash_algo, image.hash_value),
        "target_verified": bool(image.hash_value),
        "upload_attempts": attempts,
    }


def _given_up(problem: Message) -> Message:
    return message(
        N_("%(problem)s, %(attempts)s times: the transfer is given up (the source is kept)"),
        problem=problem,
        attempts=TRANSFER_ATTEMPTS,
    )


def checksum_rows(resources: dict[str, Any]) -> list[dict[str, Any]]:
    """What the move's transfers were checked by, one row per image carried: ``what`` (the
    snapshot, or a data volume's index), its size, SHA-256 and both Glance hashes."""
    rows = []
    snapshot = resources.get(SNAPSHOT_CHECKSUM)
    if isinstance(snapshot, dict):
        rows.append({"what": "snapshot", "volume": None, **snapshot})
    volumes = resources.get(VOLUME_CHECKSUMS)
    if isinstance(volumes, dict):
        for index in sorted(volumes, key=lambda i: int(i) if str(i).isdigit() else 0):
            if isinstance(volumes[index], dict):
                rows.append({"what": "volume", "volume": int(index), **volumes[index]})
    return rows


def file_gone(path: Path) -> StepFailed:
    return StepFailed(
        message(N_("the downloaded snapshot %(file)s is gone: resume from the download step"), file=str(path))
    )


def no_source_image(index: int) -> StepFailed:
    return StepFailed(
        message(N_("volume %(index)s has no image on the source: resume from the volume_images step"), index=index)
    )


def record_of_file(path: Path) -> dict[str, Any]:
    """The checksum record of a download made before moves kept one (a move resumed across
    an upgrade): its digests read from the file, no source hash compared."""
    got = file_digest(path)
    return {"bytes": got.size_bytes, "sha256": got.sha256, "source": None, "source_verified": False}


#: What the messages call the images carried.
SNAPSHOT = Message(N_("the snapshot"))


def volume_label(index: int) -> Message:
    return message(N_("data volume %(index)s"), index=index)
