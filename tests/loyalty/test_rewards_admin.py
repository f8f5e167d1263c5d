"""Running the points mall from the admin: cancellation gives points and stock back, gifts ship, batches issue."""

from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from loyalty import rewards
from loyalty.adjustments import points_adjust
from loyalty.ledger import account_get_or_create
from loyalty.models import Account, Coupon, CouponBatch, CouponTemplate, Fulfilment, Redemption, Reward

pytestmark = pytest.mark.django_db

ADDRESS = {"name": "张伟", "phone": "13800138000", "address": "上海市静安区南京西路 1601 号"}


@pytest.fixture
def rich(channel, program, member):
    points_adjust(account=account_get_or_create(member=member, program=program), points=10000, reason="test")
    return member


@pytest.mark.parametrize("name", ["reward", "coupontemplate", "coupon", "couponbatch", "redemption", "fulfilment"])
def test_points_mall_pages_render(admin_client, rich, name):
    assert admin_client.get(f"/admin/loyalty/{name}/").status_code == 200


def test_cancelling_a_gift_gives_points_and_stock_back_and_records_who(admin_client, admin_user, channel, rich):
    redemption, _ = rewards.reward_redeem(
        channel=channel, member=rich, reward_code="MUG", quantity=1, redemption_id="R-1", shipping=ADDRESS
    )
    assert Fulfilment.objects.get(redemption=redemption).status == "to_ship"
    url = reverse("admin:loyalty_redemption_changelist")
    admin_client.post(url, {"action": "cancel", "_selected_action": [redemption.pk], "apply": "1", "reason": "缺货"})
    redemption.refresh_from_db()
    assert (redemption.status, redemption.cancelled_by, redemption.cancel_reason) == ("cancelled", admin_user, "缺货")
    account = Account.objects.get(member=rich)
    assert account.balance == 10000 and account.lifetime_spent == 0
    assert Reward.objects.get(code="MUG").stock == 100
    assert Fulfilment.objects.get(redemption=redemption).status == "cancelled"


def test_cancelling_voids_unused_coupons_but_not_a_used_one(channel, rich, admin_user):
    first, _ = rewards.reward_redeem(channel=channel, member=rich, reward_code="CNY10", quantity=1, redemption_id="A")
    rewards.redemption_cancel(redemption=first, reason="客诉", actor=admin_user)
    assert Coupon.objects.get(redemption=first).status == "void"
    second, _ = rewards.reward_redeem(channel=channel, member=rich, reward_code="CNY10", quantity=1, redemption_id="B")
    rewards.coupon_redeem(channel=channel, code=second.coupons.get().code, amount=Decimal("50.00"))
    from loyalty.errors import RewardUnavailable

    with pytest.raises(RewardUnavailable):
        rewards.redemption_cancel(redemption=second, reason="x", actor=admin_user)
    assert Redemption.objects.get(pk=second.pk).status == "completed"


def test_shipping_a_gift_and_the_warehouse_csv(admin_client, channel, rich):
    redemption, _ = rewards.reward_redeem(
        channel=channel, member=rich, reward_code="MUG", quantity=1, redemption_id="R-1", shipping=ADDRESS
    )
    fulfilment = Fulfilment.objects.get(redemption=redemption)
    response = admin_client.post(
        reverse("admin:loyalty_fulfilment_ship", args=[fulfilment.pk]), {"carrier": "顺丰", "tracking_no": "SF123"}
    )
    assert response.status_code == 302
    fulfilment.refresh_from_db()
    assert (fulfilment.status, fulfilment.tracking_no) == ("shipped", "SF123")
    csv_response = admin_client.post(
        reverse("admin:loyalty_fulfilment_changelist"), {"action": "export_csv", "_selected_action": [fulfilment.pk]}
    )
    text = csv_response.content.decode("utf-8-sig")
    assert "R-1" in text and rich.member_no in text


def test_a_batch_of_codes_is_issued_and_exported(admin_client, program):
    template = CouponTemplate.objects.get(program=program, code="cny10")
    response = admin_client.post(reverse("admin:loyalty_coupontemplate_batch", args=[template.pk]), {"count": 500})
    batch = CouponBatch.objects.get()
    assert response.status_code == 302 and batch.coupons.count() == 500
    assert len(set(batch.coupons.values_list("code", flat=True))) == 500
    csv_text = b"".join(admin_client.get(reverse("admin:loyalty_couponbatch_csv", args=[batch.pk])).streaming_content)
    assert csv_text.decode("utf-8-sig").count("\n") == 501


def test_staff_issue_coupons_to_selected_members(admin_client, program, member):
    from tests.factories import MemberFactory

    other = MemberFactory()
    template = CouponTemplate.objects.get(program=program, code="cny50")
    url = reverse("admin:members_member_changelist")
    ask = admin_client.post(url, {"action": "issue_coupons", "_selected_action": [member.pk, other.pk]})
    assert ask.status_code == 200
    admin_client.post(
        url,
        {
            "action": "issue_coupons",
            "_selected_action": [member.pk, other.pk],
            "apply": "1",
            "template": template.pk,
            "quantity": 2,
        },
    )
    assert Coupon.objects.filter(member=member, template=template).count() == 2
    assert Coupon.objects.filter(member=other, template=template).count() == 2


def test_stock_and_redeemed_count_are_read_only_on_the_reward_page(admin_client, rich):
    reward = Reward.objects.get(code="MUG")
    form = admin_client.get(reverse("admin:loyalty_reward_change", args=[reward.pk])).context["adminform"].form
    assert "stock" not in form.fields and "redeemed_count" not in form.fields
    assert "stock" in admin_client.get(reverse("admin:loyalty_reward_add")).context["adminform"].form.fields


def test_add_stock_adds_to_what_redemptions_left(admin_client, channel, rich):
    reward = Reward.objects.get(code="MUG")
    rewards.reward_redeem(
        channel=channel, member=rich, reward_code="MUG", quantity=1, redemption_id="R-9", shipping=ADDRESS
    )
    url = reverse("admin:loyalty_reward_changelist")

    admin_client.post(url, {"action": "add_stock", "_selected_action": [reward.pk], "apply": "1", "quantity": "50"})

    reward.refresh_from_db()
    assert (reward.stock, reward.redeemed_count) == (149, 1)


def test_add_stock_refuses_unlimited_rewards_and_changes_nothing(admin_client, rich):
    mug, unlimited = Reward.objects.get(code="MUG"), Reward.objects.filter(stock__isnull=True).first()
    url = reverse("admin:loyalty_reward_changelist")

    response = admin_client.post(
        url,
        {"action": "add_stock", "_selected_action": [mug.pk, unlimited.pk], "apply": "1", "quantity": "5"},
        follow=True,
    )

    with translation.override("zh-hans"):
        expected = translation.gettext("These rewards have unlimited stock: %(codes)s.") % {"codes": unlimited.code}
    assert [str(message) for message in response.context["messages"]] == [expected]
    assert Reward.objects.get(pk=mug.pk).stock == 100
    assert Reward.objects.get(pk=unlimited.pk).stock is None


def test_add_stock_needs_the_change_permission(client, django_user_model, rich):
    from django.contrib.auth.models import Permission

    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_reward"))
    client.force_login(clerk)
    reward = Reward.objects.get(code="MUG")

    url = reverse("admin:loyalty_reward_changelist")
    assert client.get(url).context["action_form"] is None  # not offered
    client.post(url, {"action": "add_stock", "_selected_action": [reward.pk], "apply": "1", "quantity": "50"})

    assert Reward.objects.get(pk=reward.pk).stock == 100
