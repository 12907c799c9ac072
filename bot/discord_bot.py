"""Discord front end: slash commands and persistent Approve/Reject buttons over `CommandRouter`.

Buttons are a `DynamicItem` whose custom_id is `moneybot:<kind>:<ref>` (the same payload grammar as
Telegram). It is registered in `setup_hook`, so a button on a card posted before a restart still works
after it: the state lives in the store, not in a View object in memory. Every interaction is
deferred first (Discord's 3-second rule; analysis and the chart can take longer on a busy box), then
answered with a follow-up or an edit of the card. Sends are wrapped: a Discord 5xx is logged, never
fatal to the trading process.
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
from typing import Any

import discord
from discord import app_commands

from bot.commands import CommandRouter
from bot.replies import Button, Reply, fit_edit, split_text
from core.domain.models import Alert

log = logging.getLogger(__name__)

CUSTOM_ID_PREFIX = "moneybot"
TEMPLATE = r"moneybot:(?P<kind>[arcex]):(?P<ref>[A-Za-z0-9_.:-]{1,56})"
OUTCOME_SEP = "\n\n— "
MAX_TEXT = 2000
# The runner registers the alert sink before the service starts (recovery's pages must reach the desk)
# while the login runs alongside: an alert that comes first waits this long for it (core's attempt
# timeout is 15 s; a timeout here is a failed attempt that core retries).
LOGIN_WAIT_S = 10.0
# Commands whose answers are personal look-ups rather than desk-wide news: only the asker sees them.
EPHEMERAL = {"help", "config", "health"}
_STYLES = {
    "primary": discord.ButtonStyle.primary,
    "success": discord.ButtonStyle.success,
    "danger": discord.ButtonStyle.danger,
    "secondary": discord.ButtonStyle.secondary,
}


def _clip(text: str) -> str:
    """For edits only (one message cannot become two); new messages are split with `split_text`."""
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


class ActionButton(discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
    """A button that survives restarts: its custom_id alone says what to do."""

    def __init__(self, kind: str, ref: str, label: str = "…", style: discord.ButtonStyle = discord.ButtonStyle.secondary,
                 row: int | None = None):
        super().__init__(
            discord.ui.Button(label=label[:80], style=style, custom_id=f"{CUSTOM_ID_PREFIX}:{kind}:{ref}"), row=row
        )
        self.kind, self.ref = kind, ref

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /):
        return cls(match["kind"], match["ref"], item.label or "…", item.style)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        if isinstance(client, MoneyBotClient):
            await client.on_button(interaction, f"{self.kind}:{self.ref}")


def message_parts(reply: Reply, **extra: Any) -> list[dict[str, Any]]:
    """The `send()` keywords for one reply: its text split at lines under Discord's limit, with the chart and
    the buttons on the last part, right under the end of the text (follow-ups and channel posts alike)."""
    parts = split_text(reply.text, MAX_TEXT)
    out: list[dict[str, Any]] = []
    for i, part in enumerate(parts, 1):
        kwargs: dict[str, Any] = {"content": part, **extra}
        if i == len(parts):
            if reply.image:
                kwargs["file"] = discord.File(io.BytesIO(reply.image), filename=reply.image_name)
            view = build_view(reply.buttons)
            if view is not None:
                kwargs["view"] = view
        out.append(kwargs)
    return out


def build_view(rows: list[list[Button]]) -> discord.ui.View | None:
    """A persistent view (timeout=None, explicit custom_ids) made of ActionButtons."""
    if not rows:
        return None
    view = discord.ui.View(timeout=None)
    for r, row in enumerate(rows[:5]):
        for b in row[:5]:
            kind, ref = b.payload.split(":", 1)
            view.add_item(ActionButton(kind, ref, b.label, _STYLES.get(b.style, discord.ButtonStyle.secondary), row=r))
    return view


def _remaining_rows(message: discord.Message | None, drop_ref: str | None) -> list[list[Button]]:
    """The tapped card's buttons minus rows naming `drop_ref` (None: no buttons left)."""
    if message is None or drop_ref is None:
        return []
    rows: list[list[Button]] = []
    for action_row in message.components:
        row: list[Button] = []
        for comp in getattr(action_row, "children", []):
            cid = getattr(comp, "custom_id", None) or ""
            if not cid.startswith(CUSTOM_ID_PREFIX + ":"):
                continue
            payload = cid[len(CUSTOM_ID_PREFIX) + 1:]
            style = {discord.ButtonStyle.success: "success", discord.ButtonStyle.danger: "danger"}.get(comp.style, "secondary")
            row.append(Button(comp.label or "…", payload, style))
        if row and not any(b.payload.endswith(f":{drop_ref}") for b in row):
            rows.append(row)
    return rows


class MoneyBotClient(discord.Client):
    def __init__(
        self,
        router: CommandRouter,
        *,
        guild_id: int | None = None,
        alert_channel_id: int | None = None,
        **kwargs: Any,
    ) -> None:
        # replies echo user input ("I don't know the symbol '@everyone'"): never let that ping anyone
        kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
        super().__init__(intents=kwargs.pop("intents", discord.Intents.default()), **kwargs)
        self.router = router
        self.guild_id = guild_id
        self.alert_channel_id = alert_channel_id
        self.tree = app_commands.CommandTree(self)
        self._register_commands()
        # slash commands still working: discord.py's close() neither waits for nor cancels them
        self._commands: set[asyncio.Task] = set()
        self._logged_in = asyncio.Event()  # set in setup_hook, which discord.py calls right after the login

    async def setup_hook(self) -> None:
        self._logged_in.set()
        self.add_dynamic_items(ActionButton)
        # A failed sync (403: a guild id the bot is not in, or an invite without applications.commands)
        # must not fail the login: alerts and the buttons of cards already posted work without it, and
        # the commands synced last time are still there.
        try:
            if self.guild_id:
                guild = discord.Object(id=self.guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
            else:
                await self.tree.sync()
        except discord.HTTPException as e:
            log.error("discord slash commands not synced (%s %s): check MONEYBOT_DISCORD_GUILD_ID and that the "
                      "invite had the applications.commands scope", e.status, e.text)

    async def stop_commands(self) -> None:
        """Cancel the slash commands still working, while HTTP still works, so a /backtest says "stopped"
        on its progress message and its worker quits. The runner calls it before the service stops."""
        running = [t for t in self._commands if t is not asyncio.current_task()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=10)

    async def close(self) -> None:
        """Shutdown: running slash commands first (discord.py's close() neither waits for nor cancels them)."""
        await self.stop_commands()
        await super().close()

    # ------------------------------------------------------------ slash commands
    def _register_commands(self) -> None:
        tree = self.tree

        @tree.command(name="scalp", description="Analyse a range scalp: card, chart, Approve/Reject")
        @app_commands.describe(symbol="e.g. XAUUSDc, BTCUSDc, EURUSDc")
        async def scalp(interaction: discord.Interaction, symbol: str) -> None:
            await self.run_command(interaction, "scalp", symbol)

        @scalp.autocomplete("symbol")
        async def scalp_symbols(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return self.symbol_choices(current)

        @tree.command(name="status", description="Open range scalps")
        async def status(interaction: discord.Interaction) -> None:
            await self.run_command(interaction, "status")

        @tree.command(name="trades", description="Last closed trades")
        async def trades(interaction: discord.Interaction, n: int | None = None) -> None:
            await self.run_command(interaction, "trades", n)

        @tree.command(name="close", description="Close a trade (asks for confirmation)")
        async def close(interaction: discord.Interaction, ticket: str) -> None:
            await self.run_command(interaction, "close", ticket)

        @tree.command(name="pause", description="Stop opening new trades")
        async def pause(interaction: discord.Interaction) -> None:
            await self.run_command(interaction, "pause")

        @tree.command(name="resume", description="Allow new trades again")
        async def resume(interaction: discord.Interaction) -> None:
            await self.run_command(interaction, "resume")

        @tree.command(name="emergency", description="Close everything and pause (asks for confirmation)")
        async def emergency(interaction: discord.Interaction) -> None:
            await self.run_command(interaction, "emergency")

        @tree.command(name="metrics", description="P&L, win rate, expectancy")
        async def metrics(interaction: discord.Interaction, days: int | None = None) -> None:
            await self.run_command(interaction, "metrics", days)

        @tree.command(name="config", description="Effective config and version")
        async def config(interaction: discord.Interaction, symbol: str | None = None) -> None:
            await self.run_command(interaction, "config", symbol)

        @tree.command(name="health", description="Broker, data, monitor, errors")
        async def health(interaction: discord.Interaction) -> None:
            await self.run_command(interaction, "health")

        @tree.command(name="help", description="What MoneyBot can do")
        async def help_(interaction: discord.Interaction) -> None:
            await self.run_command(interaction, "help")

        @tree.command(name="backtest", description="Backtest a symbol over recent days")
        async def backtest(interaction: discord.Interaction, symbol: str, days: int | None = None) -> None:
            await self.run_command(interaction, "backtest", symbol, days)

    def symbol_choices(self, current: str) -> list[app_commands.Choice[str]]:
        """Configured symbols matching what the trader has typed so far (case-insensitive)."""
        names = list(getattr(self.router.cfg, "symbols", None) or [])
        want = (current or "").lower()
        return [app_commands.Choice(name=n, value=n) for n in names if want in n.lower()][:25]

    async def run_command(self, interaction: discord.Interaction, name: str, *args: Any) -> None:
        """Defer at once, run the shared command, answer with a follow-up (chart attached)."""
        text = " ".join([f"/{name}", *[str(a) for a in args if a is not None]])
        refusal = self.router.precheck(name, interaction.user.id)
        if refusal is not None:  # decided instantly and only the asker needs to see it
            try:
                await interaction.response.send_message(_clip(refusal.text), ephemeral=True)
            except discord.HTTPException as e:
                log.warning("discord refusal for /%s failed: %s", name, e)
            return
        try:
            await interaction.response.defer(ephemeral=name in EPHEMERAL, thinking=True)
        except discord.HTTPException as e:
            log.warning("discord defer for /%s failed: %s", name, e)
            return
        task = asyncio.current_task()
        if task is not None:
            self._commands.add(task)
        try:
            reply = await self.router.handle_text(text, interaction.user.id, progress=self._progress_sink(interaction))
        finally:
            self._commands.discard(task)
        if reply is None:
            reply = Reply(text="Sorry, I can't help you here.", kind="refusal", ephemeral=True)
        await self._followup(interaction, reply)

    @staticmethod
    def _progress_sink(interaction: discord.Interaction):
        """Progress of a long command: edits of the deferred ("thinking…") response; the result follows."""

        async def edit(text: str) -> None:
            try:
                await interaction.edit_original_response(content=_clip(text))
            except discord.HTTPException as e:
                log.warning("discord progress edit failed: %s", e.status)

        return edit

    async def _followup(self, interaction: discord.Interaction, reply: Reply) -> None:
        """The reply as one follow-up, or several when it is over Discord's limit: chart and buttons go
        with the last part, right under the end of the text."""
        for kwargs in message_parts(reply, ephemeral=reply.ephemeral):
            try:
                await interaction.followup.send(**kwargs)
            except discord.HTTPException as e:
                log.warning("discord follow-up failed (%s); retrying without the chart", e.status)
                kwargs.pop("file", None)
                try:
                    await interaction.followup.send(**kwargs)
                except discord.HTTPException as e2:
                    log.error("discord follow-up failed twice: %s", e2.status)

    # ------------------------------------------------------------ buttons
    async def on_button(self, interaction: discord.Interaction, payload: str) -> None:
        try:
            await interaction.response.defer()
        except discord.HTTPException as e:
            log.warning("discord button defer failed: %s", e)
            return
        reply = await self.router.handle_callback(payload, interaction.user.id)
        if reply is None:
            return
        if not reply.edit:
            try:
                for part in split_text(reply.text, MAX_TEXT):
                    await interaction.followup.send(part, ephemeral=True)
            except discord.HTTPException as e:
                log.warning("discord ephemeral notice failed: %s", e.status)
            return
        message = interaction.message
        base = (message.content if message is not None else "").split(OUTCOME_SEP, 1)[0]
        rows = _remaining_rows(message, reply.keep_buttons_except)
        try:
            await interaction.edit_original_response(
                content=fit_edit(base, OUTCOME_SEP, reply.text, MAX_TEXT), view=build_view(rows)
            )
        except discord.HTTPException as e:
            log.warning("discord card edit failed (%s); posting the outcome instead", e.status)
            try:
                for part in split_text(reply.text, MAX_TEXT):
                    await interaction.followup.send(part)
            except discord.HTTPException:
                log.error("discord outcome could not be delivered for %s", payload)

    # ------------------------------------------------------------ alerts
    async def on_alert(self, alert: Alert) -> None:
        """Alert sink: post to the configured channel; raise on failure so core's retry kicks in.

        A chart the channel refuses (no "Attach Files" permission, too large) must not cost the alert
        itself: discord.py has already retried 5xx and 429, so the text goes again without the chart."""
        if not self.alert_channel_id:
            return
        if not self._logged_in.is_set():
            await asyncio.wait_for(self._logged_in.wait(), LOGIN_WAIT_S)
        channel = self.get_channel(self.alert_channel_id) or await self.fetch_channel(self.alert_channel_id)
        reply = await self.router.alert_reply(alert)
        parts = split_text(reply.text, MAX_TEXT)
        for i, part in enumerate(parts, 1):
            if not (reply.image and i == len(parts)):
                await channel.send(content=part)  # type: ignore[union-attr]
                continue
            try:
                file = discord.File(io.BytesIO(reply.image), filename=reply.image_name)
                await channel.send(content=part, file=file)  # type: ignore[union-attr]
            except discord.HTTPException as e:
                log.warning("discord alert chart refused (%s); sending the alert without it", e.status)
                await channel.send(content=part)  # type: ignore[union-attr]
