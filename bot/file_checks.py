"""Before `moneybot run` starts anything: every file it will open is usable, or one line says which is not
and what to do (exit 2), instead of a traceback later or a feature that silently stops.

The config is checked by `load_config`, both SQLite files by the stores themselves (StoreError,
PaperStoreError); what is left is checked here: `.env`, the market data files the paper broker replays,
and the chart folder. Missing is fine where a first run creates the thing (.env is optional, the chart
folder is made); a configured market data file that is missing is not, unless none is there at all (a
fresh clone replays the bundled EURUSD bars instead, see core.app.build_for_run).
"""
from __future__ import annotations

import os
from pathlib import Path

from core.api import MarketData
from core.config.model import AppConfig, resolve_path
from core.domain.exceptions import UserFacingError


def check_run_files(cfg: AppConfig, chart_dir: Path, env_file: Path = Path(".env")) -> None:
    check_env_file(env_file)
    check_chart_dir(chart_dir)
    if cfg.broker.kind == "paper":
        check_market_data(cfg)


def check_env_file(path: Path) -> None:
    if not path.exists():
        return
    where = path.resolve()
    if path.is_dir():
        raise UserFacingError(f"{where} is a folder, not a file: remove it, or put the MONEYBOT_ settings in a text "
                              "file named .env (see .env.example)")
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        raise UserFacingError(f"cannot read {where} ({e.strerror}): fix its permissions (chmod 600 .env)") from None


def check_chart_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UserFacingError(f"{path} is a file, but charts are saved in a folder there: rename or remove "
                              "that file (MoneyBot creates the folder)")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise UserFacingError(f"cannot write charts to {path} (permission denied): fix the folder's permissions")


def check_market_data(cfg: AppConfig) -> None:
    files = [(sym, tf, resolve_path(text)) for sym, spec in cfg.symbols.items() for tf, text in spec.data.items()]
    if not any(p.exists() for _, _, p in files):
        return  # a fresh clone: the bundled bars are replayed instead (with a notice)
    md = MarketData(cfg)
    for sym, tf, path in files:
        key = f"symbols.{sym}.data.{tf}"
        if not path.exists():
            raise UserFacingError(f"{key}: no file at {path}: fix the path in the config, or remove that entry")
        if path.is_dir():
            raise UserFacingError(f"{key}: {path} is a folder, not a data file: point the config at the CSV file")
        try:
            with open(path, "rb") as f:
                f.read(1)
            md.candles(sym, tf)
        except OSError as e:
            raise UserFacingError(f"{key}: cannot read {path} ({e.strerror}): fix its permissions") from None
        except UserFacingError as e:
            raise UserFacingError(f"{key}: {e.message} (replace the file with a good copy, or remove the entry "
                                  "from the config)") from None
