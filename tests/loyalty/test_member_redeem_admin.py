"""The counter without a POS: staff redeem a reward for a member from the member page, and see the member's
coupons and redemptions there, with the loyalty panel above the profile."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from loyalty.adjustments import points_adjust
from loyalty.ledger import account_get_or_create
from loyalty.models import Account, Coupon, Fulfilment, Redemption, Reward

pytestmark = pytest.mark.django_db


@pytest.fixture
def rich(channel, program, member):
    points_adjust(account=account_get_or_create(member=member, program=program), points=5000, reason="test")
    return member


def _form(client, member):
    page = client.get(reverse("admin:loyalty_redemption_redeem", args=[member.pk]))
    assert page.status_code == 200
    return page.context["form"]


def _post(client, member, reward_code, **overrides):
    form = _form(client, member)
    data = {
        "channel": form.initial["channel"],
        "reward": Reward.objects.get(code=reward_code).pk,
        "quantity": 1,
        "recipient_name": form.initial["recipient_name"],
        "recipient_phone": form.initial["recipient_phone"],
        "address": "上海市静安区南京西路 1601 号",
        "redemption_id": form.initial["redemption_id"],
    }
    data.update(overrides)
    return client.post(reverse("admin:loyalty_redemption_redeem", args=[member.pk]), data), data


def test_staff_redeem_a_gift_with_an_address_for_a_member(admin_client, rich):
    response, data = _post(admin_client, rich, "MUG")
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:members_member_change", args=[rich.pk])
    redemption = Redemption.objects.get()
    assert (redemption.redemption_id, redemption.points_spent, redemption.account.member) == (
        data["redemption_id"],
        3000,
        rich,
    )
    fulfilment = redemption.fulfilment
    assert (fulfilment.recipient_name, fulfilment.recipient_phone, fulfilment.address) == (
        "张伟",
        "+8613800138000",
        "上海市静安区南京西路 1601 号",
    )
    assert Account.objects.get(member=rich).balance == 2000
    # A second click on the same form replays, never redeems twice.
    admin_client.post(reverse("admin:loyalty_redemption_redeem", args=[rich.pk]), data)
    assert Redemption.objects.count() == 1 and Account.objects.get(member=rich).balance == 2000


def test_a_coupon_reward_needs_no_address(admin_client, rich):
    response, _data = _post(admin_client, rich, "CNY10", address="")
    assert response.status_code == 302
    assert Coupon.objects.filter(member=rich).count() == 1


@pytest.mark.parametrize(
    ("reward", "overrides"),
    [("MUG", {"address": ""}), ("MUG", {"quantity": 2}), ("CNY50", {})],  # no address; over the limit; tier
)
def test_a_refusal_is_shown_on_the_form_and_changes_nothing(admin_client, rich, reward, overrides):
    response, _data = _post(admin_client, rich, reward, **overrides)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors
    assert not Redemption.objects.exists() and not Fulfilment.objects.exists()
    assert Account.objects.get(member=rich).balance == 5000
    assert Reward.objects.get(code="MUG").stock == 100


def test_not_enough_points_is_said_on_the_form(admin_client, channel, program, member):
    account_get_or_create(member=member, program=program)
    response, _data = _post(admin_client, member, "MUG")
    assert response.status_code == 200
    assert "3000" in str(response.context["form"].non_field_errors())
    assert not Redemption.objects.exists()


def test_staff_without_the_permission_cannot_redeem(client, rich):
    user = User.objects.create_user("clerk", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_member", "change_member"]))
    client.force_login(user)
    url = reverse("admin:loyalty_redemption_redeem", args=[rich.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"reward": Reward.objects.get(code="CNY10").pk, "quantity": 1}).status_code == 403
    assert not Redemption.objects.exists()
    page = client.get(reverse("admin:members_member_change", args=[rich.pk])).content.decode()
    assert url not in page


def test_the_member_page_shows_loyalty_first_with_coupons_and_redemptions(admin_client, rich):
    _post(admin_client, rich, "MUG")
    _post(admin_client, rich, "CNY10")
    page = admin_client.get(reverse("admin:members_member_change", args=[rich.pk])).content.decode()
    redeem_url = reverse("admin:loyalty_redemption_redeem", args=[rich.pk])
    assert redeem_url in page
    assert page.index(redeem_url) < page.index('name="name"')  # the loyalty panel sits above the profile
    coupon = Coupon.objects.get(member=rich)
    assert coupon.code in page
    assert "品牌马克杯" in page and "待发货" in page
