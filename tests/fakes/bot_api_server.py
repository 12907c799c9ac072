"""A Telegram Bot API stand-in on 127.0.0.1, so the real python-telegram-bot stack runs offline.

It speaks the HTTP shape PTB uses (`POST /bot<token>/<method>`, form or multipart bodies whose
non-string values are JSON-encoded), queues updates for long-polling `getUpdates`, records every call
the bot makes, and can inject failures. Only the methods MoneyBot uses are implemented; anything else
answers 404 like the real API does for unknown methods, which makes a test fail loudly.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TEXT_KEYS = {"text", "caption", "callback_query_id", "parse_mode", "url", "secret_token"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    status: int = 200  # an injected failure is recorded with its HTTP status


class BotApiServer:
    def __init__(self, token: str = "123456:TEST-token", bot_id: int = 999000, username: str = "moneybot_test"):
        self.token = token
        self.bot_id = bot_id
        self.username = username
        self.calls: list[Call] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat_id, message_id) -> message
        self._updates: list[dict[str, Any]] = []
        self._next_update = 1
        self._next_message = 100
        self._new = asyncio.Event()
        self._changed = asyncio.Event()
        self._faults: list[dict[str, Any]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------ lifecycle
    async def start(self, port: int = 0) -> BotApiServer:
        """Listen on `port` (0: any free one; a fixed one lets a test start the API after the bot tried it)."""
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self._new.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------ test controls
    def fail(self, method: str, status: int = 500, times: int = 1, description: str = "Internal Server Error",
             retry_after: int | None = None) -> None:
        self._faults.append({"method": method, "status": status, "times": times, "description": description,
                             "retry_after": retry_after})

    def _user(self, user_id: int, name: str = "Trader") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name, "username": f"user{user_id}"}

    def _chat(self, chat_id: int) -> dict[str, Any]:
        return {"id": chat_id, "type": "private" if chat_id > 0 else "group", "first_name": "Trader",
                "title": None if chat_id > 0 else "desk"}

    def push_text(self, text: str, user_id: int, chat_id: int | None = None) -> int:
        chat_id = user_id if chat_id is None else chat_id
        self._next_message += 1
        msg: dict[str, Any] = {
            "message_id": self._next_message, "date": int(time.time()), "chat": self._chat(chat_id),
            "from": self._user(user_id), "text": text,
        }
        if text.startswith("/"):
            cmd_len = len(text.split()[0]) if text.split() else 1
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": cmd_len}]
        return self._push({"message": msg})

    def push_callback(self, data: str, user_id: int, message: dict[str, Any]) -> int:
        cq = {
            "id": f"cq{self._next_update}", "from": self._user(user_id), "chat_instance": "ci",
            "data": data, "message": message,
        }
        return self._push({"callback_query": cq})

    def _push(self, update: dict[str, Any]) -> int:
        update["update_id"] = self._next_update
        self._next_update += 1
        self._updates.append(update)
        self._new.set()
        return update["update_id"]

    def sent(self, *methods: str) -> list[Call]:
        """Calls that succeeded (what actually reached the chat), optionally of the given methods."""
        return [c for c in self.calls if c.status == 200 and (not methods or c.method in methods)]

    async def wait_for(self, predicate, timeout: float = 10.0) -> Any:
        """Wait until predicate(self) is truthy (re-checked after every bot call); return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self)
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met in {timeout}s; calls: {[c.method for c in self.calls]}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))
            except TimeoutError:
                pass

    # ------------------------------------------------------------ HTTP
    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            params = await request.json() if request.can_read_body else {}
            return params, files
        form = await request.post()
        for key, value in form.items():
            if hasattr(value, "file"):
                files[key] = value.file.read()
                continue
            if key in TEXT_KEYS:
                params[key] = value
                continue
            try:
                params[key] = json.loads(value)
            except (TypeError, ValueError):
                params[key] = value
        return params, files

    def _ok(self, result: Any) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    def _error(self, status: int, description: str, retry_after: int | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        return web.json_response(body, status=status)

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(body=b"", status=404)

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await self._params(request)
        call = Call(method, params, files)
        if method != "getUpdates":
            self.calls.append(call)
        for fault in self._faults:
            if fault["method"] in (method, "*") and fault["times"] > 0 and method != "getUpdates":
                fault["times"] -= 1
                call.status = fault["status"]
                self._changed.set()
                return self._error(fault["status"], fault["description"], fault["retry_after"])
        self._changed.set()
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return self._error(404, "Not Found: method not found")
        return await handler(params, files)

    # ------------------------------------------------------------ methods
    async def _m_getMe(self, p, f):
        return self._ok({"id": self.bot_id, "is_bot": True, "first_name": "MoneyBot", "username": self.username,
                         "can_join_groups": True, "can_read_all_group_messages": False,
                         "supports_inline_queries": False})

    async def _m_deleteWebhook(self, p, f):
        return self._ok(True)

    async def _m_setMyCommands(self, p, f):
        return self._ok(True)

    async def _m_getUpdates(self, p, f):
        offset = int(p.get("offset") or 0)
        timeout = float(p.get("timeout") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), min(timeout, 1.0))
            except TimeoutError:
                pass
        limit = int(p.get("limit") or 100)
        return self._ok([u for u in self._updates if u["update_id"] >= offset][:limit])

    def _store(self, chat_id: int, extra: dict[str, Any]) -> dict[str, Any]:
        self._next_message += 1
        msg = {"message_id": self._next_message, "date": int(time.time()), "chat": self._chat(int(chat_id)),
               "from": {"id": self.bot_id, "is_bot": True, "first_name": "MoneyBot", "username": self.username},
               **extra}
        self.messages[(int(chat_id), msg["message_id"])] = msg
        return msg

    async def _m_sendMessage(self, p, f):
        extra = {"text": p.get("text", "")}
        if p.get("reply_markup"):
            extra["reply_markup"] = p["reply_markup"]
        return self._ok(self._store(p["chat_id"], extra))

    async def _m_sendPhoto(self, p, f):
        photo = f.get("photo") or b""
        extra: dict[str, Any] = {"photo": [{"file_id": f"photo{len(self.calls)}", "file_unique_id": "u",
                                             "width": 720, "height": 380, "file_size": len(photo)}]}
        if p.get("caption"):
            extra["caption"] = p["caption"]
        if p.get("reply_markup"):
            extra["reply_markup"] = p["reply_markup"]
        return self._ok(self._store(p["chat_id"], extra))

    async def _m_editMessageText(self, p, f):
        key = (int(p["chat_id"]), int(p["message_id"]))
        msg = self.messages.get(key)
        if msg is None:
            return self._error(400, "Bad Request: message to edit not found")
        if msg.get("text") == p.get("text") and msg.get("reply_markup") == p.get("reply_markup"):
            return self._error(400, "Bad Request: message is not modified")
        msg["text"] = p.get("text", "")
        if p.get("reply_markup"):
            msg["reply_markup"] = p["reply_markup"]
        else:
            msg.pop("reply_markup", None)
        msg["edit_date"] = int(time.time())
        return self._ok(msg)

    async def _m_editMessageReplyMarkup(self, p, f):
        key = (int(p["chat_id"]), int(p["message_id"]))
        msg = self.messages.get(key)
        if msg is None:
            return self._error(400, "Bad Request: message to edit not found")
        if p.get("reply_markup"):
            msg["reply_markup"] = p["reply_markup"]
        else:
            msg.pop("reply_markup", None)
        return self._ok(msg)

    async def _m_answerCallbackQuery(self, p, f):
        return self._ok(True)
