"""Terminal output of `moneybot trades` and `moneybot backtest`: prices at the symbol's precision,
readable costs, no float noise."""
from __future__ import annotations

import re

from bot_helpers import journal_closed_trades

from bot.cli import main
from bot.cli_backtest import _costs
from core.config.loading import load_config
from core.store import Store


def test_closed_trades_print_prices_at_symbol_digits(tmp_path, capsys):
    path = tmp_path / "moneybot.sqlite"
    with Store(path) as store:
        trades = journal_closed_trades(store, 3)
    assert main(["trades", "closed", "--store", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    digits = load_config().symbols["XAUUSDc"].digits
    assert len(out) == 3
    for line, t in zip(out, reversed(trades), strict=True):
        assert f"{t.entry_price:.{digits}f} → {t.exit_price:.{digits}f}" in line
        prices = re.findall(r"(\d+\.\d+) → (\d+\.\d+) ", line)[0]
        assert all(len(p.split(".")[1]) == digits for p in prices)


def test_backtest_costs_read_as_words():
    text = _costs({"spread": "from data (bar spread column)", "slippage_points": 2.0, "commission_per_lot": 0.0})
    assert text == "spread from data (bar spread column), slippage_points 2, commission_per_lot 0"
