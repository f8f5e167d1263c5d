"""The loyalty part of the demo program of API.md: programme CNY, four tiers, the event and referral rules."""

from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.errors import DomainError
from members.models import Channel, Member, Order

from .models import ChannelProgram, CouponTemplate, EarningRule, Program, Reward, Tier

DEMO_TIERS = [
    # code, name, English, rank, threshold, multiplier, benefits
    ("basic", "普通会员", "Basic", 0, "0", "1.0", ["积分累计"]),
    ("silver", "银卡会员", "Silver", 1, "1000.00", "1.2", ["1.2 倍积分", "生日礼遇"]),
    ("gold", "金卡会员", "Gold", 2, "5000.00", "1.5", ["1.5 倍积分", "生日礼遇", "95 折"]),
    ("diamond", "钻石会员", "Diamond", 3, "20000.00", "2.0", ["2 倍积分", "生日礼遇", "9 折", "包邮"]),
]
DEMO_EVENT_RULES = [
    # name, event type, points, limit, period
    ("签到 check-in", "check_in", 5, 1, "day"),
    ("评价 review", "review", 20, 5, "month"),
    ("分享 share", "share", 10, 3, "day"),
    ("完善资料 profile completed", "profile_completed", 50, 1, "ever"),
]


@transaction.atomic
def demo_program(*, stdout=None) -> Program:
    program, _created = Program.objects.get_or_create(
        code="demo",
        defaults={
            "name": "会员计划 Demo",
            "currency": "CNY",
            "time_zone": "Asia/Shanghai",
            "points_per_unit": Decimal("1"),
            "pending_days": 0,
            "expiry_policy": Program.ExpiryPolicy.DAYS_AFTER_AVAILABLE,
            "expiry_days": 365,
        },
    )
    for code, name, name_en, rank, threshold, multiplier, benefits in DEMO_TIERS:
        Tier.objects.get_or_create(
            program=program,
            code=code,
            defaults={
                "name": name,
                "name_en": name_en,
                "rank": rank,
                "upgrade_threshold": Decimal(threshold),
                "retention_threshold": Decimal(threshold),
                "points_multiplier": Decimal(multiplier),
                "discount_rate": {"gold": Decimal("0.95"), "diamond": Decimal("0.90")}.get(code, Decimal(1)),
                "free_shipping": code == "diamond",
                "benefits": benefits,
            },
        )
    for name, event_type, points, limit, period in DEMO_EVENT_RULES:
        EarningRule.objects.get_or_create(
            program=program,
            kind=EarningRule.Kind.EVENT,
            event_type=event_type,
            defaults={"name": name, "points": points, "limit_count": limit, "limit_period": period},
        )
    EarningRule.objects.get_or_create(
        program=program, kind=EarningRule.Kind.REFERRAL, defaults={"name": "推荐有礼 referral", "points": 200}
    )
    templates = {}
    for code, name, value, min_spend in (
        ("CNY10", "10元满减券", "10.00", "50.00"),
        ("CNY50", "50元满减券", "50.00", "200.00"),
    ):
        templates[code], _created = CouponTemplate.objects.get_or_create(
            program=program,
            code=code.lower(),
            defaults={
                "name": name,
                "kind": "amount_off",
                "value": Decimal(value),
                "min_spend": Decimal(min_spend),
                "valid_days": 30,
            },
        )
    silver = Tier.objects.get(program=program, code="silver")
    for code, name, kind, cost, extra in (
        ("CNY10", "10元满减券 (满50可用)", "coupon", 1000, {"coupon_template": templates["CNY10"]}),
        (
            "CNY50",
            "50元满减券 (满200可用)",
            "coupon",
            4500,
            {"coupon_template": templates["CNY50"], "min_tier": silver},
        ),
        ("MUG", "品牌马克杯", "gift", 3000, {"stock": 100, "per_member_limit": 1, "limit_period": "ever"}),
    ):
        Reward.objects.get_or_create(
            program=program, code=code, defaults={"name": name, "kind": kind, "points_cost": cost, **extra}
        )
    # Every channel without a programme joins the demo programme.
    linked = ChannelProgram.objects.values("channel_id")
    ChannelProgram.objects.bulk_create(
        [ChannelProgram(channel=channel, program=program) for channel in Channel.objects.exclude(pk__in=linked)]
    )
    if stdout is not None:
        stdout.write(f"programme: {program.code} ({program.currency}), tiers: {', '.join(t[0] for t in DEMO_TIERS)}")
    return program


def demo_members_standing(*, member_ids) -> dict:
    """What the loyalty app gives demo members (`seed_demo --members N`): each an account, the points and tier their
    demo orders would have earned (one point per unit of spend; the tier from the spend of the last year) as opening
    balances, and then some use of them: coupons issued, coupons and gifts redeemed. Set-based for the standing;
    the redemptions (a few per hundred members) go through the redemption service like the API's.
    A generator of more history (a year of orders for analytics) extends this function."""
    program = Program.objects.filter(code="demo").first()
    if program is None or not member_ids:
        return {}
    from . import ledger, opening, rewards

    ledger.accounts_open(member_ids=member_ids, program=program)
    tiers = list(program.tiers.order_by("-rank"))
    year_ago = timezone.now() - timezone.timedelta(days=365)
    spend = dict(
        Order.objects.filter(member_id__in=member_ids, occurred_at__gte=year_ago)
        .values("member_id")
        .annotate(total=Sum("amount"))
        .values_list("member_id", "total")
    )
    lifetime = dict(
        Order.objects.filter(member_id__in=member_ids)
        .values("member_id")
        .annotate(total=Sum("amount"))
        .values_list("member_id", "total")
    )
    entries = []
    for member_id in member_ids:
        year = spend.get(member_id) or Decimal(0)
        tier = next(t for t in tiers if year >= t.upgrade_threshold)
        entries.append({"member_id": member_id, "points_balance": int(lifetime.get(member_id) or 0), "tier": tier.code})
    for start in range(0, len(entries), 5000):
        opening.opening_balances_record(program=program, entries=entries[start : start + 5000])
    # Coupons handed out by staff to every fifth member, and redemptions by members who have the points.
    coupon = CouponTemplate.objects.filter(program=program, code="cny10").first()
    if coupon is not None:
        rewards.coupons_issue_to_members(template=coupon, member_ids=sorted(member_ids)[::5])
    channel = Channel.objects.filter(code="mini-program", program_link__program=program).first()
    redeemed = 0
    if channel is not None:
        balances = dict(
            Member.objects.filter(
                pk__in=member_ids, status=Member.Status.ACTIVE, accounts__program=program
            ).values_list("pk", "accounts__balance")
        )
        members = Member.objects.in_bulk([pk for pk in sorted(balances)[::4] if balances[pk] >= 1000])
        for index, member in enumerate(members.values()):
            reward_code = "MUG" if index % 5 == 0 and balances[member.pk] >= 3000 else "CNY10"
            try:
                rewards.reward_redeem(
                    channel=channel,
                    member=member,
                    reward_code=reward_code,
                    quantity=1,
                    redemption_id=f"DEMO-{member.member_no}-{reward_code}",
                )
                redeemed += 1
            except DomainError:
                continue  # out of stock, a limit: the demo goes on without this one
    return {"members": len(member_ids), "redemptions": redeemed}
