"""The live weekly economic calendar (Forex Factory's `ff_calendar_thisweek.json`, URL in config).

Why a disk cache: the blackout must survive a restart without network. Every good download is written
atomically to `news.live_cache_path` with the time it was fetched; at start-up that file is this
week's calendar until the next refresh. `get` never touches the network, so an analysis call reads
the last good copy and its age; `refresh` (scheduled by `core.data.sources.market_context`) fails
soft: a timeout, 429/418, a server error or a malformed payload keeps the last good copy and sets
`last_error` for the card and /health.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path

from core.data.sources.news import CalendarFormatError, NewsCalendar, parse_calendar
from core.domain.clock import Clock

log = logging.getLogger(__name__)


class CalendarFetchError(Exception):
    pass


async def http_get_json(url: str, timeout: float):
    """GET a JSON document with aiohttp (installed with ccxt); HTTP errors raise CalendarFetchError."""
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
        async with s.get(url, headers={"User-Agent": "moneybot/0.1 (calendar)"}) as r:
            if r.status in (418, 429):
                raise CalendarFetchError(f"the calendar site is rate-limiting us (HTTP {r.status})")
            if r.status != 200:
                raise CalendarFetchError(f"the calendar site answered HTTP {r.status}")
            text = await r.text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CalendarFormatError(f"invalid JSON at line {e.lineno}") from None


class LiveCalendarSource:
    def __init__(self, url: str, cache_path: str | Path, clock: Clock, timeout: float = 10.0, fetch=None):
        self.url = url
        self.cache_path = Path(cache_path)
        self.clock = clock
        self.timeout = timeout
        self._fetch = fetch or http_get_json
        self.calendar: NewsCalendar | None = None
        self.last_error: str | None = None
        self.failures = 0
        self._load_cache()

    def _load_cache(self) -> None:
        try:
            raw = json.loads(self.cache_path.read_text(encoding="utf-8"))
            self.calendar = parse_calendar(raw, f"live calendar (disk copy {self.cache_path.name})")
        except FileNotFoundError:
            return
        except (OSError, ValueError, CalendarFormatError) as e:
            self.last_error = f"the saved calendar copy could not be read: {e}"
            log.warning("%s", self.last_error)

    def _save(self, events: list, fetched_at: float) -> None:
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(fetched_at, UTC).isoformat()
        tmp = self.cache_path.with_suffix(".tmp")
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps({"timestamp": stamp, "url": self.url, "events": events}), encoding="utf-8")
            os.replace(tmp, self.cache_path)
        except OSError as e:  # a read-only disk costs the offline restart, not the live calendar
            log.warning("could not save the calendar copy to %s: %s", self.cache_path, e)

    async def refresh(self) -> bool:
        """Download, validate, cache. False (last good copy kept, `last_error` set) on any failure."""
        try:
            raw = await asyncio.wait_for(self._fetch(self.url, self.timeout), self.timeout + 1)
            events = raw.get("events") if isinstance(raw, dict) else raw
            if not isinstance(events, list) or not events:
                raise CalendarFormatError("no list of events in the answer")
            fetched = self.clock.now()
            cal = parse_calendar(events, f"live calendar {self.url}")
        except asyncio.CancelledError:
            raise
        except (TimeoutError, asyncio.TimeoutError):
            return self._failed("the calendar site did not answer in time")
        except CalendarFetchError as e:
            return self._failed(str(e))
        except (CalendarFormatError, ValueError, TypeError, KeyError) as e:  # a bad date, a missing field
            return self._failed(f"malformed calendar ({e})")
        except Exception as e:  # noqa: BLE001 - connection refused, DNS, TLS: all the same soft failure
            return self._failed(f"network error ({type(e).__name__}: {e})")
        self.calendar = NewsCalendar(cal.events, fetched, cal.source)
        self.last_error, self.failures = None, 0
        self._save(events, fetched)
        return True

    def _failed(self, why: str) -> bool:
        self.failures += 1
        if self.last_error != why:
            log.warning("live news calendar: %s; keeping the last good copy", why)
        self.last_error = why
        return False

    def get(self) -> tuple[NewsCalendar | None, str | None]:
        return self.calendar, self.last_error

    def age_seconds(self, now: float) -> float | None:
        cal = self.calendar
        return None if cal is None or cal.fetched_at is None else max(0.0, now - cal.fetched_at)
