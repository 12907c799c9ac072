"""Platform-neutral replies and the callback payload grammar shared by every chat adapter.

A button carries only a short payload (`a:<proposal id>`, `r:<id>`, `c:<ticket>:<issued epoch>`,
`e:<issued epoch>`, `x:<what>`; confirmations carry their issue time so they lapse, see bot.confirmations):
Telegram caps callback_data at 64 bytes and Discord custom_ids at 100, and the authoritative state
(proposal, expiry, ticket) lives in the store, never in the button, so a forged or replayed payload can
at worst name an id that core then refuses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

MAX_PAYLOAD_BYTES = 64
# fullmatch only: `$` also matches before a trailing newline, so "a:id\n" used to pass
PAYLOAD_RE = re.compile(r"(?P<kind>[arcex]):(?P<ref>[A-Za-z0-9_.:-]{1,56})")

ReplyKind = Literal["ok", "usage", "error", "refusal"]


@dataclass(frozen=True)
class Button:
    label: str
    payload: str
    style: Literal["primary", "danger", "secondary", "success"] = "secondary"

    def __post_init__(self) -> None:
        if len(self.payload.encode()) > MAX_PAYLOAD_BYTES or not PAYLOAD_RE.fullmatch(self.payload):
            raise ValueError(f"bad button payload {self.payload!r}")


@dataclass
class Reply:
    """What a command answers. `edit` replies (to a button tap) replace the tapped message's text."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    image: bytes | None = None
    image_name: str = "chart.png"
    ephemeral: bool = False
    kind: ReplyKind = "ok"
    edit: bool = False
    # For edits: keep the tapped message's other buttons, dropping only rows that mention this ref
    # (a rejected strategy disappears, the others stay tappable). None = remove the whole keyboard.
    keep_buttons_except: str | None = None
    toast: str | None = None  # a short pop-up for the tapper (Telegram answerCallbackQuery text)
    error_id: str | None = None


def parse_payload(data: str | None) -> tuple[str, str] | None:
    """(kind, ref) for a well-formed payload, else None: garbage from a client is simply refused."""
    if not isinstance(data, str) or len(data.encode("utf-8", "replace")) > MAX_PAYLOAD_BYTES:
        return None
    m = PAYLOAD_RE.fullmatch(data)
    return (m["kind"], m["ref"]) if m else None


def split_text(text: str, limit: int) -> list[str]:
    """A long text as several messages of at most `limit` characters, cut at line boundaries.

    Chat platforms refuse longer messages (Telegram 4096, Discord 2000) and cutting a `/trades` list
    with "…" would silently hide trades, so every line is kept: lines are packed greedily into chunks,
    and only a single line longer than a whole message is broken (at a space where one exists).
    Blank chunks are dropped (both platforms reject empty messages).
    """
    if limit < 1:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    size = -1  # length of "\n".join(current)

    def flush() -> None:
        nonlocal current, size
        if current and "\n".join(current).strip():
            chunks.append("\n".join(current))
        current, size = [], -1

    for line in text.split("\n"):
        while len(line) > limit:
            cut = line.rfind(" ", 1, limit + 1)
            cut = cut if cut > 0 else limit
            flush()
            chunks.append(line[:cut].rstrip())
            line = line[cut:].lstrip(" ")
        if size + 1 + len(line) > limit:
            flush()
        current.append(line)
        size += 1 + len(line)
    flush()
    return chunks or [text[:limit]]


def fit_edit(base: str, sep: str, outcome: str, limit: int) -> str:
    """The tapped card with its outcome appended, within one message: an edit cannot be split, and the
    outcome (what happened to the trade) matters more than the card's tail, so the card is shortened."""
    text = base + sep + outcome
    if len(text) <= limit:
        return text
    room = limit - len(sep) - len(outcome) - 1
    if room <= 0:
        return outcome if len(outcome) <= limit else outcome[: limit - 1] + "…"
    return base[:room].rstrip() + "…" + sep + outcome
