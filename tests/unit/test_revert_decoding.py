"""Revert data -> names: AAVE's numbered strings, Uniswap's short strings, Panic codes, custom errors."""

from __future__ import annotations

import os
import re

import pytest
from eth_abi import encode
from eth_utils import keccak

from venues.onchain.tx.aave_errors import AAVE_V3_ERRORS
from venues.onchain.tx.reverts import ErrorRegistry, decode_revert, revert_data_of


def error_string(text: str) -> str:
    return "0x08c379a0" + encode(["string"], [text]).hex()


def test_aave_code_is_named():
    decoded = decode_revert(error_string("35"))
    assert decoded.kind == "aave" and decoded.code == "35"
    assert decoded.name == "HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD"
    assert decoded.message.startswith(
        "AAVE error 35 HEALTH_FACTOR_LOWER_THAN_LIQUIDATION_THRESHOLD: Health factor"
    )


def test_uniswap_strings_get_a_hint():
    decoded = decode_revert(error_string("Too little received"))
    assert decoded.kind == "string" and decoded.name == "Too little received"
    assert "amountOutMinimum" in decoded.message
    assert "allowance or balance" in decode_revert(error_string("STF")).message


def test_plain_error_string():
    decoded = decode_revert(error_string("ERC20: transfer amount exceeds balance"))
    assert decoded.name == "ERC20: transfer amount exceeds balance" and decoded.kind == "string"


def test_panic_codes():
    decoded = decode_revert("0x4e487b71" + encode(["uint256"], [0x11]).hex())
    assert decoded.kind == "panic" and decoded.name == "Panic(0x11)"
    assert "overflow" in decoded.message


def test_custom_errors_from_registered_abis():
    abi = [
        {
            "type": "error",
            "name": "InsufficientCollateral",
            "inputs": [{"name": "have", "type": "uint256"}, {"name": "need", "type": "uint256"}],
        },
        {"type": "error", "name": "Paused", "inputs": []},
        {"type": "function", "name": "f", "inputs": [], "outputs": []},
    ]
    registry = ErrorRegistry([abi])
    selector = keccak(text="InsufficientCollateral(uint256,uint256)")[:4].hex()
    decoded = decode_revert("0x" + selector + encode(["uint256", "uint256"], [5, 9]).hex(), registry)
    assert (decoded.kind, decoded.name, decoded.args) == ("custom", "InsufficientCollateral", (5, 9))
    assert decoded.message == "InsufficientCollateral(5, 9)"
    paused = keccak(text="Paused()")[:4].hex()
    assert decode_revert("0x" + paused, registry).name == "Paused"
    unknown = decode_revert("0xdeadbeef", registry)
    assert unknown.kind == "unknown" and unknown.name == "0xdeadbeef"


def test_empty_and_malformed_data_never_raise():
    assert decode_revert(None).kind == "empty"
    assert decode_revert("0x").name == "EMPTY_REVERT"
    assert decode_revert("0x08c379a0ffff").name == "MALFORMED_ERROR_STRING"
    assert decode_revert("not hex").kind == "empty"


def test_revert_data_is_found_on_web3_exceptions():
    from web3.exceptions import ContractLogicError, Web3RPCError

    data = error_string("36")
    assert revert_data_of(ContractLogicError("execution reverted: 36", data=data)) == data
    rpc = Web3RPCError("boom", rpc_response={"error": {"code": 3, "message": "reverted", "data": data}})
    assert revert_data_of(rpc) == data


def test_aave_table_matches_the_deployed_errors_library():
    """The table is a copy of @aave/core-v3's Errors.sol; compare whenever the package is installed."""
    from venues.onchain.devstack.peers import node_modules

    source = (
        node_modules()
        / "@aave"
        / "core-v3"
        / "contracts"
        / "protocol"
        / "libraries"
        / "helpers"
        / "Errors.sol"
    )
    if not source.is_file():
        if os.environ.get("BASIS_REQUIRE_PEERS") == "1":
            pytest.fail(f"{source} missing (BASIS_REQUIRE_PEERS=1)", pytrace=False)
        pytest.skip(f"@aave/core-v3 not installed ({source})")
    constants = dict(
        (code, name)
        for name, code in re.findall(r"string public constant (\w+) = '(\d+)'", source.read_text())
    )
    assert {code: name for code, (name, _) in AAVE_V3_ERRORS.items()} == constants
