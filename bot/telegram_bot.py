"""Telegram front end: a thin python-telegram-bot v22 adapter over `CommandRouter`.

Polling by default (no public URL needed), AIORateLimiter so bursts of alerts respect Telegram's flood
limits, and every Bot API failure is caught and logged: a chat outage must never take the trading
process down. Buttons carry only `a:<proposal id>`-style payloads; after a tap the card is edited to
show the outcome, so the chat history is the trade log a trader scrolls back through.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.commands import CommandRouter
from bot.progress import PostThenEdit
from bot.replies import Button, Reply, fit_edit, split_text
from core.domain.models import Alert

log = logging.getLogger(__name__)

OUTCOME_SEP = "\n\n— "
MAX_TEXT = 4096
CHAT_REFUSAL = "Sorry, this bot only works in its configured chat."
# A tap shows a spinner until answerCallbackQuery; an approval waits on the broker, so a tap still busy
# after this long is answered with WORKING and its outcome goes into the card edit instead of a toast.
ANSWER_WITHIN_S = 1.0
WORKING = "⏳ Working on it…"


def keyboard(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.payload) for b in row] for row in rows])


def _remaining(markup: InlineKeyboardMarkup | None, drop_ref: str | None) -> InlineKeyboardMarkup | None:
    """The tapped message's keyboard without the rows that mention `drop_ref` (None: no keyboard)."""
    if markup is None or drop_ref is None:
        return None
    rows = [
        list(row) for row in markup.inline_keyboard
        if not any(str(getattr(b, "callback_data", "")).endswith(f":{drop_ref}") for b in row)
    ]
    return InlineKeyboardMarkup(rows) if rows else None


def _clip(text: str) -> str:
    """For edits only (one message cannot become two); new messages are split with `split_text`."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class TelegramFrontEnd:
    def __init__(
        self,
        router: CommandRouter,
        token: str,
        *,
        chat_id: int | None = None,
        alert_chat_ids: list[int] | None = None,
        base_url: str | None = None,
        base_file_url: str | None = None,
        poll_timeout: float = 10.0,
        rate_limit: bool = True,
        answer_within: float = ANSWER_WITHIN_S,
    ) -> None:
        self.router = router
        self.answer_within = answer_within
        self.chat_id = chat_id
        self.alert_chat_ids = list(alert_chat_ids or ([chat_id] if chat_id is not None else []))
        self.poll_timeout = poll_timeout
        self._refused_chats: set[int] = set()
        # core retries a failed alert by calling on_alert again with the same Alert: remember which
        # chats already have it, the steps (chart, text parts) each chat got, and its rendered reply, so
        # a retry sends only what is still missing
        self._alert_progress: tuple[Alert, Reply, set[int], set[tuple[int, int]]] | None = None
        # text commands still being handled: PTB's stop() waits for every one, and a /backtest can have
        # minutes of CPU left, so stop() cancels them (taps are left to finish: an order may be on its way)
        self._commands: set[asyncio.Task] = set()
        # concurrent updates: a /backtest or a slow broker must not hold up another trader's Approve tap
        # (core makes approvals exactly-once, so parallel handling is safe)
        builder = ApplicationBuilder().token(token).concurrent_updates(16)
        if base_url:
            builder = builder.base_url(base_url)
        if base_file_url:
            builder = builder.base_file_url(base_file_url)
        if rate_limit:
            builder = builder.rate_limiter(AIORateLimiter(max_retries=2))
        self.app: Application = builder.build()
        self.app.add_handler(MessageHandler(filters.TEXT, self._on_text))
        self.app.add_handler(CallbackQueryHandler(self._on_callback))
        self.app.add_error_handler(self._on_error)

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.connect()
        await self.start_polling()

    async def connect(self) -> None:
        """Ready to send (alerts) without taking commands yet: the runner connects before the service
        starts, so what recovery pages (an orphan adopted after a crash) reaches the chat."""
        await self.app.initialize()
        await self.app.start()

    async def start_polling(self) -> None:
        await self.app.updater.start_polling(
            timeout=self.poll_timeout, drop_pending_updates=False, allowed_updates=["message", "callback_query"],
            error_callback=lambda e: log.warning("telegram polling error: %s", type(e).__name__),
        )
        me = self.app.bot.username
        log.info("telegram bot @%s polling", me)

    async def stop_polling(self) -> None:
        """No new commands, and the running ones cancelled; sending still works (the last alerts)."""
        if self.app.updater and self.app.updater.running:
            await self.app.updater.stop()
        for task in list(self._commands):
            task.cancel()  # a backtest then says "stopped" in the chat and its worker quits

    async def stop(self) -> None:
        try:
            await self.stop_polling()
            if self.app.running:
                await self.app.stop()
        finally:
            await self.app.shutdown()

    # ------------------------------------------------------------ handlers
    def _chat_allowed(self, chat_id: int) -> bool:
        return self.chat_id is None or chat_id == self.chat_id or chat_id in self.alert_chat_ids

    async def _on_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg, user, chat = update.effective_message, update.effective_user, update.effective_chat
        if msg is None or user is None or chat is None or not msg.text:
            return
        if chat.type != "private" and not msg.text.startswith("/"):
            return  # people talk in group chats; only commands are for us
        first = msg.text.split(maxsplit=1)[0]
        if first.startswith("/") and "@" in first and \
                first.split("@", 1)[1].lower() != (self.app.bot.username or "").lower():
            return  # "/status@OtherBot" in a group is for another bot
        # the ids a new user needs for .env (README: "Telegram, step by step"), never the text itself
        log.info("telegram: a message from user %s in chat %s", user.id, chat.id)
        if not self._chat_allowed(chat.id):
            log.warning("telegram: user %s wrote from unconfigured chat %s", user.id, chat.id)
            if chat.id not in self._refused_chats:
                self._refused_chats.add(chat.id)
                await self._safe(self.app.bot.send_message(chat.id, CHAT_REFUSAL))
            return
        task = asyncio.current_task()
        if task is not None:
            self._commands.add(task)
        try:
            reply = await self.router.handle_text(msg.text, user.id, progress=self.progress_sink(chat.id))
        finally:
            self._commands.discard(task)
        if reply is not None:
            await self.send(chat.id, reply)

    async def _on_callback(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        q, user = update.callback_query, update.effective_user
        if q is None or user is None:
            return
        chat_id = q.message.chat.id if q.message is not None else None
        if chat_id is not None and not self._chat_allowed(chat_id):
            log.warning("telegram: tap by user %s from unconfigured chat %s", user.id, chat_id)
            await self._safe(q.answer(CHAT_REFUSAL, show_alert=True))
            return
        # the action runs as its own task: answering the tap must not wait for a slow broker, and an
        # order already sent must not be abandoned because the chat side gave up waiting
        action = asyncio.ensure_future(self.router.handle_callback(q.data or "", user.id))
        answered = False
        try:
            reply = await asyncio.wait_for(asyncio.shield(action), self.answer_within)
        except TimeoutError:
            await self._safe(q.answer(WORKING))
            answered = True
            reply = await asyncio.shield(action)
        if reply is None:
            if not answered:
                await self._safe(q.answer())
            return
        late_notice = answered and not reply.edit
        if not answered:
            await self._safe(q.answer(reply.toast, show_alert=reply.kind == "refusal"))
        if not reply.edit and not late_notice:
            return
        message = q.message
        if message is None or not getattr(message, "text", None):
            if chat_id is not None:
                await self.send(chat_id, Reply(text=reply.text))
            return
        base = message.text.split(OUTCOME_SEP, 1)[0]
        # a late notice (the toast is spent) goes into the card and leaves its buttons as they were
        markup = message.reply_markup if late_notice else _remaining(message.reply_markup, reply.keep_buttons_except)
        try:
            await q.edit_message_text(fit_edit(base, OUTCOME_SEP, reply.text, MAX_TEXT), reply_markup=markup)
        except TelegramError as e:
            if isinstance(e, BadRequest) and "not modified" in str(e).lower():
                return
            # the action happened (e.g. a trade was placed): say so in the chat, not only in a toast
            log.warning("telegram card edit failed (%s); posting the outcome instead", e)
            await self.send(chat_id, Reply(text=reply.text))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram handler error: %s", type(context.error).__name__, exc_info=context.error)

    # ------------------------------------------------------------ sending
    async def _safe(self, coro) -> Any:
        """Await a Bot API call; log failures instead of raising (the chat is not worth a crash)."""
        try:
            return await coro
        except BadRequest as e:
            if "not modified" in str(e).lower():
                return None
            log.warning("telegram rejected a call: %s", e)
        except TelegramError as e:
            log.warning("telegram call failed: %s: %s", type(e).__name__, e)
        return None

    def progress_sink(self, chat_id: int) -> PostThenEdit:
        """Progress of a long command: one message, then editMessageText on it (no chat spam)."""

        async def post(text: str) -> Any:
            return await self._safe(self.app.bot.send_message(chat_id, _clip(text)))

        async def edit(message: Any, text: str) -> Any:
            return await self._safe(self.app.bot.edit_message_text(
                _clip(text), chat_id=chat_id, message_id=message.message_id))

        return PostThenEdit(post, edit)

    async def send(self, chat_id: int, reply: Reply) -> None:
        """Chart first, then the card with its keyboard right under it (where the thumb is). A text over
        Telegram's limit goes as several messages, the keyboard on the last one."""
        if reply.image:
            await self._safe(self.app.bot.send_photo(chat_id, photo=reply.image, filename=reply.image_name))
        parts = split_text(reply.text, MAX_TEXT)
        for i, part in enumerate(parts, 1):
            markup = keyboard(reply.buttons) if i == len(parts) else None
            await self._safe(self.app.bot.send_message(chat_id, part, reply_markup=markup))

    async def _send_strict(self, chat_id: int, reply: Reply, done: set[tuple[int, int]]) -> None:
        """Like `send`, but the text must arrive: failures propagate so the alert layer retries. Steps
        already delivered to this chat (0 = chart, i = text part i) are in `done` and are not repeated on
        that retry: a trader saw the same chart once per failed attempt above a single alert text."""
        if reply.image and (chat_id, 0) not in done:
            await self._safe(self.app.bot.send_photo(chat_id, photo=reply.image, filename=reply.image_name))
            done.add((chat_id, 0))  # best effort: a lost chart is logged, never retried
        for i, part in enumerate(split_text(reply.text, MAX_TEXT), 1):
            if (chat_id, i) not in done:
                await self.app.bot.send_message(chat_id, part)
                done.add((chat_id, i))

    async def on_alert(self, alert: Alert) -> None:
        """Alert sink: one message (plus chart when there is one) to every configured alert chat.

        Raises when a chat failed in a way worth retrying (core then calls again with the same alert,
        which goes only to the chats still missing it). A chat that refuses the bot for good (Forbidden:
        the trader never pressed Start, or blocked it) is logged, not retried, unless no chat got it."""
        if not self.alert_chat_ids:
            return
        progress = self._alert_progress
        if progress is None or progress[0] is not alert:
            progress = (alert, await self.router.alert_reply(alert), set(), set())
            self._alert_progress = progress
        _, reply, done, steps = progress
        failed: Exception | None = None
        refused: Exception | None = None
        for chat_id in self.alert_chat_ids:
            if chat_id in done:
                continue
            try:
                await self._send_strict(chat_id, reply, steps)
                done.add(chat_id)
            except Forbidden as e:
                log.warning("telegram alert to chat %s refused (%s): not retried", chat_id, e)
                refused = e
            except TelegramError as e:
                log.warning("telegram alert to chat %s failed: %s", chat_id, type(e).__name__)
                failed = e
        if failed is not None:
            raise failed
        if refused is not None and not done:
            raise refused
        self._alert_progress = None  # delivered: the same Alert sent again later is a new delivery
