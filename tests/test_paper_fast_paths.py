"""The paper broker's fast paths give exactly what the plain ones give, on real bars (issue 17).

Each test compares a fast path with a reference written the slow, obvious way (the code it replaced), so a
fast path that drifts by one bar, one ulp or one stale value fails here.
"""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from pydantic import ValidationError

from core.brokers.base import Position
from core.brokers.paper.broker import PaperBroker
from core.brokers.paper.feed import ReplayFeed
from core.brokers.paper.fills import BarPrices, check_stops
from core.brokers.paper.store import PaperStore
from core.config.loading import load_config
from core.config.paths import market_data_dir
from core.data.loaders import load_candles
from core.domain.clock import FixedClock
from core.domain.timeframes import Timeframe

SYM = "XAUUSDc"
XAU = market_data_dir() / "budimanlai__forex-tick" / "data" / "XAUUSD_M5.csv"


@pytest.fixture(scope="module")
def bars() -> np.ndarray:
    spec = load_config().symbols[SYM]
    m5 = load_candles(XAU, tz_offset_hours=spec.data_tz_offset_hours)[:6000].copy()
    m5["spread"][::3] = 0  # some bars without a spread: the symbol's default applies
    return m5


@pytest.fixture()
def broker(bars) -> PaperBroker:
    b = PaperBroker({SYM: load_config().symbols[SYM]}, ReplayFeed({SYM: {Timeframe.M5: bars}}), db_path=":memory:",
                    clock=FixedClock(float(bars["time"][0])), slippage_points=3)
    b.connect()
    return b


def _reference_first_stop(b: PaperBroker, p: Position, after: float, until: float):
    """The replay's stop scan as it was: whole-row reads, a BarPrices per bar, `check_stops`."""
    spec = b.symbols[p.symbol]
    sec = b.feed.base_timeframe(p.symbol).seconds
    lo, hi = b.feed.closed_span(p.symbol, after, until)  # checked against a mask of the bars below
    bars = b.feed.base_bars(p.symbol)[lo:hi]
    ix = [bars.dtype.names.index(k) for k in ("time", "open", "high", "low", "spread")]
    for row in bars.tolist():
        tm, o, h, lo, sp = (row[k] for k in ix)
        prices = BarPrices(float(o), float(h), float(lo), b._spread(spec, sp))
        hit = check_stops(p.type, p.sl, p.tp, prices, b.slippage_points * spec.point)
        if hit:
            return float(tm) + sec, hit
    return None


def test_the_stop_scan_matches_the_row_by_row_reference(broker, bars):
    rng = np.random.default_rng(17)
    spec = broker.symbols[SYM]
    checked = hits = 0
    for _ in range(400):
        i = int(rng.integers(0, len(bars) - 300))
        after = float(bars["time"][i]) + float(rng.choice([0.0, 0.5, 299.0, 300.0, 301.0]))
        until = after + float(rng.integers(1, 90)) * 300 + float(rng.choice([0.0, 0.25]))
        px = float(bars["open"][i])
        side = str(rng.choice(["buy", "sell"]))
        width = float(rng.choice([0.3, 1.0, 3.0, 10.0]))
        sl, tp = (px - width, px + width) if side == "buy" else (px + width, px - width)
        sl, tp = [float(rng.choice([v, 0.0], p=[0.85, 0.15])) for v in (sl, tp)]
        p = Position(ticket=1, symbol=SYM, type=side, volume=0.01, price_open=px, sl=sl, tp=tp, time=after)
        lo, hi = broker.feed.closed_span(SYM, after, until)
        got = broker._first_stop(p, spec, lo, hi) if lo < hi else None
        want = _reference_first_stop(broker, p, after, until)
        assert (None if got is None else (got[0], got[2])) == want
        assert got is None or (repr(got[0]), repr(got[2].price)) == (repr(want[0]), repr(want[1].price))
        checked += 1
        hits += want is not None
    assert checked == 400 and 100 < hits < 400  # both outcomes exercised


def test_feed_lookups_match_a_plain_numpy_reference(bars):
    feed = ReplayFeed({SYM: {Timeframe.M5: bars}})
    t = bars["time"]
    sec = 300
    probes = np.concatenate([t[:50], t[::97], t[::97] + 299, t[::97] + 300, t[::89] + 150.5, t[::89] - 0.5,
                             [t[0] - 1e6, t[-1] + 1e6]])
    # the gaps (weekends) are where a covering bar is missing
    gaps = np.nonzero(np.diff(t) > sec)[0]
    probes = np.concatenate([probes, t[gaps] + sec, t[gaps] + sec + 3600.25]).astype(float)
    for now in probes:
        i = int(np.searchsorted(t, now, "right")) - 1
        covering = None if i < 0 or t[i] + sec <= now else i
        assert feed.covering_index(SYM, now) == covering
        j = int(np.searchsorted(t, now - sec, "right")) - 1
        assert feed.last_closed_index(SYM, now) == (j if j >= 0 else None)
        after = now - 7 * sec - 0.5
        ref = bars[(t + sec > after) & (t + sec <= now)]
        lo, hi = feed.closed_span(SYM, after, now)
        assert np.array_equal(bars[lo:hi], ref)


def _pos(ticket: int) -> Position:
    return Position(ticket=ticket, symbol=SYM, type="buy", volume=0.01, price_open=2000.0, sl=1990.0, tp=2010.0,
                    magic=7, comment="c", time=1.0)


def test_meta_set_in_a_transaction_is_written_at_its_commit_in_one_statement(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    sql: list[str] = []
    st._conn.set_trace_callback(sql.append)
    with st.transaction():
        st.next_ticket(2)
        st.add_to_balance(-1.5)
        st.set_meta("clock", "123.0")
        st.set_meta("clock", "124.0")
        assert st.get_meta("clock") == "124.0" and st.balance() == 9_998.5  # its own writes, before the commit
    st._conn.set_trace_callback(None)
    writes = [s for s in sql if s.startswith("INSERT OR REPLACE INTO meta")]
    assert writes == [sql[-2]] and sql[-1] == "COMMIT"  # one write, right before the COMMIT
    with sqlite3.connect(path) as other:
        assert dict(other.execute("SELECT key, value FROM meta")) == {
            "balance": "9998.5", "next_ticket": "100003", "clock": "124.0"}
    st.set_meta("outside", "x")  # outside a transaction: written at once
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT value FROM meta WHERE key='outside'").fetchone() == ("x",)
    st.close()


def test_meta_of_a_rolled_back_or_failed_transaction_is_never_written(tmp_path, monkeypatch):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    with pytest.raises(RuntimeError), st.transaction():
        st.add_to_balance(50.0)
        st.set_meta("clock", "5.0")
        raise RuntimeError("crash before commit")
    assert st.balance() == 10_000.0 and st.get_meta("clock") is None and not st._pending
    # the meta write fails at the commit: the whole order (its position too) is rolled back
    real = st._conn

    class Failing:
        def execute(self, sql, *args):
            if sql.startswith("INSERT OR REPLACE INTO meta"):
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(sql, *args)

    monkeypatch.setattr(st, "_conn", Failing())
    with pytest.raises(sqlite3.OperationalError), st.transaction():
        st.insert_position(_pos(1))
        st.add_to_balance(-3.0)
    monkeypatch.setattr(st, "_conn", real)
    assert st.positions() == [] and st.balance() == 10_000.0
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT COUNT(*) FROM positions").fetchone() == (0,)
        assert other.execute("SELECT value FROM meta WHERE key='balance'").fetchone() == ("10000.0",)
    st.close()


def test_the_hinted_time_search_matches_searchsorted_for_any_order_of_keys(bars):
    from core.brokers.paper.feed import _Times

    t = np.ascontiguousarray(bars["time"])
    search = _Times(t)
    rng = np.random.default_rng(3)
    keys = [float(t[0] - 5), float(t[-1] + 5)]
    x = float(t[100])
    for _ in range(20_000):  # mostly forward a bar or less, as the replay clock, with jumps both ways
        r = rng.random()
        x = (x + float(rng.choice([0.0, 0.5, 150.0, 300.0, 600.0])) if r < 0.8
             else x - float(rng.integers(0, 4)) * 300.0 - 0.25 if r < 0.9
             else float(rng.uniform(t[0] - 1000, t[-1] + 1000)))
        keys.append(x)
        keys.append(x - 300.0)  # the interleaved keys of one step (now, now - bar)
    for k in keys:
        assert search.right(k) == int(np.searchsorted(t, np.floor(k), "right")), k
    assert _Times(t[:0]).right(5.0) == 0
    with pytest.raises((ValueError, OverflowError)):
        search.right(float("nan"))


def test_quotes_read_through_column_views_match_the_bars(broker, bars):
    from core.brokers.base import Tick

    spec = broker.symbols[SYM]
    t = bars["time"]
    for now in np.concatenate([t[::53] + 0.0, t[::53] + 299.5]).astype(float):
        i = int(np.searchsorted(t, now, "right")) - 1
        if t[i] + 300 <= now:
            continue  # a gap: the closed-market path, unchanged
        bid = float(bars["open"][i])
        spread = (int(bars["spread"][i]) or spec.default_spread_points) * spec.point
        want = Tick(time=now, bid=bid, ask=round(bid + spread, spec.digits + 2), last=bid)
        got = broker._make_quote(SYM, now, False)
        assert got == want and type(got.bid) is float and repr(got.ask) == repr(want.ask)
        assert list(got.__dict__.items()) == list(want.__dict__.items())
        assert got.__pydantic_fields_set__ == want.__pydantic_fields_set__
        assert (got.__pydantic_extra__, got.__pydantic_private__) == (want.__pydantic_extra__,
                                                                      want.__pydantic_private__)
        assert got.model_dump_json() == want.model_dump_json()
    from core.brokers.paper.broker import _tick

    for args in ((1, 2.0, 3.0), (1.0, np.float64(2.0), 3.0), (1.5, 2.0, True)):  # not floats: validated
        assert _tick(*args) == Tick(time=args[0], bid=args[1], ask=args[2], last=args[1])
        assert type(_tick(*args).time) is float


def test_a_priced_position_is_what_model_copy_makes():
    from core.brokers.paper.broker import _priced

    plain = Position(ticket=5, symbol=SYM, type="sell", volume=0.02, price_open=2000.0, sl=2010.0, tp=1990.0)
    full = _pos(6).model_copy(update={"price_current": 1.0, "identifier": 9})
    for p in (plain, full, Position.model_construct(ticket=7, symbol=SYM, type="buy", volume=0.01, price_open=1.0,
                                                    sl=0.0, tp=0.0)):
        for px, pl in ((2001.5, -3.0), (0.0, -0.0), (1e-300, 12.34)):
            before = (repr(p.__dict__), set(p.__pydantic_fields_set__))
            got, want = _priced(p, px, pl), p.model_copy(update={"price_current": px, "profit": pl})
            assert got == want and type(got) is Position
            assert list(got.__dict__.items()) == list(want.__dict__.items())
            assert repr(got.__dict__) == repr(want.__dict__)  # -0.0 stays -0.0
            assert got.__pydantic_fields_set__ == want.__pydantic_fields_set__
            assert (got.__pydantic_extra__, got.__pydantic_private__) == (want.__pydantic_extra__,
                                                                          want.__pydantic_private__)
            assert got.model_dump_json() == want.model_dump_json() and got.model_dump(exclude_unset=True) == \
                want.model_dump(exclude_unset=True)
            assert (repr(p.__dict__), p.__pydantic_fields_set__) == before  # the original is untouched
            with pytest.raises(ValidationError):
                got.profit = 1.0  # still frozen


def test_deals_read_as_tuples_are_the_deals_a_row_read_gives(broker, bars):
    from core.brokers.base import Deal, OrderRequest

    for k in range(6):
        broker.advance_to(float(bars["time"][200 + 7 * k]))
        bid = broker.tick(SYM).bid
        r = broker.market_order(OrderRequest(symbol=SYM, side="buy" if k % 2 else "sell", volume=0.01,
                                             sl=bid - 2 if k % 2 else bid + 2, tp=0.0, comment=f"c{k}"))
        if k % 3 == 0:
            broker.close_position(r.position)
    broker.advance_to(float(bars["time"][400]))  # some stops hit on the way
    st = broker.store

    def reference(where: str, args: tuple) -> list[Deal]:
        rows = st._conn.execute(f"SELECT * FROM deals WHERE 1=1{where} ORDER BY time, ticket", args).fetchall()
        return [Deal(**dict(r)) for r in rows]

    cases = [(None, None, "", ()), (None, float(bars["time"][214]), " AND time>=?", (float(bars["time"][214]),))]
    cases += [(pid, None, " AND position_id=?", (pid,)) for pid in {d.position_id for d in st.deals()}]
    assert len(cases) == 8 and len(st.deals()) >= 10
    for pid, since, where, args in cases:
        got, want = st.deals(pid, since), reference(where, args)
        assert got == want and [d.__pydantic_fields_set__ for d in got] == [d.__pydantic_fields_set__ for d in want]
        assert [repr(d.__dict__) for d in got] == [repr(d.__dict__) for d in want]


def test_the_margin_check_refuses_exactly_what_account_info_says_does_not_fit(bars):
    from core.brokers.base import NoMoneyError, OrderRequest, Retcode

    spec = load_config().symbols[SYM]
    b = PaperBroker({SYM: spec}, ReplayFeed({SYM: {Timeframe.M5: bars}}), db_path=":memory:",
                    clock=FixedClock(float(bars["time"][300])), start_balance=100.0, commission_per_lot=7.0)
    b.connect()
    booked = refused = 0
    for vol in (0.01, 0.02, 0.03, 0.05, 0.08, 0.13, 0.21):
        q = b.tick(SYM)
        need = vol * spec.contract_size * q.ask / b.leverage
        fits = need <= b.account_info().margin_free
        try:
            b.market_order(OrderRequest(symbol=SYM, side="buy", volume=vol, sl=0.0, tp=0.0))
            booked += 1
            assert fits
        except NoMoneyError as e:
            refused += 1
            assert not fits and e.code == Retcode.NO_MONEY
    assert booked and refused


def test_a_transaction_whose_begin_failed_leaves_the_next_one_a_real_transaction(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    st._conn.execute("PRAGMA busy_timeout=0")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the file
    with pytest.raises(sqlite3.OperationalError, match="locked"), st.transaction():
        pytest.fail("the body must not run without a transaction")
    other.execute("ROLLBACK")
    assert st._depth == 0 and st.lock.acquire(blocking=False)  # nothing left held or half-open
    st.lock.release()
    with pytest.raises(RuntimeError), st.transaction():
        assert st._conn.in_transaction
        st.insert_position(_pos(1))
        raise RuntimeError("rolled back as one unit")
    assert st.positions() == [] and other.execute("SELECT COUNT(*) FROM positions").fetchone() == (0,)
    other.close()
    st.close()


def test_inside_a_transaction_other_connections_are_checked_once_at_its_begin(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    st.insert_position(_pos(1))
    assert st.balance() == 10_000.0
    with sqlite3.connect(path) as other:  # commits between our transactions are seen...
        other.execute("UPDATE meta SET value='50.0' WHERE key='balance'")
        other.execute("DELETE FROM positions")
    sql: list[str] = []
    st._conn.set_trace_callback(sql.append)
    with st.transaction():
        assert st.balance() == 50.0 and st.positions() == []  # ...at the BEGIN
        st.add_to_balance(1.0)
        st.next_ticket()
    st._conn.set_trace_callback(None)
    assert sql.count("PRAGMA data_version") == 1 and sql[0] == "BEGIN IMMEDIATE"
    assert st.balance() == 51.0
    st.close()


def test_open_positions_stay_the_committed_rows_in_ticket_order_through_any_writes(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    other = sqlite3.connect(path, isolation_level=None)
    rng = np.random.default_rng(5)

    def rows(symbol=None, magic=None) -> list[Position]:
        got = other.execute("SELECT * FROM positions ORDER BY ticket").fetchall()
        cols = [c[0] for c in other.execute("SELECT * FROM positions").description]
        out = [Position(**dict(zip(cols, r, strict=True))) for r in got]
        return [p for p in out if (symbol is None or p.symbol == symbol) and (magic is None or p.magic == magic)]

    for step in range(300):
        op = rng.integers(0, 6)
        held = [p.ticket for p in st.positions()]
        ticket = int(rng.integers(1, 60))
        if op == 0 and ticket not in held:
            st.insert_position(_pos(ticket).model_copy(update={"magic": int(rng.integers(1, 3)),
                                                              "symbol": str(rng.choice([SYM, "EURUSDc"]))}))
        elif op == 1 and held:
            st.update_position(int(rng.choice(held)), sl=float(rng.integers(1, 99)))
        elif op == 2 and held:
            st.delete_position(int(rng.choice(held)))
        elif op == 3:  # a rolled-back mix
            with pytest.raises(RuntimeError), st.transaction():
                if ticket not in held:
                    st.insert_position(_pos(ticket))
                if held:
                    st.delete_position(held[0])
                raise RuntimeError("rolled back")
        elif op == 4:  # another connection commits
            if ticket in held:
                other.execute("UPDATE positions SET volume=0.5 WHERE ticket=?", (ticket,))
            else:
                other.execute("INSERT INTO positions (ticket, symbol, type, volume, price_open, sl, tp, magic,"
                              " comment, time) VALUES (?, ?, 'sell', 0.01, 2000, 2010, 1990, 2, '', 2)", (ticket, SYM))
        for sym, magic in ((None, None), (SYM, None), (None, 2), ("EURUSDc", 1)):
            assert st.positions(sym, magic) == rows(sym, magic), (step, op)
    other.close()
    st.close()


def test_cached_positions_are_what_a_fresh_read_gives_field_for_field_after_updates(tmp_path):
    path = tmp_path / "p.sqlite"
    st = PaperStore(path, 10_000)
    assert st.positions() == []  # the cache is live from here on
    st.insert_position(_pos(1).model_copy(update={"identifier": 4, "price_current": 3.0}))  # not columns
    st.insert_position(_pos(2))
    st.update_position(1, sl=1985.0, tp=2015.5)
    st.update_position(2, volume=0.005)
    cached = st.positions()
    fresh = PaperStore(path, 10_000).positions()
    assert cached == fresh
    assert [p.__pydantic_fields_set__ for p in cached] == [p.__pydantic_fields_set__ for p in fresh]
    assert [repr(p.__dict__) for p in cached] == [repr(p.__dict__) for p in fresh]
    st.close()


def test_closed_bars_are_copies_identical_to_numpy_copy(bars):
    from core.brokers.paper.feed import _rows

    feed = ReplayFeed({SYM: {Timeframe.M5: bars}})
    t = bars["time"]
    for now, count in [(float(t[0]), 5), (float(t[3]) + 1, 96), (float(t[500]) + 299.5, 96), (float(t[-1]) + 300, 7),
                       (float(t[2000]), 1), (float(t[-1]) + 1e7, 10_000)]:
        got = feed.closed(SYM, Timeframe.M5, now, count)
        end = int(np.searchsorted(t, now - 300, "right"))
        want = bars[max(0, end - count):end].copy()
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes() and np.array_equal(got, want)
        assert got.flags.owndata and got.flags.writeable and got.flags.c_contiguous and got.base is None
        got[:1]["close"] = -1.0  # the caller's own copy: the feed's bars are untouched
        assert np.array_equal(feed.bars(SYM, Timeframe.M5), bars)
    strided = bars[::2]
    assert np.array_equal(_rows(strided, 3, 9), strided[3:9]) and _rows(strided, 3, 9).flags.owndata
