"""A loopback alert receiver for the tests: an aiohttp server on 127.0.0.1 that takes webhook POSTs
(``/hook``) and speaks the Telegram Bot API's ``sendMessage`` (``/bot<token>/sendMessage``)."""
from __future__ import annotations

import asyncio

from aiohttp import web

TOKEN = "123456:TEST-bot-token-abcdefghij"


class Receiver:
    """An aiohttp server on 127.0.0.1 that records every JSON POST; ``hang`` makes it never answer."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict]] = []
        self.hang = False
        self.telegram_token = TOKEN
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/bot{token}/sendMessage", self._telegram)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _hook(self, req: web.Request) -> web.Response:
        body = await req.json()
        self.posts.append(("/hook", body))
        if self.hang:
            await asyncio.sleep(3600)
        return web.json_response({"received": True})

    async def _telegram(self, req: web.Request) -> web.Response:
        body = await req.json()
        if req.match_info["token"] != self.telegram_token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        self.posts.append(("sendMessage", body))
        return web.json_response({"ok": True, "result": {"message_id": len(self.posts), "chat": {"id": body["chat_id"]},
                                                         "text": body["text"]}})
