"""``python main.py executor deploy`` on the local stack: compiled from the source, the pinned hash
checked, deployed through the TxManager after its pre-sign ticket, verified, stored in the keyring."""

from __future__ import annotations

import argparse

import pytest

from tests.integration.chain.defi import WALLET, wallet_store
from venues.onchain.devstack.overrides import overrides_yaml
from venues.onchain.executor_cli import cmd_executor_deploy, deploy
from venues.onchain.executor_code import EXPECTED_RUNTIME_CODE_HASH, code_hash, executor_abi


async def test_deploy_verifies_and_stores_the_executor(defi, tmp_path, capsys):
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text(overrides_yaml(defi.stack))
    store = wallet_store(defi.url)
    args = argparse.Namespace(env="testnet", config=overrides, replace=False, yes_production=False)
    assert await deploy(args, store=store, ledger_path=tmp_path / "journal.sqlite3") == 0
    out = capsys.readouterr().out
    assert "program: deploy LeverageExecutor" in out and "step 1: deploy LeverageExecutor: gas" in out
    address = store.get("testnet", "alchemy", "executor_address").reveal()
    assert address != defi.stack.executor and f"deployed LeverageExecutor {address}" in out
    assert code_hash(defi.chain.rpc("eth_getCode", address, "latest")) == EXPECTED_RUNTIME_CODE_HASH
    contract = defi.chain.contract(executor_abi(), address)
    assert defi.chain.call(contract, "owner") == WALLET
    assert defi.chain.call(contract, "morpho") == defi.stack.morpho["morpho_blue"]

    # The stored executor verifies: a second run deploys nothing.
    assert await deploy(args, store=store, ledger_path=tmp_path / "journal.sqlite3") == 0
    assert "deployed and verified; nothing to do" in capsys.readouterr().out


def test_production_needs_an_explicit_yes():
    args = argparse.Namespace(env="production", config=None, replace=False, yes_production=False)
    with pytest.raises(ValueError, match="--yes-production"):
        cmd_executor_deploy(args)
