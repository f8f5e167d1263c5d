"""The demo's part of campaigns (API.md § Journeys): the four journeys, a segment and a draft campaign to try."""

from loyalty.models import CouponTemplate, Program

from . import services
from .models import Campaign, Journey, JourneyStep, ProgramMessaging, Segment

DEMO_JOURNEYS = [
    # code, name, trigger, days, min_points, steps [(kind, body or template code)]
    (
        "welcome",
        "欢迎新会员 Welcome",
        Journey.Trigger.JOINED,
        None,
        None,
        [("message", "{name}，欢迎加入会员俱乐部！您的会员号 {member_no}。回TD退订")],
    ),
    (
        "birthday",
        "生日关怀 Birthday",
        Journey.Trigger.BIRTHDAY,
        7,
        None,
        [
            ("coupon", "cny10"),
            ("message", "{name}，生日快乐！送您一张10元券 {coupon_code}，满50可用，30天内有效。回TD退订"),
        ],
    ),
    (
        "points_expiring",
        "积分到期提醒 Points expiring",
        Journey.Trigger.POINTS_EXPIRING,
        30,
        100,
        [("message", "{name}，您有 {points_expiring} 积分将在30天内到期，快来积分商城兑换吧。回TD退订")],
    ),
    (
        "winback",
        "流失召回 Win-back",
        Journey.Trigger.NO_ORDER,
        90,
        None,
        [
            ("coupon", "cny10"),
            ("message", "{name}，好久不见！送您一张10元券 {coupon_code}，满50可用。回TD退订"),
        ],
    ),
]


def demo_campaigns(*, program: Program, stdout=None) -> None:
    ProgramMessaging.objects.get_or_create(program=program)
    templates = {template.code: template for template in CouponTemplate.objects.filter(program=program)}
    for code, name, trigger, days, min_points, steps in DEMO_JOURNEYS:
        journey, created = Journey.objects.get_or_create(
            program=program,
            code=code,
            defaults={"name": name, "trigger": trigger, "days": days, "min_points": min_points, "channel": "sms"},
        )
        if created:
            for position, (kind, value) in enumerate(steps):
                JourneyStep.objects.create(
                    journey=journey,
                    position=position,
                    kind=kind,
                    body=value if kind == "message" else "",
                    coupon_template=templates.get(value) if kind == "coupon" else None,
                )
    if not Segment.objects.filter(program=program, code="big-spenders").exists():
        segment = services.segment_create(
            program=program,
            code="big-spenders",
            name="年消费满千 Spent 1,000+ in a year",
            rule={"all": [{"field": "spend", "op": "gte", "value": "1000.00", "days": 365}]},
        )
        if not Campaign.objects.filter(program=program, code="double-12").exists():
            services.campaign_create(
                program=program,
                code="double-12",
                name="双十二会员专享 Double 12",
                segment=segment,
                channel="sms",
                variants=[
                    {
                        "code": "A",
                        "share": "0.5",
                        "message": {"body": "{name}，双十二会员专享：全场满200减30。回TD退订"},
                    },
                    {
                        "code": "B",
                        "share": "0.5",
                        "message": {"body": "{name}，您是{tier}，双十二专享券 {coupon_code}。回TD退订"},
                    },
                ],
                control_share="0.1",
                coupon_template=templates.get("cny10"),
            )
    if stdout is not None:
        stdout.write(
            f"journeys: {', '.join(code for code, *_rest in DEMO_JOURNEYS)}; "
            "segment big-spenders; campaign double-12 (draft)"
        )


def seed_demo(*, stdout=None):
    program = Program.objects.filter(code="demo").first()
    if program is not None:
        demo_campaigns(program=program, stdout=stdout)
