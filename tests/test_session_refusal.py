"""`session_refusal`, the session rule without its result model, against the rule as it was written.

`check_session_filters` (the analysis) and `session_block_now` (the send-time check) are both built on
`session_refusal`; `_reference` below is the filter as it stood before that split. Every 7 minutes over
weeks that hold both DST changes, weekends and the session opens, for every configured symbol and for
configs with and without trading outside sessions and at weekends, the verdicts, reasons and details agree.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.analysis.context import AnalysisContext
from core.analysis.filters.risk_filters import RangeScalpingRiskFilters, _title
from core.config.loading import load_config
from core.domain.models import FilterResult
from core.domain.sessions import active_sessions
from core.trading.order_checks import session_block_now


def _reference(ctx: AnalysisContext) -> FilterResult:
    s = ctx.cfg.sessions
    now = ctx.now
    if not ctx.spec.trades_weekends and datetime.fromtimestamp(now, UTC).weekday() >= 5:
        return FilterResult(name="session", passed=False,
                            reason=f"It is the weekend: the {ctx.symbol} market is closed.")
    names = ctx.session_names
    details = {"active": names}
    for w in ctx.sessions:
        block = s.block_open_minutes.get(w.name, 0)
        since = (now - w.start) / 60.0
        if block and since < block:
            return FilterResult(
                name="session", passed=False, details=details,
                reason=f"{_title(w.name)} opened {since:.0f} minutes ago; I wait {block} minutes after the open "
                "for the opening spike to settle.",
            )
    allowed = [n for n in names if n in s.allowed]
    if allowed:
        return FilterResult(name="session", passed=True, details=details,
                            reason=f"{' and '.join(_title(n) for n in allowed)} session open.")
    if s.allow_outside_sessions:
        return FilterResult(name="session", passed=True, details=details,
                            reason=f"No main session is open, but {ctx.symbol} is allowed to trade outside sessions.")
    listed = ", ".join(_title(n) for n in s.allowed)
    return FilterResult(name="session", passed=False, details=details,
                        reason=f"None of the sessions I trade ({listed}) is open right now; ranges outside them are thin and unreliable.")


def _configs():
    base = load_config()
    yield base
    data = base.model_dump(mode="json")
    for spec in data["symbols"].values():
        spec["trades_weekends"] = not spec.get("trades_weekends", False)
    data["sessions"].update(allow_outside_sessions=not base.sessions.allow_outside_sessions, allowed=["london"],
                            block_open_minutes={"asian": 30, "london": 0, "new_york": 61})
    data.get("symbol_overrides", {}).clear()
    outside = type(base).model_validate(data)
    yield outside


def _times():
    for start in ("2025-03-03", "2025-10-20"):  # weeks around the EU/US DST changes
        t0 = datetime.fromisoformat(start).replace(tzinfo=UTC).timestamp()
        yield from (t0 + i * 420.0 + 0.25 for i in range(0, 21 * 86400 // 420))


@pytest.mark.parametrize("which", [0, 1])
def test_session_refusal_gives_the_rules_verdict_reason_and_details(which):
    cfg = list(_configs())[which]
    filters = RangeScalpingRiskFilters()
    seen = set()
    for symbol, spec in cfg.symbols.items():
        tcfg = cfg.for_symbol(symbol)
        for now in _times():
            ctx = AnalysisContext(symbol=symbol, cfg=tcfg, spec=spec, now=now, bars=None, ind=None,
                                  sessions=active_sessions(tcfg.sessions, now))
            want = _reference(ctx)
            assert filters.check_session_filters(ctx) == want, (symbol, now)
            assert session_block_now(cfg, symbol, now) == (None if want.passed else want.reason), (symbol, now)
            seen.add((want.passed, want.reason.split(" ")[0]))
    # every branch was taken: weekend, an open's block, off hours (only without trading outside sessions), passes
    assert {r for ok, r in seen if not ok} >= ({"It", "None", "London"} if which == 0 else {"It", "Asian", "New"})
    assert any(ok for ok, _ in seen)


def test_an_unknown_symbol_is_not_judged_at_the_send():
    assert session_block_now(load_config(), "NOPE", 1_750_000_000.0) is None


@pytest.mark.parametrize("which", [0, 1])
def test_the_backtests_session_gate_is_the_filters_verdict(which):
    """`LiveParts.session_open` (the replay's gate before the analysis) asks `session_refusal` alone: it must
    say open exactly where the analysis' session filter passes, over the same weeks and both configs."""
    from core.backtest.live import LiveParts
    from core.config.paths import market_data_dir
    from core.data.loaders import load_candles
    from core.domain.timeframes import Timeframe

    cfg = list(_configs())[which]
    bars = load_candles(market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv",
                        tz_offset_hours=2)[:400]
    parts = LiveParts(cfg, "XAUUSDc", bars, Timeframe.M5)
    filters = RangeScalpingRiskFilters()
    tcfg, spec = cfg.for_symbol("XAUUSDc"), cfg.symbols["XAUUSDc"]
    verdicts = set()
    try:
        for now in _times():
            ctx = AnalysisContext(symbol="XAUUSDc", cfg=tcfg, spec=spec, now=now, bars=None, ind=None,
                                  sessions=active_sessions(tcfg.sessions, now))
            want = filters.check_session_filters(ctx)
            assert want.blocking
            assert parts.session_open(now) is want.passed, now
            verdicts.add(want.passed)
    finally:
        parts.shutdown()
    assert verdicts == {True, False}
