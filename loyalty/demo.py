"""The loyalty part of the demo program of API.md: programme CNY, four tiers, the event and referral rules."""

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from core.errors import DomainError
from members.models import Channel, Member, Order

from .models import ChannelProgram, CouponTemplate, EarningRule, Program, Reward, Tier, TierChange

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
    """What the loyalty app gives demo members (`seed_demo --members N`), after their orders (analytics adds a year of
    them): each an account with the points history those orders make (`points_history.points_history_record`):
    every order earns on its date (one point per unit of spend), `CNY10` coupons redeemed over the last year by two
    members in three when they have the points, and points expiring a year after they were earned; then the tier
    their spend qualifies for (`history.tiers_count_history`, as for an imported order history), and today's use of
    the mall: coupons issued by staff to every fifth member, coupons and gifts (waiting to ship) redeemed by every
    fourth member who has the points, through the redemption service like the API's. Set-based or batched but for
    today's redemptions (a few per hundred members); deterministic, and once per member."""
    program = Program.objects.filter(code="demo").first()
    if program is None or not member_ids:
        return {}
    from . import history, ledger, points_history, rewards

    ledger.accounts_open(member_ids=member_ids, program=program)
    channel = Channel.objects.filter(code="mini-program", program_link__program=program).first()
    members = dict(Member.objects.filter(pk__in=member_ids).values_list("pk", "member_no"))
    recorded = points_history.points_history_record(
        program=program,
        member_ids=member_ids,
        redemptions=demo_redemptions_over_the_year(members=members, channel=channel) if channel else [],
    )
    history.tiers_count_history(
        orders=list(
            Order.objects.filter(member_id__in=member_ids).values_list("pk", "member_id", "channel_id", "occurred_at")
        )
    )
    _demo_tier_changes_dated(program=program, member_ids=member_ids)
    # Coupons handed out by staff to every fifth member, and redemptions by members who have the points.
    coupon = CouponTemplate.objects.filter(program=program, code="cny10").first()
    if coupon is not None:
        rewards.coupons_issue_to_members(template=coupon, member_ids=sorted(member_ids)[::5])
    redeemed = 0
    if channel is not None:
        balances = dict(
            Member.objects.filter(
                pk__in=member_ids, status=Member.Status.ACTIVE, accounts__program=program
            ).values_list("pk", "accounts__balance")
        )
        today = Member.objects.in_bulk([pk for pk in sorted(balances)[::4] if balances[pk] >= 1000])
        for index, member in enumerate(today.values()):
            reward_code = "MUG" if index % 5 == 0 and balances[member.pk] >= 3000 else "CNY10"
            try:
                rewards.reward_redeem(
                    channel=channel,
                    member=member,
                    reward_code=reward_code,
                    quantity=1,
                    redemption_id=f"DEMO-{member.member_no}-{reward_code}",
                    shipping={"name": member.name, "phone": member.phone, "address": f"{member.city} 演示路 1 号"},
                )
                redeemed += 1
            except DomainError:
                continue  # out of stock, a limit: the demo goes on without this one
    return {"members": len(member_ids), "redemptions": redeemed, "history": recorded}


def _demo_tier_changes_dated(*, program, member_ids):
    """The demo's tier records dated as if the programme had run all along: each member's entry ("joined") when the
    member joined, an upgrade at the member's last order (the dashboard's tier distribution and flow over past months
    then show the demo's tiers, not an empty past and everything today)."""
    changes = TierChange.objects.filter(account__program=program, account__member_id__in=member_ids)
    changes.filter(reason=TierChange.Reason.JOINED).update(
        created_at=Subquery(Member.objects.filter(accounts__id=OuterRef("account_id")).values("joined_at")[:1])
    )
    last_order = (
        Order.objects.filter(member__accounts__id=OuterRef("account_id"))
        .order_by()
        .values("member_id")
        .annotate(last=Max("occurred_at"))
        .values("last")[:1]
    )
    changes.filter(reason=TierChange.Reason.UPGRADE).update(created_at=Subquery(last_order))


def demo_redemptions_over_the_year(*, members, channel, now=None) -> list[dict]:
    """`CNY10` redemptions planned over the last year for two demo members in three ({member id: member number}),
    three each, four months apart at dates fixed by the member (the history refuses those the balance does not cover
    then)."""
    now = now or timezone.now()
    planned = []
    for pk, member_no in sorted(members.items()):
        if pk % 3 == 0:
            continue
        for index in range(3):  # four months apart, the first anywhere in the year
            days_ago = 2 + (pk * 53 + index * 119) % 358
            planned.append(
                {
                    "member_id": pk,
                    "reward_code": "CNY10",
                    "at": now - dt.timedelta(days=days_ago, minutes=(pk * 13 + index * 7) % 720),
                    "redemption_id": f"DEMO-H-{member_no}-{index}",
                    "channel": channel,
                }
            )
    return planned
