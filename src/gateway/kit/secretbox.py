"""Secrets at rest: AES-256-GCM from `cryptography`, under a keyring of named keys.

A ciphertext is `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`: it names the key that sealed it
(so keys rotate: the first key seals, every key opens) and is bound to associated data, the row's
identity, so a ciphertext copied onto another row does not open there.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class SecretBoxError(Exception):
    """A keyring that cannot be read, or a ciphertext that does not open with it."""


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key_text(key_id: str) -> str:
    """A fresh key in the keyring's notation: `<id>:<base64url of 32 random bytes>`."""
    if not _KEY_ID.match(key_id):
        raise SecretBoxError("a key id is 1 to 32 characters of A-Z, a-z, 0-9, '_' and '-'")
    return f"{key_id}:{_b64encode(AESGCM.generate_key(bit_length=256))}"


@dataclass(frozen=True)
class Keyring:
    """Named AES-256 keys; the first seals, all open."""

    keys: tuple[tuple[str, bytes], ...]
    _by_id: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise SecretBoxError("the keyring holds no key")
        object.__setattr__(self, "_by_id", {kid: AESGCM(key) for kid, key in self.keys})

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """`id1:base64key,id2:base64key` (commas or whitespace between keys)."""
        keys: list[tuple[str, bytes]] = []
        for item in re.split(r"[,\s]+", text.strip()):
            if not item:
                continue
            kid, sep, encoded = item.partition(":")
            if not sep or not _KEY_ID.match(kid):
                raise SecretBoxError("each key is `<id>:<base64url key>`, the id 1 to 32 of A-Z a-z 0-9 _ -")
            try:
                key = _b64decode(encoded)
            except ValueError as e:
                raise SecretBoxError(f"key {kid!r} is not base64url") from e
            if len(key) != 32:
                raise SecretBoxError(f"key {kid!r} must be 32 bytes (AES-256), not {len(key)}")
            if any(kid == seen for seen, _ in keys):
                raise SecretBoxError(f"key id {kid!r} appears twice")
            keys.append((kid, key))
        return cls(tuple(keys))

    @property
    def current(self) -> str:
        """The id of the key that seals."""
        return self.keys[0][0]

    def seal(self, plaintext: bytes, associated: bytes) -> str:
        nonce = os.urandom(12)
        sealed = self._by_id[self.current].encrypt(nonce, plaintext, associated)
        return f"{_VERSION}.{self.current}.{_b64encode(nonce + sealed)}"

    def open(self, token: str, associated: bytes) -> bytes:
        version, kid, body = key_id_parts(token)
        aead = self._by_id.get(kid)
        if version != _VERSION or aead is None:
            raise SecretBoxError(f"no key {kid!r} in the keyring to open this secret")
        try:
            raw = _b64decode(body)
            return aead.decrypt(raw[:12], raw[12:], associated)
        except (InvalidTag, ValueError) as e:
            raise SecretBoxError("the secret does not open: wrong key or not this row's") from e


def key_id_parts(token: str) -> tuple[str, str, str]:
    version, _, rest = token.partition(".")
    kid, _, body = rest.partition(".")
    return version, kid, body


def key_id_of(token: str) -> str:
    """The id of the key that sealed a ciphertext."""
    return key_id_parts(token)[1]
