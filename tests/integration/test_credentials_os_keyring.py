"""Credentials through the real OS keyring (gnome-keyring over D-Bus in tests/run.sh), via the CLI."""
from __future__ import annotations

import argparse
import io
import os
import time
import uuid
from pathlib import Path

from venues import cli
from venues.credentials import CredentialStore


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def ns(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"field": None, "venue": None, **kw})


def test_set_list_load_delete_round_trip_through_the_os_keyring(os_keyring: CredentialStore, capsys):
    secret = f"os-keyring-secret-{uuid.uuid4().hex}"
    backend = os_keyring.describe_backend()
    assert "fail" not in backend and "null" not in backend
    try:
        assert cli.cmd_credentials_set(ns(env="testnet", venue="okx", field="api_key"), store=os_keyring,
                                       stdin=Pipe("okx-key-" + uuid.uuid4().hex)) == 0
        assert cli.cmd_credentials_set(ns(env="testnet", venue="okx", field="secret"), store=os_keyring,
                                       stdin=Pipe(secret + "\n")) == 0
        # a fresh store (as the next process would) sees the same entries: they live in the OS keyring
        fresh = CredentialStore()
        assert fresh.list_fields("testnet", "okx") == ["api_key", "secret"]
        assert fresh.load("testnet", "okx").reveal("secret") == secret
        assert cli.cmd_credentials_list(ns(env="testnet", venue="okx"), store=fresh) == 0
        out = capsys.readouterr().out
        assert "okx (testnet): api_key, secret" in out and secret not in out

        # at rest the keyring file is encrypted: the value is not in any file of the keyring's data dir
        data_home = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
        keyring_files: list[Path] = []
        deadline = time.monotonic() + 3          # gnome-keyring writes its file shortly after the change
        while not keyring_files and time.monotonic() < deadline:
            keyring_files = [p for p in (data_home / "keyrings").glob("*.keyring") if p.is_file()]
            time.sleep(0.05)
        assert keyring_files, "gnome-keyring wrote no keyring file"
        assert all(secret.encode() not in p.read_bytes() for p in keyring_files)
    finally:
        assert cli.cmd_credentials_delete(ns(env="testnet", venue="okx"), store=os_keyring) == 0
    assert CredentialStore().list_fields("testnet", "okx") == []
    assert CredentialStore().get("testnet", "okx", "secret") is None
