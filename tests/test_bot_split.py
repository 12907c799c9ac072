"""The one splitter both chat adapters use for texts over their platform's limit."""
from __future__ import annotations

import pytest

from bot.replies import fit_edit, split_text


def test_short_text_is_one_message():
    assert split_text("a\nb", 10) == ["a\nb"]


def test_split_at_line_boundaries_keeps_every_line():
    lines = [f"#{i} " + "x" * (i % 17) for i in range(200)]
    text = "\n".join(lines)
    parts = split_text(text, 100)
    assert len(parts) > 1 and all(len(p) <= 100 for p in parts)
    assert "\n".join(parts) == text
    assert all(p.split("\n")[0] in lines for p in parts)  # every part starts on a whole line


def test_a_line_longer_than_a_message_is_broken_at_spaces():
    long = " ".join(["word"] * 60)  # 299 chars
    parts = split_text("head\n" + long + "\ntail", 50)
    assert all(0 < len(p) <= 50 for p in parts)
    assert parts[0] == "head" and parts[-1].endswith("tail")
    assert " ".join(" ".join(parts).split()) == " ".join(("head " + long + " tail").split())
    assert split_text("y" * 120, 50) == ["y" * 50, "y" * 50, "y" * 20]  # no space: a hard cut


def test_blank_parts_are_dropped():
    assert split_text("a" * 8 + "\n\n\n\n" + "b" * 8, 8) == ["a" * 8, "b" * 8]
    with pytest.raises(ValueError):
        split_text("abc", 0)


def test_fit_edit_shortens_the_card_not_the_outcome():
    assert fit_edit("card", " | ", "done", 100) == "card | done"
    out = fit_edit("c" * 50, " | ", "✅ Executed", 30)
    assert len(out) == 30 and out.endswith(" | ✅ Executed") and "…" in out
    assert fit_edit("card", " | ", "z" * 40, 20) == "z" * 19 + "…"
