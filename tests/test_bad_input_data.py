"""Candle files a trader hands to `--data` that are not what the loaders read: one line that says what
is wrong with the file and what to do, not a codec's error text."""
from __future__ import annotations

import pytest

from bot.cli import main
from core.config.loading import load_config
from core.config.paths import resolve_path
from core.data.loaders import load_candles
from core.domain.exceptions import DataFileError


def _real_lines(n: int) -> str:
    spec = load_config().symbols["XAUUSDc"]
    with open(resolve_path(spec.data["M5"]), encoding="utf-8") as fh:
        return "".join(next(fh) for _ in range(n))


@pytest.mark.parametrize(("name", "encoding", "problem"), [
    ("bars.csv", "utf-16", "is UTF-16 text, not UTF-8: save or export it as UTF-8"),
    ("bars.json", "utf-16", "is UTF-16 text, not UTF-8: save or export it as UTF-8"),
    ("bars.csv", "cp1252", "is not UTF-8 text (byte 0xe9 at offset"),
])
def test_a_file_in_another_text_encoding_says_so(name, encoding, problem, tmp_path, capsys):
    path = tmp_path / name
    text = _real_lines(300) if name.endswith(".csv") else '[[1735776000, 1.0, 2.0, 0.5, 1.5, 10]]'
    if encoding == "cp1252":
        text = text.replace("<DATE>", "<DATE é>", 1)
    path.write_bytes(text.encode(encoding))
    with pytest.raises(DataFileError) as e:
        load_candles(path)
    assert problem in e.value.message and "codec" not in e.value.message
    assert main(["analyse", "XAUUSDc", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert problem in err and "Traceback" not in err and err.count("\n") == 1


def test_binary_garbage_is_not_a_candle_file(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DataFileError) as e:
        load_candles(path)
    assert "codec" not in e.value.message
