"""RFM scores: one SQL statement scores every member of a programme with an order, as of a day.

R = days from the last order's day to `as_of` (days in the programme's time zone), scored by [d5, d4, d3, d2];
F = orders and M = their amounts within the window, scored by [f2..f5] and [m2..m5] (API.md § Analytics).
"""

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from members.normalize import PLAUSIBLE_YEARS

from .models import RfmThresholds
from .sql import day_start, local_day_number


def _scores_select(*, program, as_of: dt.date, thresholds: RfmThresholds) -> tuple[str, list]:
    """SELECT member_id, recency_days, frequency, monetary, r, f, m over the programme's members with an order."""
    end = day_start(program, as_of + dt.timedelta(days=1))
    day_sql, day_params = local_day_number("o.occurred_at", program)
    as_of_number = (as_of - dt.date(1970, 1, 1)).days
    if thresholds.window_days:
        # A window reaching back before the first plausible year counts every order (and stays in the calendar).
        back = min(thresholds.window_days - 1, (as_of - dt.date(PLAUSIBLE_YEARS[0], 1, 1)).days)
        since = day_start(program, as_of - dt.timedelta(days=max(back, 0)))
        in_window, window_params = "o.occurred_at >= %s", [since]
    else:
        in_window, window_params = "1 = 1", []
    d5, d4, d3, d2 = thresholds.recency_days
    f2, f3, f4, f5 = thresholds.frequency_orders
    m2, m3, m4, m5 = thresholds.monetary_amounts
    inner = (
        f"SELECT o.member_id, %s - MAX({day_sql}) AS recency_days, "  # noqa: S608 (fragments are ours)
        f"SUM(CASE WHEN {in_window} THEN 1 ELSE 0 END) AS frequency, "
        f"COALESCE(SUM(CASE WHEN {in_window} THEN o.amount ELSE 0 END), 0) AS monetary "
        "FROM members_order o JOIN loyalty_channelprogram cp ON cp.channel_id = o.channel_id "
        "WHERE cp.program_id = %s AND o.occurred_at < %s GROUP BY o.member_id"
    )
    inner_params = [as_of_number, *day_params, *window_params, *window_params, program.pk, end]
    sql = (
        "SELECT s.member_id, s.recency_days, s.frequency, s.monetary, "  # noqa: S608
        "CASE WHEN s.recency_days <= %s THEN 5 WHEN s.recency_days <= %s THEN 4 "
        "WHEN s.recency_days <= %s THEN 3 WHEN s.recency_days <= %s THEN 2 ELSE 1 END AS r, "
        "CASE WHEN s.frequency >= %s THEN 5 WHEN s.frequency >= %s THEN 4 "
        "WHEN s.frequency >= %s THEN 3 WHEN s.frequency >= %s THEN 2 ELSE 1 END AS f, "
        "CASE WHEN s.monetary >= %s THEN 5 WHEN s.monetary >= %s THEN 4 "
        "WHEN s.monetary >= %s THEN 3 WHEN s.monetary >= %s THEN 2 ELSE 1 END AS m "
        f"FROM ({inner}) s WHERE 1 = 1"
    )
    params = [d5, d4, d3, d2, f5, f4, f3, f2, m5, m4, m3, m2, *inner_params]
    return sql, params


def rfm_score_counts(*, program, as_of: dt.date, thresholds: RfmThresholds) -> list[tuple]:
    """[(r, f, m, members)] as of a day, nothing stored."""
    select, params = _scores_select(program=program, as_of=as_of, thresholds=thresholds)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT r, f, m, COUNT(*) FROM ({select}) x GROUP BY r, f, m", params)  # noqa: S608
        return list(cursor.fetchall())


def rfm_scores_compute(*, program, as_of: dt.date, thresholds: RfmThresholds | None = None) -> dict:
    """Score every member of the programme with an order up to `as_of` and store it on their MemberScore, in one
    INSERT … SELECT … ON CONFLICT statement; members without an order by then lose a score left from a later day."""
    from .selectors import rfm_thresholds

    with transaction.atomic():
        _lock_scores(program)  # the thresholds read after the scoring before ends
        return _scores_compute(program=program, as_of=as_of, thresholds=thresholds or rfm_thresholds(program))


def _lock_scores(program):
    """One scoring of a programme at a time (the nightly job, a re-score after staff changed the thresholds): a lock
    held to the end of the transaction. SQLite runs one writer at a time anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('analytics_rfm'), %s)", [program.pk])


def _scores_compute(*, program, as_of: dt.date, thresholds: RfmThresholds) -> dict:
    select, params = _scores_select(program=program, as_of=as_of, thresholds=thresholds)
    concat = "CAST(x.r AS TEXT) || CAST(x.f AS TEXT) || CAST(x.m AS TEXT)"
    sql = (
        "INSERT INTO analytics_memberscore (member_id, program_id, rfm_as_of, recency_days, frequency, monetary, "  # noqa: S608
        "r, f, m, rfm) "
        f"SELECT x.member_id, %s, %s, x.recency_days, x.frequency, x.monetary, x.r, x.f, x.m, {concat} "
        f"FROM ({select}) x WHERE 1 = 1 "
        "ON CONFLICT (member_id, program_id) DO UPDATE SET rfm_as_of = excluded.rfm_as_of, "
        "recency_days = excluded.recency_days, frequency = excluded.frequency, monetary = excluded.monetary, "
        "r = excluded.r, f = excluded.f, m = excluded.m, rfm = excluded.rfm"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [program.pk, as_of, *params])
        scored = cursor.rowcount
        cursor.execute(
            "UPDATE analytics_memberscore SET rfm_as_of = NULL, recency_days = NULL, frequency = NULL, "
            "monetary = NULL, r = NULL, f = NULL, m = NULL, rfm = '' "
            "WHERE program_id = %s AND rfm_as_of IS NOT NULL AND rfm_as_of <> %s",
            [program.pk, as_of],
        )
        cleared = cursor.rowcount
        # Unless staff changed them meanwhile (a save clears scored_at), the stored scores are theirs now.
        if thresholds.pk is not None:
            RfmThresholds.objects.filter(pk=thresholds.pk, updated_at=thresholds.updated_at).update(
                scored_at=timezone.now()
            )
    return {"scored": scored, "cleared": cleared}


def rfm_thresholds_save(thresholds: RfmThresholds) -> RfmThresholds:
    """Save staff's thresholds; the stored scores are computed again with them after the commit (a Celery job: over
    a million members it takes seconds). Until then the counts are computed on the fly."""
    from .tasks import rfm_rescore

    thresholds.full_clean()
    thresholds.save()
    program_id = thresholds.program_id
    transaction.on_commit(lambda: rfm_rescore.delay(program_id))
    return thresholds


def rfm_scores_recompute(*, program) -> dict:
    """The stored scores again, for the day they are of (today when there are none), with the current thresholds."""
    from .selectors import rfm_stored_day

    with transaction.atomic():
        _lock_scores(program)  # a nightly scoring under way ends first: its day is then the stored one
        return rfm_scores_compute(program=program, as_of=rfm_stored_day(program) or timezone.localdate())
