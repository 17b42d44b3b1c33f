"""Real SSH keys, generated for each test run with ``cryptography``, in the forms people paste."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ecdsa_key(curve: ec.EllipticCurve) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve)


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def public_line(key: PrivateKey, comment: str = "") -> str:
    """The line of the key's .pub file, as ssh-keygen writes it."""
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return f"{line} {comment}" if comment else line


def openssh_private(key: PrivateKey) -> str:
    """What ~/.ssh/id_ed25519 holds: "-----BEGIN OPENSSH PRIVATE KEY-----" …"""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()


def pem_private(key: PrivateKey) -> str:
    """A PKCS#8 PEM private key: "-----BEGIN PRIVATE KEY-----" …"""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def ssh_keygen_fingerprint(line: str, folder: Path) -> tuple[int, str]:
    """The bit size and fingerprint ``ssh-keygen -lf`` prints for the public key ``line``."""
    path = folder / "key.pub"
    path.write_text(line + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(path)], check=True, capture_output=True, text=True).stdout
    bits, fingerprint, *_rest = out.split()
    return int(bits), fingerprint
