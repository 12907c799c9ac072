"""`/backtest` through the real discord.py client under simcord, on the real core."""
from __future__ import annotations

from progress_pacing import paced
from test_discord_conversation import world


def _original_edits(env, since: int) -> list[str]:
    return [(e.json or {}).get("content", "") for e in env.http_requests[since:]
            if e.method == "PATCH" and e.path.endswith("/messages/@original")]


async def test_slash_backtest_progress_edits_then_png_and_summary(tmp_path):
    async with world(tmp_path) as (env, bot, router, service, clock, desk, alerts, trader, viewer, stranger):
        router.backtest.min_interval = 0.0  # a 3-day run is far shorter than the 2 s production throttle
        n = len(env.http_requests)
        router.backtest.runner = paced(lambda: _original_edits(env, n))
        r = await trader.slash(desk, "backtest", symbol="xauusdc", days=3)
        callbacks = [e for e in env.http_requests[n:] if e.path.endswith("/callback")]
        assert callbacks and (callbacks[0].json or {}).get("type") == 5  # deferred before any work
        edits = _original_edits(env, n)
        assert edits[0] == "⏳ Backtesting XAUUSDc, 3 days before the replay clock… 0%"
        pcts = [int(t.split("… ", 1)[1].split("%", 1)[0]) for t in edits[:-1]]
        assert len(pcts) >= 5 and pcts == sorted(pcts) and pcts[-1] >= 80
        assert edits[-1].startswith("✅ Backtest XAUUSDc done: ")
        assert r.response.content == edits[-1] and not r.response.ephemeral  # the deferred message, edited
        result = r.followups[-1]
        assert result.content.startswith("📊 Backtest XAUUSDc M5, 3 days before the replay clock") and "(n=" in result.content
        assert [a.filename for a in result.attachments] == ["backtest_XAUUSDc_3d.png"]

        # bad input: one clear line, no progress edits
        for opts, expect in (({"symbol": "XAUUSDc", "days": 0}, "Usage: /backtest SYMBOL [days]"),
                             ({"symbol": "XAUUSDc", "days": -4}, "Usage: /backtest SYMBOL [days]"),
                             ({"symbol": "btcusd"}, "I don't know the symbol 'btcusd'. Did you mean BTCUSDc")):
            n = len(env.http_requests)
            r = await trader.slash(desk, "backtest", **opts)
            text = r.followups[-1].content if r.followups else r.response.content
            assert text.startswith(expect), (opts, text)
            assert not any(t.startswith("⏳") for t in _original_edits(env, n))
        assert env.errors == []
