"""Reading pasted SSH public keys: real keys of every accepted type, the refusals, and that a
pasted private key is named as one and never quoted back."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from cloudmgr.keys.errors import KeyProblem, KeyRefused, PrivateKeyPasted
from cloudmgr.keys.parsing import MAX_COMMENT_LENGTH, MAX_TEXT_LENGTH, KeyType, parse_public_key
from tests.keys.keygen import (
    PrivateKey,
    ecdsa_key,
    ed25519_key,
    openssh_private,
    pem_private,
    public_line,
    rsa_key,
    ssh_keygen_fingerprint,
)

ACCEPTED: list[tuple[str, PrivateKey, KeyType, int]] = [
    ("rsa-2048", rsa_key(2048), KeyType.RSA, 2048),
    ("rsa-3072", rsa_key(3072), KeyType.RSA, 3072),
    ("ecdsa-p256", ecdsa_key(ec.SECP256R1()), KeyType.ECDSA_P256, 256),
    ("ecdsa-p384", ecdsa_key(ec.SECP384R1()), KeyType.ECDSA_P384, 384),
    ("ecdsa-p521", ecdsa_key(ec.SECP521R1()), KeyType.ECDSA_P521, 521),
    ("ed25519", ed25519_key(), KeyType.ED25519, 256),
]


@pytest.mark.parametrize(("label", "key", "key_type", "bits"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_accepted_keys_match_ssh_keygen(
    label: str, key: PrivateKey, key_type: KeyType, bits: int, tmp_path: Path
) -> None:
    line = public_line(key, comment=f"zhangwei@{label}")
    parsed = parse_public_key(line)
    assert parsed.key_type is key_type
    assert parsed.bits == bits
    assert (parsed.bits, parsed.fingerprint) == ssh_keygen_fingerprint(line, tmp_path)
    assert parsed.public_key == public_line(key)  # type and base64, the comment apart
    assert parsed.comment == f"zhangwei@{label}"


def test_surrounding_blanks_and_a_comment_with_spaces() -> None:
    line = public_line(ed25519_key())
    parsed = parse_public_key(f"  \n{line}   Zhang Wei laptop 2026 \r\n")
    assert parsed.public_key == line
    assert parsed.comment == "Zhang Wei laptop 2026"


def test_the_comment_is_capped_and_loses_control_characters() -> None:
    line = public_line(ed25519_key())
    assert parse_public_key(f"{line} a\x07b").comment == "ab"
    assert len(parse_public_key(f"{line} {'x' * 1000}").comment) == MAX_COMMENT_LENGTH


def _refusal(text: str) -> KeyRefused:
    with pytest.raises(KeyRefused) as caught:
        parse_public_key(text)
    return caught.value


def test_rsa_1024_is_refused_with_its_size() -> None:
    refusal = _refusal(public_line(rsa_key(1024)))
    assert refusal.problem is KeyProblem.RSA_TOO_SHORT
    assert refusal.bits == 1024
    assert "1024" in refusal.message and "2048" in refusal.message
    assert refusal.field == "public_key"


@pytest.mark.parametrize(
    "make", [lambda k: openssh_private(k), lambda k: pem_private(k)], ids=["openssh-private", "pem-private"]
)
@pytest.mark.parametrize("key", [ed25519_key(), rsa_key(2048)], ids=["ed25519", "rsa"])
def test_a_pasted_private_key_is_named_and_never_quoted(make: object, key: PrivateKey) -> None:
    assert callable(make)
    text: str = make(key)
    refusal = _refusal(text)
    assert isinstance(refusal, PrivateKeyPasted)
    assert refusal.problem is KeyProblem.PRIVATE_KEY
    assert refusal.code == "ssh_private_key_refused"
    assert "PRIVATE" in refusal.message and "NOT stored" in refusal.message
    body = "".join(text.splitlines()[1:-1])
    for chunk in (body[i : i + 16] for i in range(0, len(body) - 16, 16)):
        assert chunk not in str(refusal)
    assert refusal.__cause__ is None and refusal.__context__ is None


def test_the_body_of_an_openssh_private_key_without_its_armour_is_still_a_private_key() -> None:
    body = "".join(openssh_private(ed25519_key()).splitlines()[1:-1])
    assert isinstance(_refusal(body), PrivateKeyPasted)
    assert isinstance(_refusal(f"ssh-ed25519 {body}"), PrivateKeyPasted)


def test_a_private_key_longer_than_the_cap_is_still_called_a_private_key() -> None:
    text = openssh_private(rsa_key(2048)) * 10
    assert len(text) > MAX_TEXT_LENGTH
    assert isinstance(_refusal(text), PrivateKeyPasted)


def _blob(*parts: bytes) -> str:
    return base64.b64encode(b"".join(len(p).to_bytes(4, "big") + p for p in parts)).decode()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", KeyProblem.EMPTY),
        ("   \n ", KeyProblem.EMPTY),
        ("hello world", KeyProblem.NOT_OPENSSH),
        ("ssh-dss " + _blob(b"ssh-dss", b"\x01", b"\x02", b"\x03", b"\x04"), KeyProblem.DSA),
        ("sk-ssh-ed25519@openssh.com AAAA", KeyProblem.UNSUPPORTED_TYPE),
        ("ssh-rsa-cert-v01@openssh.com AAAA", KeyProblem.UNSUPPORTED_TYPE),
        ("ssh-ed25519", KeyProblem.MALFORMED),
        ("ssh-ed25519 not*base64!", KeyProblem.MALFORMED),
        ("ssh-ed25519 " + _blob(b"ssh-ed25519", b"short"), KeyProblem.MALFORMED),
        ("ssh-ed25519 " + _blob(b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xff" * 256), KeyProblem.MALFORMED),
        ("ssh-ed25519 " + _blob(b"ssh-ed25519", b"k" * 32, b"extra"), KeyProblem.MALFORMED),
        ("ssh-ed25519 " + _blob(b"ssh-ed25519")[:-4], KeyProblem.MALFORMED),
        # A point of the right length that is not on the curve: only cryptography sees it.
        (
            "ecdsa-sha2-nistp256 " + _blob(b"ecdsa-sha2-nistp256", b"nistp256", b"\x04" + b"\x01" * 64),
            KeyProblem.MALFORMED,
        ),
        ("ecdsa-sha2-nistp256 " + _blob(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" * 65), KeyProblem.MALFORMED),
        ("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----", KeyProblem.NOT_OPENSSH),
        ("---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----", KeyProblem.NOT_OPENSSH),
        ("ssh-ed25519 " + "A" * MAX_TEXT_LENGTH, KeyProblem.TOO_LONG),
    ],
    ids=lambda v: v.value if isinstance(v, KeyProblem) else None,
)
def test_refusals(text: str, problem: KeyProblem) -> None:
    refusal = _refusal(text)
    assert refusal.problem is problem
    assert refusal.message.startswith("public_key: ")


def test_two_keys_on_two_lines_are_refused() -> None:
    text = public_line(ed25519_key()) + "\n" + public_line(ed25519_key())
    assert _refusal(text).problem is KeyProblem.MULTIPLE_LINES


def test_refusal_messages_never_quote_the_text() -> None:
    secret = "Zm9vYmFyc2VjcmV0c2VjcmV0c2VjcmV0"
    for text in (f"ssh-ed25519 {secret}", f"{secret} x", f"ssh-dss {secret}", f"ssh-ed25519 {secret}!"):
        assert secret not in str(_refusal(text))
