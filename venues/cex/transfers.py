"""CcxtTransfers: one exchange account's wallet endpoints through ccxt (implements
engine.domain.transfers.CexTransferPort).

``withdraw`` (a state change: sent once, never retried, so a timeout can never pay twice; the
client id lets a restart find it), ``fetchDepositAddress``, ``fetchWithdrawals`` and ``fetchDeposits``
(reads, retried like every read). The client id travels in the venue's own parameter: Binance
``withdrawOrderId``, OKX ``clientId``; Bybit's withdrawal records carry none, so a restart cannot tell
whether an unacknowledged Bybit withdrawal was made and says so instead of sending it again.

``withdrawal_terms`` reads the venue's fee, minimum and precision for the asset on Ethereum from the
endpoint ccxt's ``fetch_deposit_withdraw_fees`` reads (Binance ``capital/config/getall``, Bybit
``asset/coin/query-info``, OKX ``asset/currencies``). ``move`` is ccxt's unified ``transfer`` between
two accounts of the exchange (Binance ``sapi/v1/asset/transfer``, type MAIN_UMFUTURE / UMFUTURE_MAIN;
OKX ``asset/transfer`` 6 <-> 18 with a ``clientId``; Bybit ``asset/transfer/inter-transfer`` with a
``transferId`` UUID), and ``find_move`` looks one up by that id: OKX ``asset/transfer-state``, Bybit
``asset/transfer/query-inter-transfer-list``. Binance's universal transfer carries no client id, so
it is found in its history by type and amount since the move was journaled.
"""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from engine.domain.transfers import DepositState, WithdrawalState, WithdrawalTerms
from engine.domain.venue_ports import VenueError, VenueErrorKind
from venues.cex.client import CexClient

#: the withdrawal parameter that carries our client id, per ccxt class
CLIENT_ID_PARAM = {"binance": "withdrawOrderId", "okx": "clientId"}
#: the venue's id of the Ethereum network an asset is withdrawn on (OKX: "<ccy>-ERC20")
ETHEREUM_NETWORK = {"binance": "ETH", "bybit": "ETH"}
_MOVE_IDS = uuid.UUID("6f1d3c2e-9b1a-4c55-8a43-2f0e6b7d9a10")       # namespace of Bybit's transferId UUIDs


def _dec(value: Any, what: str) -> Decimal:
    if value is None or value == "":
        raise ValueError(f"the venue reported no {what}")
    return Decimal(str(value))


class CcxtTransfers:
    def __init__(self, account: CexClient) -> None:
        """``account``: the venue's spot/funding client (the one holding the assets that move)."""
        self.account = account

    @property
    def venue(self) -> str:
        return self.account.venue

    @property
    def finds_by_client_id(self) -> bool:
        return self.account.ccxt_id in CLIENT_ID_PARAM

    @property
    def _ex(self) -> Any:
        return self.account.exchange

    async def _markets(self) -> None:
        if not self._ex.markets:
            await self.account.load_markets()

    async def deposit_address(self, asset: str) -> str:
        await self._markets()
        if self.account.ccxt_id == "okx":
            # ccxt's okx fetchDepositAddress indexes the answer by network names it takes from
            # fetchCurrencies, which the adapters leave off (load_markets stays a few requests): without
            # them it finds no address. The same signed endpoint, read directly: the selected address.
            raw = await self.account.read(f"asset/deposit-address {asset}", self._ex.privateGetAssetDepositAddress,
                                          {"ccy": asset})
            rows = [r for r in raw.get("data") or [] if r.get("selected") in (True, "true")]
            answer = {"address": rows[0].get("addr")} if rows else {}
        elif self.account.ccxt_id == "bybit":
            # ccxt's bybit picks "the default network" from fetchCurrencies (left off, as above) and
            # refuses without it; the addresses by network are there: exactly one must be
            by_network = await self.account.read(f"fetchDepositAddressesByNetwork {asset}",
                                                 self._ex.fetch_deposit_addresses_by_network, asset)
            if len(by_network) != 1:
                raise ValueError(f"{self.venue} lists {asset} deposit addresses on {len(by_network)} networks "
                                 f"({', '.join(by_network) or 'none'}): expected exactly one")
            answer = next(iter(by_network.values()))
        else:
            answer = await self.account.read(f"fetchDepositAddress {asset}", self._ex.fetch_deposit_address, asset)
        address = (answer or {}).get("address")
        if not address:
            raise ValueError(f"{self.venue} gave no {asset} deposit address")
        return str(address)

    async def withdraw(self, asset: str, amount: Decimal, address: str, client_id: str) -> str:
        await self._markets()
        params = {CLIENT_ID_PARAM[self.account.ccxt_id]: client_id} if self.account.ccxt_id in CLIENT_ID_PARAM else {}
        answer = await self.account.write(f"withdraw {amount} {asset}", self._ex.withdraw, asset, float(amount),
                                          address, params)
        withdraw_id = answer.get("id")
        if not withdraw_id:
            raise ValueError(f"{self.venue} accepted the withdrawal but gave no id: {answer.get('info')}")
        return str(withdraw_id)

    async def find_withdrawal(self, asset: str, *, withdraw_id: str = "", client_id: str = "") -> WithdrawalState | None:
        await self._markets()
        rows = await self.account.read(f"fetchWithdrawals {asset}", self._ex.fetch_withdrawals, asset)
        param = CLIENT_ID_PARAM.get(self.account.ccxt_id)
        for row in rows:
            info = row.get("info") or {}
            if (withdraw_id and str(row.get("id")) == withdraw_id) or \
                    (client_id and param and str(info.get(param, "")) == client_id):
                cost = (row.get("fee") or {}).get("cost")
                return WithdrawalState(str(row.get("id")), str(row.get("status") or "pending"), row.get("txid") or None,
                                       Decimal(str(row.get("amount") or 0)),
                                       Decimal(str(cost)) if cost is not None else None)
        return None

    async def find_deposit(self, asset: str, tx_hash: str) -> DepositState | None:
        await self._markets()
        rows = await self.account.read(f"fetchDeposits {asset}", self._ex.fetch_deposits, asset)
        for row in rows:
            if str(row.get("txid") or "").lower() == tx_hash.lower():
                return DepositState(tx_hash, str(row.get("status") or "pending"), Decimal(str(row.get("amount") or 0)))
        return None

    # -- withdrawal terms ------------------------------------------------------------------------------
    async def withdrawal_terms(self, asset: str) -> WithdrawalTerms:
        await self._markets()
        ccxt_id = self.account.ccxt_id
        if ccxt_id == "okx":
            # ccxt's okx fetch_deposit_withdraw_fees keeps one chain's row per currency in ``info`` (the
            # last), so the Ethereum row's minimum and precision are read from the same endpoint here.
            raw = await self.account.read(f"asset/currencies {asset}", self._ex.privateGetAssetCurrencies, {"ccy": asset})
            row = next((r for r in raw.get("data") or [] if r.get("chain") == f"{asset}-ERC20"), None)
            if row is None:
                raise ValueError(f"okx lists no {asset}-ERC20 withdrawal chain")
            return WithdrawalTerms(asset, _dec(row.get("fee") or row.get("minFee"), f"{asset} withdrawal fee"),
                                   _dec(row.get("minWd"), f"{asset} minimum withdrawal"),
                                   Decimal(1).scaleb(-int(_dec(row.get("wdTickSz"), f"{asset} withdrawal precision"))))
        fees = await self.account.read(f"fetchDepositWithdrawFees {asset}", self._ex.fetch_deposit_withdraw_fees, [asset])
        entry = (fees or {}).get(asset)
        if not entry:
            raise ValueError(f"{self.venue} reports no withdrawal fees for {asset}")
        network = ETHEREUM_NETWORK[ccxt_id]
        info = entry.get("info") or {}
        if ccxt_id == "binance":
            row = next((r for r in info.get("networkList") or [] if r.get("network") == network), None)
            if row is None:
                raise ValueError(f"binance lists no {asset} withdrawals on {network}")
            # Binance takes the fee out of the amount: the address receives amount - withdrawFee
            return WithdrawalTerms(asset, _dec(row.get("withdrawFee"), f"{asset} withdrawal fee"),
                                   _dec(row.get("withdrawMin"), f"{asset} minimum withdrawal"),
                                   _dec(row.get("withdrawIntegerMultiple"), f"{asset} withdrawal step"),
                                   fee_included=True)
        row = next((r for r in info.get("chains") or [] if r.get("chain") == network), None)
        if row is None:
            raise ValueError(f"bybit lists no {asset} withdrawals on {network}")
        return WithdrawalTerms(asset, _dec(row.get("withdrawFee"), f"{asset} withdrawal fee"),
                               _dec(row.get("withdrawMin"), f"{asset} minimum withdrawal"),
                               Decimal(1).scaleb(-int(_dec(row.get("minAccuracy"), f"{asset} withdrawal precision"))))

    # -- moves between the exchange's own accounts -----------------------------------------------------
    def move_step(self, asset: str) -> Decimal:
        """The step ccxt rounds a transfer's amount to (``currency_to_precision``, to nearest): the
        currency's precision, which without fetchCurrencies ccxt takes from the markets (0.01 USDT
        at OKX and Bybit). The service rounds to it first, in the direction that never overdraws."""
        from ccxt.base.decimal_to_precision import TICK_SIZE

        precision = ((self._ex.currencies or {}).get(asset) or {}).get("precision")
        if precision is None:
            return Decimal(0)
        if self._ex.precisionMode == TICK_SIZE:
            return Decimal(str(precision))
        return Decimal(1).scaleb(-int(precision))

    def _move_client_id(self, client_id: str) -> str:
        if self.account.ccxt_id == "bybit":
            return str(uuid.uuid5(_MOVE_IDS, client_id))       # Bybit asks for a UUID
        return client_id.replace("-", "")                      # OKX: letters and digits, up to 32

    async def move(self, asset: str, amount: Decimal, from_account: str, to_account: str, client_id: str) -> str:
        await self._markets()
        ccxt_id = self.account.ccxt_id
        params: dict[str, Any] = {}
        if ccxt_id == "okx":
            params["clientId"] = self._move_client_id(client_id)
        elif ccxt_id == "bybit":
            params["transferId"] = self._move_client_id(client_id)
        answer = await self.account.write(f"transfer {amount} {asset} {from_account} -> {to_account}",
                                          self._ex.transfer, asset, float(amount), from_account, to_account, params)
        move_id = answer.get("id") or params.get("transferId")
        if not move_id:
            raise ValueError(f"{self.venue} accepted the transfer but gave no id: {answer.get('info')}")
        return str(move_id)

    async def find_move(self, asset: str, amount: Decimal, from_account: str, to_account: str, client_id: str,
                        since_ms: int) -> str | None:
        try:
            return await self._find_move(asset, amount, from_account, to_account, client_id, since_ms)
        except VenueError as exc:
            if exc.kind is VenueErrorKind.NOT_FOUND:      # the venue knows no transfer of that id
                return None
            raise

    async def _find_move(self, asset: str, amount: Decimal, from_account: str, to_account: str, client_id: str,
                         since_ms: int) -> str | None:
        await self._markets()
        ccxt_id = self.account.ccxt_id
        if ccxt_id == "okx":
            raw = await self.account.read("asset/transfer-state", self._ex.privateGetAssetTransferState,
                                          {"clientId": self._move_client_id(client_id)})
            rows = [r for r in raw.get("data") or [] if r.get("state") == "success"]
            return str(rows[0]["transId"]) if rows else None
        if ccxt_id == "bybit":
            raw = await self.account.read("asset/transfer/query-inter-transfer-list",
                                          self._ex.privateGetV5AssetTransferQueryInterTransferList,
                                          {"transferId": self._move_client_id(client_id)})
            rows = [r for r in (raw.get("result") or {}).get("list") or [] if r.get("status") == "SUCCESS"]
            return str(rows[0]["transferId"]) if rows else None
        types = self._ex.options["accountsByType"]
        kind = f"{types[from_account]}_{types[to_account]}"
        raw = await self.account.read(f"asset/transfer {kind}", self._ex.sapiGetAssetTransfer,
                                      {"type": kind, "startTime": since_ms})
        for row in raw.get("rows") or []:
            if row.get("asset") == asset and Decimal(str(row.get("amount"))) == amount \
                    and row.get("status") == "CONFIRMED":
                return str(row["tranId"])
        return None
