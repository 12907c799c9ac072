"""`moneybot trades …`: the lifecycle's store views from a terminal, with clear errors."""
from __future__ import annotations

import json

from bot.cli import main
from core.domain.clock import FixedClock
from core.domain.models import ActiveTrade, ClosedTrade, Direction
from core.store import Store

T0 = 1_750_000_000.0


def _store(tmp_path):
    with Store(tmp_path / "s.sqlite", clock=FixedClock(T0)) as st:
        st.trades.add(ActiveTrade(ticket=7, symbol="XAUUSDc", strategy="bb_fade", direction=Direction.SHORT,
                                  entry_price=3300.0, sl=3303.0, tp=3294.0, initial_sl=3303.0, volume=0.01,
                                  entry_time=T0, breakeven_moved=True))
        st.closed.add(ClosedTrade(ticket=5, symbol="XAUUSDc", strategy="rsi_bounce", direction=Direction.LONG,
                                  volume=0.01, entry_price=3290.0, exit_price=3296.0, initial_sl=3287.0, tp=3296.0,
                                  entry_time=T0 - 3600, exit_time=T0 - 600, pnl=6.0, commission=-0.1, r_multiple=2.0,
                                  exit_reason="take_profit", session="london"))
    return str(tmp_path / "s.sqlite")


def test_open_closed_and_metrics(tmp_path, capsys):
    path = _store(tmp_path)
    assert main(["trades", "open", "--store", path]) == 0
    out = capsys.readouterr().out
    assert "#7 XAUUSDc short" in out and "[active BE]" in out
    assert main(["trades", "closed", "--store", path, "-n", "5"]) == 0
    out = capsys.readouterr().out
    assert "#5 XAUUSDc long rsi_bounce" in out and "+2.00 R" in out and "P&L +5.90" in out
    assert main(["trades", "closed", "--store", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ticket"] == 5
    assert main(["trades", "metrics", "--store", path, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trades"] == 1


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["trades", "closed", "--store", str(tmp_path / "missing.sqlite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no store at") and "Traceback" not in err
    assert main(["trades", "closed", "--store", _store(tmp_path), "-n", "0"]) == 2
    assert "-n must be at least 1" in capsys.readouterr().err
