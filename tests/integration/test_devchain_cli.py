"""``python main.py devchain`` as an operator runs it: the stack comes up, the override is printed and
written, the history moves the chain's prices and clock; without the npm peers it says what to run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.config import load_venue_configs
from venues.onchain.devstack.peers import PeersMissing, anvil_command, require_package
from venues.onchain.devstack.solc import default_cache_dir as solc_cache_dir

REPO = Path(__file__).resolve().parents[2]


def peers_or_skip() -> None:
    try:
        anvil_command()
        require_package("@aave/core-v3")
    except PeersMissing as exc:
        if os.environ.get("BASIS_REQUIRE_PEERS") == "1":
            pytest.fail(f"{exc} (BASIS_REQUIRE_PEERS=1)", pytrace=False)
        pytest.skip(str(exc))


def run(*args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_devchain_follows_history_and_writes_a_valid_override(tmp_path):
    peers_or_skip()
    out = tmp_path / "overrides.yaml"
    # The aligned-data cache goes to a temp dir (tests never write the user's); compiled contracts are
    # content-addressed, so the shared solc cache is safe to reuse and spares a 7-15 s Morpho build.
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "BASIS_SOLC_CACHE_DIR": str(solc_cache_dir())}
    proc = run(
        "devchain",
        "--follow-history",
        "eth_leveraged",
        "--start",
        "2024-06-01",
        "--hours",
        "3",
        "--pace",
        "0",
        "--port",
        "0",
        "--exit-when-done",
        "--out",
        str(out),
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"written to {out}" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith("2024-06-01")]
    assert [line[:16] for line in lines] == ["2024-06-01 00:00", "2024-06-01 01:00", "2024-06-01 02:00"]
    assert "followed 3 hours" in proc.stdout
    # The file is a configs/venues override the loaders accept as is.
    document = yaml.safe_load(out.read_text())
    configs = load_venue_configs(("aave_v3", "uniswap", "alchemy"), override_file=out)
    aave = configs["aave_v3"].environments.testnet
    assert (
        aave.contracts["pool"]
        == document["venue_overrides"]["aave_v3"]["environments"]["testnet"]["contracts"]["pool"]
    )
    assert configs["alchemy"].environments.testnet.transactions.confirmations == 1
    stack = json.loads((out.parent / "devchain-stack.json").read_text())
    assert {"pool_configurator", "acl_manager"} <= set(stack["aave_v3"]) and stack["morpho"]["morpho_blue"]
    executor = stack["leverage_executor"]
    assert executor["owner"] == stack["wallet"]
    assert f"printf %s {executor['address']} | python main.py credentials set" in proc.stdout
    assert "deployed the stack in" in proc.stdout


def test_devchain_without_peers_says_what_to_run(tmp_path):
    proc = run("devchain", "--port", "0", env={"BASIS_PEERS_DIR": str(tmp_path / "no-peers")}, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert f"npm ci --prefix {tmp_path / 'no-peers'}" in proc.stderr
    assert "Traceback" not in proc.stderr
