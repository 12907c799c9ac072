"""The simulation leg alone: a run's own decisions replayed through PaperBroker + monitor + execution +
store (`BacktestEngine(decisions=...)`, what bench/backtest.py times against backtesting.py) gives the
same trades, without a single analysis call."""
from __future__ import annotations

from core.backtest.api import load_series
from core.backtest.engine import BacktestEngine, BacktestSpec
from core.config.model import load_config, market_data_dir

EUR = market_data_dir() / "01Javier__trading-eurusd" / "data" / "EURUSD_M5.csv"


def test_replaying_the_decisions_gives_the_same_trades():
    cfg = load_config()
    c = load_series(cfg, "EURUSDc", EUR)[:6000]
    eng = BacktestEngine(cfg, BacktestSpec("EURUSDc", c))
    rep = eng.run()
    assert len(rep.trades) >= 5 and len(eng.decisions) == len(rep.signals)
    sim = BacktestEngine(cfg, BacktestSpec("EURUSDc", c), decisions=eng.decisions).run()
    assert sim.analysis_calls == 0 and sim.prescreened == 0
    assert [t.model_dump(exclude={"proposal_id"}) for t in sim.trades] == \
        [t.model_dump(exclude={"proposal_id"}) for t in rep.trades]
    assert [s.model_dump() for s in sim.signals] == [s.model_dump() for s in rep.signals]
