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

Where deposits land and withdrawals leave, as at the real venues: Binance credits the spot wallet and
takes the withdrawal fee out of the amount; OKX credits the funding account (6), withdraws from it
only and charges the fee on top; Bybit credits FUND, and a withdrawal with accountType UTA draws from
the unified account (FUND from funding), the fee on top. The fees and minimums are the bridge's
(``ChainBridge(fees=..., minimums=...)``), reported by each venue's coin-information endpoint
(Binance ``capital/config/getall``, OKX ``asset/currencies``, Bybit ``asset/coin/query-info``) and
in its withdrawal records.

Internal transfers between a venue's accounts need no chain: Binance ``sapi/v1/asset/transfer``
(POST, type MAIN_UMFUTURE / UMFUTURE_MAIN; GET the history by type), OKX ``asset/transfer`` 6 <-> 18
with a ``clientId`` and ``asset/transfer-state``, Bybit ``asset/transfer/inter-transfer`` with a
``transferId`` and ``asset/transfer/query-inter-transfer-list``.
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from venues.emulator.chain_bridge import ChainBridge, Deposit, Withdrawal
from venues.emulator.core import FUNDING, InternalTransfer, fmt

#: the chain every asset moves on (the venues' network names for it)
BINANCE_NETWORK = "ETH"
OKX_CHAIN = "ERC20"

BINANCE_PATHS = {"capital/withdraw/apply", "capital/deposit/address", "capital/deposit/hisrec",
                 "capital/withdraw/history", "capital/config/getall", "asset/transfer"}
#: Binance's universal-transfer account ids -> the emulator's accounts
BINANCE_ACCOUNTS = {"MAIN": "spot", "UMFUTURE": "usdm"}
BINANCE_SIGNED = {f"sapi/v1/{p}" for p in BINANCE_PATHS}
OKX_PATHS = {"asset/withdrawal", "asset/deposit-address", "asset/deposit-history", "asset/withdrawal-history",
             "asset/currencies", "asset/transfer", "asset/transfer-state"}
OKX_ACCOUNTS = {"6": FUNDING, "18": "trading"}


def _amount(raw: Any) -> Decimal:
    try:
        return Decimal(str(raw))
    except (InvalidOperation, ValueError):
        raise ValueError(f"invalid amount {raw!r}") from None


# ------------------------------------------------------------------------------------------------ Binance
def binance(dialect: Any, method: str, path: str, p: dict) -> Any:
    """Answer one of BINANCE_PATHS (``path`` without the ``sapi/v1/`` prefix)."""
    from venues.emulator.core import json_response

    state = dialect.s
    if path == "asset/transfer":
        return _binance_transfer(dialect, method, p)
    bridge: ChainBridge | None = dialect.s.chain
    if bridge is None:
        return dialect.error(-4019, "Current asset is not open for deposit or withdrawal (emulator without a chain).")
    if method == "GET" and path == "capital/config/getall":
        return json_response([_binance_coin(bridge, asset, state) for asset in bridge.assets()])
    if method == "POST" and path == "capital/withdraw/apply":
        try:
            record = bridge.withdraw(state, p["coin"], _amount(p["amount"]), p["address"], p.get("withdrawOrderId", ""),
                                     fee_included=True)
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


def _binance_transfer(dialect: Any, method: str, p: dict) -> Any:
    from venues.emulator.core import json_response

    state = dialect.s
    kind = p.get("type", "")
    src, _, dst = kind.partition("_")
    if src not in BINANCE_ACCOUNTS or dst not in BINANCE_ACCOUNTS:
        return dialect.error(-1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
    if method == "POST":
        try:
            move = state.move(p["asset"], _amount(p["amount"]), BINANCE_ACCOUNTS[src], BINANCE_ACCOUNTS[dst])
        except KeyError as exc:
            return dialect.error(-1102, f"Mandatory parameter '{exc.args[0]}' was not sent, was empty/null, or malformed.")
        except ValueError as exc:
            return dialect.error(-5013 if "insufficient" in str(exc) else -1013, f"Asset transfer failed: {exc}")
        return json_response({"tranId": int(move.id)})
    since = int(p.get("startTime") or 0)
    rows = [m for m in state.internal_transfers if m.from_account == BINANCE_ACCOUNTS[src]
            and m.to_account == BINANCE_ACCOUNTS[dst] and m.ts_ms >= since]
    return json_response({"total": len(rows), "rows": [
        {"asset": m.asset, "amount": fmt(m.amount), "type": kind, "status": "CONFIRMED", "tranId": int(m.id),
         "timestamp": m.ts_ms} for m in reversed(rows)]})


def _binance_coin(bridge: ChainBridge, asset: str, state: Any) -> dict:
    free = fmt(state.balance(state.wallet_account, asset))
    network = {"network": BINANCE_NETWORK, "coin": asset, "withdrawIntegerMultiple": fmt(_step(bridge, asset)),
               "isDefault": True, "depositEnable": True, "withdrawEnable": True, "depositDesc": "", "withdrawDesc": "",
               "specialTips": "", "specialWithdrawTips": "", "name": "Ethereum (ERC20)", "resetAddressStatus": False,
               "addressRegex": "^(0x)[0-9A-Fa-f]{40}$", "memoRegex": "", "withdrawFee": fmt(bridge.withdrawal_fee(asset)),
               "withdrawMin": fmt(bridge.minimums.get(asset, _step(bridge, asset))), "withdrawMax": "9999999999",
               "depositDust": "0", "minConfirm": bridge.confirmations, "unLockConfirm": bridge.confirmations,
               "sameAddress": False, "estimatedArrivalTime": 5, "busy": False, "contractAddressUrl": "",
               "contractAddress": ""}
    return {"coin": asset, "depositAllEnable": True, "withdrawAllEnable": True, "name": asset, "free": free,
            "locked": "0", "freeze": "0", "withdrawing": "0", "ipoing": "0", "ipoable": "0", "storage": "0",
            "isLegalMoney": False, "trading": True, "networkList": [network]}


def _decimals(bridge: ChainBridge, asset: str) -> int:
    """The withdrawal precision: the token's decimals, capped at 8 as the venues cap it."""
    token = bridge._tokens.get(asset)
    return min(token.decimals if token is not None else 18, 8)


def _step(bridge: ChainBridge, asset: str) -> Decimal:
    return Decimal(1).scaleb(-_decimals(bridge, asset))


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
    state = dialect.s
    if path in ("asset/transfer", "asset/transfer-state"):
        return _okx_transfer(dialect, method, path, p)
    bridge: ChainBridge | None = dialect.s.chain
    if bridge is None:
        return dialect.error("58300", "Deposit or withdrawal is not supported (emulator without a chain)")
    if method == "GET" and path == "asset/currencies":
        wanted = set(p["ccy"].split(",")) if p.get("ccy") else None
        return dialect.ok([_okx_currency(bridge, a) for a in bridge.assets() if wanted is None or a in wanted])
    if method == "POST" and path == "asset/withdrawal":
        try:
            asset, address = p["ccy"], p["toAddr"]
            record = bridge.withdraw(state, asset, _amount(p["amt"]), address, p.get("clientId", ""))
        except KeyError as exc:
            return dialect.error("50014", f"Parameter {exc.args[0]} can not be empty.")
        except ValueError as exc:
            code = "58350" if "insufficient" in str(exc) else "58207" if "address" in str(exc) else "58300"
            return dialect.error(code, str(exc))
        return dialect.ok([{"amt": fmt(record.amount), "wdId": record.id, "ccy": asset, "clientId": record.client_id,
                            "chain": f"{asset}-{OKX_CHAIN}"}])
    if method == "GET" and path == "asset/deposit-address":
        asset = p.get("ccy", "")
        return dialect.ok([{"chain": f"{asset}-{OKX_CHAIN}", "ctAddr": "", "ccy": asset, "to": "6",
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


def _okx_transfer(dialect: Any, method: str, path: str, p: dict) -> Any:
    state = dialect.s
    if method == "POST" and path == "asset/transfer":
        src, dst = OKX_ACCOUNTS.get(str(p.get("from"))), OKX_ACCOUNTS.get(str(p.get("to")))
        if src is None or dst is None or str(p.get("type", "0")) != "0":
            return dialect.error("58102", "Parameter from or to error")
        try:
            move = state.move(p["ccy"], _amount(p["amt"]), src, dst, p.get("clientId", ""))
        except KeyError as exc:
            return dialect.error("50014", f"Parameter {exc.args[0]} can not be empty.")
        except ValueError as exc:
            return dialect.error("58350" if "insufficient" in str(exc) else "58102", str(exc))
        return dialect.ok([{"transId": move.id, "ccy": move.asset, "clientId": move.client_id, "from": p["from"],
                            "amt": fmt(move.amount), "to": p["to"]}])
    if method == "GET" and path == "asset/transfer-state":
        rows = [m for m in state.internal_transfers if (p.get("transId") and m.id == p["transId"])
                or (p.get("clientId") and m.client_id == p["clientId"])]
        return dialect.ok([_okx_transfer_row(m) for m in rows])
    return dialect.error("50000", f"emulator: no route {method} {path}", 404)


def _okx_transfer_row(m: InternalTransfer) -> dict:
    account_id = {v: k for k, v in OKX_ACCOUNTS.items()}
    return {"amt": fmt(m.amount), "ccy": m.asset, "clientId": m.client_id, "from": account_id[m.from_account],
            "instId": "", "state": "success", "subAcct": "", "to": account_id[m.to_account], "toInstId": "",
            "transId": m.id, "type": "0"}


def _okx_currency(bridge: ChainBridge, asset: str) -> dict:
    fee = fmt(bridge.withdrawal_fee(asset))
    return {"ccy": asset, "name": asset, "logoLink": "", "chain": f"{asset}-{OKX_CHAIN}", "ctAddr": "",
            "canDep": True, "canWd": True, "canInternal": True, "depEstOpenTime": "", "wdEstOpenTime": "",
            "minDep": "0.00000001", "minWd": fmt(bridge.minimums.get(asset, _step(bridge, asset))),
            "minInternal": "0.00000001", "maxWd": "9999999999", "wdTickSz": str(_decimals(bridge, asset)),
            "wdQuota": "10000000", "usedWdQuota": "0", "fee": fee, "minFee": fee, "maxFee": fee,
            "minFeeForCtAddr": fee, "maxFeeForCtAddr": fee, "burningFeeRate": "", "mainNet": asset == "ETH",
            "needTag": False, "minDepArrivalConfirm": str(bridge.confirmations),
            "minWdUnlockConfirm": str(bridge.confirmations), "depQuotaFixed": "", "usedDepQuotaFixed": "",
            "depQuoteDailyLayer2": ""}


# ------------------------------------------------------------------------------------------------ Bybit
BYBIT_PATHS = {"v5/asset/withdraw/create", "v5/asset/deposit/query-address", "v5/asset/deposit/query-record",
               "v5/asset/withdraw/query-record", "v5/asset/coin/query-info", "v5/asset/transfer/inter-transfer",
               "v5/asset/transfer/query-inter-transfer-list"}
BYBIT_ACCOUNTS = {"FUND": FUNDING, "UNIFIED": "unified"}
#: the account a Bybit withdrawal draws from, by its accountType (UTA: the unified account)
BYBIT_WITHDRAW_FROM = {"UTA": "unified", "FUND": FUNDING}
BYBIT_CHAIN = "ETH"
#: Bybit's deposit status codes: 2 processing (confirming), 3 success
_BYBIT_WITHDRAW_STATUS = {"processing": "Pending", "completed": "success", "failed": "Fail"}


def bybit(dialect: Any, method: str, path: str, p: dict) -> Any:
    """Answer one of BYBIT_PATHS (v5 envelopes: retCode 0 and ``result``)."""
    state = dialect.s
    if path in ("v5/asset/transfer/inter-transfer", "v5/asset/transfer/query-inter-transfer-list"):
        return _bybit_transfer(dialect, method, path, p)
    bridge: ChainBridge | None = dialect.s.chain
    if bridge is None:
        return dialect.error(131002, "Withdraw and deposit are not available (emulator without a chain)")
    if method == "GET" and path == "v5/asset/coin/query-info":
        return dialect.ok({"rows": [_bybit_coin(bridge, a) for a in bridge.assets() if p.get("coin") in (None, a)]})
    if method == "POST" and path == "v5/asset/withdraw/create":
        account = BYBIT_WITHDRAW_FROM.get(str(p.get("accountType", "")))
        if account is None:
            return dialect.error(10001, f"accountType {p.get('accountType')!r} is not supported for a unified account")
        try:
            record = bridge.withdraw(state, p["coin"], _amount(p["amount"]), p["address"], p.get("requestId", ""),
                                     account=account)
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


def _bybit_transfer(dialect: Any, method: str, path: str, p: dict) -> Any:
    state = dialect.s
    if method == "POST":
        src, dst = BYBIT_ACCOUNTS.get(str(p.get("fromAccountType"))), BYBIT_ACCOUNTS.get(str(p.get("toAccountType")))
        if src is None or dst is None:
            return dialect.error(10001, "accountType error")
        try:
            move = state.move(p["coin"], _amount(p["amount"]), src, dst, p["transferId"])
        except KeyError as exc:
            return dialect.error(10001, f"missing parameter {exc.args[0]}")
        except ValueError as exc:
            return dialect.error(131212 if "insufficient" in str(exc) else 131228, str(exc))
        return dialect.ok({"transferId": move.client_id, "status": "SUCCESS"})
    account_id = {v: k for k, v in BYBIT_ACCOUNTS.items()}
    rows = [m for m in state.internal_transfers if p.get("transferId") in (None, m.client_id)
            and p.get("coin") in (None, m.asset)]
    return dialect.ok({"list": [
        {"transferId": m.client_id, "coin": m.asset, "amount": fmt(m.amount),
         "fromAccountType": account_id[m.from_account], "toAccountType": account_id[m.to_account],
         "timestamp": str(m.ts_ms), "status": "SUCCESS"} for m in reversed(rows)], "nextPageCursor": ""})


def _bybit_coin(bridge: ChainBridge, asset: str) -> dict:
    return {"name": asset, "coin": asset, "remainAmount": "10000000", "chains": [
        {"chainType": "Ethereum", "confirmation": str(bridge.confirmations), "withdrawFee": fmt(bridge.withdrawal_fee(asset)),
         "depositMin": "0", "withdrawMin": fmt(bridge.minimums.get(asset, _step(bridge, asset))), "chain": BYBIT_CHAIN,
         "chainDeposit": "1", "chainWithdraw": "1", "minAccuracy": str(_decimals(bridge, asset)),
         "withdrawPercentageFee": "0", "contractAddress": "", "safeConfirmNumber": str(bridge.confirmations)}]}
