"""Credential store rules (field index, validation, backend refusal, masking, redaction) and the
`credentials` CLI, on an in-memory keyring backend. The OS keyring itself: tests/integration/test_keyring_os.py."""
from __future__ import annotations

import argparse
import io
import logging
import pickle

import pytest
from keyring.backends import fail, null

from tests.integration.memory_keyring import MemoryKeyring
from venues import cli
from venues.credentials import (
    INDEX_USERNAME,
    CredentialStore,
    InvalidCredential,
    KeyringUnavailable,
    Secret,
    VenueCredentials,
    check_backend,
    redact,
    register_secret,
    service_name,
)

API_SECRET = "unit-test-secret-value-9f8e7d"


@pytest.fixture
def backend() -> MemoryKeyring:
    return MemoryKeyring()


@pytest.fixture
def store(backend) -> CredentialStore:
    return CredentialStore(backend)


def test_set_list_load_delete_round_trip_keeps_an_index(store, backend):
    store.set("testnet", "okx", "api_key", "okx-key-1234")
    store.set("testnet", "okx", "secret", API_SECRET + "\n")          # a piped value's newline is stripped
    store.set("testnet", "okx", "passphrase", "pass-phrase-77")
    assert backend.entries[(service_name("testnet", "okx"), INDEX_USERNAME)] == "api_key,passphrase,secret"
    assert store.list_fields("testnet", "okx") == ["api_key", "passphrase", "secret"]
    assert store.list_fields("production", "okx") == []                 # environments are separate services
    creds = store.load("testnet", "okx")
    assert creds.reveal("secret") == API_SECRET and creds.missing(["api_key", "secret", "passphrase"]) == []
    assert store.delete("testnet", "okx", "secret") == ["secret"]
    assert store.list_fields("testnet", "okx") == ["api_key", "passphrase"]
    assert store.delete("testnet", "okx") == ["api_key", "passphrase"]
    assert backend.entries == {}                                        # the index goes with the last field


def test_listing_reads_no_secret(store, backend):
    store.set("production", "binance", "secret", API_SECRET)
    reads = []
    original = backend.get_password
    backend.get_password = lambda s, u: reads.append(u) or original(s, u)  # type: ignore[method-assign]
    assert store.list_fields("production", "binance") == ["secret"]
    assert reads == [INDEX_USERNAME]


@pytest.mark.parametrize("env, venue_kind, field, value, fragment", [
    ("staging", None, "api_key", "k1234", "unknown environment"),
    ("testnet", None, "password", "x1234", "unknown credential field"),
    ("testnet", "cex", "rpc_url", "http://x", "does not apply to cex venues"),
    ("testnet", "onchain", "api_key", "k1234", "on-chain venues use the rpc venue"),
    ("testnet", "rpc", "wallet_address", "0x1234", "40 hex digits"),
    ("testnet", "rpc", "rpc_url", "eth-mainnet.example/v2/key", "must start with"),
    ("testnet", "rpc", "private_key", "0xabc", "64 hex digits"),
    ("testnet", "cex", "api_key", "   ", "empty value"),
    ("testnet", "cex", "secret", "two words", "whitespace"),
])
def test_invalid_input_is_refused_with_a_clear_message(store, env, venue_kind, field, value, fragment):
    with pytest.raises(InvalidCredential) as info:
        store.set(env, "binance", field, value, venue_kind=venue_kind)
    assert fragment in str(info.value)
    assert value.strip() == "" or value not in str(info.value) or field == "password"


@pytest.mark.parametrize("bad", [fail.Keyring(), null.Keyring()])
def test_no_usable_backend_says_how_to_get_one(bad):
    with pytest.raises(KeyringUnavailable) as info:
        CredentialStore(bad).set("testnet", "okx", "api_key", "abcd1234")
    assert "gnome-keyring" in info.value.hint and "dbus-run-session" in info.value.hint


def test_plaintext_backends_are_refused():
    class PlaintextKeyring(MemoryKeyring):     # the name keyrings.alt gives its plain-file backend
        pass

    with pytest.raises(KeyringUnavailable) as info:
        check_backend(PlaintextKeyring())
    assert "plain file" in info.value.message


def test_secret_values_are_masked_in_repr_str_and_cannot_be_pickled():
    s = Secret(API_SECRET)
    creds = VenueCredentials("testnet", "okx", {"secret": s})
    for text in (repr(s), str(s), f"{s}", repr(creds), str(creds)):
        assert API_SECRET not in text
    with pytest.raises(TypeError):
        pickle.dumps(s)


def test_registered_secrets_are_redacted_from_log_records(caplog):
    secret = "log-redaction-secret-31337"
    register_secret(secret)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("ccxt.base.exchange").debug("GET %s, Request: %s", "https://x", {"X-MBX-APIKEY": secret})
    try:
        raise RuntimeError(f"boom {secret}")
    except RuntimeError:
        logging.getLogger("web3.providers").exception("failed")
    assert secret not in caplog.text
    assert "***" in caplog.text
    assert redact(f"a {secret} b") == "a *** b"


# ---------------------------------------------------------------------------------------------- CLI
def ns(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"field": None, "venue": None, **kw})


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_cli_set_reads_stdin_and_never_prints_the_value(store, capsys):
    code = cli.cmd_credentials_set(ns(env="testnet", venue="bybit", field="secret"), store=store,
                                   stdin=Pipe(API_SECRET + "\n"))
    out = capsys.readouterr()
    assert code == 0 and "stored secret for bybit (testnet)" in out.out
    assert API_SECRET not in out.out + out.err
    assert store.load("testnet", "bybit").reveal("secret") == API_SECRET


def test_cli_list_and_delete(store, capsys):
    store.set("production", "alchemy", "rpc_url", "https://eth-mainnet.example/v2/" + API_SECRET)
    assert cli.cmd_credentials_list(ns(env="production", venue=None), store=store) == 0
    out = capsys.readouterr().out
    assert "alchemy (production): rpc_url" in out and "binance (production): none stored" in out
    assert API_SECRET not in out
    assert cli.cmd_credentials_delete(ns(env="production", venue="alchemy", field="rpc_url"), store=store) == 0
    assert "deleted rpc_url" in capsys.readouterr().out


def test_cli_errors_are_one_line_without_traceback(capsys):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["credentials", "set", "--env", "testnet", "--venue", "nosuchvenue", "--field", "api_key"])
    code = args.func(args)
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE and err.count("\n") == 1 and "unknown venue 'nosuchvenue'" in err
    args = parser.parse_args(["credentials", "list", "--env", "testnet", "--venue", "okx"])
    # No keyring in the plain unit-test process (outside tests/run.sh) or a real one inside it:
    # either way a clean exit code and no traceback.
    code = args.func(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if code != 0:
        assert captured.err.startswith("error: ") and "keyring" in captured.err


def test_cli_set_without_a_keyring_fails_before_prompting(capsys):
    stdin = Pipe("should-not-be-read-1234")
    code = cli._guard(lambda a: cli.cmd_credentials_set(a, store=CredentialStore(fail.Keyring()), stdin=stdin))(
        ns(env="testnet", venue="okx", field="api_key"))
    assert code == cli.EXIT_USAGE
    assert "no usable OS keyring backend" in capsys.readouterr().err
    assert stdin.tell() == 0
