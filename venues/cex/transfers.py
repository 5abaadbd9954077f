"""CcxtTransfers: one exchange account's wallet endpoints through ccxt (implements
engine.domain.transfers.CexTransferPort).

``withdraw`` (a state change: sent once, never retried, so a timeout can never pay twice; the
client id lets a restart find it), ``fetchDepositAddress``, ``fetchWithdrawals`` and ``fetchDeposits``
(reads, retried like every read). The client id travels in the venue's own parameter: Binance
``withdrawOrderId``, OKX ``clientId``; Bybit's withdrawal records carry none, so a restart cannot tell
whether an unacknowledged Bybit withdrawal was made and says so instead of sending it again.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.domain.transfers import DepositState, WithdrawalState
from venues.cex.client import CexClient

#: the withdrawal parameter that carries our client id, per ccxt class
CLIENT_ID_PARAM = {"binance": "withdrawOrderId", "okx": "clientId"}


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
                return WithdrawalState(str(row.get("id")), str(row.get("status") or "pending"), row.get("txid") or None,
                                       Decimal(str(row.get("amount") or 0)))
        return None

    async def find_deposit(self, asset: str, tx_hash: str) -> DepositState | None:
        await self._markets()
        rows = await self.account.read(f"fetchDeposits {asset}", self._ex.fetch_deposits, asset)
        for row in rows:
            if str(row.get("txid") or "").lower() == tx_hash.lower():
                return DepositState(tx_hash, str(row.get("status") or "pending"), Decimal(str(row.get("amount") or 0)))
        return None
