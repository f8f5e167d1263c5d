"""seed_demo loads API.md's demo programme idempotently and, with --members N, realistic members with standing."""

import io

import pytest
from django.core.management import call_command
from django.db.models import Sum

from loyalty.models import Account, EarningRule, Reward, Tier
from members.models import Channel, Member, Order

pytestmark = pytest.mark.django_db


def seed(*args):
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_demo_programme_twice_is_the_same_programme():
    first = seed()
    seed()
    assert "admin" in first and "crm-demo-2026" in first
    assert list(Tier.objects.order_by("rank").values_list("code", "upgrade_threshold")) == [
        ("basic", 0),
        ("silver", 1000),
        ("gold", 5000),
        ("diamond", 20000),
    ]
    assert set(Reward.objects.values_list("code", flat=True)) == {"CNY10", "CNY50", "MUG"}
    assert EarningRule.objects.filter(kind="event").count() == 4
    assert Channel.objects.filter(program_link__program__code="demo").count() == Channel.objects.count() == 7


def test_demo_members_have_chinese_names_valid_phones_and_their_points():
    seed("--members", "40", "--no-staff")
    members = Member.objects.all()
    assert members.count() == 40
    assert all(member.phone.startswith("+861") and len(member.phone) == 14 for member in members)
    for account in Account.objects.select_related("member"):
        # One point per whole unit of each order (rounded down), earned on the order's date.
        earned = sum(
            int(amount) for amount in Order.objects.filter(member=account.member).values_list("amount", flat=True)
        )
        expired = -(account.transactions.filter(kind="expire").aggregate(total=Sum("points"))["total"] or 0)
        assert account.lifetime_earned == earned
        assert account.balance == earned - account.lifetime_spent - expired
    assert Account.objects.count() == 40


def test_make_run_demo_has_orders_points_tiers_coupons_and_redemptions_and_loads_once():
    from loyalty.models import Coupon, Redemption

    first = seed("--members", "300", "--no-staff")
    counts = {
        "members": Member.objects.count(),
        "orders": Order.objects.count(),
        "accounts": Account.objects.count(),
        "above basic": Account.objects.exclude(tier__code="basic").count(),
        "coupons": Coupon.objects.count(),
        "redemptions": Redemption.objects.count(),
    }
    assert counts["members"] == counts["accounts"] == 300
    assert counts["orders"] > 300 and counts["above basic"] > 30
    assert counts["coupons"] > 60 and counts["redemptions"] > 30
    assert "demo members added: 300" in first
    second = seed("--members", "300", "--no-staff")  # make run again: nothing more
    assert "demo members added: 0" in second
    assert Member.objects.count() == 300 and Redemption.objects.count() == counts["redemptions"]
