"""The month a report covers, in the site's local time (``[site].timezone``).

A meeting on 1 December reviews "tháng 11": 00:00 on 1 November to 00:00 on 1 December,
Asia/Ho_Chi_Minh, whatever UTC says. Every bound here is unix seconds; days are the
local calendar's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core.errors import CommandError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Month:
    """One calendar month in one time zone. ``start``/``end`` are unix seconds, end
    exclusive."""

    year: int
    month: int
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def start(self) -> float:
        return datetime(self.year, self.month, 1, tzinfo=self.zone).timestamp()

    @property
    def end(self) -> float:
        year, month = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        return datetime(year, month, 1, tzinfo=self.zone).timestamp()

    @property
    def days(self) -> int:
        """Days in the month (28 to 31)."""
        return round((self.end - self.start) / 86400)

    @property
    def label(self) -> str:
        """``2026-11``."""
        return f"{self.year:04d}-{self.month:02d}"

    def day_of(self, ts: float) -> int:
        """The local day of the month (1-based) of unix time ``ts``."""
        return datetime.fromtimestamp(ts, self.zone).day

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.zone)

    def fmt(self, ts: float | None, *, with_date: bool = True) -> str:
        """``23/11 19:42`` (or ``19:42``), local time; ``—`` for None."""
        if ts is None:
            return "—"
        return self.local(ts).strftime("%d/%m %H:%M" if with_date else "%H:%M")


def parse_month(text: str | None, tz: str, now: float) -> Month:
    """``YYYY-MM``; without one, the month before the one ``now`` (unix s) falls in,
    which is what a timer on the 1st wants."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CommandError(f"unknown time zone {tz!r} in [site].timezone") from None
    if text is None:
        first = datetime.fromtimestamp(now, zone).replace(day=1)
        last = first - timedelta(days=1)
        return Month(last.year, last.month, tz)
    match = _MONTH.match(text.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise CommandError(f"--month {text!r}: use YYYY-MM, e.g. 2026-11")
    return Month(int(match.group(1)), int(match.group(2)), tz)
