"""Points history recorded after the fact (loyalty/points_history.py): orders earn on their dates, redemptions spend
on theirs, points expire on the day they expire, and the account's balance is the sum of its available rows."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from core.errors import ValidationFailed
from loyalty import earning
from loyalty.models import Account, Coupon, PointsLot, PointsTransaction, Program, Redemption, Reward
from loyalty.points_history import points_history_record
from members.models import Order
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def days_ago(days):
    return NOW - dt.timedelta(days=days)


def history_order(channel, member, order_id, amount, at):
    """An order in the table without the live earning (as the order import and the demo load them)."""
    return Order.objects.create(
        channel=channel, member=member, order_id=order_id, amount=Decimal(amount), occurred_at=at
    )


def redeem(member, channel, at, redemption_id, reward_code="CNY10"):
    return {
        "member_id": member.pk,
        "reward_code": reward_code,
        "at": at,
        "redemption_id": redemption_id,
        "channel": channel,
    }


def rows(member):
    return list(
        PointsTransaction.objects.filter(account__member=member)
        .order_by("created_at", "pk")
        .values_list("kind", "points", "balance_after", "status", "created_at")
    )


def test_orders_earn_on_their_dates_redemptions_spend_soonest_expiring_first_and_the_rest_expires(
    program, channel, member
):
    history_order(channel, member, "H-1", "1500.00", days_ago(400))  # expires 35 days ago
    history_order(channel, member, "H-2", "800.99", days_ago(200))
    planned = [
        redeem(member, channel, days_ago(100), "R-1"),  # 1,000 of H-1's 1,500
        redeem(member, channel, days_ago(10), "R-2"),  # 800 left: refused
    ]
    counts = points_history_record(program=program, member_ids=[member.pk], redemptions=planned, now=NOW)
    assert counts == {"accounts": 1, "orders": 2, "points": 2300, "redemptions": 1, "refused": 1, "expired": 500}
    assert rows(member) == [
        ("earn", 1500, 1500, "available", days_ago(400)),
        ("earn", 800, 2300, "available", days_ago(200)),
        ("redeem", -1000, 1300, "available", days_ago(100)),
        ("expire", -500, 800, "available", days_ago(35)),
    ]
    account = Account.objects.get(member=member)
    assert (account.balance, account.pending, account.lifetime_earned, account.lifetime_spent) == (800, 0, 2300, 1000)
    assert (
        account.balance
        == PointsTransaction.objects.filter(account=account, status="available").aggregate(total=Sum("points"))["total"]
    )
    assert list(PointsLot.objects.filter(account=account).order_by("pk").values_list("remaining", "status")) == [
        (0, "expired"),
        (800, "available"),
    ]
    earned = PointsTransaction.objects.get(account=account, order__order_id="H-2")
    assert earned.idempotency_key == f"{channel.pk}:order:H-2"  # the live earning's key: never earned twice
    redemption = Redemption.objects.get()
    assert (redemption.redemption_id, redemption.points_spent, redemption.created_at) == ("R-1", 1000, days_ago(100))
    coupon = Coupon.objects.get(redemption=redemption)
    assert (coupon.issued_at, coupon.valid_until, coupon.status) == (days_ago(100), days_ago(70), "expired")
    assert Reward.objects.get(code="CNY10").redeemed_count == 1


def test_recording_again_adds_nothing_and_an_order_already_earned_is_not_earned_again(program, channel, member):
    history_order(channel, member, "H-1", "300.00", days_ago(30))
    points_history_record(program=program, member_ids=[member.pk], now=NOW)
    before = rows(member)
    again = points_history_record(program=program, member_ids=[member.pk], now=NOW)
    assert again["accounts"] == 0 and rows(member) == before
    # A member who earned live already keeps that history: nothing is recorded before it.
    other = MemberFactory()
    live = history_order(channel, other, "L-1", "100.00", days_ago(1))
    earning.points_earn_for_order(order=live)
    history_order(channel, other, "H-2", "900.00", days_ago(60))
    assert points_history_record(program=program, member_ids=[other.pk], now=NOW)["accounts"] == 0
    assert Account.objects.get(member=other).balance == 100


def test_pending_points_become_available_on_their_day_or_stay_pending(program, channel, member):
    Program.objects.filter(pk=program.pk).update(pending_days=7)
    program.refresh_from_db()
    history_order(channel, member, "H-1", "200.00", days_ago(30))
    history_order(channel, member, "H-2", "50.00", days_ago(3))  # still pending today
    points_history_record(program=program, member_ids=[member.pk], now=NOW)
    assert rows(member) == [
        ("earn", 200, 0, "pending", days_ago(30)),
        ("earn", 200, 200, "available", days_ago(23)),
        ("earn", 50, 200, "pending", days_ago(3)),
    ]
    account = Account.objects.get(member=member)
    assert (account.balance, account.pending, account.lifetime_earned) == (200, 50, 200)


def test_only_coupon_rewards_are_redeemed_in_history_and_a_refusal_writes_nothing(program, channel, member):
    history_order(channel, member, "H-1", "5000.00", days_ago(30))
    with pytest.raises(ValidationFailed):
        points_history_record(
            program=program,
            member_ids=[member.pk],
            redemptions=[redeem(member, channel, days_ago(10), "R-1", reward_code="MUG")],
            now=NOW,
        )
    assert not PointsTransaction.objects.exists() and not Redemption.objects.exists()


def test_a_reward_above_the_members_tier_is_refused_in_history_as_live(program, channel, member):
    history_order(channel, member, "H-1", "5000.00", days_ago(30))  # 5,000 points, still in the entry tier
    counts = points_history_record(
        program=program,
        member_ids=[member.pk],
        redemptions=[redeem(member, channel, days_ago(10), "R-1", reward_code="CNY50")],  # silver and above
        now=NOW,
    )
    assert (counts["redemptions"], counts["refused"]) == (0, 1)
    assert Account.objects.get(member=member).balance == 5000
