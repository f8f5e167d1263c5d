"""The member list as an operator reads it: tier, points and spend on every row (in a fixed number of queries), a
filter by tier, and a member found by the last four digits of the phone."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty.adjustments import points_adjust
from loyalty.models import Account, Tier
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

URL = "/admin/members/member/"


def _members(channel, program, count, start=0):
    members = []
    for index in range(start, start + count):
        member = MemberFactory(phone=f"+861380000{index:04d}")
        member_services.order_record(
            channel=channel,
            order_id=f"O-{index}",
            member=member,
            amount=Decimal("120.50"),
            occurred_at=timezone.now(),
        )
        members.append(member)
    return members


def test_each_row_shows_tier_points_and_spend(admin_client, channel, program):
    (member,) = _members(channel, program, 1)
    member.imported_spend = Decimal("1000.00")
    member.save(update_fields=["imported_spend"])
    points_adjust(account=Account.objects.get(member=member), points=5000, reason="test")
    page = admin_client.get(URL)
    row = page.context["cl"].result_list.get(pk=member.pk)
    assert (row.tier_name, row.points_balance, row.total_spend) == ("普通会员", 5120, Decimal("1120.50"))
    text = page.content.decode()
    assert "5,120" in text and "1,120.50" in text
    assert {"tier_column", "points_column", "spend_column"} <= set(page.context["cl"].list_display)


def test_the_list_costs_the_same_queries_for_3_or_30_members(admin_client, channel, program):
    _members(channel, program, 3)
    admin_client.get(URL)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as few:
        assert admin_client.get(URL).status_code == 200
    _members(channel, program, 27, start=3)
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(URL).status_code == 200
    assert len(many) == len(few)


def test_filter_by_tier(admin_client, channel, program):
    members = _members(channel, program, 3)
    gold = Tier.objects.get(program=program, code="gold")
    account = Account.objects.get(member=members[1])
    account.tier = gold
    account.save(update_fields=["tier"])
    page = admin_client.get(URL, {"tier": gold.pk})
    assert [m.pk for m in page.context["cl"].result_list] == [members[1].pk]
    assert "金卡会员" in page.content.decode()


def test_find_a_member_by_the_last_four_digits_of_the_phone(admin_client, channel, program):
    members = _members(channel, program, 3)
    page = admin_client.get(URL, {"q": "0001"})
    assert [m.pk for m in page.context["cl"].result_list] == [members[1].pk]


def test_a_member_without_an_account_shows_dashes(admin_client, db):
    member = MemberFactory()
    row = admin_client.get(URL).context["cl"].result_list.get(pk=member.pk)
    assert (row.tier_name, row.points_balance, row.total_spend) == (None, None, Decimal("0"))
