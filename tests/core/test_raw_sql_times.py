"""A datetime given to raw SQL is the same instant as the ORM's: on SQLite (text) every statement's datetime
parameters are written as Django writes a DateTimeField, so raw inserts, updates and comparisons agree with it."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from core.db import sqlite_datetimes_as_utc_text
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


@pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL stores instants (timestamptz): nothing to rewrite"
)
def test_the_migration_rewrites_times_once_stored_with_their_offset_on_sqlite(channel, member):
    from django.apps import apps

    kept, shifted = order(channel, member, "M-1", MIDNIGHT), order(channel, member, "M-2", MIDNIGHT)
    # As the raw insert of orders stored them before: the offset kept in the text (bypassing Django's cursor).
    connection.connection.execute(
        "UPDATE members_order SET occurred_at = '2026-09-30 23:59:00.000120+08:00' WHERE id = ?", [shifted.pk]
    )
    assert Order.objects.filter(occurred_at__gte=MIDNIGHT).count() == 2  # the defect: 23:59 sorts after 16:00 UTC

    sqlite_datetimes_as_utc_text(apps, SimpleNamespace(connection=connection), app_label="members")

    with connection.cursor() as cursor:
        cursor.execute("SELECT id, CAST(occurred_at AS TEXT) FROM members_order ORDER BY id")
        assert cursor.fetchall() == [(kept.pk, "2026-09-30 16:00:00"), (shifted.pk, "2026-09-30 15:59:00.000120")]
    assert Order.objects.get(pk=shifted.pk).occurred_at == EVENING + dt.timedelta(microseconds=120)
