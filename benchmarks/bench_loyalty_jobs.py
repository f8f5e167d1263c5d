"""Tier evaluation over 1,000,000 accounts and expiry over 1,000,000 lots, each by the daily job and by one
hand-written set-based SQL statement doing the same work (run first, then rolled back). PostgreSQL only."""

import datetime as dt
import time

ACCOUNTS = 1_000_000

HAND_TIERS = """
UPDATE loyalty_account a SET tier_id = (
    SELECT t.id FROM loyalty_tier t WHERE t.program_id = a.program_id AND t.upgrade_threshold <= COALESCE(v.value, 0)
    ORDER BY t.rank DESC LIMIT 1), tier_since = now()
FROM (SELECT a2.id, s.value FROM loyalty_account a2 LEFT JOIN (
        SELECT o.member_id, SUM(o.amount - o.refunded_amount) AS value FROM members_order o
        JOIN loyalty_channelprogram cp ON cp.channel_id = o.channel_id
        WHERE cp.program_id = %(program)s AND o.occurred_at >= %(start)s AND o.occurred_at < %(end)s
        GROUP BY o.member_id) s ON s.member_id = a2.member_id
      WHERE a2.program_id = %(program)s) v
WHERE a.id = v.id
"""

HAND_EXPIRE = """
WITH due AS (
    UPDATE loyalty_pointslot l SET remaining = 0, status = 'expired'
    FROM loyalty_account a
    WHERE a.id = l.account_id AND a.program_id = %(program)s AND l.status = 'available' AND l.remaining > 0
      AND l.expires_at < %(end)s
    RETURNING l.id, l.account_id, l.points - 0 AS points),
ledger AS (
    INSERT INTO loyalty_pointstransaction (account_id, kind, points, balance_after, status, reference, reason,
        fingerprint, lot_id, created_at)
    SELECT d.account_id, 'expire', -d.points, 0, 'available', '', 'expired', '', d.id, now() FROM due d)
UPDATE loyalty_account a SET balance = a.balance - s.total
FROM (SELECT account_id, SUM(points) AS total FROM due GROUP BY account_id) s WHERE a.id = s.account_id
"""


def _fill(program, channel, count, as_of):
    from django.db import connection

    end = dt.datetime.combine(as_of, dt.time.min, tzinfo=dt.UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM loyalty_account")
        if cursor.fetchone()[0] >= count:
            return
        tiers = list(program.tiers.order_by("rank").values_list("id", flat=True))
        cursor.execute(
            "INSERT INTO members_member (member_no, name, phone, email, gender, city, country, language, status, "
            "joined_at, imported_spend, created_at, updated_at) "
            "SELECT 'J' || lpad(n::text, 9, '0'), 'm' || n, '+86137' || lpad(n::text, 8, '0'), NULL, 'unknown', '', "
            "'CN', '', 'active', now(), 0, now(), now() FROM generate_series(1, %s) AS n",
            [count],
        )
        # Tiers spread over the four, held since two years ago (so every account is due for its review).
        cursor.execute(
            "INSERT INTO loyalty_account (member_id, program_id, balance, pending, lifetime_earned, lifetime_spent, "
            "tier_id, tier_since, created_at, updated_at) "
            "SELECT m.id, %s, 100, 0, 100, 0, (%s::bigint[])[1 + (m.id %% 4)], %s, now(), now() FROM members_member m",
            [program.pk, tiers, end - dt.timedelta(days=730)],
        )
        # One order each over the last year, amounts spread across the thresholds.
        cursor.execute(
            "INSERT INTO members_order (channel_id, order_id, member_id, store, amount, refunded_amount, currency, "
            "occurred_at, status, fingerprint, created_at) "
            "SELECT %s, 'J' || m.id, m.id, '', (m.id * 7919) %% 30000 + 1, 0, 'CNY', "
            "%s - ((m.id %% 360) || ' days')::interval, 'placed', '', now() FROM members_member m",
            [channel.pk, end],
        )
        # One lot of 100 points each, all expired by the day of the run.
        cursor.execute(
            "INSERT INTO loyalty_pointslot (account_id, points, remaining, status, available_at, expires_at, "
            "reference, created_at) SELECT a.id, 100, 100, 'available', %s, %s, 'bench', now() "
            "FROM loyalty_account a",
            [end - dt.timedelta(days=400), end - dt.timedelta(days=35)],
        )
        cursor.execute("ANALYZE")


def _timed_rolled_back(sql, params):
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(sql, params)
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


def run(context):
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    from loyalty import jobs
    from loyalty.demo import demo_program
    from members import services

    count = max(1000, int(ACCOUNTS * context.scale))
    channel = services.channel_get_or_create(code="bench-jobs", name="Bench jobs", kind="pos")
    program = demo_program()
    as_of = dt.date(2026, 11, 22)
    _fill(program, channel, count, as_of)
    end = jobs.day_end(program, as_of)
    params = {"program": program.pk, "start": end - dt.timedelta(days=365), "end": end}

    for name, job, hand_sql in (("tier_evaluation_job", "tiers", HAND_TIERS), ("expiry_job", "expire", HAND_EXPIRE)):
        hand = _timed_rolled_back(hand_sql, params)
        started = time.perf_counter()
        run_ = jobs.jobs_run(program=program, as_of=as_of, jobs=[job])[0]
        seconds = time.perf_counter() - started
        yield context.result(
            name,
            count,
            seconds,
            hand_written_sql_seconds=round(hand, 3),
            ratio=round(seconds / hand, 2),
            target_ratio=3,
            counts=run_.counts,
        )
