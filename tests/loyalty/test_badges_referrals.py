"""Badges awarded once when the fact happens or by the daily job; referrals with a monthly cap and a welcome
bonus; no self-referral."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from core.errors import ValidationFailed
from loyalty import jobs
from loyalty.models import Account, Badge, BadgeAward, EarningRule, PointsTransaction
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def order(channel, member, order_id, amount="100.00", at=None):
    member_services.order_record(
        channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=at or timezone.now()
    )


def test_first_order_and_n_orders_badges_once_with_their_bonus(api, channel, program, member):
    Badge.objects.create(program=program, code="first", name="首单", rule="first_order", points_bonus=30)
    Badge.objects.create(program=program, code="three", name="三单达人", rule="orders", threshold=3)
    order(channel, member, "O-1")
    assert list(BadgeAward.objects.values_list("badge__code", flat=True)) == ["first"]
    assert Account.objects.get(member=member).balance == 100 + 30
    order(channel, member, "O-2")
    order(channel, member, "O-3")
    order(channel, member, "O-4")
    assert sorted(BadgeAward.objects.values_list("badge__code", flat=True)) == ["first", "three"]
    assert PointsTransaction.objects.filter(reference="badge:first").count() == 1
    listed = api.get(f"/api/v1/members/{member.member_no}/badges/").json()
    assert [badge["code"] for badge in listed["results"]] == ["three", "first"]
    assert listed["results"][1]["points_bonus"] == 30


def test_spend_within_a_window_and_reviews(channel, program, member):
    Badge.objects.create(program=program, code="big", name="大客户", rule="spend", threshold=1000, window_days=30)
    Badge.objects.create(program=program, code="critic", name="评论家", rule="reviews", threshold=2)
    order(channel, member, "O-1", "600.00", at=timezone.now() - dt.timedelta(days=40))
    order(channel, member, "O-2", "600.00")
    assert not BadgeAward.objects.filter(badge__code="big").exists()
    order(channel, member, "O-3", "500.00")
    assert BadgeAward.objects.filter(badge__code="big").exists()
    for index in range(2):
        member_services.event_record(
            channel=channel, event_id=f"R-{index}", member=member, type="review", occurred_at=timezone.now()
        )
    assert BadgeAward.objects.filter(badge__code="critic").exists()


def test_years_of_membership_by_the_daily_job(channel, program):
    Badge.objects.create(program=program, code="veteran", name="三年老会员", rule="member_years", threshold=3)
    old = MemberFactory(joined_at=timezone.now() - dt.timedelta(days=3 * 366))
    new = MemberFactory()
    order(channel, old, "O-1")
    order(channel, new, "O-2")
    run = jobs.jobs_run(program=program, as_of=timezone.localdate(), jobs=["badges"])[0]
    assert run.counts == {"awarded": 1}
    assert list(BadgeAward.objects.values_list("account__member", flat=True)) == [old.pk]


def test_referral_reward_is_capped_per_month_and_welcomes_the_referred(channel, program):
    rule = EarningRule.objects.get(program=program, kind="referral")
    rule.limit_count, rule.limit_period, rule.welcome_points = 2, "month", 50
    rule.save()
    referrer = MemberFactory()
    order(channel, referrer, "R-0", "1.00")
    friends = [MemberFactory(referrer=referrer) for _ in range(3)]
    for index, friend in enumerate(friends):
        order(channel, friend, f"F-{index}", "10.00")
    assert Account.objects.get(member=referrer).balance == 1 + 2 * 200  # the third is over the monthly cap
    assert Account.objects.get(member=friends[0]).balance == 10 + 50
    assert Account.objects.get(member=friends[2]).balance == 10  # no welcome bonus when capped


def test_no_self_referral(member):
    with pytest.raises(ValidationFailed):
        member_services.member_update(member=member, data={"referrer": member})


def test_staff_see_each_members_referrals(admin_client, member):
    from django.urls import reverse

    friend = MemberFactory(referrer=member, name="被推荐的朋友")
    html = admin_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert friend.member_no in html
