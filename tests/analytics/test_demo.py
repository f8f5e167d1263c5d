"""seed_demo gives the demo members a year of orders (bulk, idempotent), the points history those orders make, and
scores them, so the dashboard shows real curves on a newcomer's first `make run`."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from analytics import selectors
from analytics.demo import demo_year_of_orders
from analytics.models import ClvFit, MemberScore
from analytics.sql import Scope
from loyalty.models import Account, PointsTransaction, Program
from members.models import Order

pytestmark = pytest.mark.django_db


def test_seed_demo_adds_a_year_of_orders_once():
    out = io.StringIO()
    call_command("seed_demo", "--members", "40", "--no-staff", stdout=out)
    yearly = Order.objects.filter(order_id__startswith="DEMO-Y-")
    added = yearly.count()
    assert added > 40  # about one order in three months per member, some buy most months
    assert f"analytics: {added} demo orders added" in out.getvalue()
    months = {order.occurred_at.strftime("%Y-%m") for order in yearly}
    assert len(months) >= 12
    assert MemberScore.objects.exclude(rfm="").count() == Order.objects.values("member").distinct().count()
    assert ClvFit.objects.filter(program__code="demo").exists()
    assert demo_year_of_orders() == 0  # a second run adds nothing
    call_command("seed_demo", "--no-staff", stdout=io.StringIO())
    assert yearly.count() == added


def test_the_demo_year_has_points_issued_redeemed_and_expired_month_by_month_once():
    """The points chart of the dashboard is not flat: the orders earn on their dates, members redeem over the year and
    points a year old expire, and every balance is the sum of the account's available ledger rows."""
    call_command("seed_demo", "--members", "100", "--no-staff", stdout=io.StringIO())
    program = Program.objects.get(code="demo")
    this_month = timezone.localdate().replace(day=1)
    year_ago = (this_month - dt.timedelta(days=360)).replace(day=1)
    series = selectors.monthly_series(
        Scope(program=program, date_from=year_ago, date_to=this_month - dt.timedelta(days=1))
    )
    assert len(series) == 12  # the twelve full months before this one
    for figure in ("points_issued", "points_redeemed", "points_expired"):
        months = [row["month"] for row in series if row[figure] > 0]
        assert len(months) >= 9, (figure, months)
    earned_on_their_dates = PointsTransaction.objects.filter(kind="earn", order__isnull=False)
    assert earned_on_their_dates.count() == Order.objects.count()
    assert all(row.created_at == row.order.occurred_at for row in earned_on_their_dates.select_related("order"))
    sums = dict(
        PointsTransaction.objects.filter(status="available")
        .values("account_id")
        .annotate(total=Sum("points"))
        .values_list("account_id", "total")
    )
    balances = dict(Account.objects.values_list("pk", "balance"))
    assert len(balances) == 100 and balances == {pk: sums.get(pk, 0) for pk in balances}
    rows = PointsTransaction.objects.count()
    call_command("seed_demo", "--members", "100", "--no-staff", stdout=io.StringIO())  # a second run adds nothing
    assert PointsTransaction.objects.count() == rows
    assert dict(Account.objects.values_list("pk", "balance")) == balances


def test_the_demo_opens_the_dashboard_on_a_snapshot_of_the_finished_demo():
    """The snapshot is taken once the demo members have their accounts and points, so it says what the live figures
    say (members, points, tiers), not what was there half-way through the seeding."""
    call_command("seed_demo", "--members", "30", "--no-staff", stdout=io.StringIO())
    program = Program.objects.get(code="demo")
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    scope = Scope(program=program, date_from=yesterday - dt.timedelta(days=29), date_to=yesterday)
    answer = selectors.kpis_answer(scope)
    assert answer["taken_at"] is not None
    assert answer["members_total"] >= 30 and answer["points_liability"] > 0
    # Tiers as of yesterday: the demo dates each member's entry at joining and an upgrade at the last order.
    assert sum(answer["tier_distribution"].values()) == answer["members_total"]
    assert {name: value for name, value in answer.items() if name != "taken_at"} == selectors.kpis(scope)
