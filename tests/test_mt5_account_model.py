"""MT5 on a real account (issue 14), at the adapter: account model, position identity, PLACED, freeze level,
trade mode, the listed return codes, order_check, and the bounded wait before any resend.

Each MetaTrader5 fact the fake models is the documented one (MQL5 docs: Trade Server Return Codes, Position
Properties, Account Properties, MqlTradeCheckResult). Where the docs are silent the test says so.
"""
from __future__ import annotations

import pytest
from broker_contract_fixtures import SYM, MT5Driver
from fakes import fake_mt5 as mt5

from core.brokers.base import (
    BrokerTimeoutError,
    CloseOrderExistsError,
    FrozenError,
    InvalidCloseVolumeError,
    NoMoneyError,
    OrderRequest,
    PositionNotFoundError,
    RefusedError,
)
from core.domain.models import ActiveTrade, Direction
from core.exits.deals import closed_trade_from_deals

NETTING, EXCHANGE, HEDGING = 0, 1, 2


@pytest.fixture
def drv():
    d = MT5Driver()
    yield d
    d.broker.close()


def netting_driver(mode=NETTING) -> MT5Driver:
    d = MT5Driver()
    mt5.fake_set_account(margin_mode=mode)
    d.broker.connect()  # the model is read at (re)initialisation
    return d


def buy(comment="rs:p1", **kw):
    base = dict(symbol=SYM, side="buy", volume=0.01, sl=1998.0, tp=2005.0, magic=42, comment=comment)
    return OrderRequest(**{**base, **kw})


def sent():
    return [r for r in mt5.fake_state()["requests"]]


def raw(side, volume, magic=7, comment="manual", position=0):
    """An order straight to the fake terminal, as a trader's manual order would be."""
    mt5.symbol_select(SYM, True)
    bid, ask = mt5.symbol_info_tick(SYM).bid, mt5.symbol_info_tick(SYM).ask
    req = dict(action=mt5.TRADE_ACTION_DEAL, symbol=SYM, volume=volume, type=0 if side == "buy" else 1,
               price=ask if side == "buy" else bid, deviation=50, magic=magic, comment=comment,
               type_filling=mt5.ORDER_FILLING_FOK, type_time=0)
    if position:
        req["position"] = position
    return mt5.order_send(req)


# ---- 1. netting accounts ------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [NETTING, EXCHANGE])
def test_netting_mode_is_read_at_connect_and_on_reconnect(mode):
    # docs silent: the Account Properties pages name RETAIL_NETTING / EXCHANGE / RETAIL_HEDGING but print no
    # numbers; 0 / 1 / 2 are the package's values, used by the fake and the adapter alike
    d = MT5Driver()
    assert not d.broker.netting and d.broker.account_mode == "hedging"
    mt5.fake_set_account(margin_mode=mode)
    mt5.fake_inject("symbol_info_tick", error=-10004)  # the link drops: the reconnect re-reads the model
    d.broker.tick(SYM)
    assert d.broker.netting and "netting" in d.broker.account_mode


def test_netting_fake_merges_reduces_and_reverses_under_one_identifier():
    """Docs (Position Properties): one position per symbol; a reversal keeps POSITION_IDENTIFIER and the
    ticket becomes the reversing order's."""
    netting_driver()
    first = raw("buy", 0.01)
    raw("buy", 0.01)  # adds: 0.02, same identifier
    (p,) = mt5.positions_get()
    assert p.volume == pytest.approx(0.02) and p.identifier == first.order
    assert {d.position_id for d in mt5.history_deals_get(position=first.order)} == {first.order}
    rev = raw("sell", 0.03)  # larger opposite deal: reverses to a 0.01 sell
    (q,) = mt5.positions_get()
    assert q.type == 1 and q.volume == pytest.approx(0.01) and q.identifier == first.order and q.ticket == rev.order
    assert [d.entry for d in mt5.history_deals_get(position=first.order)] == [0, 0, 2]  # in, in, inout


def test_netting_second_entry_is_refused_before_anything_is_sent():
    d = netting_driver()
    r = d.broker.market_order(buy())
    n = len(sent())
    with pytest.raises(RefusedError) as e:
        d.broker.market_order(buy(comment="rs:p2"))
    assert "netting account" in e.value.message and "merge" in e.value.message
    assert len(sent()) == n and [p.volume for p in d.broker.positions()] == [0.01]
    assert r.position == d.broker.positions()[0].identifier


def test_netting_a_trader_position_also_blocks_our_entry():
    d = netting_driver()
    raw("sell", 0.05, magic=0)
    with pytest.raises(RefusedError) as e:
        d.broker.market_order(buy())
    assert "not opened by me" in e.value.message and len(d.broker.positions()) == 1


def test_netting_close_sends_the_position_ticket_and_its_exact_volume():
    """A trader's order merged into ours: the close names the position and its whole current volume,
    never an opposite deal of a guessed 0.01 (which would leave 0.01 open or, larger, reverse it)."""
    d = netting_driver()
    r = d.broker.market_order(buy())
    raw("buy", 0.01, magic=0)
    d.broker.close_position(r.position)
    last = sent()[-1]
    (p_before_ticket,) = {x["position"] for x in sent()[-1:]}
    assert last["volume"] == pytest.approx(0.02) and p_before_ticket and d.broker.positions() == []


# ---- 2. position identity -------------------------------------------------------------------------------
def test_identifier_survives_a_reopen_and_keys_deals_and_history(drv):
    r = drv.broker.market_order(buy())
    ident = r.position
    new_ticket = mt5.fake_reopen(drv.broker.positions()[0].ticket)  # swap charged by re-opening
    (p,) = drv.broker.positions()
    assert p.ticket == new_ticket != ident and p.identifier == ident and p.key == ident
    drv.broker.modify_sltp(ident, 1998.5, 2005.0)  # found by identifier, sent with the current ticket
    assert sent()[-1]["position"] == new_ticket and drv.broker.positions()[0].sl == pytest.approx(1998.5)
    drv.broker.close_position(ident)
    deals = drv.broker.history_deals(ident)
    assert [d.entry for d in deals] == ["in", "out"]
    trade = ActiveTrade(ticket=ident, symbol=SYM, strategy="bb_fade", direction=Direction.LONG,
                        entry_price=deals[0].price, sl=1998.5, tp=2005.0, initial_sl=1998.0, volume=0.01,
                        entry_time=deals[0].time)
    assert closed_trade_from_deals(trade, deals) is not None  # the old `position_id == ticket` missed it


def test_identifier_not_comment_after_the_broker_rewrites_it(drv):
    r = drv.broker.market_order(buy(comment="rs:abcdef:bb_fade"))
    mt5.fake_rewrite_comment(drv.broker.positions()[0].ticket, "[tp 2005.00] partial 0.0")
    (p,) = drv.broker.positions()
    assert p.key == r.position and p.comment != "rs:abcdef:bb_fade"


# ---- 3. PLACED is not a fill ------------------------------------------------------------------------
def test_placed_then_a_delayed_fill_is_confirmed_from_the_deals(drv):
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_PLACED, fill_after=2)
    r = drv.broker.market_order(buy(comment="rs:pl"))
    (p,) = drv.broker.positions()
    assert r.retcode == 10009 and r.position == p.identifier and r.price == pytest.approx(p.price_open)
    assert len(sent()) == 1 and all(s <= 1.0 for s in drv.sleeps) and sum(drv.sleeps) <= 1.0  # bounded wait


def test_placed_without_a_fill_is_not_executed_and_not_resent(drv):
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_PLACED, fill_after=None)
    with pytest.raises(BrokerTimeoutError) as e:
        drv.broker.market_order(buy(comment="rs:pl2"))
    assert e.value.code == 10008 and "not counted as executed" in e.value.message
    assert len(sent()) == 1 and drv.broker.positions() == [] and sum(drv.sleeps) == pytest.approx(1.0)


# ---- 4. freeze level and trade mode --------------------------------------------------------------------
def test_freeze_level_skips_the_stop_move_without_sending(drv):
    r = drv.broker.market_order(buy())
    mt5.fake_set_symbol(SYM, freeze_level=500)  # 5.00 of price: the SL at 1998 is inside it
    n = len(sent())
    with pytest.raises(FrozenError) as e:
        drv.broker.modify_sltp(r.position, 1999.0, 2005.0)
    assert e.value.retryable and len(sent()) == n


def test_frozen_retcode_from_the_server_is_not_now(drv):
    r = drv.broker.market_order(buy())
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_FROZEN)
    with pytest.raises(FrozenError) as e:
        drv.broker.modify_sltp(r.position, 1999.0, 2005.0)
    assert e.value.code == 10029 and e.value.retryable and "next cycle" in e.value.message


@pytest.mark.parametrize("mode, side, refused", [
    (mt5.SYMBOL_TRADE_MODE_DISABLED, "buy", True), (mt5.SYMBOL_TRADE_MODE_CLOSEONLY, "buy", True),
    (mt5.SYMBOL_TRADE_MODE_LONGONLY, "sell", True), (mt5.SYMBOL_TRADE_MODE_LONGONLY, "buy", False),
    (mt5.SYMBOL_TRADE_MODE_SHORTONLY, "buy", True)])
def test_trade_mode_refuses_entries_before_sending(drv, mode, side, refused):
    mt5.fake_set_symbol(SYM, trade_mode=mode)
    sl, tp = (1998.0, 2005.0) if side == "buy" else (2005.0, 1995.0)
    if refused:
        with pytest.raises(RefusedError):
            drv.broker.market_order(buy(side=side, sl=sl, tp=tp))
        assert sent() == []
    else:
        assert drv.broker.market_order(buy(side=side, sl=sl, tp=tp)).retcode == 10009


def test_close_only_still_lets_us_close(drv):
    r = drv.broker.market_order(buy())
    mt5.fake_set_symbol(SYM, trade_mode=mt5.SYMBOL_TRADE_MODE_CLOSEONLY)
    drv.broker.close_position(r.position)
    assert drv.broker.positions() == []


# ---- 5. return codes ----------------------------------------------------------------------------------
def test_fifo_close_refuses_the_newer_position_with_the_reason():
    d = MT5Driver()
    mt5.fake_set_account(fifo_close=True)
    d.broker.connect()
    old = d.broker.market_order(buy(comment="rs:a"))
    d.advance()
    new = d.broker.market_order(buy(comment="rs:b"))
    n = len(sent())
    with pytest.raises(RefusedError) as e:
        d.broker.close_position(new.position)
    assert "oldest first" in e.value.message and len(sent()) == n
    d.broker.close_position(old.position)
    d.broker.close_position(new.position)
    assert d.broker.positions() == []


def test_fifo_close_retcode_from_the_server_is_a_refusal(drv):
    r = drv.broker.market_order(buy())
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_FIFO_CLOSE)
    with pytest.raises(RefusedError) as e:
        drv.broker.close_position(r.position)
    assert e.value.code == 10045 and "FIFO" in e.value.message and len(drv.broker.positions()) == 1


def test_hedge_prohibited_refuses_with_the_reason(drv):
    mt5.fake_set_account(hedge_prohibited=True)
    drv.broker.market_order(buy())
    with pytest.raises(RefusedError) as e:  # order_check already says 10046: nothing is sent
        drv.broker.market_order(buy(side="sell", sl=2005.0, tp=1995.0, comment="rs:s"))
    assert e.value.code == 10046 and "hedging prohibited" in e.value.message and len(sent()) == 1


def test_position_closed_meanwhile_is_not_found(drv):
    r = drv.broker.market_order(buy())
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_POSITION_CLOSED)
    with pytest.raises(PositionNotFoundError):
        drv.broker.close_position(r.position)


def test_invalid_close_volume_is_retryable_with_the_volume_read_again(drv):
    r = drv.broker.market_order(buy())
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_INVALID_CLOSE_VOLUME)
    with pytest.raises(InvalidCloseVolumeError) as e:
        drv.broker.close_position(r.position)
    assert e.value.retryable
    drv.broker.close_position(r.position)  # the next attempt reads the position's volume afresh
    assert drv.broker.positions() == []


def test_close_order_exist_is_looked_up_and_never_sent_again(drv):
    r = drv.broker.market_order(buy())
    mt5.fake_inject("order_send", retcode=mt5.TRADE_RETCODE_CLOSE_ORDER_EXIST)
    with pytest.raises(CloseOrderExistsError):
        drv.broker.close_position(r.position)
    assert len(sent()) == 2 and len(drv.broker.positions()) == 1


@pytest.mark.parametrize("code", [mt5.TRADE_RETCODE_LIMIT_POSITIONS, mt5.TRADE_RETCODE_CLOSE_ONLY])
def test_limit_positions_and_close_only_are_refusals(drv, code):
    mt5.fake_inject("order_send", retcode=code)
    with pytest.raises(RefusedError) as e:
        drv.broker.market_order(buy())
    assert e.value.code == code and len(sent()) == 1 and not e.value.retryable


def test_limit_positions_from_the_server_rules(drv):
    mt5.fake_set_account(limit_positions=1)
    drv.broker.market_order(buy())
    with pytest.raises(RefusedError):
        drv.broker.market_order(buy(comment="rs:two"))
    assert len(drv.broker.positions()) == 1


@pytest.mark.parametrize("ipc", [-10003, -10004])
def test_ipc_error_after_the_order_executed_is_reconciled_not_resent(drv, ipc):
    """-10003/-10004 can come back although the request went out: positions and deals (magic + marker)
    are read over a bounded wait before any resend."""
    mt5.fake_inject("order_send", error=ipc, executed=True)
    r = drv.broker.market_order(buy(comment="rs:ipc"))
    assert r.retcode == 10009 and len(sent()) == 1 and len(drv.broker.positions()) == 1


# ---- 7. order_check -----------------------------------------------------------------------------------
def test_order_check_refuses_no_money_and_nothing_is_sent(drv):
    with pytest.raises(NoMoneyError) as e:
        drv.broker.market_order(buy(volume=50.0, sl=0, tp=0))
    assert "order check" in e.value.message and sent() == []


def test_order_check_is_called_before_every_entry(drv, monkeypatch):
    # docs silent on which order_check retcode means "passed": the package's example prints 0 ("Done"), which
    # the fake answers; the adapter also accepts 10009
    calls = []
    real = mt5.order_check
    monkeypatch.setattr(mt5, "order_check", lambda req: calls.append(dict(req)) or real(req))
    drv.broker.market_order(buy())
    assert len(calls) == 1 and calls[0]["comment"] == "rs:p1" and len(sent()) == 1


def test_order_check_injected_refusal_maps_to_its_typed_error(drv):
    mt5.fake_inject("order_check", retcode=mt5.TRADE_RETCODE_MARKET_CLOSED)
    with pytest.raises(Exception) as e:
        drv.broker.market_order(buy())
    assert type(e.value).__name__ == "MarketClosedError" and sent() == []


@pytest.mark.parametrize("mode, code", [(mt5.SYMBOL_TRADE_MODE_CLOSEONLY, 10044), (mt5.SYMBOL_TRADE_MODE_SHORTONLY, 10043),
                                        (mt5.SYMBOL_TRADE_MODE_DISABLED, 10017)])
def test_trade_mode_refusal_carries_the_matching_retcode(drv, mode, code):
    mt5.fake_set_symbol(SYM, trade_mode=mode)
    with pytest.raises(RefusedError) as e:
        drv.broker.market_order(buy())
    assert e.value.code == code and "nothing was sent" in e.value.message and sent() == []
