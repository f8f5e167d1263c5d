"""SQL fragments that differ between PostgreSQL and SQLite (the product runs on both), and the window of days.

Every figure counts days in the programme's time zone: a window [from, to] is the half-open range of instants
[start of `from`, start of the day after `to`) in that zone.
"""

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import connection

from loyalty.models import ChannelProgram, Program

# The longest window of days a figure is asked for (ten years), in the API and on the dashboard.
MAX_WINDOW_DAYS = 3660


def day_start(program: Program, day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=ZoneInfo(program.time_zone))


def local_day_number(column: str, program: Program) -> tuple[str, list]:
    """SQL for the day of `column` in the programme's time zone, as days since 1970-01-01 (an integer)."""
    sql, params = connection.ops.datetime_cast_date_sql(column, (), program.time_zone)
    if connection.vendor == "postgresql":
        return f"(({sql}) - DATE '1970-01-01')", list(params)
    return f"CAST(julianday({sql}) - 2440587.5 AS INTEGER)", list(params)


def period_key(column: str, program: Program, period: str) -> tuple[str, list]:
    """SQL for the month or quarter of `column` in the programme's time zone, as year * 12 + month - 1 (a quarter
    is keyed by its first month), so that periods subtract."""
    sql, params = connection.ops.datetime_cast_date_sql(column, (), program.time_zone)
    if connection.vendor == "postgresql":
        year, month = f"EXTRACT(YEAR FROM {sql})", f"EXTRACT(MONTH FROM {sql})"
        params = list(params) * 2
    else:
        year, month = f"CAST(strftime('%%Y', {sql}) AS INTEGER)", f"CAST(strftime('%%m', {sql}) AS INTEGER)"
        params = list(params) * 2
    if period == "quarter":
        return f"(CAST({year} AS INTEGER) * 12 + ((CAST({month} AS INTEGER) - 1) / 3) * 3)", params
    return f"(CAST({year} AS INTEGER) * 12 + CAST({month} AS INTEGER) - 1)", params


def key_label(key: int, period: str) -> str:
    year, month0 = divmod(key, 12)
    return f"{year}Q{month0 // 3 + 1}" if period == "quarter" else f"{year}-{month0 + 1:02d}"


@dataclass
class Scope:
    """What a figure covers: one programme, a window of days, optionally some channels and one tier."""

    program: Program
    date_from: dt.date
    date_to: dt.date
    channel_ids: list[int] | None = None
    tier_code: str | None = None
    _program_channels: list[int] | None = field(default=None, repr=False)

    @property
    def start(self) -> dt.datetime:
        return day_start(self.program, self.date_from)

    @property
    def end(self) -> dt.datetime:
        return day_start(self.program, self.date_to + dt.timedelta(days=1))

    @property
    def channels(self) -> list[int]:
        """The channels whose orders count: the programme's, narrowed to the chosen ones."""
        if self._program_channels is None:
            self._program_channels = list(
                ChannelProgram.objects.filter(program=self.program).values_list("channel_id", flat=True)
            )
        if self.channel_ids is None:
            return self._program_channels
        return [pk for pk in self._program_channels if pk in set(self.channel_ids)]

    def shifted(self, days: int) -> "Scope":
        return Scope(
            program=self.program,
            date_from=self.date_from - dt.timedelta(days=days),
            date_to=self.date_to - dt.timedelta(days=days),
            channel_ids=self.channel_ids,
            tier_code=self.tier_code,
            _program_channels=self._program_channels,
        )
