"""The venues' wallet endpoints (withdraw, deposit address, deposit and withdrawal history) on the
emulator's ChainBridge, in each venue's own REST shapes (the ones ccxt parses).

Binance: ``/sapi/v1/capital/withdraw/apply``, ``capital/deposit/address``, ``capital/deposit/hisrec``,
``capital/withdraw/history`` (statuses: deposit 0 pending / 1 success; withdrawal 4 processing /
6 completed / 5 failure). OKX: ``/api/v5/asset/withdrawal``, ``asset/deposit-address``,
``asset/deposit-history``, ``asset/withdrawal-history`` (deposit state 0 waiting for confirmations /
2 successful; withdrawal 1 broadcasting / 2 success / -1 failed). Bybit v5: ``/v5/asset/withdraw/create``,
``deposit/query-address``, ``deposit/query-record`` (status 2 processing / 3 success),
``withdraw/query-record`` (Pending / success / Fail). A venue without a bridge answers
these endpoints with the venue's own "not supported" error.
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from venues.emulator.chain_bridge import ChainBridge, Deposit, Withdrawal
from venues.emulator.core import fmt

#: the chain every asset moves on (the venues' network names for it)
BINANCE_NETWORK = "ETH"
OKX_CHAIN = "ERC20"

BINANCE_PATHS = {"capital/withdraw/apply", "capital/deposit/address", "capital/deposit/hisrec",
                 "capital/withdraw/history"}
BINANCE_SIGNED = {f"sapi/v1/{p}" for p in BINANCE_PATHS}
OKX_PATHS = {"asset/withdrawal", "asset/deposit-address", "asset/deposit-history", "asset/withdrawal-history"}


def _amount(raw: Any) -> Decimal:
    try:
        return Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise ValueError(f"invalid amount {raw!r}") from None


# ------------------------------------------------------------------------------------------------ Binance
def binance(dialect: Any, method: str, path: str, p: dict) -> Any:
    """Answer one of BINANCE_PATHS (``path`` without the ``sapi/v1/`` prefix)."""
    from venues.emulator.core import json_response

    bridge: ChainBridge | None = dialect.s.chain
    if bridge is None:
        return dialect.error(-4019, "Current asset is not open for deposit or withdrawal (emulator without a chain).")
    state = dialect.s
    if method == "POST" and path == "capital/withdraw/apply":
        try:
            record = bridge.withdraw(state, p["coin"], _amount(p["amount"]), p["address"], p.get("withdrawOrderId", ""))
        except KeyError as exc:
            return dialect.error(-1102, f"Mandatory parameter '{exc.args[0]}' was not sent, was empty/null, or malformed.")
        except ValueError as exc:
            code = -4026 if "insufficient" in str(exc) else -4003 if "address" in str(exc) else -4000
            return dialect.error(code, str(exc))
        return json_response({"id": record.id})
    if method == "GET" and path == "capital/deposit/address":
        return json_response({"coin": p.get("coin", ""), "address": bridge.deposit_address(state.name), "tag": "",
                              "url": ""})
    if method == "GET" and path == "capital/deposit/hisrec":
        rows = [d for d in bridge.deposits.get(state.name, []) if p.get("coin") in (None, d.asset)]
        return json_response([_binance_deposit(d, bridge) for d in reversed(rows)])
    if method == "GET" and path == "capital/withdraw/history":
        wrows = [w for w in bridge.withdrawals.get(state.name, [])
                if p.get("coin") in (None, w.asset) and p.get("withdrawOrderId") in (None, w.client_id)]
        return json_response([_binance_withdrawal(w) for w in reversed(wrows)])
    return dialect.error(-1000, f"emulator: no route {method} {path}", 404)


def _binance_deposit(d: Deposit, bridge: ChainBridge) -> dict:
    return {"id": d.tx_hash[-12:], "amount": fmt(d.amount), "coin": d.asset, "network": BINANCE_NETWORK,
            "status": 1 if d.credited else 0, "address": d.address, "addressTag": "", "txId": d.tx_hash,
            "insertTime": d.created_ms, "transferType": 0,
            "confirmTimes": f"{min(d.confirmations, bridge.confirmations)}/{bridge.confirmations}",
            "unlockConfirm": bridge.confirmations, "walletType": 0}


def _binance_withdrawal(w: Withdrawal) -> dict:
    status = {"processing": 4, "completed": 6, "failed": 5}[w.status]
    applied = datetime.fromtimestamp(w.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    out = {"id": w.id, "amount": fmt(w.amount), "transactionFee": fmt(w.fee), "coin": w.asset, "status": status,
           "address": w.address, "txId": w.tx_hash, "applyTime": applied, "network": BINANCE_NETWORK,
           "transferType": 0, "withdrawOrderId": w.client_id, "info": w.error, "confirmNo": 1 if w.tx_hash else 0,
           "walletType": 0, "txKey": ""}
    if w.status == "completed":
        out["completeTime"] = datetime.fromtimestamp(w.updated_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return out


# ------------------------------------------------------------------------------------------------ OKX
def okx(dialect: Any, method: str, path: str, p: dict) -> Any:
    """Answer one of OKX_PATHS (``path`` without the ``api/v5/`` prefix)."""
    bridge: ChainBridge | None = dialect.s.chain
    if bridge is None:
        return dialect.error("58300", "Deposit or withdrawal is not supported (emulator without a chain)")
    state = dialect.s
    if method == "POST" and path == "asset/withdrawal":
        try:
            asset, address = p["ccy"], p["toAddr"]
            record = bridge.withdraw(state, asset, _amount(p["amt"]), address, p.get("clientId", ""),
                                     fee=_amount(p.get("fee") or "0"))
        except KeyError as exc:
            return dialect.error("50014", f"Parameter {exc.args[0]} can not be empty.")
        except ValueError as exc:
            code = "58350" if "insufficient" in str(exc) else "58207" if "address" in str(exc) else "58300"
            return dialect.error(code, str(exc))
        return dialect.ok([{"amt": fmt(record.amount), "wdId": record.id, "ccy": asset, "clientId": record.client_id,
                            "chain": f"{asset}-{OKX_CHAIN}"}])
    if method == "GET" and path == "asset/deposit-address":
        asset = p.get("ccy", "")
        return dialect.ok([{"chain": f"{asset}-{OKX_CHAIN}", "ctAddr": "", "ccy": asset, "to": "18",
                            "addr": bridge.deposit_address(state.name), "selected": True}])
    if method == "GET" and path == "asset/deposit-history":
        rows = [d for d in bridge.deposits.get(state.name, [])
                if p.get("ccy") in (None, d.asset) and p.get("txId") in (None, d.tx_hash)]
        return dialect.ok([{"actualDepBlkConfirm": str(d.confirmations), "amt": fmt(d.amount), "ccy": d.asset,
                            "chain": f"{d.asset}-{OKX_CHAIN}", "depId": d.tx_hash[-12:], "from": "", "areaCodeFrom": "",
                            "fromWdId": "", "state": "2" if d.credited else "0", "to": d.address,
                            "ts": str(d.created_ms), "txId": d.tx_hash} for d in reversed(rows)])
    if method == "GET" and path == "asset/withdrawal-history":
        wrows = [w for w in bridge.withdrawals.get(state.name, [])
                if p.get("ccy") in (None, w.asset) and p.get("wdId") in (None, w.id)
                and p.get("clientId") in (None, w.client_id)]
        return dialect.ok([{"chain": f"{w.asset}-{OKX_CHAIN}", "fee": fmt(w.fee), "feeCcy": w.asset, "ccy": w.asset,
                            "clientId": w.client_id, "amt": fmt(w.amount), "txId": w.tx_hash, "from": "",
                            "areaCodeFrom": "", "to": w.address, "areaCodeTo": "",
                            "state": {"processing": "1", "completed": "2", "failed": "-1"}[w.status],
                            "ts": str(w.created_ms), "nonTradableAsset": False, "tag": "", "pmtId": "", "memo": "",
                            "addrEx": None, "wdId": w.id} for w in reversed(wrows)])
    return dialect.error("50000", f"emulator: no route {method} {path}", 404)


# ------------------------------------------------------------------------------------------------ Bybit
BYBIT_PATHS = {"v5/asset/withdraw/create", "v5/asset/deposit/query-address", "v5/asset/deposit/query-record",
               "v5/asset/withdraw/query-record"}
BYBIT_CHAIN = "ETH"
#: Bybit's deposit status codes: 2 processing (confirming), 3 success
_BYBIT_WITHDRAW_STATUS = {"processing": "Pending", "completed": "success", "failed": "Fail"}


def bybit(dialect: Any, method: str, path: str, p: dict) -> Any:
    """Answer one of BYBIT_PATHS (v5 envelopes: retCode 0 and ``result``)."""
    bridge: ChainBridge | None = dialect.s.chain
    if bridge is None:
        return dialect.error(131002, "Withdraw and deposit are not available (emulator without a chain)")
    state = dialect.s
    if method == "POST" and path == "v5/asset/withdraw/create":
        try:
            record = bridge.withdraw(state, p["coin"], _amount(p["amount"]), p["address"], p.get("requestId", ""))
        except KeyError as exc:
            return dialect.error(10001, f"missing parameter {exc.args[0]}")
        except ValueError as exc:
            code = 131001 if "insufficient" in str(exc) else 131002
            return dialect.error(code, str(exc))
        return dialect.ok({"id": record.id})
    if method == "GET" and path == "v5/asset/deposit/query-address":
        return dialect.ok({"coin": p.get("coin", ""), "chains": [
            {"chainType": "Ethereum (ERC20)", "addressDeposit": bridge.deposit_address(state.name), "tagDeposit": "",
             "chain": BYBIT_CHAIN, "batchReleaseLimit": "-1", "contractAddress": ""}]})
    if method == "GET" and path == "v5/asset/deposit/query-record":
        rows = [d for d in bridge.deposits.get(state.name, []) if p.get("coin") in (None, d.asset)]
        return dialect.ok({"rows": [
            {"id": d.tx_hash[-12:], "coin": d.asset, "chain": BYBIT_CHAIN, "amount": fmt(d.amount), "txID": d.tx_hash,
             "status": 3 if d.credited else 2, "toAddress": d.address, "tag": "", "depositFee": "",
             "successAt": str(d.created_ms), "confirmations": str(d.confirmations), "txIndex": "0",
             "blockHash": "", "batchReleaseLimit": "-1", "depositType": 0, "fromAddress": ""}
            for d in reversed(rows)], "nextPageCursor": ""})
    if method == "GET" and path == "v5/asset/withdraw/query-record":
        wrows = [w for w in bridge.withdrawals.get(state.name, [])
                 if p.get("coin") in (None, w.asset) and p.get("withdrawID") in (None, w.id)]
        return dialect.ok({"rows": [
            {"coin": w.asset, "chain": BYBIT_CHAIN, "amount": fmt(w.amount), "txID": w.tx_hash,
             "status": _BYBIT_WITHDRAW_STATUS[w.status], "toAddress": w.address, "tag": "", "withdrawFee": fmt(w.fee),
             "createTime": str(w.created_ms), "updateTime": str(w.updated_ms), "withdrawId": w.id, "withdrawType": 0}
            for w in reversed(wrows)], "nextPageCursor": ""})
    return dialect.error(10001, f"emulator: no route {method} {path}")
