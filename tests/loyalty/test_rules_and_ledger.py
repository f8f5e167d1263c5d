"""Earning rules as data, the ledger's invariants, manual tiers and the merge of two members' points."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from loyalty import ledger, rules, tiers
from loyalty.errors import InsufficientPoints
from loyalty.models import Account, EarningRule, PointsLot, PointsTransaction, RuleApplication, Tier, TierChange
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEDNESDAY = dt.datetime(2026, 11, 4, 15, 0, tzinfo=SHANGHAI)  # isoweekday 3


def place(channel, member, order_id, amount, *, at=WEDNESDAY, lines=(), store=""):
    order, _created = member_services.order_record(
        channel=channel,
        order_id=order_id,
        member=member,
        amount=Decimal(amount),
        occurred_at=at,
        lines=lines,
        store=store,
    )
    return PointsTransaction.objects.filter(order=order, kind="earn").aggregate(s=Sum("points"))["s"] or 0


def test_member_day_triples_points_on_its_weekday_only(channel, program, member):
    EarningRule.objects.create(program=program, name="会员日 3x", kind="order", weekdays=[3], multiplier=3)
    assert place(channel, member, "O-1", "100.00") == 300
    assert place(channel, member, "O-2", "100.00", at=WEDNESDAY + dt.timedelta(days=1)) == 100
    application = RuleApplication.objects.get()
    assert application.points == 200 and application.rule.name == "会员日 3x"


def test_category_bonus_applies_to_matching_lines_only(channel, program, member):
    EarningRule.objects.create(program=program, name="护肤 2x", kind="order", categories=["skincare"], multiplier=2)
    EarningRule.objects.create(program=program, name="口红 +50", kind="order", skus=["LIP-01"], points=50)
    lines = [
        {"sku": "CREAM-01", "category": "skincare", "amount": Decimal("60.00")},
        {"sku": "LIP-01", "category": "makeup", "amount": Decimal("40.00")},
    ]
    assert place(channel, member, "O-1", "100.00", lines=lines) == 100 + 60 + 50


def test_best_of_rules_takes_only_the_biggest_and_stacked_rules_add(channel, program, member):
    EarningRule.objects.create(program=program, name="best A", kind="order", points=30, combine="best")
    EarningRule.objects.create(program=program, name="best B", kind="order", points=80, combine="best")
    EarningRule.objects.create(program=program, name="stack", kind="order", points=5)
    assert place(channel, member, "O-1", "10.00") == 10 + 80 + 5


def test_rules_by_channel_store_dates_and_minimum(channel, program, member):
    EarningRule.objects.create(program=program, name="门店", kind="order", stores=["SH-01"], points=7)
    EarningRule.objects.create(program=program, name="天猫", kind="order", channel_codes=["tmall"], points=9)
    EarningRule.objects.create(
        program=program,
        name="双11",
        kind="order",
        points=11,
        valid_from=dt.date(2026, 11, 11),
        valid_until=dt.date(2026, 11, 11),
    )
    EarningRule.objects.create(
        program=program, name="满500", kind="order", points=20, min_order_amount=Decimal("500.00")
    )
    assert place(channel, member, "O-1", "10.00", store="SH-01") == 10 + 7
    assert place(channel, member, "O-2", "10.00", at=dt.datetime(2026, 11, 11, 23, 0, tzinfo=SHANGHAI)) == 10 + 11
    assert place(channel, member, "O-3", "500.00") == 500 + 20


def test_inactive_rules_give_nothing(channel, program, member):
    EarningRule.objects.create(program=program, name="off", kind="order", points=99, is_active=False)
    assert place(channel, member, "O-1", "10.00") == 10


def test_tier_multiplier_and_rounding(program):
    silver = Tier.objects.get(program=program, code="silver")
    earning = rules.earning_compute(program=program, tier=silver, rules=[], amount=Decimal("1234.56"))
    assert earning.base == 1481  # 1234.56 x 1.2 = 1481.47, rounded down
    program.rounding = "half_up"
    assert rules.earning_compute(program=program, tier=silver, rules=[], amount=Decimal("0.42")).base == 1


def test_expiry_policies(program):
    moment = dt.datetime(2026, 3, 5, 12, 0, tzinfo=SHANGHAI)
    assert rules.expiry_for(program, moment) == moment + dt.timedelta(days=365)
    program.expiry_policy = "end_of_next_year"
    assert rules.expiry_for(program, moment) == dt.datetime(2028, 1, 1, tzinfo=SHANGHAI)
    program.expiry_policy = "never"
    assert rules.expiry_for(program, moment) is None


def test_spending_takes_the_soonest_expiring_points_first(channel, program, member):
    place(channel, member, "O-1", "100.00")
    place(channel, member, "O-2", "50.00")
    account = Account.objects.get(member=member)
    first, second = PointsLot.objects.filter(account=account).order_by("id")
    PointsLot.objects.filter(pk=second.pk).update(expires_at=timezone.now() + dt.timedelta(days=3))
    with transaction.atomic():
        locked = ledger.accounts_lock(account.pk)[account.pk]
        ledger.points_spend(account=locked, points=70, reference="redemption:R-1")
    first.refresh_from_db()
    second.refresh_from_db()
    assert (second.remaining, second.status) == (0, "spent")
    assert first.remaining == 80
    account.refresh_from_db()
    assert account.balance == 80 and account.lifetime_spent == 70


def test_spending_more_than_the_balance_is_refused_and_changes_nothing(channel, program, member):
    place(channel, member, "O-1", "10.00")
    account = Account.objects.get(member=member)
    with pytest.raises(InsufficientPoints), transaction.atomic():
        locked = ledger.accounts_lock(account.pk)[account.pk]
        ledger.points_spend(account=locked, points=11, reference="x")
    account.refresh_from_db()
    assert account.balance == 10 and PointsTransaction.objects.count() == 1
    assert PointsLot.objects.get().remaining == 10


def test_manual_tier_with_hold_is_recorded(channel, program, member, admin_user):
    place(channel, member, "O-1", "10.00")
    account = Account.objects.get(member=member)
    gold = Tier.objects.get(program=program, code="gold")
    change = tiers.tier_set(
        account=account, tier=gold, reason="VIP 客户补偿", hold_until=dt.date(2027, 6, 30), actor=admin_user
    )
    account.refresh_from_db()
    assert account.tier == gold and account.tier_hold_until == dt.date(2027, 6, 30)
    assert (change.reason, change.actor, change.note) == ("manual", admin_user, "VIP 客户补偿")


def test_merge_moves_points_and_keeps_the_higher_tier(channel, program):
    keep, drop = MemberFactory(), MemberFactory()
    place(channel, keep, "O-1", "100.00")
    place(channel, drop, "O-2", "6000.00")
    member_services.members_merge(keep=keep, drop=drop)
    kept = Account.objects.get(member=keep)
    dropped = Account.objects.get(member=drop)
    assert kept.balance == 6100 and kept.tier.code == "gold" and kept.lifetime_earned == 6100
    assert dropped.balance == 0
    assert PointsLot.objects.filter(account=kept).aggregate(s=Sum("remaining"))["s"] == 6100
    for account in (kept, dropped):
        total = PointsTransaction.objects.filter(account=account, status="available").aggregate(s=Sum("points"))["s"]
        assert total == account.balance


def test_merge_hands_over_the_whole_account_when_the_kept_member_has_none(channel, program):
    keep, drop = MemberFactory(), MemberFactory()
    place(channel, drop, "O-1", "100.00")
    merge = member_services.members_merge(keep=keep, drop=drop)
    assert Account.objects.get(member=keep).balance == 100
    assert merge.moved["points"] == 100


def test_joining_is_recorded_as_the_first_tier_change(channel, program, member):
    place(channel, member, "O-1", "1.00")
    assert list(TierChange.objects.values_list("reason", "to_tier__code")) == [("joined", "basic")]


def test_merge_moves_coupons_too(channel, program):
    from loyalty import rewards
    from loyalty.models import Coupon, CouponTemplate

    keep, drop = MemberFactory(), MemberFactory()
    template = CouponTemplate.objects.get(program=program, code="cny10")
    rewards.coupons_issue(template=template, member=drop, count=2)
    merge = member_services.members_merge(keep=keep, drop=drop)
    assert Coupon.objects.filter(member=keep).count() == 2 and merge.moved["coupons"] == 2
