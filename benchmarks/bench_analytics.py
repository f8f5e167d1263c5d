"""Analytics at scale (PostgreSQL only): 1,000,000 members and 10,000,000 orders over two years (times --scale).

- each KPI for a year computed live, and the whole `kpis()` answer; the nightly snapshot of the usual windows and the
  year's answer read from it (target: each answer under 2 s), and the dashboard's default page with the snapshot;
- RFM for every member by the service, side by side with one hand-written UPDATE … FROM (SELECT … GROUP BY …)
  doing the same scoring (target: at most 2×);
- the CLV fit and the scoring of every member, end to end (SQL summaries, fit, predictions, write), against
  scipy alone fitting the same summary arrays without our collapsing of identical rows (targets: under 60 s,
  at most 3×).
The data is generated set-based in SQL (generate_series); `--keepdb` keeps it between runs.
"""

import datetime as dt
import time

MEMBERS = 1_000_000
ORDERS = 10_000_000

HAND_RFM = """
UPDATE analytics_memberscore s SET rfm_as_of = %(as_of)s, recency_days = x.recency_days, frequency = x.frequency,
    monetary = x.monetary,
    r = CASE WHEN x.recency_days <= 30 THEN 5 WHEN x.recency_days <= 90 THEN 4 WHEN x.recency_days <= 180 THEN 3
             WHEN x.recency_days <= 365 THEN 2 ELSE 1 END,
    f = CASE WHEN x.frequency >= 8 THEN 5 WHEN x.frequency >= 5 THEN 4 WHEN x.frequency >= 3 THEN 3
             WHEN x.frequency >= 2 THEN 2 ELSE 1 END,
    m = CASE WHEN x.monetary >= 3000 THEN 5 WHEN x.monetary >= 1000 THEN 4 WHEN x.monetary >= 500 THEN 3
             WHEN x.monetary >= 200 THEN 2 ELSE 1 END
FROM (SELECT o.member_id,
             %(as_of)s::date - MAX((o.occurred_at AT TIME ZONE 'Asia/Shanghai')::date) AS recency_days,
             COUNT(*) FILTER (WHERE o.occurred_at >= %(since)s) AS frequency,
             COALESCE(SUM(o.amount) FILTER (WHERE o.occurred_at >= %(since)s), 0) AS monetary
      FROM members_order o JOIN loyalty_channelprogram cp ON cp.channel_id = o.channel_id
      WHERE cp.program_id = %(program)s AND o.occurred_at < %(end)s GROUP BY o.member_id) x
WHERE s.member_id = x.member_id AND s.program_id = %(program)s
"""


def _fill(program, channels, members, orders, end):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM members_order")
        if cursor.fetchone()[0] >= orders:
            return None
        started = time.perf_counter()
        tiers = list(program.tiers.order_by("rank").values_list("id", flat=True))
        cursor.execute(
            "INSERT INTO members_member (member_no, name, phone, email, gender, city, country, language, status, "
            "joined_at, imported_spend, created_at, updated_at) "
            "SELECT 'A' || lpad(n::text, 9, '0'), 'm' || n, '+86136' || lpad(n::text, 8, '0'), NULL, 'unknown', '', "
            "'CN', '', 'active', %s - random() * interval '1000 days', 0, now(), now() "
            "FROM generate_series(1, %s) AS n",
            [end, members],
        )
        cursor.execute(
            "INSERT INTO loyalty_account (member_id, program_id, balance, pending, lifetime_earned, lifetime_spent, "
            "tier_id, tier_since, created_at, updated_at) "
            "SELECT m.id, %s, (m.id * 7919) %% 3000, 0, 3000, 0, (%s::bigint[])[1 + (m.id %% 7 / 2)], now(), now(), "
            "now() FROM members_member m",
            [program.pk, tiers],
        )
        cursor.execute("SELECT MIN(id), MAX(id) FROM members_member")
        low, high = cursor.fetchone()
        # Skewed buyers (random()^2: a few buy often, most rarely), two years of orders, amounts 10.00 .. 1,000.00.
        cursor.execute(
            "INSERT INTO members_order (channel_id, order_id, member_id, store, amount, refunded_amount, currency, "
            "occurred_at, status, fingerprint, created_at) "
            "SELECT (%s::bigint[])[1 + n %% %s], 'A' || n, %s + floor(power(random(), 2) * %s)::bigint, '', "
            "round((10 + random() * 990)::numeric, 2), 0, 'CNY', %s - random() * interval '730 days', "
            "'placed', '', now() FROM generate_series(1, %s) AS n",
            [channels, len(channels), low, high - low + 1, end, orders],
        )
        # The ledger: an earning for one order in five, a redemption and an expiry for one in fifty.
        cursor.execute(
            "INSERT INTO loyalty_pointstransaction (account_id, kind, points, balance_after, status, reference, "
            "reason, fingerprint, created_at) "
            "SELECT a.id, k.kind, k.sign * (10 + o.id % 500), 0, 'available', '', '', '', o.occurred_at "
            "FROM members_order o JOIN loyalty_account a ON a.member_id = o.member_id "
            "JOIN (VALUES ('earn', 1, 5), ('redeem', -1, 50), ('expire', -1, 49)) AS k(kind, sign, every) "
            "ON o.id % k.every = 0"  # no parameters: a single % is the operator
        )
        # Vacuumed as autovacuum would have done to tables that have held their rows for a while: the visibility map
        # lets the member index answer alone (index-only scans), as on a live database.
        for table in ("members_member", "members_order", "loyalty_account", "loyalty_pointstransaction"):
            cursor.execute(f"VACUUM ANALYZE {table}")
        return time.perf_counter() - started


def run(context):
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    import numpy as np
    from scipy import optimize

    from analytics import clv, clv_models, dashboard, rfm, selectors, snapshots
    from analytics.models import RfmThresholds
    from analytics.sql import Scope, day_start
    from loyalty.demo import demo_program
    from loyalty.models import ChannelProgram
    from members import services

    members = max(1000, int(MEMBERS * context.scale))
    orders = max(10000, int(ORDERS * context.scale))
    program = demo_program()
    channels = []
    for code in ("bench-a-pos", "bench-a-shop", "bench-a-app"):
        channel = services.channel_get_or_create(code=code, name=code, kind="pos")
        ChannelProgram.objects.get_or_create(channel=channel, defaults={"program": program})
        channels.append(channel.pk)
    as_of = dt.date(2026, 11, 30)
    end = day_start(program, as_of + dt.timedelta(days=1))
    filled = _fill(program, channels, members, orders, end)
    if filled is not None:
        yield context.result("analytics_generate_data", orders, filled, members=members)

    year = Scope(program=program, date_from=as_of - dt.timedelta(days=364), date_to=as_of)
    for name, function in (
        ("members_total", selectors.members_total),
        ("members_new", selectors.members_new),
        ("active_members", selectors.active_members),
        ("order_figures", selectors.order_figures),
        ("refunds", selectors.refunds),
        ("points_figures", selectors.points_figures),
        ("points_liability", selectors.points_liability),
        ("tier_distribution", selectors.tier_distribution),
        ("kpis_all", selectors.kpis),
    ):
        started = time.perf_counter()
        function(year)
        seconds = time.perf_counter() - started
        yield context.result(f"kpi_{name}_year", orders, seconds, members=members, target_seconds=2)

    # The nightly snapshot (analytics.snapshots) of the usual windows, then the year read from it.
    started = time.perf_counter()
    taken = snapshots.kpi_snapshots_take(program=program, last_day=as_of)
    yield context.result("kpi_snapshot_nightly", orders, time.perf_counter() - started, windows=taken["windows"])
    started = time.perf_counter()
    answer = selectors.kpis_answer(year)
    seconds = time.perf_counter() - started
    yield context.result(
        "kpi_kpis_all_year_from_snapshot", orders, seconds, snapshot=answer["taken_at"] is not None, target_seconds=2
    )

    # The dashboard's default page (the last 30 whole days) once the night has taken its snapshot.
    started = time.perf_counter()
    page = dashboard.build(Scope(program=program, date_from=as_of - dt.timedelta(days=29), date_to=as_of))
    yield context.result(
        "dashboard_default_page",
        orders,
        time.perf_counter() - started,
        snapshot=page["kpis_taken_at"] is not None and page["charts_taken_at"] is not None,
    )

    thresholds = RfmThresholds(program=program, **RfmThresholds.DEFAULTS)
    started = time.perf_counter()
    first = rfm.rfm_scores_compute(program=program, as_of=as_of, thresholds=thresholds)
    first_seconds = time.perf_counter() - started
    params = {
        "as_of": as_of,
        "since": day_start(program, as_of - dt.timedelta(days=364)),
        "end": end,
        "program": program.pk,
    }
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(HAND_RFM, params)
        hand = time.perf_counter() - started
    started = time.perf_counter()
    rfm.rfm_scores_compute(program=program, as_of=as_of, thresholds=thresholds)
    ours = time.perf_counter() - started
    yield context.result(
        "rfm_scores",
        first["scored"],
        ours,
        first_run_seconds=round(first_seconds, 3),
        hand_written_update_seconds=round(hand, 3),
        ratio=round(ours / hand, 2),
        target_ratio=2,
    )

    started = time.perf_counter()
    summary = clv.member_summaries(program=program, as_of=as_of)
    summaries_seconds = time.perf_counter() - started
    x, t_x, big_t, m = summary["x"], summary["t_x"], summary["T"], summary["m"]

    def scipy_alone():
        def bgnbd(log_params):
            return -np.sum(clv_models.bgnbd_log_likelihood(np.exp(log_params), x, t_x, big_t))

        optimize.minimize(bgnbd, np.log([1.0, max(float(np.mean(big_t)), 1.0), 1.0, 1.0]), method="L-BFGS-B")
        repeat = (x > 0) & (m > 0)

        def gamma_gamma(log_params):
            return -np.sum(clv_models.gamma_gamma_log_likelihood(np.exp(log_params), x[repeat], m[repeat]))

        optimize.minimize(gamma_gamma, np.log([1.0, 1.0, max(float(np.mean(m[repeat])), 1.0)]), method="L-BFGS-B")

    started = time.perf_counter()
    scipy_alone()
    alone = time.perf_counter() - started
    started = time.perf_counter()
    fit = clv.clv_fit(program=program, as_of=as_of)
    total = time.perf_counter() - started
    yield context.result(
        "clv_fit_and_score",
        fit.members,
        total,
        summaries_sql_seconds=round(summaries_seconds, 3),
        scipy_alone_seconds=round(alone, 3),
        ratio=round(total / alone, 2),
        target_seconds=60,
        target_ratio=3,
        converged=fit.bgnbd_converged and fit.gamma_gamma_converged,
        bgnbd={"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b},
    )
