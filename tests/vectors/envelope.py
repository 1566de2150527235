#!/usr/bin/env python3
"""Recomputes the sealed-envelope vectors of src/seal.rs and
src/keys/commitment.rs from docs/FORMAT.md alone, with Python's
`cryptography` (AES-256-GCM) and the standard library (HMAC-SHA256).

Run: python3 tests/vectors/envelope.py   (needs `pip install cryptography`)
It checks the format-1 vector opens, then prints the commitment and the
format-2 envelope for the same record; both must equal the constants in
the Rust tests.
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY = bytes([0x42]) * 32
NONCE = bytes([0x24]) * 12
KEY_ID = 1
RECORD_ID = 7
EXPIRES_MS = 1_000
CONVERSATION = bytes([1]) * 16
SUBJECT = bytes([2]) * 16

# The format-1 vector (src/seal.rs SEALED_V1_KAT).
V1 = bytes.fromhex(
    "0100000000000000012424242424242424242424241"
    "2f2ab2f9febf20c27ee57d9d840be916a9c43049b9f3f6cb1a1a43f3aa98812000939ec80447ad64a51b3b7"
    "5253a23f8019105390fd9d2ab837d28a1fd7c122665596e4493c85eec041"
)


def record_aad(version: int) -> bytes:
    """FORMAT.md §7: the record AAD."""
    return (
        b"llmvault/v1/record"
        + bytes([version])
        + struct.pack(">Q", RECORD_ID)
        + struct.pack(">Q", KEY_ID)
        + struct.pack(">q", EXPIRES_MS)
        + CONVERSATION
        + b"\x01"
        + SUBJECT
    )


def main() -> None:
    aead = AESGCM(KEY)
    # Format 1: version, key id, nonce, ciphertext and tag.
    assert V1[0] == 1 and V1[1:9] == struct.pack(">Q", KEY_ID) and V1[9:21] == NONCE
    plaintext = aead.decrypt(NONCE, V1[21:], record_aad(1))

    # Format 2: the key commitment follows the nonce.
    commitment = hmac.new(KEY, b"llmvault/v2/key-commitment", hashlib.sha256).digest()[:24]
    v2 = (
        bytes([2])
        + struct.pack(">Q", KEY_ID)
        + NONCE
        + commitment
        + aead.encrypt(NONCE, plaintext, record_aad(2))
    )
    print("commitment", commitment.hex())
    print("envelope v2", v2.hex())


if __name__ == "__main__":
    main()
