"""Secrets at rest: scrypt with a per-credential salt, and constant-time comparison."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

# scrypt cost: N = 2**14, r = 8, p = 1 (16 MiB, some tens of milliseconds per check).
SCRYPT_N = 1 << 14
SCRYPT_R = 8
SCRYPT_P = 1
KEY_LENGTH = 32
SALT_LENGTH = 16


@dataclass(frozen=True, slots=True)
class SecretHash:
    """A stored secret: `scrypt$<n>$<r>$<p>`, the salt and the derived key."""

    scheme: str
    salt: bytes
    key: bytes


def _scrypt(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret, salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20), dklen=KEY_LENGTH
    )


def hash_secret(secret: bytes, n: int = SCRYPT_N) -> SecretHash:
    """Derive a key from `secret` with a fresh random salt."""
    if n < 2 or n & (n - 1):
        raise ValueError("scrypt N must be a power of two >= 2")
    salt = secrets.token_bytes(SALT_LENGTH)
    return SecretHash(f"scrypt${n}${SCRYPT_R}${SCRYPT_P}", salt, _scrypt(secret, salt, n, 8, 1))


def verify_secret(secret: bytes, stored: SecretHash) -> bool:
    """Whether `secret` derives the stored key; the comparison takes constant time."""
    parts = stored.scheme.split("$")
    if len(parts) != 4 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = (int(x) for x in parts[1:])
    except ValueError:
        return False
    return hmac.compare_digest(_scrypt(secret, stored.salt, n, r, p), stored.key)


def fast_digest(key: bytes, secret: bytes) -> bytes:
    """A keyed digest for in-memory caches of checks already passed (never stored)."""
    return hmac.digest(key, secret, "sha256")
