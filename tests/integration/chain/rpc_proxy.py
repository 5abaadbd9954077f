"""A loopback JSON-RPC proxy in front of anvil that records what it is asked and injects faults.

Faults apply to the methods in ``fault_methods`` (every method when empty): ``hang`` never answers
(the client's timeout must fire), ``http500`` answers HTTP 500, ``rpc_error`` answers a JSON-RPC
error object, ``unsupported`` answers -32601 "method not found" (a node without that method).
``methods`` lists every method that reached the proxy, in order.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web


class RpcProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "pass"
        self.fault_methods: set[str] = set()
        self.methods: list[str] = []
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._hung: list[asyncio.Event] = []
        self.url = ""

    async def start(self) -> "RpcProxy":
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - aiohttp keeps it there
        self.url = f"http://127.0.0.1:{port}"
        self._session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        for event in self._hung:
            event.set()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def fault(self, mode: str, *methods: str) -> None:
        self.mode = mode
        self.fault_methods = set(methods)

    def heal(self) -> None:
        self.mode = "pass"
        self.fault_methods = set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        payload = json.loads(body)
        calls = payload if isinstance(payload, list) else [payload]
        names = [c.get("method", "") for c in calls]
        self.methods.extend(names)
        faulty = self.mode != "pass" and (
            not self.fault_methods or any(n in self.fault_methods for n in names)
        )
        if faulty and self.mode == "hang":
            event = asyncio.Event()
            self._hung.append(event)
            await event.wait()  # released only when the proxy stops
            return web.Response(status=503)
        if faulty and self.mode == "http500":
            return web.Response(status=500, text="upstream exploded")
        if faulty and self.mode in ("rpc_error", "unsupported"):
            code, message = (
                (-32000, "backend overloaded") if self.mode == "rpc_error" else (-32601, "Method not found")
            )
            errors = [
                {"jsonrpc": "2.0", "id": c.get("id"), "error": {"code": code, "message": message}}
                for c in calls
            ]
            return web.json_response(errors if isinstance(payload, list) else errors[0])
        assert self._session is not None
        async with self._session.post(
            self.upstream, data=body, headers={"content-type": "application/json"}
        ) as up:
            return web.Response(body=await up.read(), status=up.status, content_type="application/json")
