"""A web3 async HTTP provider that posts through an aiohttp session it owns.

Why not web3's own ``AsyncHTTPProvider`` as is: its ``HTTPSessionManager`` guards the session cache
with one *process-wide* ``threading.Lock`` (a class attribute), acquired in a thread pool by
``web3._utils.async_caching.async_lock``. When the awaiting request is cancelled while that acquire
is pending (any ``asyncio.wait_for`` timeout, a cancelled venue check, an emergency stop can do it),
the context manager's ``finally`` releases a lock it does not hold yet, the pool thread then takes it
and nobody ever releases it. From then on every web3 HTTP request in the process waits forever, and
interpreter exit hangs joining the stuck pool threads. A loaded CI machine hit exactly that: one chain
check timed out, every later RPC read hung, and the test process never exited.

Here every request is a plain ``session.post`` on this provider's own session: no shared lock, no
threads, and cancellation simply abandons the request.
"""
from __future__ import annotations

from typing import Any

import aiohttp
from web3._utils.batching import sort_batch_response_by_response_ids
from web3.providers.rpc import AsyncHTTPProvider
from web3.types import RPCEndpoint


class OwnSessionHTTPProvider(AsyncHTTPProvider):
    """``AsyncHTTPProvider`` whose transport is one aiohttp session per provider (see module doc)."""

    def __init__(self, endpoint_uri: str, *, timeout_s: float) -> None:
        super().__init__(endpoint_uri, exception_retry_configuration=None)   # retries: ChainReader's policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop (aiohttp binds a session to its loop).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=True)
        return self._session

    async def _post(self, request_data: bytes) -> bytes:
        async with self._client().post(self.endpoint_uri, data=request_data,
                                       headers=self.get_request_headers()) as response:
            return await response.read()

    async def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        return await self._post(request_data)

    async def make_batch_request(self, batch_requests: list[tuple[RPCEndpoint, Any]]) -> Any:
        response = self.decode_rpc_response(await self._post(self.encode_batch_rpc_request(batch_requests)))
        if not isinstance(response, list):
            return response          # an error for the whole batch, as web3's provider returns it
        return sort_batch_response_by_response_ids(response)

    async def disconnect(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
