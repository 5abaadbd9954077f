"""ChainReader: the engine's OnchainReadPort over web3's AsyncWeb3 (reads only).

One reader per (environment, RPC URL); the token and contract tables come from the venue files of
the environment (configs/venues/*.yaml ``environments.<env>.tokens|contracts``), merged by the
factory. Every call goes through ``_call``: per-call timeout, retries with exponential backoff for
transient failures (the reads are idempotent), and translation to a redacted VenueError. web3's own
retry layer is switched off so that timing is ours and predictable (a refused connection fails at
once instead of after web3's five silent retries).
"""
from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence

from web3 import AsyncWeb3

from engine.domain.venue_ports import (
    AaveAccountData,
    ChainHead,
    TokenBalance,
    VenueError,
    VenueErrorKind,
)
from venues.cex.account import RetryPolicy
from venues.credentials import Secret
from venues.onchain import abi
from venues.onchain.errors import translate
from venues.onchain.http_provider import OwnSessionHTTPProvider

log = logging.getLogger(__name__)
RPC_VENUE = "alchemy"


class ChainReader:
    """Reads of one chain for one wallet's purposes; implements OnchainReadPort."""

    def __init__(self, rpc_url: str, *, tokens: Mapping[str, str | None], contracts: Mapping[str, str | None],
                 timeout_s: float = 10.0, retry: RetryPolicy = RetryPolicy(), venue: str = RPC_VENUE,
                 secrets: Iterable[str | Secret | None] = ()) -> None:
        self.venue = venue
        self.timeout_s = timeout_s
        self.retry = retry
        self._secrets = [rpc_url, *[s for s in secrets if s]]
        provider = OwnSessionHTTPProvider(rpc_url, timeout_s=timeout_s)
        self.w3 = AsyncWeb3(provider)
        self.tokens = {k: v for k, v in tokens.items()}
        self.contracts = {k: v for k, v in contracts.items()}
        self._decimals: dict[str, int] = {}

    # -- plumbing ----------------------------------------------------------------------------------
    async def call(self, operation: str, fn: Callable[[], Awaitable[Any]], *,
                   passthrough: tuple[type[BaseException], ...] = (), retry: bool = True) -> Any:
        """``await fn()`` with the reader's timeout and retry policy, failures as redacted VenueErrors.

        ``passthrough`` exception types are re-raised as they are, for callers that decode them
        (a revert's data); ``retry=False`` makes one attempt (a write whose repeat is not harmless).
        """
        return await self._call(operation, fn, passthrough=passthrough, retry=retry)

    async def _call(self, operation: str, fn: Callable[[], Awaitable[Any]], *,
                    passthrough: tuple[type[BaseException], ...] = (), retry: bool = True) -> Any:
        last: VenueError | None = None
        attempts = self.retry.attempts if retry else 1
        for attempt in range(attempts):
            try:
                return await asyncio.wait_for(fn(), self.timeout_s)
            except asyncio.CancelledError:
                raise
            except passthrough:
                raise
            except Exception as exc:  # noqa: BLE001 - translated, never escapes raw
                last = translate(exc, self.venue, operation, self._secrets)
            if not last.retryable or attempt == attempts - 1:
                break
            await asyncio.sleep(self.retry.delay(attempt))
        assert last is not None
        raise last from None

    def _address(self, table: Mapping[str, str | None], name: str, what: str) -> str:
        if name not in table:
            raise VenueError(self.venue, VenueErrorKind.CONFIG, f"no {what} named {name!r} in the venue config; "
                                                                f"known: {', '.join(sorted(table)) or 'none'}")
        address = table[name]
        if address is None:
            raise VenueError(self.venue, VenueErrorKind.CONFIG,
                             f"{what} {name!r} has no address in this environment (null in the venue config)")
        return AsyncWeb3.to_checksum_address(address)

    def token_address(self, name: str) -> str:
        return self._address(self.tokens, name, "token")

    def contract_address(self, role: str) -> str:
        return self._address(self.contracts, role, "contract")

    @staticmethod
    def checksum(address: str) -> str:
        return AsyncWeb3.to_checksum_address(address)

    # -- OnchainReadPort ---------------------------------------------------------------------------
    async def chain_id(self) -> int:
        return int(await self._call("eth_chainId", lambda: self.w3.eth.chain_id))

    async def chain_head(self) -> ChainHead:
        async def head() -> ChainHead:
            chain_id, block = await asyncio.gather(self.w3.eth.chain_id, self.w3.eth.get_block("latest"))
            return ChainHead(int(chain_id), int(block["number"]), int(block["timestamp"]))
        return await self._call("chain_head", head)

    async def gas_price_wei(self) -> int:
        return int(await self._call("eth_gasPrice", lambda: self.w3.eth.gas_price))

    async def has_code(self, address: str) -> bool:
        code = await self._call("eth_getCode", lambda: self.w3.eth.get_code(self.checksum(address)))
        return len(code) > 0

    async def native_balance(self, address: str) -> TokenBalance:
        raw = await self._call("eth_getBalance", lambda: self.w3.eth.get_balance(self.checksum(address)))
        return TokenBalance("ETH", None, int(raw), 18)

    async def _token_decimals(self, token: str) -> int:
        if token not in self._decimals:
            contract = self.w3.eth.contract(address=token, abi=abi.ERC20)
            self._decimals[token] = int(await self._call("decimals", contract.functions.decimals().call))
        return self._decimals[token]

    async def token_balance(self, address: str, name: str, token: str | None = None) -> TokenBalance:
        token = self.checksum(token) if token else self.token_address(name)
        contract = self.w3.eth.contract(address=token, abi=abi.ERC20)
        raw, decimals = await asyncio.gather(
            self._call(f"{name}.balanceOf", contract.functions.balanceOf(self.checksum(address)).call),
            self._token_decimals(token))
        return TokenBalance(name, token, int(raw), decimals)

    async def token_balances(self, address: str, tokens: Sequence[str]) -> list[TokenBalance]:
        return list(await asyncio.gather(*(self.token_balance(address, name) for name in tokens)))

    async def allowance(self, token: str, owner: str, spender: str) -> TokenBalance:
        address = self.token_address(token)
        contract = self.w3.eth.contract(address=address, abi=abi.ERC20)
        raw, decimals = await asyncio.gather(
            self._call(f"{token}.allowance",
                       contract.functions.allowance(self.checksum(owner), self.checksum(spender)).call),
            self._token_decimals(address))
        return TokenBalance(token, address, int(raw), decimals)

    async def aave_account(self, address: str, pool: str | None = None) -> AaveAccountData:
        pool_address = self.checksum(pool) if pool else self.contract_address("pool")
        contract = self.w3.eth.contract(address=pool_address, abi=abi.AAVE_POOL)
        user = self.checksum(address)
        data, emode = await asyncio.gather(
            self._call("Pool.getUserAccountData", contract.functions.getUserAccountData(user).call),
            self._call("Pool.getUserEMode", contract.functions.getUserEMode(user).call))
        collateral, debt, available, threshold, ltv, hf = (int(x) for x in data)
        return AaveAccountData(collateral, debt, available, threshold, ltv, hf, int(emode))

    async def lst_rate(self, lst: str, address: str | None = None) -> Decimal:
        if lst not in abi.LST_RATE:
            raise VenueError(self.venue, VenueErrorKind.CONFIG,
                             f"no exchange-rate reader for {lst!r}; known: {', '.join(abi.LST_RATE)}")
        rate_abi, function = abi.LST_RATE[lst]
        contract = self.w3.eth.contract(address=self.checksum(address) if address else self.token_address(lst),
                                        abi=rate_abi)
        raw = await self._call(f"{lst}.{function}", getattr(contract.functions, function)().call)
        return Decimal(int(raw)).scaleb(-18)

    async def close(self) -> None:
        try:
            await self.w3.provider.disconnect()
        except Exception as exc:  # noqa: BLE001 - closing never raises
            log.debug("closing the RPC session failed: %s", type(exc).__name__)
