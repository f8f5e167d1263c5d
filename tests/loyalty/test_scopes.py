"""Scopes of earning rules, rewards and coupon templates: picked from what exists, stored as lists, and matched as
whole values ("tmall" does not cover "mall")."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty import rewards, rules
from loyalty.errors import CouponNotValid
from loyalty.models import Coupon, CouponTemplate, EarningRule, Reward, Tier
from members import services as member_services

pytestmark = pytest.mark.django_db


def _rule_post(program, **overrides):
    data = {
        "program": program.pk,
        "name": "会员日 3倍",
        "kind": "order",
        "is_active": "on",
        "priority": 100,
        "valid_from": "",
        "valid_until": "",
        "skus": "",
        "min_order_amount": "",
        "points": 0,
        "multiplier": "3",
        "combine": "stack",
        "welcome_points": 0,
        "event_type": "",
        "event_name": "",
        "limit_count": "",
        "limit_period": "",
    }
    data.update(overrides)
    return data


@pytest.fixture
def shops(channel):
    tmall = member_services.channel_get_or_create(code="tmall", name="天猫旗舰店")  # joins the only programme
    mall = member_services.channel_get_or_create(code="mall", name="积分商城")
    member = member_services.member_create(name="李娜", phone="+8613900000001")
    order, _created = member_services.order_record(
        channel=channel,
        order_id="S-1",
        member=member,
        amount=Decimal("100.00"),
        occurred_at=timezone.now(),
        store="南京西路店",
        lines=[{"sku": "A1", "name": "面霜", "category": "护肤", "quantity": 1, "amount": Decimal("100.00")}],
    )
    assert order.store == "南京西路店"
    return tmall, mall


def test_rule_form_offers_checkboxes_and_searchable_lists_of_what_exists(admin_client, program, shops):
    page = admin_client.get(reverse("admin:loyalty_earningrule_add")).content.decode()
    assert 'type="checkbox" name="weekdays" value="3"' in page
    assert 'class="selectfilter"' in page  # Django admin's FilteredSelectMultiple
    for option in ('value="tmall"', 'value="mall"', 'value="南京西路店"', 'value="护肤"'):
        assert option in page


def test_rule_saved_from_the_widgets_is_lists_of_exact_values(admin_client, program, shops):
    response = admin_client.post(
        reverse("admin:loyalty_earningrule_add"),
        _rule_post(
            program,
            weekdays=["3"],
            channel_codes=["tmall"],
            stores=["南京西路店"],
            categories=["护肤"],
            skus="A1，B2\nC3",
        ),
    )
    assert response.status_code == 302
    rule = EarningRule.objects.get(name="会员日 3倍")
    assert (rule.weekdays, rule.channel_codes, rule.stores, rule.categories, rule.skus) == (
        [3],
        ["tmall"],
        ["南京西路店"],
        ["护肤"],
        ["A1", "B2", "C3"],
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("weekdays", "周三"), ("weekdays", "8"), ("channel_codes", "tma"), ("stores", "不存在的店"), ("categories", "x")],
)
def test_rule_form_refuses_what_does_not_exist_with_a_message(admin_client, program, shops, field, value):
    before = EarningRule.objects.count()
    response = admin_client.post(reverse("admin:loyalty_earningrule_add"), _rule_post(program, **{field: [value]}))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors[field]
    assert EarningRule.objects.count() == before


def test_reward_form_refuses_a_tier_of_another_programme(admin_client, program):
    from loyalty.models import Program

    other = Program.objects.create(code="other", name="Other")
    foreign = Tier.objects.create(program=other, code="vip", name="VIP", rank=0)
    reward = Reward.objects.get(code="MUG")
    data = {
        "program": program.pk,
        "code": "MUG",
        "name": reward.name,
        "kind": "gift",
        "points_cost": 3000,
        "stock": 100,
        "redeemed_count": 0,
        "limit_period": "ever",
        "min_tier": foreign.pk,
        "channel_codes": ["pos-shanghai"],
        "sort_order": 100,
        "is_active": "on",
    }
    response = admin_client.post(reverse("admin:loyalty_reward_change", args=[reward.pk]), data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["min_tier"]
    reward.refresh_from_db()
    assert (reward.min_tier_id, reward.channel_codes) == (None, [])


def _order_rule(**scope):
    return EarningRule(kind="order", name="x", points=50, is_active=True, **scope)


@pytest.mark.parametrize("stored", [["tmall"], "tmall"])
def test_a_channel_scope_matches_whole_codes_only(program, stored):
    tier = program.tiers.order_by("rank").first()
    rule = _order_rule(channel_codes=stored)

    def bonus(channel_code):
        earning = rules.earning_compute(
            program=program, tier=tier, rules=[rule], amount=Decimal("100"), channel_code=channel_code
        )
        return sum(points for _rule, points in earning.bonuses)

    assert (bonus("tmall"), bonus("mall"), bonus("tm")) == (50, 0, 0)


def test_store_category_and_weekday_scopes_match_whole_values(program):
    tier = program.tiers.order_by("rank").first()
    wednesday = dt.date(2026, 12, 2)
    line = [rules.Line(sku="A1", category="护肤品", amount=Decimal("100"))]
    stored_as_text = _order_rule(stores="南京西路店", categories="护肤", weekdays=[3])

    def bonus(store, lines, day):
        earning = rules.earning_compute(
            program=program, tier=tier, rules=[stored_as_text], amount=Decimal("100"), lines=lines, store=store, day=day
        )
        return sum(points for _rule, points in earning.bonuses)

    assert bonus("西路店", line, wednesday) == 0
    assert bonus("南京西路店", line, wednesday) == 0  # 护肤 does not cover 护肤品
    right_line = [rules.Line(sku="A1", category="护肤", amount=Decimal("100"))]
    assert bonus("南京西路店", right_line, wednesday) == 50
    assert bonus("南京西路店", right_line, wednesday + dt.timedelta(days=1)) == 0


def test_a_coupon_for_tmall_is_refused_in_mall(program, shops):
    tmall, mall = shops
    template = CouponTemplate.objects.create(
        program=program, code="TM", name="天猫券", value=Decimal("10"), channel_codes="tmall"
    )
    coupon = rewards.coupons_issue(template=template)[0]
    with pytest.raises(CouponNotValid):
        rewards.coupon_redeem(code=coupon.code, channel=mall, amount=Decimal("100"))
    assert Coupon.objects.get(pk=coupon.pk).status == "issued"
    assert rewards.coupon_redeem(code=coupon.code, channel=tmall, amount=Decimal("100")).status == "used"
