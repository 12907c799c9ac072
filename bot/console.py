"""Console chat: the embedded default front end, the same commands as Telegram/Discord on stdin.

Buttons become numbered choices ("type 1 to approve"), charts are written under `data/charts/` and
their paths printed, and alerts print as they arrive. stdin is read on a daemon thread feeding an
asyncio queue, so a blocked `readline` never delays shutdown and a closed or absent stdin (no TTY,
`</dev/null`, a service manager) just ends the chat cleanly.
"""
from __future__ import annotations

import asyncio
import logging
import sys
import threading
from pathlib import Path
from typing import TextIO

from bot.commands import CommandRouter
from bot.replies import Button, Reply
from core.domain.models import Alert
from core.domain.wording import CONSOLE_USER_ID

log = logging.getLogger(__name__)

WELCOME = """MoneyBot console chat — type a command, or a number to press a button.
Try:  /scalp {symbol}   /status   /trades 5   /health   /help      (Ctrl-D or /quit to exit)"""
QUIT = {"/quit", "/exit", "quit", "exit"}


class ConsoleChat:
    def __init__(
        self,
        router: CommandRouter,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        chart_dir: Path = Path("data/charts"),
        user_id: int = CONSOLE_USER_ID,
        notice: str | None = None,
    ) -> None:
        self.router = router
        self.stdin = stdin if stdin is not None else sys.stdin
        self.stdout = stdout if stdout is not None else sys.stdout
        self.chart_dir = Path(chart_dir)
        self.user_id = user_id
        self.notice = notice  # printed under the welcome (e.g. "no market data: replaying ...")
        self._choices: dict[int, Button] = {}
        self._lines: asyncio.Queue[str | None] | None = None
        self._background: set[asyncio.Task] = set()
        self.quit_requested = False  # the operator typed /quit (EOF alone is not a request to stop)

    def say(self, text: str) -> None:
        try:
            self.stdout.write(text.rstrip("\n") + "\n")
            self.stdout.flush()
        except (OSError, ValueError):  # stdout closed (piped into `head`): nothing left to tell
            pass

    def _reader(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        # one stray non-UTF-8 byte (a paste, a Latin-1 terminal) would raise UnicodeDecodeError, a
        # ValueError, and end the chat: decode leniently instead
        if getattr(self.stdin, "errors", None) == "strict" and hasattr(self.stdin, "reconfigure"):
            try:
                self.stdin.reconfigure(errors="replace")
            except (OSError, ValueError, AttributeError):
                pass
        try:
            for line in iter(self.stdin.readline, ""):
                loop.call_soon_threadsafe(queue.put_nowait, line)
        except RuntimeError:  # the chat (and its loop) ended while this thread waited for a line
            return
        except (OSError, ValueError):
            pass
        try:
            loop.call_soon_threadsafe(queue.put_nowait, None)
        except RuntimeError:  # loop already closed
            pass

    async def run(self) -> None:
        """Read and answer lines until EOF or /quit."""
        symbols = list(getattr(self.router.cfg, "symbols", None) or ["XAUUSDc"])
        self.say(WELCOME.format(symbol=symbols[0]))
        self.say(f"Symbols: {', '.join(symbols)}")
        if self.notice:
            self.say(self.notice)
        loop = asyncio.get_running_loop()
        self._lines = asyncio.Queue()
        threading.Thread(target=self._reader, args=(loop, self._lines), name="console-stdin", daemon=True).start()
        try:
            await self._loop_lines(self._lines)
        except asyncio.CancelledError:  # shutdown (SIGINT/SIGTERM): a running backtest's answer is not awaited
            for task in list(self._background):
                task.cancel()
            raise

    async def _loop_lines(self, lines: asyncio.Queue[str | None]) -> None:
        while True:
            line = await lines.get()
            if line is None:
                await self._finish_background()
                self.say("bye (end of input)")
                return
            text = line.strip()
            if not text:
                continue
            if text.lower() in QUIT:
                self.quit_requested = True
                await self._finish_background()
                self.say("bye")
                return
            if _is_long(text):  # a backtest runs aside: the trader can keep typing commands meanwhile
                task = asyncio.create_task(self.handle_line(text))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            else:
                await self.handle_line(text)

    async def _finish_background(self) -> None:
        """A backtest already running is allowed to finish and print its result before the chat ends."""
        if self._background:
            self.say("(waiting for the running backtest to finish…)")
            await asyncio.gather(*self._background, return_exceptions=True)

    async def handle_line(self, text: str) -> None:
        if text.isascii() and text.isdigit() and len(text) <= 3:  # "²".isdigit() but int("²") raises
            button = self._choices.get(int(text))
            if button is None:
                self.say("No button with that number. Run a command first, e.g. /scalp XAUUSDc.")
                return
            self._choices.clear()
            reply = await self.router.handle_callback(button.payload, self.user_id)
        else:
            if not text.startswith("/") and self.router.knows(text.split(maxsplit=1)[0]):
                text = "/" + text  # at a terminal the slash is optional for a command ("status")
            reply = await self.router.handle_text(text, self.user_id, progress=self._progress)
        if reply is not None:
            self.show(reply)

    async def _progress(self, text: str) -> None:
        self.say(text)  # a terminal cannot edit a line another command may have printed under it

    def _save_chart(self, reply: Reply) -> Path | None:
        if not reply.image:
            return None
        try:
            self.chart_dir.mkdir(parents=True, exist_ok=True)
            path = self.chart_dir / reply.image_name
            path.write_bytes(reply.image)
            return path
        except OSError as e:
            log.warning("could not write chart: %s", e)
            return None

    def show(self, reply: Reply) -> None:
        out = [reply.text]
        path = self._save_chart(reply)
        if path is not None:
            out.append(f"chart: {path.resolve()}")
        if reply.buttons:
            self._choices = {}
            n = 0
            for row in reply.buttons:
                for b in row:
                    n += 1
                    self._choices[n] = b
                    out.append(f"  [{n}] {b.label}")
            out.append("Type a number to choose.")
        self.say("\n".join(out) + "\n")

    async def on_alert(self, alert: Alert) -> None:
        """Alert sink: print the alert (and its chart path) as soon as it arrives."""
        reply = await self.router.alert_reply(alert)
        path = self._save_chart(reply)
        self.say(f"\n*** ALERT ***\n{reply.text}" + (f"\nchart: {path.resolve()}" if path else "") + "\n")


def _is_long(text: str) -> bool:
    first = text.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()
    return first == "backtest"
