"""Segment rules (API.md § Segments) against hand-made members of the demo programme: every field and operator,
the edges of `between`, members without orders, only active members, one programme's members only."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation

from campaigns import selectors, services
from campaigns.models import Segment
from core.errors import ValidationFailed
from loyalty import ledger
from loyalty.models import Account, Program, Tier
from members import services as member_services
from members.models import Member
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """These tests read the messages in English; tests/config checks that they are all in Chinese too."""
    with translation.override("en"):
        yield


SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=SHANGHAI)


def join(program, **fields):
    member = MemberFactory(**fields)
    ledger.account_get_or_create(member=member, program=program)
    return member


def buy(channel, member, order_id, amount, days_ago, *, categories=()):
    lines = [
        {"sku": f"{order_id}-{n}", "category": c, "quantity": 1, "amount": Decimal(amount) / max(len(categories), 1)}
        for n, c in enumerate(categories)
    ]
    order, _ = member_services.order_record(
        channel=channel,
        order_id=order_id,
        member=member,
        amount=Decimal(amount),
        occurred_at=NOW - dt.timedelta(days=days_ago),
        lines=lines,
        award=False,
    )
    return order


def matching(program, rule):
    return set(selectors.rule_accounts(program=program, rule=rule, now=NOW).values_list("member__name", flat=True))


def condition(field, op, value, **extra):
    return {"all": [{"field": field, "op": op, "value": value, **extra}]}


def set_tier(program, member, code):
    Account.objects.filter(member=member, program=program).update(tier=Tier.objects.get(program=program, code=code))


def test_tier_with_every_equality_operator(program):
    for name, code in (("a", "basic"), ("b", "silver"), ("c", "gold")):
        set_tier(program, join(program, name=name), code)
    assert matching(program, condition("tier", "eq", "silver")) == {"b"}
    assert matching(program, condition("tier", "ne", "silver")) == {"a", "c"}
    assert matching(program, condition("tier", "in", ["basic", "gold"])) == {"a", "c"}
    assert matching(program, condition("tier", "not_in", ["basic", "gold"])) == {"b"}


def test_tag_city_gender_and_join_channel(program, channel):
    other = ChannelFactory(code="tmall")
    a = join(program, name="a", city="上海", gender="female", join_channel=channel)
    join(program, name="b", city="北京", gender="male", join_channel=other)
    join(program, name="c", city="", gender="unknown")
    member_services.members_tag(member_ids=[a.pk], tag=member_services.tag_get_or_create(name="VIP"))
    assert matching(program, condition("tag", "eq", "VIP")) == {"a"}
    assert matching(program, condition("tag", "ne", "VIP")) == {"b", "c"}
    assert matching(program, condition("city", "in", ["上海", "北京"])) == {"a", "b"}
    assert matching(program, condition("gender", "eq", "male")) == {"b"}
    assert matching(program, condition("join_channel", "eq", "tmall")) == {"b"}
    assert matching(program, condition("join_channel", "not_in", ["tmall"])) == {"a", "c"}


def test_joined_at_between_is_inclusive_in_the_programmes_days(program):
    join(program, name="before", joined_at=dt.datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI))
    join(program, name="first", joined_at=dt.datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI))
    join(program, name="last", joined_at=dt.datetime(2026, 4, 30, 23, 59, tzinfo=SHANGHAI))
    join(program, name="after", joined_at=dt.datetime(2026, 5, 1, 0, 0, tzinfo=SHANGHAI))
    assert matching(program, condition("joined_at", "between", ["2026-04-01", "2026-04-30"])) == {"first", "last"}
    assert matching(program, condition("joined_at", "gte", "2026-05-01")) == {"after"}
    assert matching(program, condition("joined_at", "lte", "2026-03-31")) == {"before"}
    assert matching(program, condition("joined_at", "eq", "2026-04-30")) == {"last"}


def test_birthday_month(program):
    join(program, name="may", birthday=dt.date(1990, 5, 17))
    join(program, name="dec", birthday=dt.date(1985, 12, 1))
    join(program, name="none", birthday=None)
    assert matching(program, condition("birthday_month", "eq", 5)) == {"may"}
    assert matching(program, condition("birthday_month", "between", [5, 12])) == {"may", "dec"}
    assert matching(program, condition("birthday_month", "between", [6, 11])) == set()
    assert matching(program, condition("birthday_month", "ne", 5)) == {"dec"}
    assert matching(program, condition("birthday_month", "in", [12, 1])) == {"dec"}


def test_points_balance_edges(program):
    for name, points in (("low", 99), ("edge", 100), ("high", 500)):
        member = join(program, name=name)
        Account.objects.filter(member=member).update(balance=points)
    assert matching(program, condition("points_balance", "between", [100, 500])) == {"edge", "high"}
    assert matching(program, condition("points_balance", "lte", 100)) == {"low", "edge"}
    assert matching(program, condition("points_balance", "gte", 101)) == {"high"}
    assert matching(program, condition("points_balance", "ne", 100)) == {"low", "high"}


def test_points_expiring_within_days(program):
    soon, later = join(program, name="soon"), join(program, name="later")
    join(program, name="none")
    ledger.points_award(account=Account.objects.get(member=soon), points=150, reference="t", reason="test")
    from loyalty.models import PointsLot

    PointsLot.objects.filter(account__member=soon).update(expires_at=NOW + dt.timedelta(days=20))
    ledger.points_award(account=Account.objects.get(member=later), points=300, reference="t", reason="test")
    PointsLot.objects.filter(account__member=later).update(expires_at=NOW + dt.timedelta(days=90))
    assert matching(program, condition("points_expiring", "gte", 100, days=30)) == {"soon"}
    assert matching(program, condition("points_expiring", "gte", 100, days=120)) == {"soon", "later"}
    assert matching(program, condition("points_expiring", "eq", 0, days=30)) == {"later", "none"}


def test_orders_count_and_spend_within_days_and_members_without_orders(program, channel):
    one, two, _none = join(program, name="one"), join(program, name="two"), join(program, name="none")
    old = join(program, name="old")
    buy(channel, one, "o1", "100.00", days_ago=5)
    buy(channel, two, "t1", "300.00", days_ago=10)
    buy(channel, two, "t2", "200.00", days_ago=40)
    buy(channel, old, "x1", "1000.00", days_ago=400)
    refunded = buy(channel, two, "t3", "50.00", days_ago=3)
    member_services.refund_record(channel=channel, order=refunded, refund_id="r1", amount=Decimal("50.00"))
    assert matching(program, condition("orders_count", "gte", 1, days=30)) == {"one", "two"}
    assert matching(program, condition("orders_count", "eq", 0, days=30)) == {"none", "old"}
    assert matching(program, condition("orders_count", "lte", 1, days=60)) == {"one", "none", "old"}
    assert matching(program, condition("orders_count", "gte", 2, days=60)) == {"two"}
    assert matching(program, condition("orders_count", "eq", 2)) == {"two"}  # ever; the refunded order not counted
    assert matching(program, condition("spend", "between", ["100.00", "300.00"], days=30)) == {"one", "two"}
    assert matching(program, condition("spend", "gte", "500", days=60)) == {"two"}
    assert matching(program, condition("spend", "lte", "0", days=30)) == {"none", "old"}
    assert matching(program, condition("spend", "gte", 1000)) == {"old"}


def test_last_order_days_ago(program, channel):
    recent, lapsed, _never = join(program, name="recent"), join(program, name="lapsed"), join(program, name="never")
    buy(channel, recent, "r", "10", days_ago=3)
    buy(channel, lapsed, "l", "10", days_ago=120)
    assert matching(program, condition("last_order_days_ago", "lte", 30)) == {"recent"}
    assert matching(program, condition("last_order_days_ago", "gte", 90)) == {"lapsed", "never"}
    assert matching(program, condition("last_order_days_ago", "between", [100, 130])) == {"lapsed"}
    assert matching(program, condition("last_order_days_ago", "eq", 3)) == {"recent"}


def test_bought_category_within_days(program, channel):
    tea, coffee = join(program, name="tea"), join(program, name="coffee")
    buy(channel, tea, "a", "30", days_ago=10, categories=["茶"])
    buy(channel, coffee, "b", "30", days_ago=100, categories=["咖啡", "茶"])
    assert matching(program, condition("bought_category", "eq", "茶")) == {"tea", "coffee"}
    assert matching(program, condition("bought_category", "eq", "茶", days=30)) == {"tea"}
    assert matching(program, condition("bought_category", "ne", "咖啡")) == {"tea"}


def test_consent_given_and_not_withdrawn(program):
    given, withdrawn, _never = join(program, name="given"), join(program, name="withdrawn"), join(program, name="never")
    member_services.member_update(member=given, data={}, consents={"sms": True})
    member_services.member_update(member=withdrawn, data={}, consents={"sms": True})
    member_services.member_update(member=withdrawn, data={}, consents={"sms": False})
    assert matching(program, condition("consent", "eq", "sms")) == {"given"}
    assert matching(program, condition("consent", "ne", "sms")) == {"withdrawn", "never"}


def test_groups_nest_with_all_and_any(program):
    for name, city, code in (("a", "上海", "gold"), ("b", "北京", "gold"), ("c", "上海", "basic")):
        set_tier(program, join(program, name=name, city=city), code)
    rule = {
        "any": [
            {"all": [{"field": "city", "op": "eq", "value": "上海"}, {"field": "tier", "op": "eq", "value": "gold"}]},
            {"field": "city", "op": "eq", "value": "北京"},
        ]
    }
    assert matching(program, rule) == {"a", "b"}


def test_only_active_members_of_this_programme_match(program, channel):
    join(program, name="active")
    frozen = join(program, name="frozen")
    Member.objects.filter(pk=frozen.pk).update(status=Member.Status.FROZEN)
    other = Program.objects.create(code="hk", name="HK", currency="HKD")
    Tier.objects.create(program=other, code="basic", name="Basic", rank=0, upgrade_threshold=0)
    outsider = MemberFactory(name="outsider")
    ledger.account_get_or_create(member=outsider, program=other)
    assert matching(program, {"all": [{"field": "points_balance", "op": "gte", "value": 0}]}) == {"active"}


def test_a_segment_condition_uses_another_segments_rule_and_a_cycle_is_refused(program):
    set_tier(program, join(program, name="g", city="上海"), "gold")
    join(program, name="s", city="上海")
    gold = services.segment_create(program=program, code="gold", name="Gold", rule=condition("tier", "eq", "gold"))
    shanghai_gold = services.segment_create(
        program=program,
        code="sh-gold",
        name="Shanghai gold",
        rule={
            "all": [{"field": "segment", "op": "eq", "value": "gold"}, {"field": "city", "op": "eq", "value": "上海"}]
        },
    )
    assert shanghai_gold.count == 1
    with pytest.raises(ValidationFailed) as refused:
        services.segment_update(segment=gold, rule=condition("segment", "eq", "sh-gold"))
    assert "itself" in str(refused.value.fields["rule"][0])
    gold.refresh_from_db()
    assert gold.rule == condition("tier", "eq", "gold")
    with pytest.raises(Exception, match="sh-gold"):
        services.segment_delete(segment=gold)
    assert Segment.objects.filter(code="gold").exists()


def test_a_list_segment_holds_its_members(program):
    a, b = join(program, name="a"), join(program, name="b")
    listed = services.segment_create(program=program, code="vip-list", name="VIP list", member_ids=[a.pk])
    assert listed.count == 1
    assert list(selectors.segment_member_numbers(segment=listed)) == [a.member_no]
    services.segment_update(segment=listed, member_ids=[b.pk])
    assert list(selectors.segment_member_numbers(segment=listed)) == [b.member_no]
    assert matching(program, condition("segment", "eq", "vip-list")) == {"b"}


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"all": [{"field": "shoe_size", "op": "eq", "value": 42}]}, "unknown field"),
        ({"all": [{"field": "tier", "op": "gte", "value": "gold"}]}, "all[0].op"),
        ({"all": [{"field": "points_balance", "op": "gte", "value": "lots"}]}, "whole number"),
        ({"all": [{"field": "points_balance", "op": "between", "value": [500, 100]}]}, "low"),
        ({"all": [{"field": "birthday_month", "op": "eq", "value": 13}]}, "1 to 12"),
        ({"all": [{"field": "tier", "op": "eq", "value": "platinum"}]}, "tier code"),
        ({"all": [{"field": "points_expiring", "op": "gte", "value": 100}]}, "days"),
        ({"all": [{"field": "city", "op": "eq", "value": "上海", "days": 30}]}, "no days"),
        ({"all": []}, "group"),
        ({"some": []}, "group or a condition"),
        ([1, 2], "group or a condition"),
    ],
)
def test_a_bad_rule_is_refused_with_where_and_what(program, rule, says):
    with pytest.raises(ValidationFailed) as refused:
        services.segment_create(program=program, code="bad", name="Bad", rule=rule)
    assert says in str(refused.value.fields["rule"][0])
    assert not Segment.objects.exists()


def test_a_count_is_one_query(program, channel, django_assert_num_queries):
    join(program, name="a", city="上海")
    rule = {
        "all": [
            {"field": "city", "op": "eq", "value": "上海"},
            {"field": "orders_count", "op": "eq", "value": 0, "days": 30},
            {"field": "tag", "op": "ne", "value": "VIP"},
            {"field": "consent", "op": "ne", "value": "sms"},
        ]
    }
    accounts = selectors.rule_accounts(program=program, rule=rule, now=timezone.now())
    with django_assert_num_queries(1):
        assert accounts.count() == 1


def test_rfm_code_and_clv_scores_from_analytics(program):
    from analytics.models import MemberScore

    champion, sleeper = join(program, name="champion"), join(program, name="sleeper")
    join(program, name="unscored")
    MemberScore.objects.create(member=champion, program=program, rfm="555", p_alive=0.92, clv=Decimal("800.00"))
    MemberScore.objects.create(member=sleeper, program=program, rfm="155", p_alive=0.12, clv=Decimal("300.00"))
    assert matching(program, condition("rfm", "eq", "555")) == {"champion"}
    assert matching(program, condition("rfm", "in", ["555", "155"])) == {"champion", "sleeper"}
    assert matching(program, condition("rfm", "ne", "555")) == {"sleeper", "unscored"}
    assert matching(program, condition("p_alive", "lte", 0.2)) == {"sleeper"}
    assert matching(program, condition("clv", "between", [300, 800])) == {"champion", "sleeper"}
    assert matching(program, condition("p_alive", "ne", 0.92)) == {"sleeper"}
    with pytest.raises(ValidationFailed):
        services.segment_create(program=program, code="x", name="x", rule=condition("rfm", "eq", "655"))
