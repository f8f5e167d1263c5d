"""seed_demo gives the demo members a year of orders (bulk, idempotent) and scores them, so the dashboard shows
real curves on a newcomer's first `make run`."""

import io

import pytest
from django.core.management import call_command

from analytics.demo import demo_year_of_orders
from analytics.models import ClvFit, MemberScore
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
