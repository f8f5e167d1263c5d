"""The nightly KPI snapshot: the KPI answer for the usual windows, kept so that they answer at once however many years
of orders a programme holds (over 10,000,000 orders a year's figures take seconds to compute; a snapshot is read in
milliseconds).

Each night, once the day before is over, the job stores for every programme the windows of the last 7, 30, 90 and
365 whole days ending with that day, and the same windows just before them (the dashboard's "previous period").
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
    """The windows kept for a night whose last whole day is `last_day`: each length ending that day, and before."""
    windows = []
    for days in WINDOW_DAYS:
        date_to = last_day
        for _period in range(2):
            windows.append((date_to - dt.timedelta(days=days - 1), date_to))
            date_to -= dt.timedelta(days=days)
    return windows


def kpi_snapshots_take(*, program, last_day: dt.date) -> dict:
    """Compute and store the programme's KPI answer for each window ending with `last_day` (and the windows before
    them); drop snapshots taken more than KEEP_DAYS days ago. Returns {"windows", "seconds"}."""
    started = time.monotonic()
    taken = []
    for date_from, date_to in snapshot_windows(last_day):
        window_started = time.monotonic()
        figures = selectors.kpis(Scope(program=program, date_from=date_from, date_to=date_to))
        taken.append((date_from, date_to, figures, time.monotonic() - window_started))
    now = timezone.now()
    with transaction.atomic():
        for date_from, date_to, figures, seconds in taken:
            KpiSnapshot.objects.update_or_create(
                program=program,
                date_from=date_from,
                date_to=date_to,
                defaults={"figures": figures, "taken_at": now, "seconds": seconds},
            )
        KpiSnapshot.objects.filter(program=program, taken_at__lt=now - dt.timedelta(days=KEEP_DAYS)).delete()
    return {"windows": len(taken), "seconds": round(time.monotonic() - started, 2)}


def kpi_snapshots_drop(*, program_ids) -> int:
    """Forget the programmes' snapshots (their history changed); the next night takes them again."""
    deleted, _by_model = KpiSnapshot.objects.filter(program_id__in=program_ids).delete()
    return deleted
