"""Reading one pasted OpenSSH public key: what ``ssh-keygen -lf`` and ``authorized_keys`` read.

The accepted form is one line ``<type> <base64 blob> [comment]``.  The blob is read in the SSH
wire format (RFC 4253 section 6.6, RFC 5656 section 3.1, RFC 8709) by this module, which gives
the precise refusal (an RSA key too short, a DSA key, the type inside the blob not matching the
one outside); ``cryptography`` then loads it, which checks what the wire format cannot (an
ECDSA point on its curve).  Nothing here puts the pasted text in a message: what is refused may
be a private key.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from cloudmgr.keys.errors import KeyProblem, KeyRefused, PrivateKeyPasted

#: Longer than any public key people use (an RSA key of 16384 bits is about 2,800 characters).
MAX_TEXT_LENGTH = 8192
MAX_COMMENT_LENGTH = 255
MIN_RSA_BITS = 2048

# Marks of a private key: PEM and OpenSSH armour ("-----BEGIN OPENSSH PRIVATE KEY-----", "-----BEGIN
# RSA PRIVATE KEY-----", "ENCRYPTED PRIVATE KEY" …), PuTTY's .ppk, and the base64 of the OpenSSH
# private key format's magic "openssh-key-v1\0" for a body pasted without its armour lines.
_PRIVATE_MARKS = ("PRIVATE KEY", "PUTTY-USER-KEY-FILE")
_OPENSSH_PRIVATE_BASE64 = "b3BlbnNzaC1rZXktdjE"
_OPENSSH_PRIVATE_MAGIC = b"openssh-key-v1\x00"


class KeyType(enum.StrEnum):
    RSA = "ssh-rsa"
    ECDSA_P256 = "ecdsa-sha2-nistp256"
    ECDSA_P384 = "ecdsa-sha2-nistp384"
    ECDSA_P521 = "ecdsa-sha2-nistp521"
    ED25519 = "ssh-ed25519"


# Curve identifier inside the blob, the curve's size in bits, and its field element length.
_CURVES: dict[KeyType, tuple[str, int, int]] = {
    KeyType.ECDSA_P256: ("nistp256", 256, 32),
    KeyType.ECDSA_P384: ("nistp384", 384, 48),
    KeyType.ECDSA_P521: ("nistp521", 521, 66),
}
_DSA = "ssh-dss"


@dataclass(frozen=True)
class ParsedKey:
    key_type: KeyType
    bits: int
    public_key: str  # "<type> <base64>", the blob re-encoded: one spelling per key
    comment: str
    fingerprint: str  # as OpenSSH prints it: "SHA256:" and the unpadded base64 of the blob's SHA-256


def fingerprint_of(blob: bytes) -> str:
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def looks_like_private_key(text: str) -> bool:
    """Whether ``text`` holds (a part of) a private key: such text is refused and never shown back."""
    upper = text.upper()
    return any(mark in upper for mark in _PRIVATE_MARKS) or _OPENSSH_PRIVATE_BASE64 in text


def _malformed(what: str) -> KeyRefused:
    return KeyRefused(KeyProblem.MALFORMED, f"the key data is damaged or incomplete ({what})")


class _Reader:
    """The SSH wire format: big-endian uint32 lengths, strings, mpints."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self) -> bytes:
        if len(self.data) - self.pos < 4:
            raise _malformed("truncated")
        length = int.from_bytes(self.data[self.pos : self.pos + 4], "big")
        start = self.pos + 4
        if length > len(self.data) - start:
            raise _malformed("truncated")
        self.pos = start + length
        return self.data[start : self.pos]

    def mpint(self) -> int:
        raw = self.string()
        if raw and raw[0] & 0x80:
            raise _malformed("negative number")
        return int.from_bytes(raw, "big")

    def done(self) -> None:
        if self.pos != len(self.data):
            raise _malformed("trailing data")


def _bits(key_type: KeyType, reader: _Reader) -> int:
    if key_type is KeyType.RSA:
        exponent, modulus = reader.mpint(), reader.mpint()
        if exponent < 3 or exponent % 2 == 0 or modulus < 3:
            raise _malformed("invalid RSA numbers")
        return modulus.bit_length()
    if key_type is KeyType.ED25519:
        if len(reader.string()) != 32:
            raise _malformed("an Ed25519 key is 32 bytes")
        return 256
    curve, bits, field_length = _CURVES[key_type]
    if reader.string() != curve.encode("ascii"):
        raise _malformed("the curve does not match the key type")
    point = reader.string()
    if len(point) != 1 + 2 * field_length or point[0] != 0x04:
        raise _malformed("not an uncompressed curve point")
    return bits


def parse_public_key(text: str) -> ParsedKey:
    """The one OpenSSH public key in ``text``, or :class:`KeyRefused` saying what is wrong."""
    if looks_like_private_key(text):
        raise PrivateKeyPasted()
    if len(text) > MAX_TEXT_LENGTH:
        raise KeyRefused(KeyProblem.TOO_LONG, f"too long (at most {MAX_TEXT_LENGTH} characters)")
    stripped = text.strip()
    if not stripped:
        raise KeyRefused(KeyProblem.EMPTY, "paste a public key")
    if "-----BEGIN" in stripped or "---- BEGIN" in stripped:
        raise KeyRefused(
            KeyProblem.NOT_OPENSSH,
            "not in OpenSSH format: paste the line of the .pub file (convert other formats with ssh-keygen -i)",
        )
    if "\n" in stripped or "\r" in stripped:
        raise KeyRefused(KeyProblem.MULTIPLE_LINES, "paste exactly one key, on one line")
    fields = stripped.split(maxsplit=2)
    type_name = fields[0]
    if type_name == _DSA:
        raise KeyRefused(KeyProblem.DSA, "DSA keys are not accepted (OpenSSH no longer supports them)")
    try:
        key_type = KeyType(type_name)
    except ValueError:
        problem = KeyProblem.UNSUPPORTED_TYPE if _is_key_type_name(type_name) else KeyProblem.NOT_OPENSSH
        raise KeyRefused(
            problem,
            "not a supported OpenSSH public key: expected ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa, "
            "then the key data",
        ) from None
    if len(fields) < 2:
        raise _malformed("the key data is missing")
    blob = _decode(fields[1])
    reader = _Reader(blob)
    if reader.string() != key_type.value.encode("ascii"):
        raise _malformed("the key data is of another type")
    bits = _bits(key_type, reader)
    reader.done()
    if key_type is KeyType.RSA and bits < MIN_RSA_BITS:
        raise KeyRefused(
            KeyProblem.RSA_TOO_SHORT,
            f"an RSA key needs at least {MIN_RSA_BITS} bits; this one has {bits}",
            bits=bits,
        )
    public_key = f"{key_type.value} {base64.b64encode(blob).decode('ascii')}"
    try:
        load_ssh_public_key(public_key.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm):
        raise _malformed("not a valid key") from None
    comment = "".join(c for c in (fields[2] if len(fields) > 2 else "") if c.isprintable()).strip()
    return ParsedKey(
        key_type=key_type,
        bits=bits,
        public_key=public_key,
        comment=comment[:MAX_COMMENT_LENGTH],
        fingerprint=fingerprint_of(blob),
    )


def _is_key_type_name(name: str) -> bool:
    """Names of SSH key types this module does not accept (security keys, certificates, others)."""
    return name.startswith(("ssh-", "ecdsa-", "sk-", "rsa-")) or name.endswith("@openssh.com")


def _decode(data: str) -> bytes:
    try:
        blob = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _malformed("not base64") from None
    if blob.startswith(_OPENSSH_PRIVATE_MAGIC):
        raise PrivateKeyPasted()
    return blob
