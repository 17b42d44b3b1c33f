"""Digests computed while image data streams (issue 17): the same values as hashing it whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cloudmgr.cloud.digests import CHUNK_BYTES, StreamDigest, file_digest, glance_digests


def test_a_stream_digested_chunk_by_chunk_equals_the_whole_in_sha256_and_glances_algorithm() -> None:
    data = bytes(range(256)) * 9000  # not a whole number of chunks
    digest = StreamDigest("sha512")
    for start in range(0, len(data), 4096):
        digest.update(data[start : start + 4096])
    got = digest.result()
    assert (got.size_bytes, got.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (got.hash_algo, got.hash_value) == ("sha512", hashlib.sha512(data).hexdigest())
    assert glance_digests(data)["os_hash_value"] == got.hash_value


def test_glance_sha256_is_computed_once_and_an_unknown_algorithm_leaves_sha256_alone() -> None:
    data = b"cloudmgr"
    same = StreamDigest("SHA256")
    same.update(data)
    assert same.result().hash_algo == "sha256" and same.result().hash_value == hashlib.sha256(data).hexdigest()
    unknown = StreamDigest("whirlpool-9000")
    unknown.update(data)
    assert (unknown.result().hash_algo, unknown.result().hash_value) == (None, None)
    assert unknown.result().sha256 == hashlib.sha256(data).hexdigest()
    none = StreamDigest(None)
    none.update(data)
    assert none.result().hash_value is None


def test_a_file_larger_than_a_chunk_is_read_a_chunk_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "image.raw"
    data = b"x" * (CHUNK_BYTES * 2 + 17)
    path.write_bytes(data)
    reads: list[int] = []
    real_update = StreamDigest.update

    def update(self: StreamDigest, chunk: bytes) -> None:
        reads.append(len(chunk))
        real_update(self, chunk)

    monkeypatch.setattr(StreamDigest, "update", update)
    got = file_digest(path, "sha512")
    assert reads == [CHUNK_BYTES, CHUNK_BYTES, 17]
    assert got.hash_value == hashlib.sha512(data).hexdigest() and got.size_bytes == len(data)
