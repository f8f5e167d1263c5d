"""The loyalty admin: pages render, the preview tool computes exact points, adjustments and manual tiers need
their permissions and are attributed, the member page shows the loyalty panel."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from loyalty.models import Account, EarningRule, PointsTransaction, Tier, TierChange
from members import services as member_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(channel, program, member):
    member_services.order_record(
        channel=channel, order_id="O-1", member=member, amount=Decimal("100.00"), occurred_at=timezone.now()
    )
    return Account.objects.get(member=member)


@pytest.mark.parametrize(
    "name",
    ["program", "tier", "earningrule", "account", "pointstransaction", "jobrun"],
)
def test_every_loyalty_list_renders(admin_client, account, name):
    assert admin_client.get(f"/admin/loyalty/{name}/").status_code == 200


def test_change_pages_render(admin_client, account, program):
    assert admin_client.get(reverse("admin:loyalty_account_change", args=[account.pk])).status_code == 200
    assert admin_client.get(reverse("admin:loyalty_program_change", args=[program.pk])).status_code == 200
    rule = EarningRule.objects.filter(program=program).first()
    assert admin_client.get(reverse("admin:loyalty_earningrule_change", args=[rule.pk])).status_code == 200


def test_what_would_this_earn(admin_client, program):
    EarningRule.objects.create(program=program, name="会员日 3x", kind="order", weekdays=[3], multiplier=3)
    silver = Tier.objects.get(program=program, code="silver")
    url = reverse("admin:loyalty_earningrule_preview")
    base = {"program": program.pk, "tier": silver.pk, "amount": "1234.56", "lines": ""}
    tuesday = admin_client.post(url, {**base, "day": "2026-11-03"})
    assert tuesday.context["earning"].total == 1481
    wednesday = admin_client.post(url, {**base, "day": "2026-11-04"})
    assert wednesday.context["earning"].base == 1481 and wednesday.context["earning"].total == 1481 * 3
    bad = admin_client.post(url, {**base, "day": "2026-11-04", "lines": "A1,skincare,abc"})
    assert bad.context["earning"] is None and "lines" in bad.context["form"].errors


def staff_user(*perms):
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_account", *perms]))
    return user


def test_adjusting_points_needs_the_permission_and_is_attributed(client, account):
    url = reverse("admin:loyalty_account_adjust", args=[account.pk])
    client.force_login(staff_user())
    assert client.post(url, {"points": 50, "reason": "客诉补偿"}).status_code == 403
    user = User.objects.get(username="clerk")
    user.user_permissions.add(Permission.objects.get(codename="adjust_points"))
    client.force_login(User.objects.get(pk=user.pk))
    assert client.post(url, {"points": 50, "reason": "客诉补偿"}).status_code == 302
    row = PointsTransaction.objects.get(kind="adjust")
    assert (row.points, row.reason, row.actor.username) == (50, "客诉补偿", "clerk")
    too_much = client.post(url, {"points": -1000, "reason": "纠错"})
    assert too_much.status_code == 200 and too_much.context["form"].non_field_errors()
    account.refresh_from_db()
    assert account.balance == 150


def test_setting_a_tier_by_hand_needs_its_permission(client, account, program):
    user = staff_user("set_tier")
    client.force_login(user)
    gold = Tier.objects.get(program=program, code="gold")
    response = client.post(
        reverse("admin:loyalty_account_set_tier", args=[account.pk]),
        {"tier": gold.pk, "reason": "VIP", "hold_until": "2027-06-30"},
    )
    assert response.status_code == 302
    change = TierChange.objects.get(reason="manual")
    assert (change.to_tier, change.actor, str(change.account.tier_hold_until)) == (gold, user, "2027-06-30")


def test_member_page_shows_the_loyalty_panel(admin_client, account, member):
    html = admin_client.get(reverse("admin:members_member_change", args=[member.pk])).content.decode()
    assert "crm-panel" in html and reverse("admin:loyalty_account_change", args=[account.pk]) in html


def test_home_page_shows_points_liability(admin_client, account):
    html = admin_client.get("/admin/").content.decode()
    assert "100" in html and "crm-card" in html
