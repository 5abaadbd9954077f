"""configs/transfers.yaml: every key required, each missing or bad key named with its file."""
from __future__ import annotations

import pytest
import yaml

from engine.services.live.transfer_settings import CONFIG_PATH, TransferConfigError, load_transfer_settings


def _write(tmp_path, doc, name: str = "t.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def _shipped() -> dict:
    return yaml.safe_load(CONFIG_PATH.read_text())


def test_the_shipped_file_loads_for_both_environments():
    for env in ("testnet", "production"):
        settings = load_transfer_settings(env)
        assert settings.confirmations >= 1 and settings.poll_interval_s > 0 and settings.transfer_timeout_s > 0
        assert settings.whitelist == {}
    accounts = load_transfer_settings("testnet").venue_accounts
    assert (accounts["binance"].deposit_account, accounts["binance"].trading_account,
            accounts["binance"].withdraw_account) == ("spot", "linear", "spot")
    assert accounts["binance"].moves("USDT") and not accounts["binance"].moves("ETH")
    assert (accounts["okx"].deposit_account, accounts["okx"].trading_account, accounts["okx"].withdraw_account) == \
        ("funding", "trading", "funding")
    assert (accounts["bybit"].deposit_account, accounts["bybit"].trading_account,
            accounts["bybit"].withdraw_account) == ("funding", "unified", "unified")


@pytest.mark.parametrize("key", ["confirmations", "poll_interval_s", "transfer_timeout_s", "whitelist"])
def test_a_missing_environment_key_is_named_with_the_file(tmp_path, key):
    doc = _shipped()
    del doc["environments"]["testnet"][key]
    with pytest.raises(TransferConfigError, match=rf"^t.yaml: environments.testnet.{key} is missing$"):
        load_transfer_settings("testnet", _write(tmp_path, doc))


def test_missing_venue_accounts_and_environments_are_named(tmp_path):
    doc = _shipped()
    del doc["venue_accounts"]["okx"]["withdraw_account"]
    with pytest.raises(TransferConfigError, match=r"^t.yaml: venue_accounts.okx.withdraw_account is missing$"):
        load_transfer_settings("testnet", _write(tmp_path, doc))
    doc = _shipped()
    del doc["venue_accounts"]
    with pytest.raises(TransferConfigError, match=r"^t.yaml: venue_accounts is missing$"):
        load_transfer_settings("testnet", _write(tmp_path, doc))
    with pytest.raises(TransferConfigError, match=r"^t.yaml: environments.staging is missing \(have: production, "
                                                  r"testnet\)$"):
        load_transfer_settings("staging", _write(tmp_path, _shipped()))
    with pytest.raises(TransferConfigError, match=r"nope.yaml: file not found"):
        load_transfer_settings("testnet", tmp_path / "nope.yaml")


def test_bad_values_and_unknown_keys_are_named(tmp_path):
    doc = _shipped()
    doc["environments"]["testnet"]["transfer_timeout_s"] = 0
    with pytest.raises(TransferConfigError, match=r"^t.yaml: environments.testnet.transfer_timeout_s: Input should be "
                                                  r"greater than 0, got 0$"):
        load_transfer_settings("testnet", _write(tmp_path, doc))
    doc = _shipped()
    doc["environments"]["testnet"]["whitelist"] = {"wallet": "0x1234"}
    with pytest.raises(TransferConfigError, match=r"environments.testnet.whitelist: Value error, must map labels to 0x "
                                                  r"addresses"):
        load_transfer_settings("testnet", _write(tmp_path, doc))
    doc = _shipped()
    doc["environments"]["testnet"]["transfer_timout_s"] = 10
    with pytest.raises(TransferConfigError, match=r"^t.yaml: environments.testnet.transfer_timout_s is not a known "
                                                  r"key$"):
        load_transfer_settings("testnet", _write(tmp_path, doc))
