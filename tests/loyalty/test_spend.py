"""Spend net of refunds over a window: the per-order tier check, the general path, the daily job and badges read
one definition (loyalty/spend.py), so they agree on the same orders."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from loyalty import spend
from loyalty.models import Account
from loyalty.tiers import qualifying_value
from members import services as member_services
from members.models import Order
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


def test_every_reader_sees_the_same_net_spend(program, channel, member):
    now = timezone.now()
    outside = ChannelFactory(code="other-brand")  # not in the programme
    member_services.order_record(
        channel=channel, order_id="A", member=member, amount=Decimal("300.00"), occurred_at=now - dt.timedelta(days=3)
    )
    refunded, _ = member_services.order_record(
        channel=channel, order_id="B", member=member, amount=Decimal("200.00"), occurred_at=now - dt.timedelta(days=2)
    )
    member_services.refund_record(channel=channel, order=refunded, refund_id="R", amount=Decimal("50.00"))
    member_services.order_record(
        channel=outside, order_id="C", member=member, amount=Decimal("999.00"), occurred_at=now - dt.timedelta(days=1)
    )
    member_services.order_record(
        channel=channel, order_id="D", member=member, amount=Decimal("80.00"), occurred_at=now - dt.timedelta(days=900)
    )
    account = Account.objects.select_related("program").get(member=member)
    tier = program.tiers.order_by("rank")[1]
    start = now - dt.timedelta(days=365)

    by_member = spend.member_spend(member_id=member.pk, program_id=program.pk, start=start, end=now)
    with connection.cursor() as cursor:
        cursor.execute(spend.members_spend_sql(), [program.pk, start, now])
        by_job = {member_id: spend.as_amount(value) for member_id, value in cursor.fetchall()}

    assert by_member == Decimal("450.00")
    assert by_job == {member.pk: Decimal("450.00")}
    assert (tier.window, tier.window_days) == ("rolling", 365)  # the demo's tiers: the same window as above
    assert qualifying_value(account=account, tier=tier, at=now) == Decimal("450.00")
    assert spend.member_spend(member_id=member.pk, program_id=program.pk, start=None, end=None) == Decimal("530.00")


def test_every_reader_counts_the_same_kept_orders(program, channel, member):
    now = timezone.now()
    for order_id, days in (("A", 3), ("B", 2), ("OLD", 900)):
        member_services.order_record(
            channel=channel,
            order_id=order_id,
            member=member,
            amount=Decimal("100.00"),
            occurred_at=now - dt.timedelta(days=days),
        )
    whole = Order.objects.get(order_id="B")
    member_services.refund_record(channel=channel, order=whole, refund_id="R", amount=Decimal("100.00"))
    account = Account.objects.select_related("program").get(member=member)
    tier = program.tiers.order_by("rank")[1]
    tier.metric = tier.Metric.ORDERS
    start = now - dt.timedelta(days=365)

    with connection.cursor() as cursor:
        cursor.execute(spend.members_orders_sql(), [program.pk, start, now])
        by_job = dict(cursor.fetchall())

    assert spend.member_orders(member_id=member.pk, program_id=program.pk, start=start, end=now) == 1
    assert by_job == {member.pk: 1}
    assert qualifying_value(account=account, tier=tier, at=now) == Decimal(1)
    assert spend.member_orders(member_id=member.pk, program_id=program.pk, start=None, end=None) == 2
