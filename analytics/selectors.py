"""Every analytics figure in one place, each with its formula and window (the words of API.md § Analytics).

Common rules:
- A programme's orders are the orders placed in its channels; its members are the members holding an account in it.
- A window is `from`..`to` inclusive, in days of the programme's time zone (see `sql.Scope`).
- Amounts are the orders' amounts; refunds are reported apart (`refunds`), never netted out of `revenue`.
- An order of amount 0 (a fully discounted order, a free gift) is an order: it counts in `orders` and makes its
  member a purchasing member.
- Ratios are Decimals with four places, money with two; a ratio over nothing is 0.
- Optional filters narrow every figure: `channel_ids` (orders and events in those channels, members who joined
  through them) and `tier_code` (members whose account stands in that tier today).
"""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from core.db import jit_off
from loyalty.models import Account, PointsTransaction, Tier, TierChange
from members.models import Order, Refund

from .models import ClvFit, KpiSnapshot, MemberScore, RfmThresholds
from .sql import Scope, day_start, key_label, period_key

FOUR = Decimal("0.0001")
TWO = Decimal("0.01")
ACTIVE_DAYS = 30


def ratio(numerator, denominator, places=FOUR) -> Decimal:
    if not denominator:
        return Decimal(0).quantize(places)
    return (Decimal(numerator) / Decimal(denominator)).quantize(places, rounding=ROUND_HALF_UP)


def money(value) -> Decimal:
    return Decimal(value or 0).quantize(TWO, rounding=ROUND_HALF_UP)


# --- members ----------------------------------------------------------------------------------------------------


def _accounts(scope: Scope):
    accounts = Account.objects.filter(program=scope.program)
    if scope.tier_code:
        accounts = accounts.filter(tier__code=scope.tier_code)
    if scope.channel_ids is not None:
        accounts = accounts.filter(member__join_channel_id__in=scope.channels)
    return accounts


def members_total(scope: Scope) -> int:
    """Members of the programme (holding an account in it) who had joined by the end of `to`."""
    return _accounts(scope).filter(member__joined_at__lt=scope.end).count()


def members_new(scope: Scope) -> int:
    """Members of the programme whose `joined_at` falls within the window."""
    return _accounts(scope).filter(member__joined_at__gte=scope.start, member__joined_at__lt=scope.end).count()


def active_members(scope: Scope, *, days: int = ACTIVE_DAYS) -> int:
    """Members of the programme with an order or an event in its channels within the `days` days ending with `to`."""
    since = day_start(scope.program, scope.date_to - dt.timedelta(days=days - 1))
    channels = scope.channels or [0]
    marks = ", ".join(["%s"] * len(channels))
    window = [*channels, since, scope.end]
    # One hashed set of the active members (a UNION), then joined to the accounts: an OR of two IN-subqueries
    # makes PostgreSQL probe the orders once per account when the sets outgrow work_mem.
    accounts_sql, accounts_params = _accounts(scope).values("member_id").query.sql_with_params()
    sql = (
        "SELECT COUNT(*) FROM ("  # noqa: S608 (fragments are ours, values are parameters)
        f"SELECT member_id FROM members_order WHERE channel_id IN ({marks}) AND occurred_at >= %s AND occurred_at < %s "
        f"UNION SELECT member_id FROM members_event WHERE channel_id IN ({marks}) AND occurred_at >= %s "
        f"AND occurred_at < %s) active WHERE active.member_id IN ({accounts_sql})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*window, *window, *accounts_params])
        return cursor.fetchone()[0]


# --- orders -----------------------------------------------------------------------------------------------------


def orders_in(scope: Scope):
    """The programme's orders placed within the window (in the chosen channels, by members of the chosen tier)."""
    orders = Order.objects.filter(
        channel_id__in=scope.channels, occurred_at__gte=scope.start, occurred_at__lt=scope.end
    )
    if scope.tier_code:
        orders = orders.filter(member_id__in=_accounts(scope).values("member_id"))
    return orders


def order_figures(scope: Scope) -> dict:
    """One pass over the window's orders:
    - `orders`: how many orders; `revenue`: the sum of their amounts;
    - `purchasing_members`: members with at least one order; `repeat_buyers`: those with 2 or more;
    - `aov` = revenue / orders; `purchase_frequency` = orders / purchasing_members;
    - `repeat_purchase_rate` = repeat_buyers / purchasing_members;
    - `revenue_per_purchasing_member` = revenue / purchasing_members."""
    per_member = orders_in(scope).order_by().values("member_id").annotate(n=Count("id"), total=Sum("amount"))
    totals = per_member.aggregate(
        members=Count("member_id"), orders=Sum("n"), revenue=Sum("total"), repeat=Count("member_id", filter=Q(n__gte=2))
    )
    orders, buyers = totals["orders"] or 0, totals["members"] or 0
    revenue = money(totals["revenue"])
    return {
        "purchasing_members": buyers,
        "orders": orders,
        "revenue": revenue,
        "aov": ratio(revenue, orders, TWO),
        "purchase_frequency": ratio(orders, buyers),
        "repeat_purchase_rate": ratio(totals["repeat"] or 0, buyers),
        "revenue_per_purchasing_member": ratio(revenue, buyers, TWO),
    }


def refunds(scope: Scope) -> Decimal:
    """The amounts refunded within the window (by the refund's date) on the programme's orders."""
    found = Refund.objects.filter(
        order__channel_id__in=scope.channels, created_at__gte=scope.start, created_at__lt=scope.end
    )
    if scope.tier_code:
        found = found.filter(order__member_id__in=_accounts(scope).values("member_id"))
    return money(found.aggregate(total=Sum("amount"))["total"])


# --- points -----------------------------------------------------------------------------------------------------


def _ledger(scope: Scope):
    rows = PointsTransaction.objects.filter(account__program=scope.program)
    if scope.tier_code or scope.channel_ids is not None:
        rows = rows.filter(account__in=_accounts(scope))
    return rows


def points_figures(scope: Scope) -> dict:
    """Points moved within the window (by the ledger row's time):
    - `points_issued`: points that became spendable: earnings with status available (pending points count on the
      day they become available, so never twice) plus positive adjustments; opening balances are not issued;
    - `points_redeemed`: points spent on rewards; `points_expired`: points that expired;
    - `redemption_rate` = redeemed / issued; `breakage` = expired / issued."""
    kind = PointsTransaction.Kind
    totals = (
        _ledger(scope)
        .filter(created_at__gte=scope.start, created_at__lt=scope.end, status="available")
        .aggregate(
            earned=Sum("points", filter=Q(kind=kind.EARN) | Q(kind=kind.ADJUST, points__gt=0)),
            redeemed=Sum("points", filter=Q(kind=kind.REDEEM)),
            expired=Sum("points", filter=Q(kind=kind.EXPIRE)),
        )
    )
    issued, redeemed, expired = totals["earned"] or 0, -(totals["redeemed"] or 0), -(totals["expired"] or 0)
    return {
        "points_issued": issued,
        "points_redeemed": redeemed,
        "points_expired": expired,
        "redemption_rate": ratio(redeemed, issued),
        "breakage": ratio(expired, issued),
    }


def points_liability(scope: Scope) -> int:
    """Outstanding points at the end of `to`: the balance of all the programme's accounts then (the sum of their
    available ledger rows; today's answer reads the accounts' balances, which equal that sum)."""
    if scope.end > timezone.now():
        return _accounts(scope).aggregate(total=Sum("balance"))["total"] or 0
    return (
        _ledger(scope).filter(status="available", created_at__lt=scope.end).aggregate(total=Sum("points"))["total"] or 0
    )


def points_liability_value(scope: Scope, points: int | None = None) -> Decimal:
    """Points liability in money: outstanding points × the programme's point value."""
    points = points_liability(scope) if points is None else points
    return money(Decimal(points) * scope.program.point_value)


# --- tiers ------------------------------------------------------------------------------------------------------


def tier_distribution(scope: Scope) -> dict:
    """{tier code: members} at the end of `to`, every tier of the programme listed (0 when empty), lowest first.
    Today: the accounts' tiers. Earlier: each account's latest tier change (its opening is one) before then."""
    tiers = list(Tier.objects.filter(program=scope.program).order_by("rank").values_list("pk", "code"))
    counts = dict.fromkeys((code for _pk, code in tiers), 0)
    code_of = dict(tiers)
    if scope.end > timezone.now():
        rows = _accounts(scope).filter(created_at__lt=scope.end).values("tier_id").annotate(n=Count("id"))
        for row in rows:
            counts[code_of[row["tier_id"]]] += row["n"]
        return counts
    latest = (
        TierChange.objects.filter(account__in=_accounts(scope), created_at__lt=scope.end)
        .order_by()
        .values("account_id")
        .annotate(last=Max("id"))
        .values("last")
    )
    for row in TierChange.objects.filter(id__in=latest).values("to_tier_id").annotate(n=Count("id")):
        counts[code_of[row["to_tier_id"]]] += row["n"]
    return counts


def tier_flow(scope: Scope) -> list[dict]:
    """Per month of the window: `up` = tier changes to a higher rank, `down` = to a lower rank (joins and
    retentions are not moves)."""
    key_sql, key_params = period_key("c.created_at", scope.program, "month")
    sql = (
        f"SELECT {key_sql} AS k, "  # noqa: S608 (fragments are ours, values are parameters)
        "SUM(CASE WHEN t.rank > f.rank THEN 1 ELSE 0 END), SUM(CASE WHEN t.rank < f.rank THEN 1 ELSE 0 END) "
        "FROM loyalty_tierchange c JOIN loyalty_account a ON a.id = c.account_id "
        "JOIN loyalty_tier t ON t.id = c.to_tier_id JOIN loyalty_tier f ON f.id = c.from_tier_id "
        "WHERE a.program_id = %s AND c.created_at >= %s AND c.created_at < %s GROUP BY 1 ORDER BY 1"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*key_params, scope.program.pk, scope.start, scope.end])
        return [{"month": key_label(int(k), "month"), "up": up or 0, "down": down or 0} for k, up, down in cursor]


# --- the KPI answer ---------------------------------------------------------------------------------------------


@jit_off()
def kpis(scope: Scope) -> dict:
    """The figures of `GET /analytics/kpis/` (API.md), plus `active_members`, `redemption_rate`, `breakage` and
    `points_liability_value` for the dashboard, computed now (see `kpis_answer` for the nightly snapshot)."""
    orders = order_figures(scope)
    points = points_figures(scope)
    liability = points_liability(scope)
    return {
        "members_total": members_total(scope),
        "members_new": members_new(scope),
        "active_members": active_members(scope),
        **orders,
        "refunds": refunds(scope),
        **points,
        "points_liability": liability,
        "points_liability_value": points_liability_value(scope, liability),
        "tier_distribution": tier_distribution(scope),
    }


# --- series over months (the dashboard's charts) ----------------------------------------------------------------


@jit_off()
def monthly_series(scope: Scope) -> list[dict]:
    """Per month of the window: members who joined, orders, revenue, points issued, redeemed and expired."""
    program = scope.program
    months: dict[int, dict] = {}

    def fill(sql, params, names):
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            for key, *values in cursor:
                row = months.setdefault(int(key), {})
                row.update(dict(zip(names, values, strict=True)))

    channels = scope.channels or [0]
    marks = ", ".join(["%s"] * len(channels))
    key_sql, key_params = period_key("o.occurred_at", program, "month")
    tier_sql, tier_params = "", []
    if scope.tier_code:
        tier_sql = (
            " AND o.member_id IN (SELECT a.member_id FROM loyalty_account a JOIN loyalty_tier t ON t.id = a.tier_id "
            "WHERE a.program_id = %s AND t.code = %s)"
        )
        tier_params = [program.pk, scope.tier_code]
    fill(
        f"SELECT {key_sql}, COUNT(*), SUM(o.amount) FROM members_order o "  # noqa: S608
        f"WHERE o.channel_id IN ({marks}) AND o.occurred_at >= %s AND o.occurred_at < %s{tier_sql} GROUP BY 1",
        [*key_params, *channels, scope.start, scope.end, *tier_params],
        ["orders", "revenue"],
    )
    key_sql, key_params = period_key("m.joined_at", program, "month")
    fill(
        f"SELECT {key_sql}, COUNT(*) FROM loyalty_account a JOIN members_member m ON m.id = a.member_id "  # noqa: S608
        "WHERE a.program_id = %s AND m.joined_at >= %s AND m.joined_at < %s GROUP BY 1",
        [*key_params, program.pk, scope.start, scope.end],
        ["members_new"],
    )
    key_sql, key_params = period_key("p.created_at", program, "month")
    fill(
        f"SELECT {key_sql}, "  # noqa: S608
        "SUM(CASE WHEN p.kind = 'earn' OR (p.kind = 'adjust' AND p.points > 0) THEN p.points ELSE 0 END), "
        "-SUM(CASE WHEN p.kind = 'redeem' THEN p.points ELSE 0 END), "
        "-SUM(CASE WHEN p.kind = 'expire' THEN p.points ELSE 0 END) "
        "FROM loyalty_pointstransaction p JOIN loyalty_account a ON a.id = p.account_id "
        "WHERE a.program_id = %s AND p.status = 'available' AND p.created_at >= %s AND p.created_at < %s GROUP BY 1",
        [*key_params, program.pk, scope.start, scope.end],
        ["points_issued", "points_redeemed", "points_expired"],
    )
    first = scope.date_from.year * 12 + scope.date_from.month - 1
    last = scope.date_to.year * 12 + scope.date_to.month - 1
    series = []
    for key in range(first, last + 1):
        row = months.get(key, {})
        series.append(
            {
                "month": key_label(key, "month"),
                "members_new": row.get("members_new") or 0,
                "orders": row.get("orders") or 0,
                "revenue": money(row.get("revenue")),
                "points_issued": int(row.get("points_issued") or 0),
                "points_redeemed": int(row.get("points_redeemed") or 0),
                "points_expired": int(row.get("points_expired") or 0),
            }
        )
    return series


# --- cohorts ----------------------------------------------------------------------------------------------------


@jit_off()
def cohorts(scope: Scope, *, period: str = "month", by: str = "first_order") -> dict:
    """Retention by cohort.

    `by="first_order"` (API.md): members grouped by the period (month or quarter, in the programme's time zone) of
    their first order in the programme, for first orders within the window; `active[k]` is the share of the cohort
    with an order in the cohort's period k (k = 0 is the cohort's own period, so it is 1 for every cohort), up to
    the period that holds `to`.
    `by="join"`: members of the programme grouped by the period they joined in, members who never bought included;
    `active[k]` is the share with an order in period k after joining."""
    program = scope.program
    channels = scope.channels or [0]
    marks = ", ".join(["%s"] * len(channels))
    orders_sql = f"SELECT member_id, occurred_at FROM members_order WHERE channel_id IN ({marks}) AND occurred_at < %s"  # noqa: S608
    orders_params = [*channels, scope.end]
    order_key, order_key_params = period_key("o.occurred_at", program, period)
    if by == "join":
        join_key, join_key_params = period_key("m.joined_at", program, period)
        cohort_sql = (
            f"SELECT a.member_id, {join_key} AS cohort FROM loyalty_account a "  # noqa: S608
            "JOIN members_member m ON m.id = a.member_id "
            "WHERE a.program_id = %s AND m.joined_at >= %s AND m.joined_at < %s"
        )
        cohort_params = [*join_key_params, program.pk, scope.start, scope.end]
    else:
        first_key, first_key_params = period_key("f.first_at", program, period)
        cohort_sql = (
            f"SELECT f.member_id, {first_key} AS cohort FROM "  # noqa: S608
            f"(SELECT member_id, MIN(occurred_at) AS first_at FROM ({orders_sql}) o0 GROUP BY member_id) f "
            "WHERE f.first_at >= %s"
        )
        cohort_params = [*first_key_params, *orders_params, scope.start]
    if scope.tier_code:
        cohort_sql = (
            f"SELECT c0.* FROM ({cohort_sql}) c0 JOIN loyalty_account ta ON ta.member_id = c0.member_id "  # noqa: S608
            "JOIN loyalty_tier tt ON tt.id = ta.tier_id WHERE ta.program_id = %s AND tt.code = %s"
        )
        cohort_params = [*cohort_params, program.pk, scope.tier_code]
    sizes_sql = f"SELECT cohort, COUNT(*) FROM ({cohort_sql}) c GROUP BY cohort"  # noqa: S608
    active_sql = (
        f"SELECT c.cohort, p.k, COUNT(*) FROM ({cohort_sql}) c JOIN "  # noqa: S608
        f"(SELECT DISTINCT o.member_id, {order_key} AS k FROM ({orders_sql}) o) p ON p.member_id = c.member_id "
        "WHERE p.k >= c.cohort GROUP BY c.cohort, p.k"
    )
    with connection.cursor() as cursor:
        cursor.execute(sizes_sql, cohort_params)
        sizes = {int(cohort): n for cohort, n in cursor}
        cursor.execute(active_sql, [*cohort_params, *order_key_params, *orders_params])
        active = {(int(cohort), int(k)): n for cohort, k, n in cursor}
    step = 3 if period == "quarter" else 1
    last_key = scope.date_to.year * 12 + scope.date_to.month - 1
    last_key -= last_key % 3 if period == "quarter" else 0
    result = []
    for cohort in sorted(sizes):
        size = sizes[cohort]
        shares = [ratio(active.get((cohort, key), 0), size) for key in range(cohort, last_key + 1, step)]
        result.append({"cohort": key_label(cohort, period), "members": size, "active": shares})
    return {"period": period, "cohorts": result}


# --- RFM and CLV reads ------------------------------------------------------------------------------------------


def rfm_thresholds(program) -> RfmThresholds:
    """The programme's thresholds; the defaults (unsaved) until staff set them."""
    found = RfmThresholds.objects.filter(program=program).first()
    return found or RfmThresholds(program=program, **RfmThresholds.DEFAULTS)


def rfm_stored_day(program) -> dt.date | None:
    """The day the programme's stored RFM scores are of (None before the first scoring)."""
    return MemberScore.objects.filter(program=program).exclude(rfm="").aggregate(day=Max("rfm_as_of"))["day"]


def rfm_counts(*, program, as_of: dt.date | None = None) -> dict:
    """`GET /analytics/rfm/`: members with an order by R, F and M score and by three-digit code, as of a day.
    The daily job's stored scores answer for their day; another day, or thresholds changed since the scores were
    stored, is scored on the fly by the same SQL."""
    from . import rfm

    thresholds = rfm_thresholds(program)
    stored = MemberScore.objects.filter(program=program).exclude(rfm="")
    latest = rfm_stored_day(program)
    if as_of is None:
        as_of = latest or timezone.localdate()
    # The stored scores answer only if they were computed with the thresholds as they are (or the defaults).
    current = thresholds.pk is None or thresholds.scored_at is not None
    if latest == as_of and current:
        rows = list(stored.filter(rfm_as_of=as_of).values_list("r", "f", "m").annotate(n=Count("id")).order_by())
    else:
        rows = rfm.rfm_score_counts(program=program, as_of=as_of, thresholds=thresholds)
    counts = {letter: {str(score): 0 for score in range(1, 6)} for letter in "rfm"}
    segments = {}
    for r, f, m, n in rows:
        counts["r"][str(r)] += n
        counts["f"][str(f)] += n
        counts["m"][str(m)] += n
        segments[f"{r}{f}{m}"] = segments.get(f"{r}{f}{m}", 0) + n
    return {
        "as_of": as_of,
        "thresholds": {
            "r": thresholds.recency_days,
            "f": thresholds.frequency_orders,
            "m": thresholds.monetary_amounts,
            "window_days": thresholds.window_days,
        },
        "counts": counts,
        "segments": dict(sorted(segments.items(), reverse=True)),
    }


def clv_latest_fit(program) -> ClvFit | None:
    """The model the members' CLV scores come from: the programme's latest fit that found parameters (an attempt with
    too few repeat buyers is kept, with its message, and leaves the scores as they were)."""
    return ClvFit.objects.filter(program=program, r__isnull=False).order_by("-id").first()


def clv_fit_of(score: MemberScore) -> ClvFit | None:
    """The fit that scored this member: the latest with parameters as of the score's day (a fit for an earlier day,
    run after, scores only the members who had bought by then)."""
    return (
        ClvFit.objects.filter(program_id=score.program_id, as_of=score.clv_as_of, r__isnull=False)
        .order_by("-id")
        .first()
    )


def member_score(*, member, program) -> MemberScore | None:
    return MemberScore.objects.filter(member=member, program=program).first()


def member_scores(*, member_ids, program) -> dict:
    return {score.member_id: score for score in MemberScore.objects.filter(member_id__in=member_ids, program=program)}


def members_at_risk(*, program, p_alive_below: float = 0.3, limit: int = 100):
    """Valuable members who may have lapsed: P(alive) below the threshold, by spend so far, highest first."""
    return (
        MemberScore.objects.filter(program=program, p_alive__lt=p_alive_below, x__gte=1)
        .select_related("member")
        .order_by("-value_so_far", "member_id")[:limit]
    )


def clv_distribution(*, program, buckets=(0, 100, 500, 1000, 2000, 5000, 10000)) -> list[dict]:
    """Members by CLV band (the latest scoring): [{"from", "to", "members"}], the last band open-ended."""
    edges = list(buckets)
    bands = []
    for index, low in enumerate(edges):
        high = edges[index + 1] if index + 1 < len(edges) else None
        if high is None:
            condition = Q(clv__gte=low)
        elif index == 0:
            condition = Q(clv__lt=high)
        else:
            condition = Q(clv__gte=low, clv__lt=high)
        bands.append((low, high, condition))
    totals = MemberScore.objects.filter(program=program, clv__isnull=False).aggregate(
        **{f"b{index}": Count("id", filter=condition) for index, (_low, _high, condition) in enumerate(bands)}
    )
    return [
        {"from": low, "to": high, "members": totals[f"b{index}"]} for index, (low, high, _condition) in enumerate(bands)
    ]


@jit_off()
def monthly_stock(scope: Scope) -> list[dict]:
    """Per month of the window, at the month's end (or at `to`): `members_total` (members of the programme who had
    joined) and `points_liability` (the balance of all its accounts: the sum of their available ledger rows)."""
    program = scope.program
    totals: dict[str, dict[int, int]] = {"members_total": {}, "points_liability": {}}
    before: dict[str, int] = {}
    queries = {
        "members_total": (
            "m.joined_at",
            "SELECT {key}, COUNT(*) FROM loyalty_account a JOIN members_member m ON m.id = a.member_id "
            "WHERE a.program_id = %s AND m.joined_at < %s GROUP BY 1",
        ),
        "points_liability": (
            "p.created_at",
            "SELECT {key}, SUM(p.points) FROM loyalty_pointstransaction p JOIN loyalty_account a "
            "ON a.id = p.account_id WHERE a.program_id = %s AND p.status = 'available' AND p.created_at < %s "
            "GROUP BY 1",
        ),
    }
    first = scope.date_from.year * 12 + scope.date_from.month - 1
    last = scope.date_to.year * 12 + scope.date_to.month - 1
    with connection.cursor() as cursor:
        for name, (column, sql) in queries.items():
            key_sql, key_params = period_key(column, program, "month")
            cursor.execute(sql.format(key=key_sql), [*key_params, program.pk, scope.end])
            for key, value in cursor:
                if int(key) < first:
                    before[name] = before.get(name, 0) + int(value or 0)
                else:
                    totals[name][int(key)] = int(value or 0)
    running = {name: before.get(name, 0) for name in totals}
    series = []
    for key in range(first, last + 1):
        for name in totals:
            running[name] += totals[name].get(key, 0)
        series.append({"month": key_label(key, "month"), **running})
    return series


# --- the nightly snapshot's answers (analytics.snapshots) -------------------------------------------------------

KPI_NAMES = {
    "members_total",
    "members_new",
    "active_members",
    "purchasing_members",
    "orders",
    "revenue",
    "aov",
    "purchase_frequency",
    "repeat_purchase_rate",
    "revenue_per_purchasing_member",
    "refunds",
    "points_issued",
    "points_redeemed",
    "points_expired",
    "redemption_rate",
    "breakage",
    "points_liability",
    "points_liability_value",
    "tier_distribution",
}
KPI_DECIMALS = {
    "revenue",
    "refunds",
    "aov",
    "purchase_frequency",
    "repeat_purchase_rate",
    "revenue_per_purchasing_member",
    "redemption_rate",
    "breakage",
    "points_liability_value",
}


def _decode_kpis(figures: dict) -> dict:
    if figures.keys() != KPI_NAMES:  # taken before a figure was added
        raise KeyError("figures")
    return {name: Decimal(value) if name in KPI_DECIMALS else value for name, value in figures.items()}


def _decode_monthly(rows: list) -> list:
    return [{**row, "revenue": Decimal(row["revenue"])} for row in rows]


def _decode_cohorts(data: dict) -> dict:
    return {
        "period": data["period"],
        "cohorts": [{**row, "active": [Decimal(share) for share in row["active"]]} for row in data["cohorts"]],
    }


# kind: (the answer computed now, the answer from its stored JSON)
SNAPSHOT_KINDS = {
    KpiSnapshot.Kind.KPIS: (kpis, _decode_kpis),
    KpiSnapshot.Kind.MONTHLY: (monthly_series, _decode_monthly),
    KpiSnapshot.Kind.STOCK: (monthly_stock, list),
    KpiSnapshot.Kind.COHORTS: (lambda scope: cohorts(scope, period="month"), _decode_cohorts),
    KpiSnapshot.Kind.JOIN_COHORTS: (lambda scope: cohorts(scope, period="month", by="join"), _decode_cohorts),
}


def kpi_snapshot(scope: Scope, kind: str = KpiSnapshot.Kind.KPIS) -> KpiSnapshot | None:
    """The nightly snapshot of exactly this programme, kind and window (views without a channel or tier filter)."""
    if scope.channel_ids is not None or scope.tier_code:
        return None
    return KpiSnapshot.objects.filter(
        program=scope.program, kind=kind, date_from=scope.date_from, date_to=scope.date_to
    ).first()


def snapshot_answer(kind: str, scope: Scope):
    """(answer, taken_at): the answer of `kind` (SNAPSHOT_KINDS) read from the window's nightly snapshot when there
    is one, with the time it was taken; else computed now, with None."""
    compute, decode = SNAPSHOT_KINDS[kind]
    snapshot = kpi_snapshot(scope, kind)
    if snapshot is not None:
        try:
            return decode(snapshot.figures), snapshot.taken_at
        except (KeyError, TypeError, ValueError, ArithmeticError):  # stored by an older version: computed again
            pass
    return compute(scope), None


def kpis_answer(scope: Scope) -> dict:
    """`kpis()` from the window's nightly snapshot when there is one, else computed now; `taken_at` is when the
    snapshot was taken, None for figures computed now."""
    figures, taken_at = snapshot_answer(KpiSnapshot.Kind.KPIS, scope)
    return {**figures, "taken_at": taken_at}
