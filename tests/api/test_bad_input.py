"""Bad input answers API.md's 400 `validation_error`, never a 500 (issue 9, item 8)."""

import datetime as dt
import io

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Event, Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def assert_validation_error(response):
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/members/%00/"),
        ("patch", "/api/v1/members/%00/"),
        ("get", "/api/v1/members/%00/points/"),
        ("get", "/api/v1/members/%00/coupons/"),
        ("get", "/api/v1/coupons/%00/"),
        ("post", "/api/v1/coupons/%00/redeem/"),
        ("post", "/api/v1/orders/%00/refunds/"),
        ("get", "/api/v1/members/?phone=%00"),
        ("get", "/api/v1/members/?email=a%00@example.com"),
        ("get", "/api/v1/members/?external_id=%00"),
    ],
)
def test_nul_byte_in_the_url_is_400(api, method, path):
    before = Member.objects.count()
    response = getattr(api, method)(path, {}, format="json") if method != "get" else api.get(path)
    error = assert_validation_error(response)
    assert "NUL" in error["message"]
    assert Member.objects.count() == before


def test_nul_byte_in_the_url_outside_the_api_is_a_plain_400(admin_client):
    assert admin_client.get("/admin/members/member/?q=%00").status_code == 400


def test_nul_byte_in_a_json_value_is_400_and_stores_nothing(api, member):
    response = api.post("/api/v1/members/", {"name": "李\x00娜", "phone": "13800138009"}, format="json")
    assert "name" in assert_validation_error(response)["fields"]
    response = api.post("/api/v1/events/", event(member, attributes={"store": "a\x00b"}), format="json")
    assert "attributes" in assert_validation_error(response)["fields"]
    response = api.post("/api/v1/events/", event(member, attributes={"a\x00": "b"}), format="json")
    assert "attributes" in assert_validation_error(response)["fields"]
    assert not Member.objects.filter(phone="+8613800138009").exists()
    assert not Event.objects.exists()


def test_json_nested_1000_deep_is_400(api, member):
    body = "[" * 1000 + "]" * 1000
    payload = '{"name": "张伟", "phone": "13800138001", "city": ' + body + "}"
    response = api.post("/api/v1/members/", payload, content_type="application/json")
    assert_validation_error(response)
    assert not Member.objects.filter(phone="+8613800138001").exists()
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    payload = f'{{"event_id": "e1", "member_no": "{member.member_no}", "type": "check_in", "attributes": {deep}}}'
    assert_validation_error(api.post("/api/v1/events/", payload, content_type="application/json"))
    assert not Event.objects.exists()


def event(member, **fields):
    return {
        "event_id": "e1",
        "member_no": member.member_no,
        "type": "check_in",
        "occurred_at": (timezone.now() - dt.timedelta(hours=1)).isoformat(),
        **fields,
    }


@pytest.mark.parametrize(
    ("attributes", "why"),
    [
        ({"blob": "x" * 17_000}, "16 KB"),
        ({f"k{i}": i for i in range(51)}, "50"),
        ({"nested": {"a": 1}}, "flat"),
        ({"list": [1, 2]}, "flat"),
        ({"k" * 65: 1}, "64"),
        ("not an object", None),
    ],
)
def test_event_attributes_are_bounded(api, member, attributes, why):
    response = api.post(
        "/api/v1/events/", event(member, attributes=attributes), format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    error = assert_validation_error(response)
    assert list(error["fields"]) == ["attributes"]
    if why:
        assert why in error["fields"]["attributes"][0]
    assert not Event.objects.exists()


def test_event_attributes_within_the_bounds_are_kept(api, member):
    attributes = {f"k{i}": i for i in range(46)} | {"text": "好" * 4000, "flag": True, "none": None, "price": 1.5}
    response = api.post("/api/v1/events/", event(member, attributes=attributes), format="json")
    assert response.status_code == 201, response.content
    assert Event.objects.get().attributes == attributes


def test_ten_megabytes_of_attributes_is_refused_quickly(api, member):
    attributes = {f"key{i}": "v" for i in range(500_000)}
    response = api.post("/api/v1/events/", event(member, attributes=attributes), format="json")
    assert_validation_error(response)
    assert not Event.objects.exists()


def test_control_characters_in_a_name_are_cleaned_at_the_api(api):
    response = api.post(
        "/api/v1/members/", {"name": "\x07李\x1b娜\r\n", "phone": "13800138009", "city": "上\x0b海"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "李 娜"
    member = Member.objects.get(phone="+8613800138009")
    assert (member.name, member.city) == ("李 娜", "上 海")
    response = api.patch(f"/api/v1/members/{member.member_no}/", {"name": "\x1f\x7f"}, format="json")
    assert "name" in assert_validation_error(response)["fields"]
    member.refresh_from_db()
    assert member.name == "李 娜"


def test_control_characters_in_an_imported_name_are_cleaned():
    from members.importing.services import members_import

    data = "name,phone,city\n\x07王\x08芳,13800138010,北\x1b京\n\x01,13800138011,上海\n".encode()
    result = members_import(data=data, skip_errors=True)
    assert (result.counts["new"], result.counts["errors"]) == (1, 1)
    member = Member.objects.get(phone="+8613800138010")
    assert (member.name, member.city) == ("王 芳", "北 京")


def test_xlsx_export_survives_a_name_with_control_characters(admin_client):
    MemberFactory(name="坏\x07名字\x1b", phone="+8613800138000", city="上\x0b海")
    MemberFactory(name="好名字", phone="+8613900139000")
    from import_export.formats.base_formats import XLSX

    from members.importing.resources import EXPORT_COLUMNS, EXPORT_FORMATS

    fields = {f"memberexportresource_{key}": "on" for key, _attribute, _zh in EXPORT_COLUMNS}
    xlsx = str(EXPORT_FORMATS.index(XLSX))
    response = admin_client.post(reverse("admin:members_member_export"), {"format": xlsx, "resource": "0", **fields})
    assert response.status_code == 200, response.content[:500]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    rows = sorted(row[1:7:5] for row in sheet.iter_rows(min_row=2, values_only=True))
    # Members stored before names were cleaned: the characters a spreadsheet cannot hold become U+FFFD.
    assert rows == [("坏\ufffd名字\ufffd", "上\ufffd海"), ("好名字", None)]


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00+08:00",
        "0001-01-01T07:59:59+08:00",
        "9999-12-31T23:59:59-08:00",
        "9999-12-31T00:00:00+08:00",
    ],
)
def test_a_time_at_the_ends_of_the_calendar_is_400(api, member, when):
    response = api.post(
        "/api/v1/events/",
        {"event_id": "e1", "member_no": member.member_no, "type": "check_in", "occurred_at": when},
        format="json",
    )
    assert_validation_error(response)
    response = api.post(
        "/api/v1/orders/",
        {"order_id": "o1", "member_no": member.member_no, "amount": "10.00", "occurred_at": when},
        format="json",
    )
    assert_validation_error(response)


@pytest.mark.parametrize("birthday", ["0001-01-01", "0000-01-01", "1-01-01"])
def test_a_year_1_birthday_is_400(api, birthday):
    response = api.post(
        "/api/v1/members/", {"name": "李娜", "phone": "13800138009", "birthday": birthday}, format="json"
    )
    assert_validation_error(response)
