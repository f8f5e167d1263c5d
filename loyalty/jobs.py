"""The daily jobs: pending points that became available, expiry, tier evaluation, birthday rewards.

Each job is a handful of set-based SQL statements over the whole programme (no loop over members), runs in one
transaction, and is recorded in `JobRun` (unique per programme, job and day): running a job twice for one day
changes nothing the second time. "As of day D" means up to the end of D in the programme's time zone.
Statements are written for PostgreSQL and SQLite alike (window functions, UPDATE ... FROM); on PostgreSQL the
accounts a job changes are locked first, in id order, so that earning never interleaves with it.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import sql_literal
from core.registry import Registry
from members.models import Member

from . import spend
from .ledger import repaid_sql
from .models import Coupon, JobRun, PointsLot, PointsTransaction, Program, Tier, TierChange

# Status and kind values as SQL literals, from the models' choices (constants of the code, never user input).
LOT_PENDING, LOT_AVAILABLE, LOT_SPENT, LOT_EXPIRED = (
    sql_literal(status)
    for status in (
        PointsLot.Status.PENDING,
        PointsLot.Status.AVAILABLE,
        PointsLot.Status.SPENT,
        PointsLot.Status.EXPIRED,
    )
)
EARN, EXPIRE = sql_literal(PointsTransaction.Kind.EARN), sql_literal(PointsTransaction.Kind.EXPIRE)
ROW_AVAILABLE = sql_literal(PointsTransaction.Status.AVAILABLE)
COUPON_ISSUED, COUPON_EXPIRED = sql_literal(Coupon.Status.ISSUED), sql_literal(Coupon.Status.EXPIRED)
MEMBER_ACTIVE = sql_literal(Member.Status.ACTIVE)
UPGRADE, DOWNGRADE, RETAINED = (
    sql_literal(reason)
    for reason in (TierChange.Reason.UPGRADE, TierChange.Reason.DOWNGRADE, TierChange.Reason.RETAINED)
)
ONE_STEP = sql_literal(Tier.Downgrade.ONE_STEP)

ORDER = [JobRun.Job.ACTIVATE, JobRun.Job.EXPIRE, JobRun.Job.TIERS, JobRun.Job.BIRTHDAY, JobRun.Job.BADGES]


def day_end(program: Program, as_of: dt.date) -> dt.datetime:
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=ZoneInfo(program.time_zone))


def _sql(cursor, statement, params=()):
    cursor.execute(statement, params)
    return cursor.rowcount


def _lock_accounts(cursor, selection_sql, params):
    """Lock the accounts a job is about to change, in id order (PostgreSQL; SQLite locks the whole file)."""
    if connection.vendor == "postgresql":
        cursor.execute(
            f"SELECT id FROM loyalty_account WHERE id IN ({selection_sql}) ORDER BY id FOR UPDATE",
            list(params),
        )


def _run(program: Program, job: str, as_of: dt.date, work) -> JobRun:
    now = timezone.now()
    with transaction.atomic():
        run, _created = JobRun.objects.get_or_create(
            program=program, job=job, as_of=as_of, defaults={"started_at": now}
        )
        run = JobRun.objects.select_for_update().get(pk=run.pk)
        if run.finished_at is not None:
            return run
        with connection.cursor() as cursor:
            counts = work(cursor, program, day_end(program, as_of), as_of)
        run.started_at, run.finished_at, run.counts = now, timezone.now(), counts
        run.save(update_fields=["started_at", "finished_at", "counts"])
    return run


# Higher apps' daily work (analytics: RFM scores, the CLV fit; campaigns: journeys, scheduled campaigns), run after
# loyalty's own jobs without loyalty importing them: an entry takes (program=, as_of=) and returns the JobRun rows it
# recorded through job_run_once.
daily_jobs = Registry("loyalty_daily_jobs")


def job_run_once(*, program: Program, job: str, as_of: dt.date, work) -> JobRun:
    """Run `work(cursor, program, moment, as_of)` once for this programme, job and day, recorded in JobRun."""
    return _run(program, job, as_of, work)


def jobs_run(*, program: Program, as_of: dt.date, jobs=None) -> list[JobRun]:
    runs = [_run(program, job, as_of, WORK[job]) for job in (jobs or ORDER)]
    if jobs is None:
        runs.extend(daily_jobs.collect(program=program, as_of=as_of))
    return runs


# --- activate pending points ------------------------------------------------------------------------------------


def _activate(cursor, program, moment, as_of):
    selection = (
        "SELECT l.account_id FROM loyalty_pointslot l JOIN loyalty_account a ON a.id = l.account_id "
        f"WHERE a.program_id = %s AND l.status = {LOT_PENDING} AND l.available_at < %s"
    )
    _lock_accounts(cursor, selection, [program.pk, moment])
    _sql(cursor, "DROP TABLE IF EXISTS job_due")
    # Each due lot with the account's balance before, and the running total per account (for balance_after).
    _sql(
        cursor,
        "CREATE TEMP TABLE job_due AS "
        "SELECT l.id AS lot_id, l.account_id, l.remaining AS points, l.reference, l.expires_at, "
        "a.balance AS balance_before, "
        "SUM(l.remaining) OVER (PARTITION BY l.account_id ORDER BY l.id) AS running "
        "FROM loyalty_pointslot l JOIN loyalty_account a ON a.id = l.account_id "
        f"WHERE a.program_id = %s AND l.status = {LOT_PENDING} AND l.available_at < %s AND l.remaining > 0",
        [program.pk, moment],
    )
    # A negative balance (debt) is repaid first: what a lot repays no longer remains in it. The balance before
    # this lot is the account's plus the lots before it in this run.
    repaid = repaid_sql("d.points", "(d.balance_before + d.running - d.points)")
    _sql(
        cursor,
        "UPDATE loyalty_pointslot SET "
        f"remaining = d.points - {repaid}, "
        f"status = CASE WHEN d.points - {repaid} > 0 THEN {LOT_AVAILABLE} ELSE {LOT_SPENT} END "
        "FROM job_due d WHERE loyalty_pointslot.id = d.lot_id",
    )
    now = timezone.now()
    lots = _sql(
        cursor,
        "INSERT INTO loyalty_pointstransaction (account_id, kind, points, balance_after, status, reference, reason, "
        "fingerprint, lot_id, expires_at, created_at) "
        f"SELECT d.account_id, {EARN}, d.points, d.balance_before + d.running, {ROW_AVAILABLE}, d.reference, %s, '', "
        "d.lot_id, d.expires_at, %s FROM job_due d ORDER BY d.account_id, d.lot_id",
        [_("Pending points became available"), now],
    )
    accounts = _sql(
        cursor,
        "UPDATE loyalty_account SET balance = balance + s.total, pending = pending - s.total, "
        "lifetime_earned = lifetime_earned + s.total, updated_at = %s "
        "FROM (SELECT account_id, SUM(points) AS total FROM job_due GROUP BY account_id) s "
        "WHERE loyalty_account.id = s.account_id",
        [now],
    )
    _sql(cursor, "DROP TABLE job_due")
    return {"lots": lots, "accounts": accounts}


# --- expiry -----------------------------------------------------------------------------------------------------


def _expire(cursor, program, moment, as_of):
    selection = (
        "SELECT l.account_id FROM loyalty_pointslot l JOIN loyalty_account a ON a.id = l.account_id "
        f"WHERE a.program_id = %s AND l.status = {LOT_AVAILABLE} AND l.remaining > 0 AND l.expires_at < %s"
    )
    _lock_accounts(cursor, selection, [program.pk, moment])
    _sql(cursor, "DROP TABLE IF EXISTS job_due")
    _sql(
        cursor,
        "CREATE TEMP TABLE job_due AS "
        "SELECT l.id AS lot_id, l.account_id, l.remaining AS points, l.reference, a.balance AS balance_before, "
        "SUM(l.remaining) OVER (PARTITION BY l.account_id ORDER BY l.expires_at, l.id) AS running "
        "FROM loyalty_pointslot l JOIN loyalty_account a ON a.id = l.account_id "
        f"WHERE a.program_id = %s AND l.status = {LOT_AVAILABLE} AND l.remaining > 0 AND l.expires_at < %s",
        [program.pk, moment],
    )
    now = timezone.now()
    lots = _sql(
        cursor,
        "INSERT INTO loyalty_pointstransaction (account_id, kind, points, balance_after, status, reference, reason, "
        "fingerprint, lot_id, created_at) "
        f"SELECT d.account_id, {EXPIRE}, -d.points, d.balance_before - d.running, {ROW_AVAILABLE}, d.reference, "
        "%s, '', d.lot_id, %s FROM job_due d ORDER BY d.account_id, d.running",
        [_("Points expired"), now],
    )
    _sql(
        cursor,
        f"UPDATE loyalty_pointslot SET remaining = 0, status = {LOT_EXPIRED} FROM job_due d "
        "WHERE loyalty_pointslot.id = d.lot_id",
    )
    accounts = _sql(
        cursor,
        "UPDATE loyalty_account SET balance = balance - s.total, updated_at = %s "
        "FROM (SELECT account_id, SUM(points) AS total FROM job_due GROUP BY account_id) s "
        "WHERE loyalty_account.id = s.account_id",
        [now],
    )
    cursor.execute("SELECT COALESCE(SUM(points), 0) FROM job_due")
    points = int(cursor.fetchone()[0])
    _sql(cursor, "DROP TABLE job_due")
    coupons = _sql(
        cursor,
        f"UPDATE loyalty_coupon SET status = {COUPON_EXPIRED} WHERE status = {COUPON_ISSUED} AND valid_until < %s "
        "AND template_id IN (SELECT id FROM loyalty_coupontemplate WHERE program_id = %s)",
        [moment, program.pk],
    )
    return {"lots": lots, "accounts": accounts, "points": points, "coupons": coupons}


# --- tier evaluation ---------------------------------------------------------------------------------------------


def _qualifying_sql(program, tier: Tier, moment):
    """(SQL, params) giving (member_id or account_id key, value) over the tiers' window ending at `moment`."""
    zone = ZoneInfo(program.time_zone)
    if tier.window == Tier.Window.CALENDAR_YEAR:
        end = dt.datetime(moment.astimezone(zone).year, 1, 1, tzinfo=zone)
        start = dt.datetime(end.year - 1, 1, 1, tzinfo=zone)  # reviewed on the last full calendar year
    else:
        end, start = moment, moment - dt.timedelta(days=tier.window_days)
    if tier.metric == Tier.Metric.POINTS:
        return (
            "SELECT acc.member_id, SUM(t.points) AS value FROM loyalty_pointstransaction t "
            "JOIN loyalty_account acc ON acc.id = t.account_id "
            "WHERE acc.program_id = %s AND t.kind = %s AND t.order_id IS NOT NULL "
            "AND t.created_at >= %s AND t.created_at < %s GROUP BY acc.member_id",
            [program.pk, PointsTransaction.Kind.EARN.value, start, end],
        )
    if tier.metric == Tier.Metric.ORDERS:
        return spend.members_orders_sql(), [program.pk, start, end]
    return spend.members_spend_sql(), [program.pk, start, end]


def _tiers(cursor, program, moment, as_of):
    tiers = list(program.tiers.order_by("rank"))
    if len(tiers) < 2:
        return {"upgraded": 0, "retained": 0, "downgraded": 0}
    windows = {(tier.metric, tier.window, tier.window_days) for tier in tiers[1:]}
    if len(windows) != 1:
        raise ValueError(_("All tiers of a programme above the entry tier must share one metric and window."))
    sample = tiers[1]
    value_sql, value_params = _qualifying_sql(program, sample, moment)
    if sample.window == Tier.Window.CALENDAR_YEAR:
        review_before = dt.datetime(moment.astimezone(ZoneInfo(program.time_zone)).year, 1, 1, tzinfo=moment.tzinfo)
    else:
        review_before = moment - dt.timedelta(days=sample.window_days)
    _sql(cursor, "DROP TABLE IF EXISTS job_tiers")
    _sql(
        cursor,
        "CREATE TEMP TABLE job_tiers AS "
        "SELECT a.id AS account_id, a.tier_id, t.rank AS current_rank, t.retention_threshold, t.downgrade, "
        "COALESCE(v.value, 0) AS value, "
        "(SELECT MAX(q.rank) FROM loyalty_tier q WHERE q.program_id = a.program_id "
        " AND q.upgrade_threshold <= COALESCE(v.value, 0)) AS qualifying_rank, "
        "(a.tier_since <= %s AND t.rank > 0 AND (a.tier_hold_until IS NULL OR a.tier_hold_until < %s)) AS review "
        f"FROM loyalty_account a JOIN loyalty_tier t ON t.id = a.tier_id LEFT JOIN ({value_sql}) v "
        "ON v.member_id = a.member_id WHERE a.program_id = %s",
        [review_before, as_of, *value_params, program.pk],
    )
    # What happens to each account: upgrade at once when a higher tier is reached; at the review, retained when the
    # retention threshold is met, else down one tier or straight to the tier that qualifies.
    _sql(cursor, "DROP TABLE IF EXISTS job_moves")
    _sql(
        cursor,
        "CREATE TEMP TABLE job_moves AS SELECT account_id, tier_id, value, "
        "CASE WHEN qualifying_rank > current_rank THEN qualifying_rank "
        f"WHEN review AND value < retention_threshold AND downgrade = {ONE_STEP} THEN current_rank - 1 "
        "WHEN review AND value < retention_threshold THEN qualifying_rank "
        "ELSE current_rank END AS new_rank, "
        f"CASE WHEN qualifying_rank > current_rank THEN {UPGRADE} "
        f"WHEN review AND value < retention_threshold THEN {DOWNGRADE} "
        f"WHEN review THEN {RETAINED} END AS reason "
        "FROM job_tiers WHERE qualifying_rank > current_rank OR review",
    )
    _lock_accounts(cursor, "SELECT account_id FROM job_moves", [])
    now = timezone.now()
    # Only accounts still in the tier they were evaluated in move (an order may have upgraded one meanwhile).
    _sql(
        cursor,
        "INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, note, metric_value, "
        "created_at) SELECT m.account_id, m.tier_id, nt.id, m.reason, '', m.value, %s FROM job_moves m "
        "JOIN loyalty_account a ON a.id = m.account_id AND a.tier_id = m.tier_id "
        "JOIN loyalty_tier nt ON nt.program_id = %s AND nt.rank = m.new_rank ORDER BY m.account_id",
        [moment, program.pk],
    )
    _sql(
        cursor,
        "UPDATE loyalty_account SET tier_id = nt.id, tier_since = %s, updated_at = %s "
        "FROM job_moves m JOIN loyalty_tier nt ON nt.program_id = %s AND nt.rank = m.new_rank "
        "WHERE loyalty_account.id = m.account_id AND loyalty_account.tier_id = m.tier_id",
        [moment, now, program.pk],
    )
    cursor.execute("SELECT reason, COUNT(*) FROM job_moves GROUP BY reason")
    found = dict(cursor.fetchall())
    _sql(cursor, "DROP TABLE job_moves")
    _sql(cursor, "DROP TABLE job_tiers")
    return {
        "upgraded": found.get("upgrade", 0),
        "retained": found.get("retained", 0),
        "downgraded": found.get("downgrade", 0),
    }


# --- birthday rewards --------------------------------------------------------------------------------------------


def _birthday(cursor, program, moment, as_of):
    """Members whose birthday month it is (or whose birthday it is, as the programme says) get their tier's birthday
    points, once a year."""
    month = f"{as_of.month:02d}"
    reference = f"birthday:{as_of.year}"
    on_the_day = program.birthday_on == "day"
    if connection.vendor == "postgresql":
        birthday_month = "EXTRACT(MONTH FROM m.birthday) = %s"
        month_param = as_of.month
        if on_the_day:
            birthday_month += f" AND EXTRACT(DAY FROM m.birthday) = {int(as_of.day)}"
    else:
        birthday_month = "strftime('%%m', m.birthday) = %s"
        month_param = month
        if on_the_day:
            birthday_month += f" AND strftime('%%d', m.birthday) = '{as_of.day:02d}'"
    _sql(cursor, "DROP TABLE IF EXISTS job_due")
    _sql(
        cursor,
        "CREATE TEMP TABLE job_due AS SELECT a.id AS account_id, t.birthday_points AS points "
        "FROM loyalty_account a JOIN loyalty_tier t ON t.id = a.tier_id JOIN members_member m ON m.id = a.member_id "
        f"WHERE a.program_id = %s AND t.birthday_points > 0 AND m.status = {MEMBER_ACTIVE} AND {birthday_month} "
        "AND NOT EXISTS (SELECT 1 FROM loyalty_pointslot l WHERE l.account_id = a.id AND l.reference = %s)",
        [program.pk, month_param, reference],
    )
    _lock_accounts(cursor, "SELECT account_id FROM job_due", [])
    now = timezone.now()
    from .rules import expiry_for

    expires = expiry_for(program, now)
    # A negative balance is repaid first, as with any earning.
    remaining = f"d.points - {repaid_sql('d.points', 'a.balance')}"
    _sql(
        cursor,
        "INSERT INTO loyalty_pointslot (account_id, points, remaining, status, available_at, expires_at, reference, "
        f"created_at) SELECT d.account_id, d.points, {remaining}, {LOT_AVAILABLE}, %s, %s, %s, %s "
        "FROM job_due d JOIN loyalty_account a ON a.id = d.account_id",
        [now, expires, reference, now],
    )
    granted = _sql(
        cursor,
        "INSERT INTO loyalty_pointstransaction (account_id, kind, points, balance_after, status, reference, reason, "
        "idempotency_key, fingerprint, lot_id, expires_at, created_at) "
        f"SELECT d.account_id, {EARN}, d.points, a.balance + d.points, {ROW_AVAILABLE}, %s, %s, "
        "'birthday:' || %s || ':' || d.account_id || ':' || %s, '', l.id, %s, %s "
        "FROM job_due d JOIN loyalty_account a ON a.id = d.account_id "
        "JOIN loyalty_pointslot l ON l.account_id = d.account_id AND l.reference = %s",
        [reference, _("Birthday reward"), str(program.pk), str(as_of.year), expires, now, reference],
    )
    _sql(
        cursor,
        "UPDATE loyalty_account SET balance = balance + d.points, lifetime_earned = lifetime_earned + d.points, "
        "updated_at = %s FROM job_due d WHERE loyalty_account.id = d.account_id",
        [now],
    )
    _sql(cursor, "DROP TABLE job_due")
    return {"granted": granted}


def _badges(cursor, program, moment, as_of):
    from .badges import badges_daily

    return badges_daily(program=program, as_of=as_of)


WORK = {
    JobRun.Job.ACTIVATE: _activate,
    JobRun.Job.EXPIRE: _expire,
    JobRun.Job.TIERS: _tiers,
    JobRun.Job.BIRTHDAY: _birthday,
    JobRun.Job.BADGES: _badges,
}
