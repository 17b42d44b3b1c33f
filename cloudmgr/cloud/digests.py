"""Digests of image data computed while it streams (issue 17): SHA-256 always, and the
algorithm Glance recorded for the image (``os_hash_algo``, sha512 by default) when it has
one, in the same pass and one chunk at a time, so no image is ever held in memory whole."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cloudmgr.cloud.types import ImageDownload

#: Bytes read or written at a time: large enough for disk and socket throughput, small
#: enough that a 2 GB image moves with flat memory.
CHUNK_BYTES = 1024 * 1024


def new_hash(algo: str | None) -> Any | None:
    """A hashlib object for Glance's ``os_hash_algo``; None when there is none or Python
    does not know it (the image is then checked by SHA-256 alone)."""
    if not algo:
        return None
    try:
        return hashlib.new(algo.lower())
    except ValueError:
        return None


class StreamDigest:
    """Fed every chunk of an image's data in order; :meth:`result` says what was seen."""

    def __init__(self, glance_algo: str | None = None) -> None:
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._glance = None if glance_algo and glance_algo.lower() == "sha256" else new_hash(glance_algo)
        self._glance_algo = glance_algo.lower() if glance_algo else None

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._sha256.update(chunk)
        if self._glance is not None:
            self._glance.update(chunk)

    def result(self) -> ImageDownload:
        sha256 = self._sha256.hexdigest()
        if self._glance_algo == "sha256":
            glance_value: str | None = sha256
        else:
            glance_value = self._glance.hexdigest() if self._glance is not None else None
        return ImageDownload(
            size_bytes=self.size,
            sha256=sha256,
            hash_algo=self._glance_algo if glance_value is not None else None,
            hash_value=glance_value,
        )


def file_digest(path: Path, glance_algo: str | None = None, chunks: Iterable[bytes] | None = None) -> ImageDownload:
    """The digests of a file already on disk (a download an interrupted step left, or the
    file an upload is compared with), read a chunk at a time."""
    digest = StreamDigest(glance_algo)
    with open(path, "rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
    for chunk in chunks or ():
        digest.update(chunk)
    return digest.result()


def glance_digests(data: bytes) -> dict[str, str]:
    """What Glance records for image data it stores (the simulated clouds do the same):
    the legacy MD5 ``checksum`` and the multihash, sha512 as Glance's default."""
    return {
        "checksum": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(data).hexdigest(),
    }
