"""Every KPI of API.md § Analytics on small hand-made data, with the exact values a person would work out.

Programme `demo` (Asia/Shanghai); the window is October 2026 in Shanghai days."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from analytics import selectors
from analytics.sql import Scope
from loyalty import jobs, rewards
from loyalty import ledger as loyalty_services
from loyalty.models import ChannelProgram, Program, Tier
from members import services as member_services
from members.models import Refund
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
OCTOBER = {"date_from": dt.date(2026, 10, 1), "date_to": dt.date(2026, 10, 31)}


def at(*args):
    return dt.datetime(*args, tzinfo=SH)


def buy(channel, member, order_id, amount, when):
    order, _created = member_services.order_record(
        channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=when
    )
    return order


@pytest.fixture
def october(program, channel):
    """A joined 15 Sep and bought on 30 Sep 23:59, 1 Oct 00:05 and 20 Oct (Shanghai); B joined 5 Oct and bought on
    10 Oct (20.00 of it refunded on 25 Oct); C joined 31 Oct 23:30 and checked in on 15 Oct; D joined 1 Nov 00:10.
    A also bought 999.00 in another brand's programme in October."""
    a = MemberFactory(joined_at=at(2026, 9, 15, 12))
    b = MemberFactory(joined_at=at(2026, 10, 5, 12))
    c = MemberFactory(joined_at=at(2026, 10, 31, 23, 30))
    d = MemberFactory(joined_at=at(2026, 11, 1, 0, 10))
    buy(channel, a, "A-0", "80.00", at(2026, 9, 30, 23, 59))  # the evening before the window: the zone's edge
    buy(channel, a, "A-1", "100.00", at(2026, 10, 1, 0, 5))
    buy(channel, a, "A-2", "50.00", at(2026, 10, 20, 15))
    refunded = buy(channel, b, "B-1", "200.00", at(2026, 10, 10, 9))
    refund, _created = member_services.refund_record(
        channel=channel, order=refunded, refund_id="R-1", amount=Decimal("20.00")
    )
    Refund.objects.filter(pk=refund.pk).update(created_at=at(2026, 10, 25, 10))  # recorded on 25 Oct
    for member in (c, d):
        loyalty_services.account_get_or_create(member=member, program=program)
    member_services.event_record(
        channel=channel, event_id="E-1", member=c, type="check_in", occurred_at=at(2026, 10, 15, 10)
    )
    other = Program.objects.create(code="other", name="Other brand", time_zone="Asia/Shanghai")
    Tier.objects.create(program=other, code="basic", name="普通", rank=0)
    shop = ChannelFactory(code="other-shop")
    ChannelProgram.objects.filter(channel=shop).delete()
    ChannelProgram.objects.create(channel=shop, program=other)
    buy(shop, a, "X-1", "999.00", at(2026, 10, 12, 12))
    return {"a": a, "b": b, "c": c, "d": d, "other": other, "shop": shop}


def test_members_total_new_and_active(program, october):
    scope = Scope(program=program, **OCTOBER)
    assert selectors.members_total(scope) == 3  # A, B, C; D joined after the window (1 Nov 00:10 Shanghai)
    assert selectors.members_new(scope) == 2  # B and C (31 Oct 23:30 is still October in Shanghai)
    assert selectors.active_members(scope, days=30) == 3  # A and B bought, C checked in, within 2 Oct .. 31 Oct
    assert selectors.active_members(scope, days=12) == 1  # 20 Oct .. 31 Oct: A's second order only


def test_order_figures(program, october):
    figures = selectors.order_figures(Scope(program=program, **OCTOBER))
    assert figures == {
        "purchasing_members": 2,
        "orders": 3,  # A-1 (1 Oct 00:05 Shanghai), A-2, B-1; not A-0 (30 Sep 23:59) nor the other brand's X-1
        "revenue": Decimal("350.00"),
        "aov": Decimal("116.67"),  # 350 / 3
        "purchase_frequency": Decimal("1.5000"),  # 3 orders / 2 buyers
        "repeat_purchase_rate": Decimal("0.5000"),  # A of A and B
        "revenue_per_purchasing_member": Decimal("175.00"),
    }


def test_refunds_are_reported_apart_by_the_refund_date(program, october):
    assert selectors.refunds(Scope(program=program, **OCTOBER)) == Decimal("20.00")
    september = Scope(program=program, date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 9, 30))
    assert selectors.refunds(september) == Decimal("0.00")
    assert selectors.order_figures(Scope(program=program, **OCTOBER))["revenue"] == Decimal("350.00")


def test_an_empty_window_answers_zeros_not_errors(program, channel):
    figures = selectors.kpis(Scope(program=program, date_from=dt.date(2020, 1, 1), date_to=dt.date(2020, 1, 31)))
    assert figures["orders"] == 0 and figures["aov"] == Decimal("0.00")
    assert figures["purchase_frequency"] == Decimal("0.0000") and figures["breakage"] == Decimal("0.0000")
    assert figures["tier_distribution"] == {"basic": 0, "silver": 0, "gold": 0, "diamond": 0}


def test_filters_by_channel_and_tier(program, channel, october):
    second = ChannelFactory(code="web-shop")
    ChannelProgram.objects.get_or_create(channel=second, defaults={"program": program})
    buy(second, october["d"], "D-1", "40.00", at(2026, 10, 30, 12))
    everything = selectors.order_figures(Scope(program=program, **OCTOBER))
    assert (everything["orders"], everything["revenue"]) == (4, Decimal("390.00"))
    web = selectors.order_figures(Scope(program=program, channel_ids=[second.pk], **OCTOBER))
    assert (web["orders"], web["revenue"]) == (1, Decimal("40.00"))
    # The other brand's channel is never the programme's, even when asked for.
    assert selectors.order_figures(Scope(program=program, channel_ids=[october["shop"].pk], **OCTOBER))["orders"] == 0
    silver = selectors.order_figures(Scope(program=program, tier_code="silver", **OCTOBER))
    assert silver["orders"] == 0  # nobody reached 1,000.00
    basic = selectors.order_figures(Scope(program=program, tier_code="basic", **OCTOBER))
    assert basic["orders"] == 4


def test_points_issued_redeemed_expired_liability_and_tiers(program, channel, member):
    """Today: an order of 1,500.00 earns 1,500 points and lifts the member to silver; CNY10 spends 1,000; a year
    and a day later the other 500 expire and the tier review moves the member back to basic."""
    today = timezone.localdate()
    buy(channel, member, "P-1", "1500.00", timezone.now() - dt.timedelta(minutes=5))
    rewards.reward_redeem(channel=channel, member=member, reward_code="CNY10", quantity=1, redemption_id="RD-1")
    scope = Scope(program=program, date_from=today, date_to=today)
    assert selectors.points_liability(scope) == 500
    assert selectors.points_liability_value(scope) == Decimal("5.00")  # 500 × 0.01
    assert selectors.tier_distribution(scope) == {"basic": 0, "silver": 1, "gold": 0, "diamond": 0}
    later = today + dt.timedelta(days=366)
    jobs.jobs_run(program=program, as_of=later)
    figures = selectors.points_figures(scope)  # the ledger's rows are all written today
    assert figures == {
        "points_issued": 1500,
        "points_redeemed": 1000,
        "points_expired": 500,
        "redemption_rate": Decimal("0.6667"),
        "breakage": Decimal("0.3333"),
    }
    assert selectors.points_liability(scope) == 0
    assert selectors.tier_distribution(scope) == {"basic": 1, "silver": 0, "gold": 0, "diamond": 0}
    # The upgrade is dated today; the review's downgrade at the end of its day, the first instant of the next.
    reviewed = later + dt.timedelta(days=1)
    year = Scope(program=program, date_from=today, date_to=reviewed)
    assert selectors.tier_flow(year) == [
        {"month": f"{today:%Y-%m}", "up": 1, "down": 0},
        {"month": f"{reviewed:%Y-%m}", "up": 0, "down": 1},
    ]
    yesterday = Scope(program=program, date_from=today - dt.timedelta(days=1), date_to=today - dt.timedelta(days=1))
    assert selectors.points_liability(yesterday) == 0  # nothing was issued before today
    assert selectors.points_figures(yesterday)["points_issued"] == 0


def test_historic_liability_and_tiers_are_read_from_the_ledger_and_tier_changes(program, channel, member):
    from loyalty.models import PointsTransaction, TierChange

    buy(channel, member, "H-1", "1200.00", timezone.now() - dt.timedelta(minutes=5))
    # As if it all happened on 1 Oct 2026.
    PointsTransaction.objects.update(created_at=at(2026, 10, 1, 12))
    TierChange.objects.filter(reason="joined").update(created_at=at(2026, 10, 1, 11))
    TierChange.objects.filter(reason="upgrade").update(created_at=at(2026, 10, 1, 12))
    october_end = Scope(program=program, **OCTOBER)
    september_end = Scope(program=program, date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 9, 30))
    assert selectors.points_liability(october_end) == 1200
    assert selectors.points_liability(september_end) == 0
    assert selectors.tier_distribution(october_end) == {"basic": 0, "silver": 1, "gold": 0, "diamond": 0}


def test_monthly_series(program, october):
    series = selectors.monthly_series(
        Scope(program=program, date_from=dt.date(2026, 9, 1), date_to=dt.date(2026, 10, 31))
    )
    assert [(row["month"], row["orders"], row["revenue"], row["members_new"]) for row in series] == [
        ("2026-09", 1, Decimal("80.00"), 1),
        ("2026-10", 3, Decimal("350.00"), 2),
    ]


def test_kpis_of_one_programme_never_include_another(program, october):
    other = Scope(program=october["other"], **OCTOBER)
    figures = selectors.order_figures(other)
    assert (figures["orders"], figures["revenue"], figures["purchasing_members"]) == (1, Decimal("999.00"), 1)
    assert selectors.members_total(other) == 1  # A holds an account there too


def test_an_order_time_given_with_an_offset_is_stored_as_the_same_instant(channel, program, member):
    """Once a defect on SQLite: the order's raw insert kept "+08:00" in the stored text, so a window that starts at
    1 Oct 00:00 Shanghai (30 Sep 16:00 UTC) took in an order of 30 Sep 23:59 Shanghai."""
    buy(channel, member, "T-1", "10.00", at(2026, 9, 30, 23, 59))
    from members.models import Order

    assert Order.objects.filter(occurred_at__gte=at(2026, 10, 1)).count() == 0
    assert Order.objects.filter(occurred_at__lt=at(2026, 10, 1)).count() == 1


def test_an_order_of_amount_zero_is_an_order(program, channel, member):
    buy(channel, member, "Z-1", "0.00", at(2026, 10, 5, 12))  # a free gift
    buy(channel, member, "Z-2", "90.00", at(2026, 10, 6, 12))
    figures = selectors.order_figures(Scope(program=program, **OCTOBER))
    assert (figures["orders"], figures["revenue"], figures["aov"]) == (2, Decimal("90.00"), Decimal("45.00"))
    assert figures["repeat_purchase_rate"] == Decimal("1.0000")
