"""The members part of the demo program: channels, a staff login, and realistic members for demos and benchmarks."""

import datetime as dt
import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from . import services
from .models import Channel, Consent, Event, Member, MemberTag, Order, OrderLine, Tag

DEMO_CHANNELS = [
    ("tmall", "天猫旗舰店", Channel.Kind.MARKETPLACE),
    ("jd", "京东自营", Channel.Kind.MARKETPLACE),
    ("douyin", "抖音小店", Channel.Kind.MARKETPLACE),
    ("mini-program", "微信小程序", Channel.Kind.MINI_PROGRAM),
    ("store-sh-nanjingxilu", "线下门店-上海南京西路", Channel.Kind.STORE),
    ("store-bj-sanlitun", "线下门店-北京三里屯", Channel.Kind.STORE),
    ("web", "官网", Channel.Kind.WEB),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红玲芬燕彬鹏辉宇浩凯婷雪琳晨欣怡涵轩诺佳"
CITIES = ["上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京", "重庆", "西安", "苏州", "天津"]
MOBILE_PREFIXES = [
    "130",
    "131",
    "132",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "158",
    "159",
    "186",
    "187",
    "188",
    "189",
]
CATEGORIES = [("skincare", "护肤"), ("makeup", "彩妆"), ("fragrance", "香水"), ("bodycare", "身体护理")]
BATCH = 5000
DEMO_TAG = "演示数据 demo"
DEMO_MEMBERS = 300  # what `make run` loads (DEMO_MEMBERS=0 make run for none)


def demo_channels() -> list[Channel]:
    return [services.channel_get_or_create(code=code, name=name, kind=kind) for code, name, kind in DEMO_CHANNELS]


def demo_staff_login(*, username: str, password: str) -> tuple[object, bool]:
    """A superuser for the demo; an existing one keeps its password (so re-running never locks anyone out)."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None:
        return user, False
    return user_model.objects.create_superuser(username=username, password=password, email=""), True


def demo_members_ensure(*, count: int) -> list[int]:
    """Top the demo members up to `count` (tagged 演示数据 demo, so that staff can filter them out): a second run adds
    none. Returns the ids of the members added; the higher apps give them their standing through
    `events.demo_members_created` (points, tiers, coupons, redemptions)."""
    tag, _created = Tag.objects.get_or_create(name=DEMO_TAG, defaults={"description": "seed_demo"})
    have = MemberTag.objects.filter(tag=tag).count()
    if have >= count:
        return []
    member_ids = demo_members_create(count=count - have, seed=2026 + have)
    MemberTag.objects.bulk_create(
        [MemberTag(member_id=pk, tag=tag, source=MemberTag.Source.IMPORT) for pk in member_ids], batch_size=BATCH
    )
    return member_ids


def demo_members_create(*, count: int, seed: int = 2026, orders_per_member: int = 3) -> list[int]:
    """Add `count` members with Chinese names, valid mobile numbers, consents, orders and check-ins, in batches.
    Returns their ids."""
    rng = random.Random(seed)
    channels = demo_channels()
    now = timezone.now()
    created, member_ids = 0, []
    taken = set(Member.objects.filter(phone__isnull=False).values_list("phone", flat=True))
    while created < count:
        size = min(BATCH, count - created)
        with transaction.atomic():
            numbers = services.member_numbers_allocate(count=size)
            members = []
            for member_no in numbers:
                while True:
                    phone = "+86" + rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
                    if phone not in taken:
                        taken.add(phone)
                        break
                joined = now - dt.timedelta(days=rng.randrange(1, 3 * 365), minutes=rng.randrange(1440))
                members.append(
                    Member(
                        member_no=member_no,
                        name=rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2]))),
                        phone=phone,
                        email=f"{member_no}@example.com" if rng.random() < 0.6 else None,
                        gender=rng.choice(["male", "female", "female", "unknown"]),
                        birthday=dt.date(1965, 1, 1) + dt.timedelta(days=rng.randrange(365 * 40)),
                        city=rng.choice(CITIES),
                        country="CN",
                        joined_at=joined,
                        join_channel=rng.choice(channels),
                    )
                )
            Member.objects.bulk_create(members, batch_size=BATCH)
            members = list(Member.objects.filter(member_no__in=numbers))
            member_ids += [member.pk for member in members]
            consents, orders, events = [], [], []
            for member in members:
                for channel in ("sms", "email", "wechat"):
                    consents.append(
                        Consent(
                            member=member,
                            channel=channel,
                            granted=rng.random() < 0.7,
                            source="demo",
                            updated_at=member.joined_at,
                        )
                    )
                for index in range(rng.randrange(orders_per_member + 1)):
                    occurred = member.joined_at + (now - member.joined_at) * rng.random()
                    orders.append(
                        Order(
                            channel=member.join_channel,
                            order_id=f"DEMO-{member.member_no}-{index}",
                            member=member,
                            amount=Decimal(rng.randrange(3000, 300000)) / 100,
                            occurred_at=occurred,
                        )
                    )
                if rng.random() < 0.5:
                    events.append(
                        Event(
                            channel=member.join_channel,
                            event_id=f"DEMO-{member.member_no}-checkin",
                            member=member,
                            type=Event.Type.CHECK_IN,
                            occurred_at=member.joined_at + dt.timedelta(days=1),
                        )
                    )
            Consent.objects.bulk_create(consents, batch_size=BATCH)
            Order.objects.bulk_create(orders, batch_size=BATCH)
            lines = []
            for order in Order.objects.filter(order_id__in=[order.order_id for order in orders]).only("id", "amount"):
                sku, category = rng.choice(CATEGORIES)
                lines.append(OrderLine(order=order, sku=f"SKU-{sku}", name=category, category=sku, amount=order.amount))
            OrderLine.objects.bulk_create(lines, batch_size=BATCH)
            Event.objects.bulk_create(events, batch_size=BATCH)
        created += size
    return member_ids
