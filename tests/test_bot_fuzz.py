"""Fuzz: random commands and button payloads through Telegram (real PTB), Discord (simcord) and the
console, on the real core. No traceback may reach a user; every reply must be a clear message."""
from __future__ import annotations

import io
import random
import re
from contextlib import asynccontextmanager

import simcord
from bot_helpers import TRADER, VIEWER, start_core
from fakes.bot_api_server import BotApiServer
from telegram import Update

from bot.commands import CommandRouter
from bot.console import ConsoleChat
from bot.discord_bot import ActionButton, MoneyBotClient, build_view
from bot.replies import Button
from bot.telegram_bot import TelegramFrontEnd
from core.trading.authz import Authorizer

TOKEN = "123456:FUZZ-token-not-real-bbbbbbbbbbbbbbbbbbbbbbbbb"
COMMANDS = ["scalp", "status", "trades", "close", "pause", "resume", "emergency", "metrics", "config", "health",
            "help", "backtest", "start", "Scalp", "SCALP", "quit", "x", "", "scalp@moneybot_test", "drop"]
LEAK = re.compile(r"Traceback|File \"|object at 0x|Exception\(|Error\(|\bNone\b$")


def _token(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.15:
        return rng.choice(["XAUUSDc", "btcusdc", "EURUSDC", "xauusd", "BTC", "eur"])
    if pick < 0.35:
        return str(rng.choice([0, -1, 1, 5, 50, 51, 10**30, 2**63, 3.5, -0.0, 1e309]))
    alphabet = "abcXYZ0123456789_-./:;'\"\\ \t%$€🚀\u202e\x00\u200b@#<>{}[]" + chr(rng.randrange(0x20, 0x2FFF))
    return "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 5, 12, 40, 300])))


def random_command(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return _token(rng)  # not a command at all
    name = rng.choice(COMMANDS)
    args = [_token(rng) for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))]
    # few real analyses (they cost ~50 ms each): most /scalp calls get junk symbols
    if name.lower().startswith("scalp") and args and rng.random() < 0.85:
        args[0] = "Q" + args[0]
    if name == "backtest":
        args = ["nope", *args]  # a real backtest per fuzz case would be far too slow
    return " ".join(["/" + name, *args])


def random_payload(rng: random.Random, real_ids: list[str]) -> str:
    kind = rng.choice("arcexzA:")
    r = rng.random()
    if r < 0.3 and real_ids:
        ref = rng.choice(real_ids)
    elif r < 0.5:
        ref = str(rng.choice([0, -5, 10**25, 100001]))
    else:
        ref = _token(rng)
    return rng.choice([f"{kind}:{ref}", ref, f"{kind}:", f"{kind}{ref}"])[: rng.choice([64, 64, 200])]


def assert_clear(text: str) -> None:
    assert text and text.strip(), "empty reply"
    assert not LEAK.search(text), text
    assert len(text) <= 4096


async def test_fuzz_telegram_and_console(tmp_path):
    rng = random.Random(20261125)
    api = await BotApiServer(token=TOKEN).start()
    service, clock = await start_core(tmp_path)
    router = CommandRouter(service, service.cfg)  # no chart: the fuzz targets parsing and error paths
    fe = TelegramFrontEnd(router, TOKEN, base_url=api.base_url, base_file_url=api.base_file_url, rate_limit=False)
    await fe.app.initialize()
    try:
        _, props = await service.propose("XAUUSDc")
        real_ids = [p.id for p in props]
        bot = fe.app.bot
        card = api._store(TRADER, {"text": "card", "reply_markup": {"inline_keyboard": [[{"text": "a",
                                   "callback_data": "a:x"}]]}})
        texts = 0
        crashes: list[str] = []  # commands that hit the "unexpected error" apology
        for i in range(1200):
            user = rng.choice([TRADER, TRADER, VIEWER])
            before = len(api.calls)
            if i % 3 == 2:
                data = random_payload(rng, real_ids)
                upd = {"update_id": i + 1, "callback_query": {"id": f"q{i}", "chat_instance": "c", "data": data,
                       "from": {"id": user, "is_bot": False, "first_name": "T"}, "message": card}}
                await fe.app.process_update(Update.de_json(upd, bot))
                sent = api.calls[before:]
                answers = [c for c in sent if c.method == "answerCallbackQuery"]
                assert len(answers) == 1, (data, [c.method for c in sent])
                for c in sent:
                    if c.method == "editMessageText":
                        assert_clear(c.params["text"])
                        card["text"] = "card"
                if answers[0].params.get("text"):
                    assert_clear(answers[0].params["text"])
                    assert len(answers[0].params["text"]) <= 200
            else:
                text = random_command(rng)
                if not text.strip():
                    continue
                texts += 1
                upd = {"update_id": i + 1, "message": {"message_id": 10_000 + i, "date": 0, "text": text,
                       "chat": {"id": user, "type": "private"}, "from": {"id": user, "is_bot": False, "first_name": "T"}}}
                await fe.app.process_update(Update.de_json(upd, bot))
                replies = [c for c in api.calls[before:] if c.method == "sendMessage"]
                assert len(replies) == 1, (text, [c.method for c in api.calls[before:]])
                assert_clear(replies[0].params["text"])
                if "error id" in replies[0].params["text"]:
                    crashes.append(text)
            if service.notifier.entries_blocked():
                service.resume(TRADER)  # keep /scalp reachable after a random /pause
        assert texts >= 700
        # only a real analysis may crash inside core (e.g. a symbol without bars at the replay time);
        # parsing, authorization and every other command must never fall into the apology path
        assert all(c.lower().startswith("/scalp") for c in crashes), crashes
        # the console sees the same kind of input through stdin
        lines = "\n".join(random_command(rng) for _ in range(300)) + "\n1\n2\n99\n"
        out = io.StringIO()
        await ConsoleChat(router, stdin=io.StringIO(lines), stdout=out, chart_dir=tmp_path / "c").run()
        assert not LEAK.search(out.getvalue())
        assert out.getvalue().rstrip().endswith(("bye", "bye (end of input)"))  # a random "quit" may end it
    finally:
        await fe.app.shutdown()
        await service.stop()
        await api.stop()


@asynccontextmanager
async def _discord(tmp_path):
    router = CommandRouter(None, None)
    bot = MoneyBotClient(router)
    async with simcord.run(bot) as env:
        guild = env.create_guild()
        desk = guild.create_text_channel("desk")
        trader = guild.add_member(env.create_user("trader"))
        service, clock = await start_core(tmp_path)
        service.authz = service.execution.authz = Authorizer([trader.id], [])
        router.service, router.cfg = service, service.cfg
        try:
            yield env, bot, service, desk, trader
        finally:
            await service.stop()


async def test_fuzz_discord(tmp_path):
    rng = random.Random(7)
    async with _discord(tmp_path) as (env, bot, service, desk, trader):
        _, props = await service.propose("XAUUSDc")
        real_ids = [p.id for p in props]
        for _ in range(200):
            name = rng.choice(["scalp", "trades", "close", "metrics", "config", "backtest", "status", "help"])
            opts = {}
            if name in ("scalp", "backtest"):
                opts["symbol"] = _token(rng)[:100] or "x"
                if opts["symbol"].lower() in ("xauusdc", "btcusdc", "eurusdc"):
                    opts["symbol"] = "Q" + opts["symbol"]
            if name == "close":
                opts["ticket"] = _token(rng)[:100] or "0"
            if name == "trades" and rng.random() < 0.7:
                opts["n"] = rng.choice([-5, 0, 1, 7, 51, 10**6])
            if name == "metrics" and rng.random() < 0.7:
                opts["days"] = rng.choice([-1, 0, 30, 99999])
            if name == "config" and rng.random() < 0.7:
                opts["symbol"] = _token(rng)[:100] or "x"
            if name == "backtest":
                opts["symbol"] = "nope" + opts["symbol"][:10]
            r = await trader.slash(desk, name, **opts)
            assert r.response is not None, (name, opts)
            assert_clear(r.response.content)
        # random button payloads that match the persistent template: post them, click them
        channel = bot.get_channel(desk.id)
        for _ in range(40):
            kind = rng.choice("arcex")
            ref = rng.choice(real_ids + ["0", "zz", "-1", "100001", "go", "a.b", "x" * 56, "1:1", "7:1735910700",
                                         "1735910700", "1:2:3", ":", "9" * 19 + ":" + "9" * 12])
            view = build_view([[Button("b", f"{kind}:{ref}")]])
            assert all(isinstance(c, ActionButton) for c in view.children)
            msg = await channel.send("tap me", view=view)
            res = await trader.click(msg, custom_id=f"moneybot:{kind}:{ref}")
            for m in res.followups:
                assert_clear(m.content)
            assert_clear(next(x for x in desk.history() if x.id == msg.id).content)
            if service.notifier.entries_blocked():
                service.resume(trader.id)
        assert env.errors == []
