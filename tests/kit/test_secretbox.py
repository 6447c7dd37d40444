"""The keyring: AES-256-GCM, bound to the row, rotating by key id."""

from __future__ import annotations

import pytest

from gateway.kit.secretbox import Keyring, SecretBoxError, key_id_of, new_key_text

ROW_A = b"acct_a|mer_a|paystack|test"
ROW_B = b"acct_b|mer_b|paystack|test"


def test_seals_and_opens_with_the_row_it_was_sealed_for() -> None:
    ring = Keyring.parse(new_key_text("k1"))
    token = ring.seal(b'{"secret_key":"sk_test_abc"}', ROW_A)
    assert token.startswith("v1.k1.")
    assert b"sk_test_abc" not in token.encode()
    assert ring.open(token, ROW_A) == b'{"secret_key":"sk_test_abc"}'
    # Copied onto another merchant's row, it does not open.
    with pytest.raises(SecretBoxError):
        ring.open(token, ROW_B)


def test_the_first_key_seals_and_every_key_opens() -> None:
    old, new = new_key_text("old"), new_key_text("new")
    sealed_by_old = Keyring.parse(old).seal(b"x", ROW_A)
    both = Keyring.parse(f"{new},{old}")
    assert both.current == "new"
    assert both.open(sealed_by_old, ROW_A) == b"x"
    resealed = both.seal(b"x", ROW_A)
    assert key_id_of(resealed) == "new"
    # Once every row is resealed, the old key can go.
    assert Keyring.parse(new).open(resealed, ROW_A) == b"x"
    with pytest.raises(SecretBoxError, match="no key 'old'"):
        Keyring.parse(new).open(sealed_by_old, ROW_A)


def test_a_tampered_ciphertext_does_not_open() -> None:
    ring = Keyring.parse(new_key_text("k1"))
    token = ring.seal(b"secret", ROW_A)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(SecretBoxError):
        ring.open(flipped, ROW_A)


@pytest.mark.parametrize(
    "text",
    ["", "nokey", "k1:c2hvcnQ", "bad id!:" + "A" * 43, new_key_text("k1") + "," + new_key_text("k1")],
)
def test_a_bad_keyring_is_refused(text: str) -> None:
    with pytest.raises(SecretBoxError):
        Keyring.parse(text)
