"""Authenticated encryption of personal data with a per-customer data key (AES-256-GCM).

A sealed value is a small JSON object that names its algorithm and the id of the key that sealed it,
so a value sealed under a key that no longer exists (erased) is recognisable without trying to decrypt,
and a customer that gets a new key after an erasure never confuses old values for new ones. The
associated data binds a sealed value to its customer: copied into another customer's stream it fails.
"""

from __future__ import annotations

import base64
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALGORITHM = "AES-256-GCM"
KEY_BYTES = 32
NONCE_BYTES = 12


class CorruptCiphertext(Exception):
    """A sealed value that its (existing) key cannot open: tampered with, or bound to another customer."""


@dataclass(frozen=True, slots=True)
class DataKey:
    key_id: uuid.UUID
    secret: bytes = field(repr=False)

    @classmethod
    def generate(cls) -> DataKey:
        return cls(uuid.uuid4(), AESGCM.generate_key(bit_length=KEY_BYTES * 8))


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and value.get("alg") == ALGORITHM and "ciphertext" in value


def sealed_key_id(sealed: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(sealed["kid"])


def seal(key: DataKey, plaintext: bytes, *, context: str) -> dict[str, str]:
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key.secret).encrypt(nonce, plaintext, context.encode())
    return {
        "alg": ALGORITHM,
        "kid": str(key.key_id),
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }


def open_sealed(key: DataKey, sealed: dict[str, Any], *, context: str) -> bytes:
    if sealed_key_id(sealed) != key.key_id:
        raise CorruptCiphertext("sealed under another key")
    try:
        nonce = base64.b64decode(sealed["nonce"])
        return AESGCM(key.secret).decrypt(nonce, base64.b64decode(sealed["ciphertext"]), context.encode())
    except (InvalidTag, ValueError, KeyError) as exc:
        raise CorruptCiphertext("the sealed value does not open with its key") from exc
