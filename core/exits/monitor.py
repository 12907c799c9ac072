"""The monitor: an asyncio background task that watches every open range scalp.

Each cycle costs O(symbols) broker calls, not O(trades): one `positions(magic)` call, then one tick
and one candle fetch per symbol, shared by every trade on it. Then every trade is judged by the pure
rules in `core.exits.rules`, MFE/MAE updates are saved in one transaction, and exits run in priority
order (CRITICAL → LOW) across all trades. Positions that vanished at the broker (SL/TP hit, manual
close) are journalled from the deal history.

An exception in one trade is reported and the others go on; an exception in a cycle is reported as
`monitoring_loop_crashed` (CRITICAL) and the loop goes on. A lost broker connection follows the
`mt5_connection_lost` policy (reconnect with retries) and monitoring resumes when it comes back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from core.brokers.base import Broker, BrokerConnectionError, BrokerError, Tick
from core.brokers.tags import proposal_id_from_comment
from core.domain.copies import copy_with
from core.domain.models import ActiveTrade, ExitSignal
from core.domain.retry import run_async
from core.exits.adoption import adopt_position, in_flight, our_magics
from core.exits.cycle_report import CycleReport
from core.exits.executor import ExitExecutor
from core.exits.manager import RangeScalpingExitManager, TradeNotRegistered
from core.exits.market_views import MarketView, MarketViews
from core.exits.rules import bars_since_entry, check_early_exit_conditions, emergency_exit, excursions_r
from core.exits.stop_moves import move_stops
from core.ops import alert_texts
from core.ops.notify import REMINDER_SECONDS

log = logging.getLogger(__name__)

EXCURSION_STEP_R = 0.05  # MFE/MAE are persisted when they grow by at least this much
TICK_DRIVEN_INTERVAL = 1.0  # seconds between cycles when `monitor.tick_driven` (or until woken)
MIN_REPLAY_WAIT = 0.2  # wall seconds: the shortest wait a very fast replay gets between cycles


class Monitor:
    def __init__(self, cfg, broker: Broker, exits: RangeScalpingExitManager, executor: ExitExecutor, notifier,
                 clock, sleep=asyncio.sleep, *, late_fills=None, executing: set[str] | None = None,
                 reconcile: Callable[[], Awaitable[bool]] | None = None, offload=None) -> None:
        """`late_fills`: a LateFillWatch (None in backtests); `executing`: the proposal ids the execution
        engine is sending right now (None: not known, trust the store); `reconcile`: the start-up
        reconciliation's re-run, run first in the next cycle with a connection when it is pending;
        `offload`: how a blocking broker call is awaited, `asyncio.to_thread` unless a replay runs the
        monitor on its own loop (core.backtest.replay_loop.inline)."""
        self.offload = offload or asyncio.to_thread
        self.cfg = cfg
        self.broker = broker
        self.exits = exits
        self.executor = executor
        self.notify = notifier
        self.clock = clock
        self._sleep = sleep
        self.heartbeat: float | None = None
        self.cycles = 0
        self.last_report: CycleReport | None = None
        self.connected = True
        self.views = MarketViews(cfg, broker, notifier, clock, offload=self.offload)
        self.late_fills = late_fills
        self._task: asyncio.Task | None = None
        self._magics_key: frozenset[int] | None = None
        self._magics_list: list[int] = []
        # set by the service when start-up reconciliation could not reach the broker: the next cycle
        # with a connection runs it (executing proposals, closes while down, orphans) before anything else
        self.reconcile_hook = reconcile
        self.reconcile_pending = False
        # proposal ids the execution engine is sending/recording right now (None: not known, trust the store)
        self.executing = executing
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()

    # ---- task control -----------------------------------------------------------------------------
    @property
    def interval(self) -> float:
        """Wall seconds between cycles. `interval_seconds` is market time, so a paper replay at speed N
        waits N times less (at 60x, 300 s judged the exits once per five market hours)."""
        m = self.cfg.monitor
        base = float(m.interval_seconds)
        speed = float(getattr(self.clock, "speed", 1.0) or 1.0)
        return TICK_DRIVEN_INTERVAL if m.tick_driven else max(base / speed, min(base, MIN_REPLAY_WAIT))

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> asyncio.Task:
        if not self.running:
            self._stop = asyncio.Event()
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._loop(), name="range-scalp-monitor")
        return self._task

    async def stop(self) -> None:
        if self._task is None:
            return
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(self._task, timeout=30)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
        self._task = None

    def last_quote(self, symbol: str) -> Tick | None:
        """The tick the last cycle used for `symbol` (for /status and /health; no broker call)."""
        v = self.views.last(symbol)
        return v.tick if v else None

    def quotes(self) -> dict[str, Tick]:
        return self.views.quotes()

    def wake(self) -> None:
        """Run a cycle now (a new tick arrived, a trade was opened, or a step-mode replay advanced)."""
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.run_cycle()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - the loop must survive anything
                log.exception("monitor cycle crashed")
                self.heartbeat = self.clock.now()
                self.notify.error("monitoring_loop_crashed", f"monitor cycle crashed: {type(e).__name__}: {e}")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except TimeoutError:
                pass
            self._wake.clear()

    # ---- one cycle ----------------------------------------------------------------------------------
    async def run_cycle(self) -> CycleReport:
        t0 = time.perf_counter()
        rep = CycleReport(started=self.clock.now())
        broker_s = 0.0
        if self.reconcile_pending and self.reconcile_hook is not None:
            tb = time.perf_counter()
            self.reconcile_pending = not await self.reconcile_hook()
            broker_s += time.perf_counter() - tb
        self._expire_proposals()
        trades = self.exits.active_trades()
        rep.trades = len(trades)
        tb = time.perf_counter()
        positions = await self._positions(trades, rep)  # every cycle, also with no trades: orphans
        broker_s += time.perf_counter() - tb
        if positions is not None:
            trades = await self._reconcile(trades, positions, rep)
            rep.trades = len(trades)
            if trades:
                tb = time.perf_counter()
                views = await self.views.fetch({t.symbol for t in trades}, rep.errors)
                broker_s += time.perf_counter() - tb
                rep.symbols = len(views)
                signals = self._evaluate(trades, views, rep)
                await self._act(signals, views, rep)
            if self.late_fills is not None and not self.reconcile_pending:  # exits first; recovery scans
                rep.late_fills = await self.late_fills.maybe_scan(positions, rep.errors)
        rep.duration_ms = (time.perf_counter() - t0) * 1000
        rep.broker_ms += broker_s * 1000
        self.heartbeat = self.clock.now()
        self.cycles += 1
        self.last_report = rep
        return rep

    def _expire_proposals(self) -> None:
        try:
            self.executor.store.proposals.expire_due(self.clock.now())
        except Exception:  # noqa: BLE001 - housekeeping must not cost a cycle
            log.exception("expiring proposals failed")

    async def _positions(self, trades: list[ActiveTrade], rep: CycleReport):
        try:
            out = {}
            for m in self._magics(trades):
                for p in await self.offload(self.broker.positions, None, m):
                    out[p.key] = p  # by identifier: a ticket can change (swap re-open), the identifier cannot
            if not self.connected:
                self._restored()
            return out
        except BrokerConnectionError as e:
            rep.connected = False
            rep.errors.append(f"broker connection: {e.message}")
            return await self._reconnect(e, rep)
        except BrokerError as e:
            rep.errors.append(f"positions: {e.message}")
            self.notify.error("data_source_unavailable", f"could not read positions: {e.message}")
            return None

    def _magics(self, trades: list[ActiveTrade]) -> list[int]:
        # cached per set of trade magics: for_symbol() over every symbol is not free on the hot path
        key = frozenset(t.magic for t in trades if t.magic)
        if self._magics_key != key:
            self._magics_key, self._magics_list = key, our_magics(self.cfg, trades)
        return self._magics_list

    async def _reconnect(self, err: BrokerError, rep: CycleReport):
        """The `mt5_connection_lost` policy: reconnect with retries; monitoring continues either way."""
        policy = self.cfg.error_handling.get("mt5_connection_lost")
        # max_retries = total attempts; a broker that runs the policy inside its own calls (MT5) is not asked
        # again in this cycle, so a lost terminal costs max_retries x retry_interval per cycle, not that squared
        # (its failed call has just run the whole policy: trying again here would square the wait)
        own = getattr(self.broker, "applies_connection_policy", False)
        interval = policy.retry_interval if policy else 0

        async def attempt(_i: int) -> dict:
            await self._sleep(interval)  # the terminal needs a moment before each try, the first one too
            await self.offload(self.broker.connect)
            positions = {}
            for m in self._magics(self.exits.active_trades()):
                positions.update({p.key: p for p in await self.offload(self.broker.positions, None, m)})
            return positions

        if not own:
            try:  # the one retry loop (core.domain.retry); each attempt sleeps first, the first one too
                positions = await run_async(policy.max_retries if policy else 1, 0.0, attempt, sleep=self._sleep,
                                            retry_on=(BrokerError,))
            except BrokerError:
                pass
            else:
                rep.connected = True
                self.notify.error("retry_succeeded", f"broker connection restored after: {err.message}", alert=False)
                self._restored()
                return positions
        self.connected = False
        self.notify.error("mt5_connection_lost", f"broker connection lost: {err.message}", alert=False)
        self.notify.alert("connection_lost", "critical", "BROKER CONNECTION LOST",
                          f"I lost the broker connection ({err.message}) and could not reconnect. Open trades keep "
                          "their broker-side SL/TP; I keep retrying every cycle.", dedup_key="connection_lost",
                          remind_after=REMINDER_SECONDS)
        return None

    def _restored(self) -> None:
        self.connected = True
        self.notify.clear_reminder("connection_lost")
        self.notify.alert("connection_restored", "medium", "Broker connection restored",
                          "The broker connection is back; monitoring has resumed.")

    async def _reconcile(self, trades: list[ActiveTrade], positions: dict, rep: CycleReport) -> list[ActiveTrade]:
        """Journal trades the broker closed; adopt the broker's SL/TP when they differ from ours."""
        alive = []
        for t in trades:
            pos = positions.get(t.ticket)
            if pos is None:
                try:
                    closed = await self.executor.record_broker_close(t)
                    if closed is not None:
                        rep.broker_closes += 1
                except Exception as e:  # noqa: BLE001
                    rep.errors.append(f"trade {t.ticket}: {e}")
                    log.exception("recording the broker close of %s failed", t.ticket)
                continue
            if abs(pos.sl - t.sl) > 1e-12 or abs(pos.tp - t.tp) > 1e-12:
                try:
                    t = self.exits.sync_stops(t.ticket, pos.sl, pos.tp)
                except TradeNotRegistered:
                    continue
            if abs(pos.volume - t.volume) > 1e-9:  # netting: a trader's order merged into (or cut) our position
                try:
                    t = self.exits.update_trade_state(t.ticket, {"volume": pos.volume}, journal=(
                        "partial", {"from": t.volume, "to": pos.volume, "position_ticket": pos.ticket,
                                    "reason": "volume_changed_at_broker"}))
                except TradeNotRegistered:
                    continue
            alive.append(t)
        known = self.exits.range_scalp_tickets()
        for ticket, pos in positions.items():
            if ticket in known:
                continue
            store = self.executor.store
            try:
                if in_flight(store, pos):
                    pid = proposal_id_from_comment(pos.comment)
                    if self.executing is not None and pid not in self.executing:
                        # its execution ended without recording it (e.g. a store error after the fill):
                        # the reconciliation resolves it from the order comment, as at start-up
                        self.reconcile_pending = True
                    continue  # otherwise its execution is recording it right now
                alive.append(adopt_position(store, self.exits, self.notify, pos, self.clock))
            except Exception as e:  # noqa: BLE001
                rep.errors.append(f"adopting {ticket}: {e}")
                log.exception("adopting position %s failed", ticket)
        return alive

    def _evaluate(self, trades: list[ActiveTrade], views: dict[str, MarketView], rep: CycleReport) -> list[ExitSignal]:
        now = self.clock.now()
        signals: list[ExitSignal] = []
        updates: dict[int, dict] = {}
        emergency_by = self.notify.emergency_on()
        for t in trades:
            v = views.get(t.symbol)
            if v is None:
                continue
            try:
                tcfg = self.cfg.for_symbol(t.symbol)
                tf_s = v.timeframe.seconds
                bars = bars_since_entry(t, v.candles, tf_s)
                mfe, mae = excursions_r(t, v.tick, bars)
                # saved in EXCURSION_STEP_R steps: each save is a durable write, and a finer MFE/MAE
                # changes no decision (the close itself records max(MFE, final R) exactly)
                if mfe - t.mfe_r >= EXCURSION_STEP_R or t.mae_r - mae >= EXCURSION_STEP_R:
                    updates[t.ticket] = {"mfe_r": mfe, "mae_r": mae, "last_range_check": now}
                    t = copy_with(t, {"mfe_r": mfe, "mae_r": mae})  # = t.model_copy(update=...)
                if self.executor.closing(t.ticket):
                    continue  # its exit is in flight; a stale "exiting" (crash mid-exit) is judged again
                if emergency_by is not None:
                    signals.append(emergency_exit(t, now, emergency_by))
                    continue
                info = v.info
                signals.extend(check_early_exit_conditions(
                    t, v.tick, v.candles, now, tcfg, info.point, info.digits, info.trade_stops_level, tf_s, bars,
                ))
            except Exception as e:  # noqa: BLE001 - one bad trade must not blind the others
                rep.errors.append(f"trade {t.ticket}: {type(e).__name__}: {e}")
                log.exception("evaluating trade %s failed", t.ticket)
                self.notify.error("trade_evaluation_failed", f"trade {t.ticket}: {e}", alert=False,
                                  symbol=t.symbol, ticket=t.ticket)
        if updates:
            try:
                self.exits.update_many(updates)
            except TradeNotRegistered:  # closed meanwhile by /close: save the others one by one
                for ticket, upd in updates.items():
                    try:
                        self.exits.update_trade_state(ticket, upd)
                    except TradeNotRegistered:
                        pass
            except Exception as e:  # noqa: BLE001 - a failed MFE/MAE save must not cancel this cycle's exits
                rep.errors.append(f"saving excursions: {type(e).__name__}: {e}")
                log.exception("saving MFE/MAE failed")
                self.notify.error("trade_evaluation_failed", f"saving MFE/MAE failed: {e}", alert=False)
        ordered = self.exits.order_signals(signals) if signals else []  # most cycles: nothing to order
        rep.signals = ordered
        return ordered

    async def _act(self, signals: list[ExitSignal], views: dict[str, MarketView], rep: CycleReport) -> None:
        """Closes in priority order, one by one; then every stop move (LOW) with one store transaction.

        A due stop move is skipped for a trade being closed, unless its close failed: then the trade stays
        open, and the move protects it (else it kept its initial stop for as long as the close failed)."""
        if not signals:  # most cycles: nothing is due
            return
        done: set[int] = set()
        failed: set[int] = set()  # closes that left the trade open this cycle
        moves: list[tuple[ActiveTrade, ExitSignal]] = []
        for sig in signals:
            is_move = sig.action == "move_sl" and sig.new_sl is not None
            if sig.ticket in done and not (is_move and sig.ticket in failed):
                continue
            trade = self.exits.get(sig.ticket)
            if trade is None:
                continue
            if is_move:
                done.add(sig.ticket)
                failed.discard(sig.ticket)
                moves.append((trade, sig))
                continue
            if sig.action != "close":
                continue
            done.add(sig.ticket)
            try:
                if not await self._close(trade, sig, views[trade.symbol], rep):
                    failed.add(sig.ticket)
            except Exception as e:  # noqa: BLE001
                self._act_failed(trade, sig, e, rep)
        if moves:
            try:
                await move_stops(self.broker, self.exits, self.notify, moves, rep, offload=self.offload)
            except Exception as e:  # noqa: BLE001
                self._act_failed(moves[0][0], moves[0][1], e, rep)

    def _act_failed(self, trade: ActiveTrade, sig: ExitSignal, e: Exception, rep: CycleReport) -> None:
        rep.errors.append(f"trade {sig.ticket}: {type(e).__name__}: {e}")
        log.exception("acting on %s for %s failed", sig.kind, sig.ticket)
        self.notify.error("exit_processing_failed", f"{sig.kind} on {sig.ticket}: {e}", alert=False,
                          symbol=trade.symbol, ticket=sig.ticket)

    async def _close(self, trade: ActiveTrade, sig: ExitSignal, view: MarketView, rep: CycleReport) -> bool:
        """Close `trade` for `sig`; False when it stays open (the broker refused, or the market is closed)."""
        if sig.kind == "range_invalidated" and self.notify.alert(  # re-judged each cycle until closed:
                "range_invalidated", "info", f"RANGE INVALIDATED - {alert_texts.trade_label(trade)}",
                f"Closing the trade now: {sig.reason}.", symbol=trade.symbol, ticket=trade.ticket, trade=trade,
                range_data=trade.range_data, dedup_key=f"range_invalidated:{trade.ticket}",
                remind_after=REMINDER_SECONDS):  # paged and recorded once (then hourly), not every cycle
            self.notify.error("range_invalidation_during_trade", sig.reason, alert=False, symbol=trade.symbol,
                              ticket=trade.ticket)
        price = view.tick.bid if trade.direction.sign > 0 else view.tick.ask
        out = await self.executor.close(trade, sig.kind, sig.reason, price_hint=price)
        if out.ok or out.already_closed:
            rep.exits += 1
        return out.ok or out.already_closed or out.in_flight
