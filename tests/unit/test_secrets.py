"""The keyring file and SecretBox: AES-256-GCM secrets under a key kept outside the database."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from provisiond.storage.secrets import (
    SecretBox,
    SecretError,
    init_keyring,
    is_encrypted,
    key_id_of,
    load_keyring,
    retire_keys,
    rotate_keyring,
)

PASSWORDS = ["Xq7vN2pLm9Rt4Wz8Yb1K", "a:b!$%&()*+,-./;<=>?@[]^_`{|}~", "pässwört-ünïcode", ""]


@pytest.fixture
def keyring(tmp_path: Path) -> Path:
    """A fresh keyring with one key (k1) under tmp/keys/."""
    path = tmp_path / "keys" / "secrets.json"
    assert init_keyring(path) == "k1"
    return path


def _retoken(stored: str, mutate: int) -> str:
    """`stored` with one byte of its token (nonce, ciphertext or tag) flipped."""
    header, token = stored.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[mutate] ^= 0x01
    return f"{header}:{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


@pytest.mark.parametrize("plain", PASSWORDS)
def test_round_trip(keyring: Path, plain: str) -> None:
    box = SecretBox(keyring)
    stored = box.encrypt(plain)
    assert stored.startswith("enc1:k1:")
    assert is_encrypted(stored)
    assert plain == "" or plain not in stored
    assert box.decrypt(stored) == plain


def test_each_encryption_uses_a_fresh_nonce(keyring: Path) -> None:
    box = SecretBox(keyring)
    assert box.encrypt("same") != box.encrypt("same")


def test_sixty_four_character_password_fits_the_column(keyring: Path) -> None:
    # devices.sip_password is String(255) since migration 0002; passwords are at most 64.
    assert len(SecretBox(keyring).encrypt("x" * 64)) <= 140


def test_new_values_use_the_newest_key_and_old_ones_still_decrypt(keyring: Path) -> None:
    box = SecretBox(keyring)
    old = box.encrypt("old-secret")
    assert rotate_keyring(keyring) == "k2"
    assert [entry.id for entry in load_keyring(keyring).keys] == ["k2", "k1"]
    new = box.encrypt("new-secret")  # the same box follows the file
    assert key_id_of(old) == "k1"
    assert key_id_of(new) == "k2"
    fresh = SecretBox(keyring)
    assert fresh.decrypt(old) == "old-secret"
    assert fresh.decrypt(new) == "new-secret"
    assert box.decrypt(old) == "old-secret"


def test_serving_box_reloads_once_on_an_unknown_key_id(keyring: Path) -> None:
    serving = SecretBox(keyring)  # loaded before the rotation, never encrypts
    rotate_keyring(keyring)
    assert serving.key_ids == ("k1",)
    stored = SecretBox(keyring).encrypt("after-rotation")
    assert serving.decrypt(stored) == "after-rotation"
    assert list(serving.key_ids) == ["k2", "k1"]  # a list: mypy narrowed the tuple above


def test_unknown_key_id_without_a_file_change_is_an_error(keyring: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "secrets.json"
    init_keyring(other)
    rotate_keyring(other)
    foreign = SecretBox(other).encrypt("foreign")  # names k2, which our file does not have
    with pytest.raises(SecretError, match="unknown key id 'k2'"):
        SecretBox(keyring).decrypt(foreign)


@pytest.mark.parametrize("position", [0, 11, 12, -1])  # nonce, ciphertext, tag
def test_tampered_token_is_refused(keyring: Path, position: int) -> None:
    box = SecretBox(keyring)
    stored = box.encrypt("Xq7vN2pLm9Rt4Wz8Yb1K")
    with pytest.raises(SecretError, match="fails authentication"):
        box.decrypt(_retoken(stored, position))


@pytest.mark.parametrize(
    "stored",
    [
        "Xq7vN2pLm9Rt4Wz8Yb1K",  # legacy plaintext is not decryptable data
        "enc1:k1:",
        "enc1:k1:short",
        "enc2:k1:" + "A" * 60,
        "enc1:k:1:" + "A" * 60,
        "enc1:k1:" + "A" * 60 + "=",
        "enc1:k1:" + "A" * 59 + "!",
    ],
)
def test_malformed_values_are_refused(keyring: Path, stored: str) -> None:
    box = SecretBox(keyring)
    with pytest.raises(SecretError):
        box.decrypt(stored)


def test_truncated_token_is_refused(keyring: Path) -> None:
    box = SecretBox(keyring)
    stored = box.encrypt("Xq7vN2pLm9Rt4Wz8Yb1K")
    with pytest.raises(SecretError):
        box.decrypt(stored[:-4])


def test_key_id_is_authenticated(tmp_path: Path) -> None:
    """Two ids with the same key material: relabelling a token must still fail (AAD)."""
    path = tmp_path / "secrets.json"
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    entries = [{"id": i, "created": "", "key": key} for i in ("k2", "k1")]
    path.write_text(json.dumps({"version": 1, "keys": entries}))
    box = SecretBox(path)
    stored = box.encrypt("relabel-me")
    assert stored.startswith("enc1:k2:")
    with pytest.raises(SecretError, match="fails authentication"):
        box.decrypt(stored.replace("enc1:k2:", "enc1:k1:", 1))


def test_wrong_key_file_cannot_decrypt(keyring: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "secrets.json"
    init_keyring(other)  # also names its key k1, with different material
    stored = SecretBox(keyring).encrypt("Xq7vN2pLm9Rt4Wz8Yb1K")
    with pytest.raises(SecretError, match="fails authentication"):
        SecretBox(other).decrypt(stored)


def test_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "keys" / "secrets.json"
    init_keyring(path)
    rotate_keyring(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.json", "secrets.json.lock"]


def test_files_are_private_under_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        path = tmp_path / "keys" / "secrets.json"
        init_keyring(path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_init_refuses_to_overwrite(keyring: Path) -> None:
    before = keyring.read_bytes()
    with pytest.raises(SecretError, match="already exists"):
        init_keyring(keyring)
    assert keyring.read_bytes() == before
    assert [p.name for p in keyring.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_key_material_stays_out_of_repr(keyring: Path) -> None:
    entry = load_keyring(keyring).newest
    encoded = base64.urlsafe_b64encode(entry.key).decode()
    assert encoded not in repr(entry)
    assert repr(entry.key) not in repr(load_keyring(keyring))


def test_retire_drops_unused_keys_and_keeps_the_newest(keyring: Path) -> None:
    old = SecretBox(keyring).encrypt("under-k1")
    rotate_keyring(keyring)
    rotate_keyring(keyring)
    assert retire_keys(keyring, keep={"k2"}) == ("k1",)
    assert [e.id for e in load_keyring(keyring).keys] == ["k3", "k2"]
    with pytest.raises(SecretError, match="unknown key id 'k1'"):
        SecretBox(keyring).decrypt(old)
    assert retire_keys(keyring, keep=set()) == ("k2",)  # k3 is the newest: always kept
    assert [e.id for e in load_keyring(keyring).keys] == ["k3"]
    assert retire_keys(keyring, keep=set()) == ()
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o600


def test_key_ids_are_never_reused_after_retirement(keyring: Path) -> None:
    rotate_keyring(keyring)
    retire_keys(keyring, keep=set())
    assert rotate_keyring(keyring) == "k3"


def test_encrypt_refuses_when_the_keyring_vanished(keyring: Path) -> None:
    box = SecretBox(keyring)
    keyring.unlink()
    with pytest.raises(SecretError, match="missing"):
        box.encrypt("would be lost with this process")


def test_missing_keyring_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="missing"):
        SecretBox(tmp_path / "none.json")


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"version": 2, "keys": [{"id": "k1", "key": "AAAA"}]}',
        b'{"version": 1, "keys": []}',
        b'{"version": 1, "keys": [{"id": "k1", "key": "AAAA"}]}',  # 3 bytes, not 32
        b'{"version": 1, "keys": [{"id": "k:1", "key": "' + b"A" * 43 + b'="}]}',
        b'{"version": 1, "keys": [{"key": "' + b"A" * 43 + b'="}]}',
        b'{"version": 1, "keys": [{"id": "k1", "key": "@@@"}]}',
    ],
)
def test_malformed_keyring_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "secrets.json"
    path.write_bytes(content)
    with pytest.raises(SecretError):
        load_keyring(path)


def test_duplicate_key_ids_are_refused(keyring: Path) -> None:
    doc = json.loads(keyring.read_text())
    doc["keys"].append(doc["keys"][0])
    keyring.write_text(json.dumps(doc))
    with pytest.raises(SecretError, match="repeats"):
        load_keyring(keyring)


def test_concurrent_rotations_lose_no_key(keyring: Path) -> None:
    """The keyring lock serialises read-modify-write: every rotation's key survives."""
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(rotate_keyring(keyring))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    ids = [entry.id for entry in load_keyring(keyring).keys]
    assert sorted(results) == sorted(f"k{n}" for n in range(2, 10))
    assert sorted(ids) == sorted(f"k{n}" for n in range(1, 10))


def test_box_is_shared_safely_across_threads(keyring: Path) -> None:
    box = SecretBox(keyring)
    stored = box.encrypt("shared")
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(200):
                assert box.decrypt(stored) == "shared"
                assert box.decrypt(box.encrypt("mine")) == "mine"
        except BaseException as exc:  # collected and re-raised in the test thread
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    rotate_keyring(keyring)
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert key_id_of(box.encrypt("after")) == "k2"
