"""Coupons belong to a programme (their template's): a channel of another programme neither reads nor burns them,
a template's channels are enforced at the burn, codes are read case-insensitively everywhere, and a coupon with a
minimum spend is not burnt without the order amount."""

from decimal import Decimal

import pytest

from loyalty import rewards
from loyalty.models import ChannelProgram, Coupon, CouponTemplate, Program, Tier
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def coupon(program, member):
    template = CouponTemplate.objects.get(program=program, code="cny10")
    return rewards.coupons_issue(template=template, member=member, count=1)[0]


@pytest.fixture
def other_api(make_client, program):
    """A partner of programme B (another brand), with every scope."""
    other = Program.objects.create(code="brand-b", name="Brand B")
    Tier.objects.create(program=other, code="basic", name="普通", rank=0)
    channel = ChannelFactory(code="b-pos", name="B 门店")
    ChannelProgram.objects.update_or_create(channel=channel, defaults={"program": other})
    return make_client(channel)


def test_another_programme_cannot_read_a_coupon(other_api, coupon):
    response = other_api.get(f"/api/v1/coupons/{coupon.code}/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_another_programme_cannot_burn_a_coupon(other_api, coupon):
    response = other_api.post(
        f"/api/v1/coupons/{coupon.code}/redeem/", {"order_id": "B-1", "amount": "100.00"}, format="json"
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    coupon.refresh_from_db()
    assert (coupon.status, coupon.used_at, coupon.order_reference) == ("issued", None, "")


def test_another_programme_does_not_list_a_members_coupons(other_api, api, coupon, member):
    assert api.get(f"/api/v1/members/{member.member_no}/coupons/").json()["count"] == 1
    response = other_api.get(f"/api/v1/members/{member.member_no}/coupons/")
    # The member may be unknown to programme B altogether (404) or known with none of B's coupons.
    assert response.status_code == 404 or response.json()["count"] == 0


def test_the_service_refuses_another_programmes_coupon(other_api, coupon):
    from members.errors import NotFound

    with pytest.raises(NotFound):
        rewards.coupon_redeem(channel=other_api.channel, code=coupon.code, amount=Decimal("100.00"))
    assert Coupon.objects.get(pk=coupon.pk).status == "issued"


def test_a_channel_outside_the_templates_channels_cannot_burn(api, coupon):
    CouponTemplate.objects.filter(pk=coupon.template_id).update(channel_codes=["tmall"])
    response = api.post(f"/api/v1/coupons/{coupon.code}/redeem/", {"amount": "60.00"}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "coupon_not_valid"
    assert Coupon.objects.get(pk=coupon.pk).status == "issued"
    CouponTemplate.objects.filter(pk=coupon.template_id).update(channel_codes=["tmall", api.channel.code])
    assert api.post(f"/api/v1/coupons/{coupon.code}/redeem/", {"amount": "60.00"}, format="json").status_code == 200


def test_a_lower_case_code_works_for_reading_and_burning(api, coupon):
    lower = coupon.code.lower()
    read = api.get(f"/api/v1/coupons/{lower}/")
    assert read.status_code == 200 and read.json()["code"] == coupon.code
    burnt = api.post(f"/api/v1/coupons/{lower}/redeem/", {"order_id": "O-1", "amount": "60.00"}, format="json")
    assert burnt.status_code == 200 and burnt.json() == {"code": coupon.code, "status": "used"}
    assert Coupon.objects.get(pk=coupon.pk).status == "used"


def test_a_burn_without_amount_on_a_coupon_with_minimum_spend_is_refused(api, coupon):
    response = api.post(f"/api/v1/coupons/{coupon.code}/redeem/", {"order_id": "O-1"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "amount" in error["fields"]
    coupon.refresh_from_db()
    assert (coupon.status, coupon.used_at, coupon.order_reference) == ("issued", None, "")


def test_a_burn_without_amount_is_fine_when_there_is_no_minimum_spend(api, coupon):
    CouponTemplate.objects.filter(pk=coupon.template_id).update(min_spend=Decimal(0))
    response = api.post(f"/api/v1/coupons/{coupon.code}/redeem/", {"order_id": "O-1"}, format="json")
    assert response.status_code == 200 and Coupon.objects.get(pk=coupon.pk).status == "used"


def test_an_unassigned_batch_code_belongs_to_its_templates_programme(api, other_api, program):
    template = CouponTemplate.objects.get(program=program, code="cny10")
    batch = rewards.coupons_issue_batch(template=template, count=1)
    code = batch.coupons.get().code
    assert other_api.get(f"/api/v1/coupons/{code}/").status_code == 404
    assert other_api.post(f"/api/v1/coupons/{code}/redeem/", {"amount": "60.00"}, format="json").status_code == 404
    assert api.get(f"/api/v1/coupons/{code}/").json()["member_no"] is None
    assert api.post(f"/api/v1/coupons/{code}/redeem/", {"amount": "60.00"}, format="json").status_code == 200
