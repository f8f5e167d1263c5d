"""Times and amounts a partner sends are refused outside the programme's limits (400 `validation_error` naming the
field, nothing recorded): events at most 90 days old, orders at most 1095 days old, nothing more than 5 minutes in
the future, no order or refund above 1,000,000.00 by default. Staff still import older history."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from loyalty import services
from loyalty.models import Account, PointsTransaction, Program, Tier, TierChange
from members import services as member_services
from members.models import Event, Order, Refund

pytestmark = pytest.mark.django_db


def iso(moment):
    return moment.isoformat()


def post_event(api, member, event_id, at):
    body = {"event_id": event_id, "member_no": member.member_no, "type": "check_in", "occurred_at": at}
    return api.post("/api/v1/events/", body, format="json")


def post_order(api, member, order_id, amount="100.00", at=None):
    body = {
        "order_id": order_id,
        "member_no": member.member_no,
        "amount": amount,
        "occurred_at": at or iso(timezone.now()),
    }
    return api.post("/api/v1/orders/", body, format="json")


def refused(response, field):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and field in error["fields"], error
    return error["fields"][field][0]


def balance(member):
    return Account.objects.filter(member=member).aggregate(s=Sum("balance"))["s"] or 0


@pytest.mark.parametrize("at", ["1000-01-01T10:00:00+08:00", "9000-01-01T10:00:00+08:00"])
def test_events_from_another_age_earn_nothing(api, member, at):
    refused(post_event(api, member, "E-1", at), "occurred_at")
    assert Event.objects.count() == 0 and balance(member) == 0


def test_events_older_than_90_days_are_refused_and_younger_ones_count(api, member):
    now = timezone.now()
    refused(post_event(api, member, "E-1", iso(now - dt.timedelta(days=91))), "occurred_at")
    assert post_event(api, member, "E-2", iso(now - dt.timedelta(days=89))).status_code == 201
    assert Event.objects.count() == 1 and balance(member) == 5


def test_a_few_minutes_of_clock_skew_are_allowed_more_is_refused(api, member):
    now = timezone.now()
    message = refused(post_event(api, member, "E-1", iso(now + dt.timedelta(minutes=10))), "occurred_at")
    assert "5" in message
    assert post_event(api, member, "E-2", iso(now + dt.timedelta(minutes=3))).status_code == 201
    refused(post_order(api, member, "O-1", at=iso(now + dt.timedelta(minutes=10))), "occurred_at")
    assert post_order(api, member, "O-2", at=iso(now + dt.timedelta(minutes=3))).status_code == 201


def test_an_order_dated_2100_neither_earns_nor_upgrades(api, member):
    response = post_order(api, member, "O-1", amount="50000.00", at="2100-01-01T10:00:00+08:00")
    refused(response, "occurred_at")
    assert Order.objects.count() == 0 and balance(member) == 0
    assert not TierChange.objects.filter(reason="upgrade").exists()


def test_orders_older_than_three_years_are_refused_younger_ones_count(api, member):
    now = timezone.now()
    refused(post_order(api, member, "O-1", at=iso(now - dt.timedelta(days=1096))), "occurred_at")
    assert post_order(api, member, "O-2", at=iso(now - dt.timedelta(days=1000))).status_code == 201
    assert list(Order.objects.values_list("order_id", flat=True)) == ["O-2"]


def test_an_order_above_the_ceiling_is_refused_even_for_a_member_with_spend(api, member):
    assert post_order(api, member, "O-1", amount="900.00").status_code == 201
    message = refused(post_order(api, member, "O-2", amount="999999999999.99"), "amount")
    assert "1000000.00" in message.replace(",", "")
    refused(post_order(api, member, "O-3", amount="1000000.01"), "amount")
    assert Order.objects.count() == 1 and balance(member) == 900


def test_an_order_at_the_ceiling_counts_on_top_of_spend(api, member):
    assert post_order(api, member, "O-1", amount="900.00").status_code == 201
    response = post_order(api, member, "O-2", amount="1000000.00")
    assert response.status_code == 201, response.content
    assert response.json()["member"]["tier"]["code"] == "diamond"
    assert balance(member) == 900 + 1_000_000


def test_a_refund_above_the_ceiling_is_refused(api, member):
    post_order(api, member, "O-1", amount="100.00")
    response = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "1000000.01"}, format="json")
    refused(response, "amount")
    assert Refund.objects.count() == 0 and balance(member) == 100


def test_limits_are_per_programme(api, member, program):
    Program.objects.filter(pk=program.pk).update(
        event_max_age_days=7, future_skew_minutes=0, max_order_amount=Decimal("500.00")
    )
    now = timezone.now()
    refused(post_event(api, member, "E-1", iso(now - dt.timedelta(days=8))), "occurred_at")
    assert post_event(api, member, "E-2", iso(now - dt.timedelta(days=6))).status_code == 201
    refused(post_order(api, member, "O-1", amount="500.01"), "amount")
    assert post_order(api, member, "O-2", amount="500.00").status_code == 201


def test_staff_import_older_history_and_a_huge_spend_does_not_overflow_the_tier_record(channel, member, api):
    """The order import is not limited; an accepted API order on top of an imported huge spend still records the
    member's tier change (the qualifying value's column holds any sum of accepted amounts)."""
    member_services.order_record(
        channel=channel,
        order_id="OLD-1",
        member=member,
        amount=Decimal("999999999999.99"),
        occurred_at=timezone.now() - dt.timedelta(days=10),
        award=False,
    )
    member_services.order_record(
        channel=channel,
        order_id="OLD-2",
        member=member,
        amount=Decimal("10.00"),
        occurred_at=timezone.now() - dt.timedelta(days=3650),
        award=False,
    )
    account = Account.objects.get(member=member)
    services.tier_set(account=account, tier=Tier.objects.get(program=account.program, rank=0), reason="test")
    response = post_order(api, member, "O-1", amount="1000000.00")
    assert response.status_code == 201, response.content
    change = TierChange.objects.filter(reason="upgrade").latest("created_at", "id")
    assert change.metric_value == Decimal("999999999999.99") + Decimal("1000000.00")
    assert PointsTransaction.objects.get(order__order_id="O-1").points == 1_000_000


def test_the_limits_are_edited_in_the_programmes_admin_within_bounds(admin_client, program):
    from django.core.exceptions import ValidationError
    from django.urls import reverse

    page = admin_client.get(reverse("admin:loyalty_program_change", args=[program.pk])).content.decode()
    for field in ("event_max_age_days", "order_max_age_days", "future_skew_minutes", "max_order_amount"):
        assert f'name="{field}"' in page
    program.max_order_amount = Decimal("100000000.01")
    with pytest.raises(ValidationError) as error:
        program.full_clean()
    assert "max_order_amount" in error.value.message_dict
