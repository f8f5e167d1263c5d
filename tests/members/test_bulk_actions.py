"""Every bulk action acts on the whole selection: after "select all N" on a filtered list, on all N members (not on
the page the changelist showed), through the intermediate form too, and says how many it changed."""

import re

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.messages import get_messages
from django.db.models import Count

from loyalty import rewards
from loyalty.adjustments import points_adjust
from loyalty.ledger import account_get_or_create
from loyalty.models import Account, Coupon, CouponTemplate, Redemption
from members import services
from members.models import ApiKey, Member, MemberTag
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

PER_PAGE = 5
SELECTED = 12  # more than two pages


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    """A page of 5 rows, so a dozen rows span three pages (the real pages hold 50 or 100)."""
    for model_admin in admin.site._registry.values():
        monkeypatch.setattr(model_admin, "list_per_page", PER_PAGE)


@pytest.fixture
def admin_client(admin_client):
    """An operator who chose English in the header (the messages are asserted word for word)."""
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return admin_client


@pytest.fixture
def crowd(db):
    """A dozen members in Hangzhou (the filtered selection) and three elsewhere who must stay untouched."""
    inside = [MemberFactory(city="杭州") for _ in range(SELECTED)]
    outside = [MemberFactory(city="上海") for _ in range(3)]
    return inside, outside


def hidden_inputs(html):
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html)


def select_all_and_run(client, url, action, **fields):
    """What the browser does: show the filtered list, tick the page, click "select all N", run the action, and,
    when the action asks for more (a form), fill it in and apply."""
    page = client.get(url)
    shown = [obj.pk for obj in page.context["cl"].result_list]
    assert len(shown) == PER_PAGE
    response = client.post(
        url, {"action": action, "index": 0, "select_across": "1", "_selected_action": shown}, follow=False
    )
    if response.status_code == 200 and fields:  # the intermediate form
        data = {}
        for name, value in hidden_inputs(response.content.decode()):
            data.setdefault(name, []).append(value)
        data.update({key: str(value) for key, value in fields.items()}, apply="1")
        response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:500]
    return [str(message) for message in get_messages(response.wsgi_request)]


MEMBERS = "/admin/members/member/?city=杭州"


def test_select_all_then_add_and_remove_a_tag_acts_on_every_selected_member(admin_client, crowd):
    inside, _outside = crowd
    said = select_all_and_run(admin_client, MEMBERS, "add_tag", tag="VIP")
    assert set(MemberTag.objects.filter(tag__name="VIP").values_list("member_id", flat=True)) == {
        member.pk for member in inside
    }
    assert said == [f"{SELECTED} members tagged VIP."]
    select_all_and_run(admin_client, MEMBERS, "remove_tag", tag="VIP")
    assert MemberTag.objects.count() == 0


def test_select_all_then_freeze_and_unfreeze_acts_on_every_selected_member(admin_client, crowd):
    _inside, outside = crowd
    select_all_and_run(admin_client, MEMBERS, "freeze")
    assert Member.objects.filter(status="frozen").count() == SELECTED
    assert not Member.objects.filter(pk__in=[member.pk for member in outside], status="frozen").exists()
    select_all_and_run(admin_client, MEMBERS, "unfreeze")
    assert Member.objects.filter(status="active").count() == SELECTED + 3


def test_select_all_then_issue_coupons_gives_every_active_selected_member_its_coupons(admin_client, crowd, program):
    inside, _outside = crowd
    services.members_set_status(member_ids=[inside[0].pk], status="frozen")
    template = CouponTemplate.objects.get(program=program, code="cny10")
    said = select_all_and_run(admin_client, MEMBERS, "issue_coupons", template=template.pk, quantity=2)
    per_member = dict(Coupon.objects.filter(template=template).values_list("member_id").annotate(n=Count("id")))
    assert per_member == {member.pk: 2 for member in inside[1:]}
    assert Coupon.objects.filter(template=template).values("code").distinct().count() == 2 * (SELECTED - 1)
    assert said == [f"Coupons issued to {SELECTED - 1} members. 1 members are frozen or closed and got none."]


def test_select_all_then_cancel_redemptions_cancels_each_one(admin_client, crowd, program, channel):
    inside, _outside = crowd
    redemptions = []
    for index, member in enumerate(inside):
        points_adjust(account=account_get_or_create(member=member, program=program), points=2000, reason="t")
        redemption, _ = rewards.reward_redeem(
            channel=channel, member=member, reward_code="CNY10", quantity=1, redemption_id=f"R-{index}"
        )
        redemptions.append(redemption)
    said = select_all_and_run(admin_client, "/admin/loyalty/redemption/", "cancel", reason="活动取消")
    assert set(Redemption.objects.values_list("status", flat=True)) == {"cancelled"}
    assert set(Account.objects.filter(member__in=inside).values_list("balance", flat=True)) == {2000}
    assert said == [f"{SELECTED} redemptions cancelled."]


def test_select_all_then_revoke_keys_revokes_every_key(admin_client, channel):
    for _ in range(SELECTED):
        services.api_key_create(channel=channel, scopes=["members:read"])
    said = select_all_and_run(admin_client, "/admin/members/apikey/", "revoke_keys")
    assert ApiKey.objects.filter(revoked_at__isnull=True).count() == 0
    assert said == [f"{SELECTED} keys revoked."]


def test_only_the_ticked_rows_without_select_all(admin_client, crowd):
    inside, _outside = crowd
    ticked = [inside[0].pk, inside[1].pk]
    admin_client.post(MEMBERS, {"action": "add_tag", "index": 0, "_selected_action": ticked})
    admin_client.post(
        MEMBERS,
        {"action": "add_tag", "index": 0, "_selected_action": ticked, "select_across": "0", "apply": "1", "tag": "A"},
    )
    assert sorted(MemberTag.objects.values_list("member_id", flat=True)) == sorted(ticked)
