"""A datetime given to raw SQL is the same instant as the ORM's: on SQLite (text) every statement's datetime
parameters are written as Django writes a DateTimeField, so raw inserts, updates and comparisons agree with it."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from members.models import Order

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
EVENING = dt.datetime(2026, 9, 30, 23, 59, tzinfo=SH)  # 15:59 UTC
MIDNIGHT = dt.datetime(2026, 10, 1, tzinfo=SH)  # 16:00 UTC


def order(channel, member, order_id, occurred_at):
    return Order.objects.create(
        channel=channel, order_id=order_id, member=member, amount=Decimal("10.00"), occurred_at=occurred_at
    )


def test_raw_comparisons_with_an_offset_find_what_the_orm_stored(channel, member):
    stored = order(channel, member, "R-1", EVENING)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM members_order WHERE occurred_at = %s", [EVENING.astimezone(dt.UTC)])
        assert cursor.fetchall() == [(stored.pk,)]
        cursor.execute("SELECT COUNT(*) FROM members_order WHERE occurred_at < %s", [MIDNIGHT])
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT COUNT(*) FROM members_order WHERE occurred_at >= %(start)s", {"start": MIDNIGHT})
        assert cursor.fetchone() == (0,)


def test_raw_writes_with_an_offset_are_read_by_the_orm_as_the_same_instant(channel, member):
    first, second = order(channel, member, "W-1", MIDNIGHT), order(channel, member, "W-2", MIDNIGHT)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE members_order SET occurred_at = %s WHERE id = %s", [EVENING, first.pk])
        cursor.executemany(
            "UPDATE members_order SET occurred_at = %s WHERE id = %s", [(MIDNIGHT + dt.timedelta(hours=1), second.pk)]
        )
    assert list(Order.objects.filter(occurred_at__lt=MIDNIGHT).values_list("order_id", flat=True)) == ["W-1"]
    assert Order.objects.get(pk=first.pk).occurred_at == EVENING
    assert Order.objects.get(pk=second.pk).occurred_at == MIDNIGHT + dt.timedelta(hours=1)
    assert Order.objects.filter(occurred_at=MIDNIGHT + dt.timedelta(hours=1)).count() == 1
