"""Gifts from redemption to the member's door in the admin: the address travels with the redemption, can be
corrected until the gift ships, the list ships (carrier, a tracking number each) and delivers the selection, and
the warehouse CSV carries the address and a status a person reads."""

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import translation

from loyalty import rewards
from loyalty.adjustments import points_adjust
from loyalty.ledger import account_get_or_create
from loyalty.models import Fulfilment
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

URL = "/admin/loyalty/fulfilment/"


def _gift(channel, program, index, address="上海市静安区南京西路 1601 号"):
    member = MemberFactory()
    points_adjust(account=account_get_or_create(member=member, program=program), points=5000, reason="test")
    redemption, _created = rewards.reward_redeem(
        channel=channel,
        member=member,
        reward_code="MUG",
        quantity=1,
        redemption_id=f"G-{index}",
        shipping={"name": f"收件人{index}", "phone": "13800138000", "address": address},
    )
    return redemption.fulfilment


@pytest.fixture
def gifts(channel, program):
    return [_gift(channel, program, index) for index in range(3)]


def test_the_list_shows_where_each_gift_goes_and_a_ship_link(admin_client, gifts):
    page = admin_client.get(URL).content.decode()
    assert "收件人0 13800138000<br>上海市静安区南京西路 1601 号" in page
    assert reverse("admin:loyalty_fulfilment_ship", args=[gifts[0].pk]) in page


def test_ship_the_selection_asks_carrier_and_a_tracking_number_each(admin_client, gifts):
    ids = [gift.pk for gift in gifts]
    ask = admin_client.post(URL, {"action": "ship", "_selected_action": ids})
    assert ask.status_code == 200 and f'name="tracking_{ids[0]}"' in ask.content.decode()
    missing = admin_client.post(
        URL, {"action": "ship", "_selected_action": ids, "apply": "1", "carrier": "顺丰", f"tracking_{ids[0]}": "SF1"}
    )
    assert missing.status_code == 200  # the form again, with errors
    assert set(Fulfilment.objects.values_list("status", flat=True)) == {"to_ship"}
    tracking = {f"tracking_{pk}": f"SF{pk}" for pk in ids}
    done = admin_client.post(
        URL, {"action": "ship", "_selected_action": ids, "apply": "1", "carrier": "顺丰", **tracking}
    )
    assert done.status_code == 302
    assert sorted(Fulfilment.objects.values_list("status", "carrier", "tracking_no")) == sorted(
        ("shipped", "顺丰", f"SF{pk}") for pk in ids
    )


def test_select_all_ships_every_waiting_gift(admin_client, gifts):
    ids = [gift.pk for gift in gifts]
    tracking = {f"tracking_{pk}": f"SF{pk}" for pk in ids}
    admin_client.post(
        URL,
        {
            "action": "ship",
            "_selected_action": ids[:1],
            "select_across": "1",
            "apply": "1",
            "carrier": "圆通",
            **tracking,
        },
    )
    assert Fulfilment.objects.filter(status="shipped").count() == 3


def test_deliver_marks_shipped_gifts_and_says_how_many(admin_client, gifts):
    rewards.fulfilment_update(fulfilment=gifts[0], status="shipped", carrier="顺丰", tracking_no="SF1")
    response = admin_client.post(
        URL, {"action": "mark_delivered", "_selected_action": [g.pk for g in gifts]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["1 件礼品已标记为送达。"]
    assert sorted(Fulfilment.objects.values_list("status", flat=True)) == ["delivered", "to_ship", "to_ship"]


def test_the_address_is_editable_until_the_gift_ships(admin_client, gifts):
    gift = gifts[0]
    url = reverse("admin:loyalty_fulfilment_change", args=[gift.pk])
    new = {"recipient_name": "王芳", "recipient_phone": "13900000000", "address": "北京市朝阳区建国路 88 号"}
    assert admin_client.post(url, new).status_code == 302
    gift.refresh_from_db()
    assert (gift.recipient_name, gift.address) == ("王芳", "北京市朝阳区建国路 88 号")
    rewards.fulfilment_update(fulfilment=gift, status="shipped", carrier="顺丰", tracking_no="SF1")
    page = admin_client.get(url).content.decode()
    assert 'name="address"' not in page and "北京市朝阳区建国路 88 号" in page
    admin_client.post(url, {**new, "address": "别处"})
    gift.refresh_from_db()
    assert gift.address == "北京市朝阳区建国路 88 号"


def test_an_empty_address_is_refused_on_the_form(admin_client, gifts):
    url = reverse("admin:loyalty_fulfilment_change", args=[gifts[0].pk])
    response = admin_client.post(url, {"recipient_name": "王芳", "recipient_phone": "139", "address": ""})
    assert response.status_code == 200
    assert Fulfilment.objects.get(pk=gifts[0].pk).address == "上海市静安区南京西路 1601 号"


def test_staff_without_the_change_permission_cannot_ship(client, gifts):
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_fulfilment"))
    client.force_login(user)
    assert client.get(reverse("admin:loyalty_fulfilment_ship", args=[gifts[0].pk])).status_code == 403
    client.post(URL, {"action": "ship", "_selected_action": [gifts[0].pk]})
    assert Fulfilment.objects.get(pk=gifts[0].pk).status == "to_ship"


def test_the_warehouse_csv_has_the_address_and_a_readable_status_in_chinese(admin_client, channel, program, gifts):
    formula = _gift(channel, program, 9, address='=HYPERLINK("http://x")')
    rewards.fulfilment_update(fulfilment=gifts[0], status="shipped", carrier="顺丰", tracking_no="SF1")
    with translation.override("zh-hans"):
        response = admin_client.post(
            URL,
            {"action": "export_csv", "_selected_action": [gifts[0].pk, formula.pk]},
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:8] == ["兑换单号", "会员编号", "收件人", "收件人电话", "收货地址", "礼品", "数量", "状态"]
    assert rows[1][2:10] == [
        "收件人0",
        "13800138000",
        "上海市静安区南京西路 1601 号",
        "品牌马克杯",
        "1",
        "已发货",
        "顺丰",
        "SF1",
    ]
    assert rows[2][4] == '\'=HYPERLINK("http://x")' and rows[2][7] == "待发货"
