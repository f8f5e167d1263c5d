"""The dashboard's tables and charts, from the selectors (presentation only: every figure is defined there).

Each table is {"name", "title", "headers", "rows"}: shown on the page and exported as CSV under its name."""

import datetime as dt
from decimal import Decimal

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from . import charts, selectors
from .models import KpiSnapshot
from .sql import Scope


def _labels():
    return {
        "members_total": _("Members (at the end)"),
        "members_new": _("New members"),
        "active_members": _("Active members (order or event in the last 30 days)"),
        "purchasing_members": _("Purchasing members"),
        "orders": _("Orders"),
        "revenue": _("Revenue"),
        "refunds": _("Refunds"),
        "aov": _("Average order value (AOV)"),
        "purchase_frequency": _("Purchase frequency"),
        "repeat_purchase_rate": _("Repeat-purchase rate"),
        "revenue_per_purchasing_member": _("Revenue per purchasing member"),
        "points_issued": _("Points issued"),
        "points_redeemed": _("Points redeemed"),
        "points_expired": _("Points expired"),
        "redemption_rate": _("Redemption rate"),
        "breakage": _("Breakage"),
        "points_liability": _("Points liability (points)"),
        "points_liability_value": _("Points liability (value)"),
    }


def change(current, previous) -> str:
    if not previous:
        return "–"
    return f"{(Decimal(current) - Decimal(previous)) / abs(Decimal(previous)) * 100:+.1f}%"


def kpi_table(scope: Scope) -> tuple[dict, list[dict], dict]:
    days = (scope.date_to - scope.date_from).days + 1
    current = selectors.kpis_answer(scope)
    previous = selectors.kpis_answer(scope.shifted(days))
    labels = _labels()
    rows = [[labels[key], current[key], previous[key], change(current[key], previous[key])] for key in labels]
    table = {
        "name": "kpis",
        "title": _("Key figures"),
        "headers": [
            _("Figure"),
            _("This period"),
            _("Previous period"),
            pgettext("against the previous period", "Change"),
        ],
        "rows": rows,
    }
    cards = [
        {"title": labels[key], "value": current[key], "change": change(current[key], previous[key])}
        for key in ("members_new", "active_members", "orders", "revenue", "aov", "repeat_purchase_rate")
    ]
    return table, cards, current


def build(scope: Scope, *, at_risk_below: float = 0.3) -> dict:
    program = scope.program
    kpis, cards, current = kpi_table(scope)
    # Charts over the twelve months up to `to` (or the window, when longer).
    year, month0 = divmod(scope.date_to.year * 12 + scope.date_to.month - 1 - 11, 12)
    year_from = min(scope.date_from, dt.date(year, month0 + 1, 1))
    twelve_months = Scope(
        program=program,
        date_from=year_from,
        date_to=scope.date_to,
        channel_ids=scope.channel_ids,
        tier_code=scope.tier_code,
    )
    Kind = KpiSnapshot.Kind
    monthly, charts_taken_at = selectors.snapshot_answer(Kind.MONTHLY, twelve_months)
    stock, _taken = selectors.snapshot_answer(Kind.STOCK, twelve_months)
    months = [row["month"] for row in monthly]
    monthly_table = {
        "name": "monthly",
        "title": _("By month"),
        "headers": [
            _("Month"),
            _("Members (at the end)"),
            _("New members"),
            _("Orders"),
            _("Revenue"),
            _("Points issued"),
            _("Points redeemed"),
            _("Points expired"),
            _("Points liability (points)"),
        ],
        "rows": [
            [
                row["month"],
                held["members_total"],
                row["members_new"],
                row["orders"],
                row["revenue"],
                row["points_issued"],
                row["points_redeemed"],
                row["points_expired"],
                held["points_liability"],
            ]
            for row, held in zip(monthly, stock, strict=True)
        ],
    }
    cohort_data, _taken = selectors.snapshot_answer(Kind.COHORTS, twelve_months)
    width = max((len(row["active"]) for row in cohort_data["cohorts"]), default=0)
    cohort_table = {
        "name": "cohorts",
        "title": _("Retention by month of first order"),
        "headers": [_("Cohort"), _("Members"), *[f"+{index}" for index in range(width)]],
        "rows": [[row["cohort"], row["members"], *row["active"]] for row in cohort_data["cohorts"]],
        "heat": True,
    }
    join_data, _taken = selectors.snapshot_answer(Kind.JOIN_COHORTS, twelve_months)
    join_width = max((len(row["active"]) for row in join_data["cohorts"]), default=0)
    join_table = {
        "name": "join_cohorts",
        "title": _("Buying by month of joining (members who never bought included)"),
        "headers": [_("Joined"), _("Members"), *[f"+{index}" for index in range(join_width)]],
        "rows": [[row["cohort"], row["members"], *row["active"]] for row in join_data["cohorts"]],
        "heat": True,
    }
    rfm = selectors.rfm_counts(program=program)
    grid = {(r, f): 0 for r in range(1, 6) for f in range(1, 6)}
    for code, count in rfm["segments"].items():
        grid[(int(code[0]), int(code[1]))] += count
    rfm_table = {
        "name": "rfm",
        "title": _("RFM: members by recency (rows) and frequency (columns), as of %(day)s") % {"day": rfm["as_of"]},
        "headers": ["R \\ F", "1", "2", "3", "4", "5"],
        "rows": [[r, *[grid[(r, f)] for f in range(1, 6)]] for r in range(5, 0, -1)],
    }
    segments_table = {
        "name": "rfm_segments",
        "title": _("RFM codes"),
        "headers": [_("RFM code"), _("Members")],
        "rows": [[code, count] for code, count in rfm["segments"].items()],
    }
    tiers_table = {
        "name": "tiers",
        "title": _("Members per tier (at the end)"),
        "headers": [_("Tier"), _("Members")],
        "rows": [[code, count] for code, count in current["tier_distribution"].items()],
    }
    flow = selectors.tier_flow(twelve_months)
    flow_table = {
        "name": "tier_flow",
        "title": _("Tier moves per month"),
        "headers": [_("Month"), _("Up"), _("Down")],
        "rows": [[row["month"], row["up"], row["down"]] for row in flow],
    }
    distribution = selectors.clv_distribution(program=program)
    clv_table = {
        "name": "clv",
        "title": _("Members by CLV over the next 52 weeks"),
        "headers": [_("From"), _("To"), _("Members")],
        "rows": [[row["from"], row["to"] if row["to"] is not None else "", row["members"]] for row in distribution],
    }
    risk = selectors.members_at_risk(program=program, p_alive_below=at_risk_below)
    risk_table = {
        "name": "at_risk",
        "title": _("Members at risk: valuable members whose P(alive) is below %(threshold)s")
        % {"threshold": at_risk_below},
        "headers": [
            _("Member number"),
            _("Name"),
            _("Spend so far"),
            _("Repeat order days"),
            _("P(alive)"),
            _("CLV (52 weeks)"),
            _("RFM"),
        ],
        "rows": [
            [
                score.member.member_no,
                score.member.name,
                score.value_so_far,
                score.x,
                f"{score.p_alive:.4f}",
                score.clv,
                score.rfm,
            ]
            for score in risk
        ],
        "links": True,
    }
    fit = selectors.clv_latest_fit(program)
    charts_html = {
        "growth": charts.line_chart(
            months, {_("Members (at the end)"): [row["members_total"] for row in stock]}, title=_("Member growth")
        ),
        "orders": charts.bar_chart(months, {_("Orders"): [row["orders"] for row in monthly]}, title=_("Orders")),
        "revenue": charts.bar_chart(months, {_("Revenue"): [row["revenue"] for row in monthly]}, title=_("Revenue")),
        "points": charts.bar_chart(
            months,
            {
                _("Points issued"): [row["points_issued"] for row in monthly],
                _("Points redeemed"): [row["points_redeemed"] for row in monthly],
                _("Points expired"): [row["points_expired"] for row in monthly],
            },
            title=_("Points"),
        ),
        "liability": charts.line_chart(
            months,
            {_("Points liability (points)"): [row["points_liability"] for row in stock]},
            title=_("Points liability"),
        ),
        "clv": charts.bar_chart(
            [f"{row['from']}+" if row["to"] is None else f"{row['from']}–{row['to']}" for row in distribution],
            {_("Members"): [row["members"] for row in distribution]},
            title=_("CLV distribution"),
        ),
        "tiers": charts.bar_chart(
            list(current["tier_distribution"]),
            {_("Members"): list(current["tier_distribution"].values())},
            title=_("Tiers"),
        ),
    }
    tables = [
        kpis,
        monthly_table,
        cohort_table,
        join_table,
        rfm_table,
        segments_table,
        tiers_table,
        flow_table,
        clv_table,
        risk_table,
    ]
    return {
        "cards": cards,
        "tables": {table["name"]: table for table in tables},
        "charts": charts_html,
        "fit": fit,
        "kpis_taken_at": current["taken_at"],
        "charts_taken_at": charts_taken_at,
    }
