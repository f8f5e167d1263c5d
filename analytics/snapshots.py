"""The nightly KPI snapshot: the KPI answer for the usual windows, kept so that they answer at once however many years
of orders a programme holds (over 10,000,000 orders a year's figures take seconds to compute; a snapshot is read in
milliseconds).

Each night, once the day before is over, the job stores for every programme the KPIs of the last 7, 30, 90 and 365
whole days ending with that day and of the same windows just before them (the dashboard's "previous period"), and
the dashboard's monthly series and cohorts of the twelve months up to that day.
A window and programme asked for without a channel or tier filter is read from its snapshot when there is one;
anything else is computed live. Loading order history into a programme drops its snapshots, loading members drops
every programme's, and the next night takes them again; other late changes (an order sent days after it happened)
show from the next night on, and the page and the API say when the figures were taken.
"""

import datetime as dt
import time

from django.db import transaction
from django.utils import timezone

from . import selectors
from .models import KpiSnapshot
from .sql import Scope

WINDOW_DAYS = (7, 30, 90, 365)
KEEP_DAYS = 40


def snapshot_windows(last_day: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The KPI windows kept for a night whose last whole day is `last_day`: each length ending that day, and before."""
    windows = []
    for days in WINDOW_DAYS:
        date_to = last_day
        for _period in range(2):
            windows.append((date_to - dt.timedelta(days=days - 1), date_to))
            date_to -= dt.timedelta(days=days)
    return windows


def chart_window(last_day: dt.date) -> tuple[dt.date, dt.date]:
    """The dashboard's charts and cohorts for a window ending `last_day`: the twelve months up to it."""
    year, month0 = divmod(last_day.year * 12 + last_day.month - 1 - 11, 12)
    return dt.date(year, month0 + 1, 1), last_day


def kpi_snapshots_take(*, program, last_day: dt.date) -> dict:
    """Compute and store the programme's answers: the KPIs of each window ending with `last_day` (and of the windows
    before them), the monthly series and the cohorts of the twelve months up to it; drop snapshots taken more than
    KEEP_DAYS days ago. Returns {"windows", "seconds"}."""
    started = time.monotonic()
    wanted = [(KpiSnapshot.Kind.KPIS, *window) for window in snapshot_windows(last_day)]
    wanted += [(kind, *chart_window(last_day)) for kind in KpiSnapshot.Kind if kind != KpiSnapshot.Kind.KPIS]
    taken = []
    for kind, date_from, date_to in wanted:
        window_started = time.monotonic()
        compute, _decode = selectors.SNAPSHOT_KINDS[kind]
        answer = compute(Scope(program=program, date_from=date_from, date_to=date_to))
        taken.append((kind, date_from, date_to, answer, time.monotonic() - window_started))
    now = timezone.now()
    with transaction.atomic():
        for kind, date_from, date_to, answer, seconds in taken:
            KpiSnapshot.objects.update_or_create(
                program=program,
                kind=kind,
                date_from=date_from,
                date_to=date_to,
                defaults={"figures": answer, "taken_at": now, "seconds": seconds},
            )
        KpiSnapshot.objects.filter(program=program, taken_at__lt=now - dt.timedelta(days=KEEP_DAYS)).delete()
    return {"windows": len(taken), "seconds": round(time.monotonic() - started, 2)}


def kpi_snapshots_drop(*, program_ids) -> int:
    """Forget the programmes' snapshots (their history changed); the next night takes them again."""
    deleted, _by_model = KpiSnapshot.objects.filter(program_id__in=program_ids).delete()
    return deleted
