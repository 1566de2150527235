#!/usr/bin/env python3
"""Recomputes llmvault's independent known-answer vectors from
docs/FORMAT.md alone, with Python's `cryptography` (Argon2id, HKDF,
AES-256-GCM) and the standard library (HMAC-SHA256). No llmvault code
runs here.

Run:  pip install cryptography   (48 or later: it has Argon2id)
      python3 tests/vectors/kats.py
It prints each vector (compare with tests/vectors/kats.txt) and exits
non-zero if one differs from the constant pinned in the Rust test named
beside it.
"""
import hashlib
import hmac
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FAILED = []


def check(name: str, rust_test: str, got: str, pinned: str) -> None:
    print(f"{name} ({rust_test}): {got}")
    if got != pinned:
        FAILED.append(name)
        print(f"  MISMATCH: the Rust test pins {pinned}")


def argon2id_master() -> None:
    """FORMAT.md §2: Argon2id v1.3, 8 MiB, 1 pass, 1 lane, 32-byte output."""
    kdf = Argon2id(salt=bytes([7]) * 16, length=32, iterations=1, lanes=1, memory_cost=8 * 1024)
    check(
        "argon2id master key",
        "src/kdf/mod.rs argon2id_known_answer",
        kdf.derive(b"pw").hex(),
        "1bf7d0270e3f66fb90ed05d460a1b9cae2f29fbc41bb1041e0f356d21e1a9cbf",
    )


def kek() -> None:
    """FORMAT.md §3: the KEK of formats 1 and 2, HKDF-SHA256(salt = vault salt, ikm = master, info)."""
    out = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"salt-salt-salt-!", info=b"llmvault/v1/kek"
    ).derive(bytes([1]) * 32)
    check(
        "KEK",
        "src/keys/kek.rs kek_derivation_known_answer",
        out.hex(),
        "742a7ea0f8844268082eac65ddaf8d02175d612698b0e3df6c916b11edab1538",
    )


def unlock_key() -> None:
    """FORMAT.md §3: the format-3 unlock key, as the KEK above with its own label."""
    out = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"salt-salt-salt-!", info=b"llmvault/v3/unlock"
    ).derive(bytes([1]) * 32)
    check(
        "unlock key",
        "src/keys/kek.rs unlock_key_derivation_known_answer",
        out.hex(),
        "dad72e3e35415ed1e9c1cb4720cdb3026f48ec8bb0b3f187c69a06267b2f3347",
    )


def tags() -> None:
    """FORMAT.md §5: HMAC-SHA256(tag key, label ‖ 0x00 ‖ id)[..16]."""
    key = bytes([1]) * 32
    for label, ident, pinned in [
        (b"llmvault/v1/tag/conversation", b"c1", "7e5917fb6280d61c13584b7ceaaa52dc"),
        (b"llmvault/v1/tag/subject", b"user-7", "f22ad40119b29b54aa138683a5ca6160"),
    ]:
        tag = hmac.new(key, label + b"\x00" + ident, hashlib.sha256).digest()[:16]
        check(f"tag {label.decode()} {ident.decode()}", "src/keys/tags.rs tag_known_answers", tag.hex(), pinned)


# FORMAT.md §7, worked example.
DATA_KEY = bytes([0x42]) * 32
NONCE = bytes([0x24]) * 12
KEY_ID = 1
V1_ENVELOPE = (
    "0100000000000000012424242424242424242424241"
    "2f2ab2f9febf20c27ee57d9d840be916a9c43049b9f3f6cb1a1a43f3aa98812000939ec80447ad64a51b3b7"
    "5253a23f8019105390fd9d2ab837d28a1fd7c122665596e4493c85eec041"
)
V2_ENVELOPE = (
    "020000000000000001242424242424242424242424"
    "08ac4d6109a756c376674a4a90249b2caefdc572c266a325"
    "12f2ab2f9febf20c27ee57d9d840be916a9c43049b9f3f6cb1a1a43f3aa98812000939ec80447ad64a51b3b7"
    "5253a23f8019105390fd9d2ab8375bf7f7153f82f6ba4022a79eefc879b1"
)


def record_aad(version: int) -> bytes:
    return (
        b"llmvault/v1/record"
        + bytes([version])
        + struct.pack(">Q", 7)  # record id
        + struct.pack(">Q", KEY_ID)
        + struct.pack(">q", 1_000)  # expires at
        + bytes([1]) * 16  # conversation tag
        + b"\x01"
        + bytes([2]) * 16  # subject tag
    )


def envelopes() -> None:
    """FORMAT.md §7: the version-1 envelope opens; the version-2 one is
    rebuilt from its plaintext with the key commitment."""
    aead = AESGCM(DATA_KEY)
    v1 = bytes.fromhex(V1_ENVELOPE)
    assert v1[0] == 1 and v1[1:9] == struct.pack(">Q", KEY_ID) and v1[9:21] == NONCE
    plaintext = aead.decrypt(NONCE, v1[21:], record_aad(1))
    print(f"record plaintext (opened from the version-1 envelope): {plaintext.hex()}")
    commitment = hmac.new(DATA_KEY, b"llmvault/v2/key-commitment", hashlib.sha256).digest()[:24]
    check(
        "key commitment",
        "src/keys/commitment.rs commitment_known_answer",
        commitment.hex(),
        "08ac4d6109a756c376674a4a90249b2caefdc572c266a325",
    )
    v2 = (
        bytes([2])
        + struct.pack(">Q", KEY_ID)
        + NONCE
        + commitment
        + aead.encrypt(NONCE, plaintext, record_aad(2))
    )
    check("envelope v2", "src/seal.rs sealed_record_known_answer", v2.hex(), V2_ENVELOPE)


def main() -> None:
    argon2id_master()
    kek()
    unlock_key()
    tags()
    envelopes()
    if FAILED:
        print(f"{len(FAILED)} vector(s) differ: {', '.join(FAILED)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
