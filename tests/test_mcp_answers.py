"""The MCP answers without a transport: analysis options, masked config, proposal states, the request queue."""
from __future__ import annotations

import time

import pytest
from bot_helpers import analysis_from, real_candles

from bot.mcp_server import inbox
from bot.mcp_server.answers import analyse_output, masked_config, proposal_output
from bot.mcp_server.tools import AnalyseInput, ProposeOutput
from core.config.loading import load_config
from core.domain.exceptions import ProposalError
from core.domain.models import Direction, ProposalState, StrategyScore, TradeProposal


def _two_strategies():
    a = analysis_from(real_candles())
    first = a.strategies[0]
    second = StrategyScore(strategy="vwap_reversion", direction=Direction.SHORT, entry=first.entry,
                           stop_loss=first.stop_loss, take_profit=first.take_profit, rr=1.2, score=50)
    return a.model_copy(update={"strategies": [first, second]})


def test_defaults_keep_the_analysis_unchanged_and_name_the_top_strategy():
    a = _two_strategies()
    out = analyse_output(a, AnalyseInput(symbol="XAUUSDc")).model_dump(mode="json")
    extras = {k: out.pop(k) for k in ("verdict", "top_strategy", "strategy_filter", "risk_checks_shown")}
    assert out == a.to_dict()
    assert extras == {"verdict": "tradeable", "top_strategy": a.strategies[0].to_dict(), "strategy_filter": None,
                      "risk_checks_shown": True}


def test_strategy_filter_and_no_risk_checks_shorten_the_answer_not_the_verdict():
    a = _two_strategies()
    out = analyse_output(a, AnalyseInput(symbol="XAUUSDc", strategy_filter="vwap_reversion",
                                         check_risk_filters=False))
    assert [s.strategy for s in out.strategies] == ["vwap_reversion"] and out.top_strategy.strategy == "vwap_reversion"
    assert out.filters == [] and out.verdict == "tradeable" and not out.risk_checks_shown
    assert any("a proposal always runs them" in w for w in out.warnings)
    failed = a.model_copy(update={"passed": False})
    assert analyse_output(failed, AnalyseInput(symbol="XAUUSDc")).verdict == "no_trade"


def test_masked_config_hides_anything_secret_looking():
    cfg = load_config()
    out = masked_config(cfg)
    assert out["config_version"] == cfg.short_version and out["broker"]["kind"] == "paper"

    class Fake:
        short_version = "x"

        def model_dump(self, mode):
            return {"broker": {"mt5": {"password": "hunter2", "login": 12345, "path": "/opt"}}, "api_token": "abc"}

    masked = masked_config(Fake())
    assert masked["broker"]["mt5"] == {"password": "***", "login": "***", "path": "/opt"} and masked["api_token"] == "***"


@pytest.mark.parametrize("state, words", [
    (ProposalState.PENDING, "awaiting approval in chat"),
    (ProposalState.EXECUTED, "executed: ticket 7 filled at 2650.5"),
    (ProposalState.EXPIRED, "expired: nobody approved it in time"),
    (ProposalState.FAILED, "failed: market closed"),
])
def test_proposal_states_in_words(state, words):
    a = _two_strategies()
    p = TradeProposal(id="abc123", symbol="XAUUSDc", strategy=a.strategies[0], analysis=a, lot=0.01, created_at=1.0,
                      expires_at=2.0, state=state, ticket=7 if state is ProposalState.EXECUTED else None,
                      fill_price=2650.5 if state is ProposalState.EXECUTED else None, message="market closed")
    out = proposal_output(p)
    assert out.status == state.value and out.message == words


class _Backend:
    def __init__(self):
        self.calls = []

    async def propose(self, symbol, strategy):
        self.calls.append((symbol, strategy))
        if strategy == "bb_fade":
            raise ProposalError("No bb_fade proposal on XAUUSDc now: outside allowed sessions.")
        return ProposeOutput(proposal_id="p1", status="pending", message="awaiting approval in chat (console)",
                             symbol=symbol, strategy=strategy)


async def test_the_queue_proposes_once_fails_stale_requests_and_says_why(store):
    backend = _Backend()
    ok = inbox.enqueue(store, "XAUUSDc", "vwap_reversion")
    refused = inbox.enqueue(store, "XAUUSDc", "bb_fade")
    stale = inbox.enqueue(store, "XAUUSDc", "rsi_bounce")
    store.kv.set(inbox.PREFIX + stale, {**store.kv.get(inbox.PREFIX + stale), "created_at": time.time() - 3600})
    assert await inbox.process_once(store, backend) == 3
    assert await inbox.process_once(store, backend) == 0  # each request is proposed once
    assert sorted(backend.calls) == [("XAUUSDc", "bb_fade"), ("XAUUSDc", "vwap_reversion")]
    assert store.kv.get(inbox.PREFIX + ok)["proposal_id"] == "p1"
    out = inbox.request_status(store, refused)
    assert out.status == "failed" and "outside allowed sessions" in out.message
    assert "waited too long" in inbox.request_status(store, stale).message
    assert inbox.bot_last_seen(store) is not None


async def test_in_bot_a_pending_proposal_past_its_expiry_reads_expired():
    from types import SimpleNamespace

    from bot.mcp_server.backend import BotBackend
    from core.domain.clock import FixedClock

    a = _two_strategies()
    p = TradeProposal(id="abc123", symbol="XAUUSDc", strategy=a.strategies[0], analysis=a, lot=0.01,
                      created_at=100.0, expires_at=220.0)
    clock = FixedClock(200.0)
    service = SimpleNamespace(cfg=None, store=None, clock=clock, proposal=lambda pid: p if pid == p.id else None)
    backend = BotBackend(service, card=None, chats=None)
    assert (await backend.proposal("abc123")).status == "pending"
    clock.set(221.0)
    out = await backend.proposal("abc123")
    assert out.status == "expired" and out.message == "expired: nobody approved it in time"


@pytest.mark.parametrize("passed, strategy, needle", [
    (False, "bb_fade", "No bb_fade proposal on XAUUSDc now: Outside allowed sessions (weekend)"),
    (True, "rsi_bounce", "No rsi_bounce proposal on XAUUSDc now: rsi_bounce is not viable now"),
])
async def test_propose_strategy_refuses_a_no_trade_or_a_strategy_not_on_offer(tmp_path, passed, strategy, needle):
    from lifecycle_helpers import config, service

    from core.domain.clock import FixedClock

    a = analysis_from(real_candles(), passed=passed)
    a = a.model_copy(update={"filters": [f.model_copy(update={"reason": f.reason[:1].upper() + f.reason[1:]})
                                         for f in a.filters]})

    async def analyser(symbol):
        return a

    svc = service(config(), tmp_path, FixedClock(a.as_of), analyser=analyser)
    await svc.start(monitor=False)
    try:
        with pytest.raises(ProposalError) as e:
            await svc.propose_strategy("XAUUSDc", strategy)
        assert needle in e.value.message
        assert svc.store.proposals.list() == []  # nothing stored, nothing to tap
        _, p = await svc.propose_strategy("XAUUSDc", "bb_fade") if passed else (None, None)
        if passed:
            assert p.state is ProposalState.PENDING and p.strategy.strategy == "bb_fade"
            assert [x.id for x in svc.store.proposals.list()] == [p.id]
    finally:
        await svc.stop()


async def test_discord_card_goes_to_the_alert_channel_with_its_buttons():
    from bot.mcp_server.chats import _discord_post
    from bot.replies import Button, Reply

    sent = []

    class Channel:
        async def send(self, **kw):
            sent.append(kw)

    class Client:
        alert_channel_id = 42

        def get_channel(self, cid):
            return Channel() if cid == 42 else None

    reply = Reply(text="card", buttons=[[Button("✅ Approve 1", "a:abc", "success"), Button("✖ Reject 1", "r:abc",
                                                                                          "danger")]],
                  image=b"\x89PNG", image_name="c.png")
    await _discord_post(Client(), reply)
    assert len(sent) == 1 and sent[0]["content"] == "card" and sent[0]["file"].filename == "c.png"
    ids = [c.custom_id for c in sent[0]["view"].children]
    assert len(ids) == 2 and ids[0].endswith(":a:abc") and ids[1].endswith(":r:abc")
