"""API.md: Members. Every field rule, look-ups in any spelling, duplicates, and the query count of the list."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from members.models import ChannelIdentity, ConsentChange, Member, MemberHistory
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/members/"


def create(api, **body):
    return api.post(URL, body, format="json")


def test_create_normalises_the_phone_and_answers_the_member(api):
    response = create(
        api,
        name="王芳",
        phone="138 0013 8000",
        email="Wang.Fang@Example.COM",
        gender="female",
        birthday="1990-05-17",
        city="上海",
        consents={"sms": True, "email": False},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["phone"] == "+8613800138000"
    assert body["email"] == "wang.fang@example.com"
    assert body["gender"] == "female" and body["birthday"] == "1990-05-17" and body["city"] == "上海"
    assert body["status"] == "active"
    assert body["consents"] == {"sms": True, "email": False, "wechat": False}
    assert body["points"] == {"balance": 0, "pending": 0}
    assert body["tags"] == []
    assert set(body) >= {
        "member_no",
        "name",
        "phone",
        "email",
        "gender",
        "birthday",
        "city",
        "status",
        "joined_at",
        "tier",
        "points",
        "consents",
        "tags",
    }
    member = Member.objects.get(member_no=body["member_no"])
    assert member.join_channel == api.channel
    assert dt.datetime.fromisoformat(body["joined_at"]).utcoffset() is not None
    # consent given at sign-up is recorded with its source
    assert sorted(ConsentChange.objects.filter(member=member).values_list("channel", "granted", "source")) == [
        ("email", False, "api:pos-shanghai"),
        ("sms", True, "api:pos-shanghai"),
    ]


@pytest.mark.parametrize(
    "spelling",
    [
        "13800138000",
        "+86 138 0013 8000",
        "86-13800138000",
        "138-0013-8000",
        "(138) 0013 8000",
        "１３８００１３８０００",
        "+8613800138000",
        "0086 138 0013 8000",
    ],
)
def test_every_common_spelling_of_a_phone_is_one_number(api, spelling):
    response = create(api, name="李娜", phone=spelling)
    assert response.status_code == 201, response.content
    assert response.json()["phone"] == "+8613800138000"


def test_member_numbers_are_short_unique_and_check_digited(api):
    numbers = [create(api, name=f"会员{i}", phone=f"1390000000{i}").json()["member_no"] for i in range(5)]
    assert len(set(numbers)) == 5
    assert all(number.isdigit() and len(number) <= 10 for number in numbers)
    from members.services import luhn_check_digit

    assert all(luhn_check_digit(number[:-1]) == number[-1] for number in numbers)


def test_duplicate_phone_in_another_spelling_is_409_with_the_member_no(api, member):
    before = Member.objects.count()
    response = create(api, name="张伟二号", phone="138-0013-8000")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "duplicate_member"
    assert error["member_no"] == member.member_no
    assert Member.objects.count() == before


def test_duplicate_email_is_case_insensitive(api, member):
    response = create(api, name="张伟", email="ZHANG.WEI@example.com")
    assert response.status_code == 409
    assert response.json()["error"]["member_no"] == member.member_no


def test_duplicate_external_id_is_per_channel(api, make_client, member, channel):
    ChannelIdentity.objects.create(member=member, channel=channel, external_id="CARD-001")
    response = create(api, name="某人", external_id="CARD-001")
    assert response.status_code == 409
    assert response.json()["error"]["member_no"] == member.member_no
    # the same id in another channel is another identity
    tmall = make_client(ChannelFactory(code="tmall"))
    response = tmall.post(URL, {"name": "某人", "external_id": "CARD-001"}, format="json")
    assert response.status_code == 201


def test_external_id_alone_is_enough_and_finds_the_member(api):
    response = create(api, name="小程序用户", external_id="oUnionId123")
    assert response.status_code == 201
    found = api.get(URL, {"external_id": "oUnionId123"}).json()
    assert [m["member_no"] for m in found["results"]] == [response.json()["member_no"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "无联系方式"}, "non_field_errors"),
        ({"phone": "13800138000"}, "name"),
        ({"name": "短号", "phone": "1380013"}, "phone"),
        ({"name": "坏邮箱", "email": "not-an-email@"}, "email"),
        ({"name": "性别", "phone": "13800138001", "gender": "robot"}, "gender"),
        ({"name": "未来", "phone": "13800138001", "birthday": "2999-01-01"}, "birthday"),
        ({"name": "不存在", "phone": "13800138001", "birthday": "1990-02-30"}, "birthday"),
        ({"name": "格式", "phone": "13800138001", "birthday": "17/05/1990"}, "birthday"),
        ({"name": "同意", "phone": "13800138001", "consents": {"sms": "maybe"}}, "consents.sms"),
        ({"name": 123456, "phone": ["13800138001"]}, "phone"),
        ({"name": "推荐", "phone": "13800138001", "referrer_member_no": "999999999"}, "referrer_member_no"),
    ],
)
def test_invalid_fields_are_400_and_create_nothing(api, body, field):
    response = create(api, **body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert Member.objects.count() == 0


def test_referrer_is_recorded(api, member):
    response = create(api, name="被推荐人", phone="13900139000", referrer_member_no=member.member_no)
    assert response.status_code == 201
    assert Member.objects.get(member_no=response.json()["member_no"]).referrer == member


def test_get_by_member_no_and_404(api, member):
    assert api.get(f"{URL}{member.member_no}/").json()["name"] == "张伟"
    response = api.get(f"{URL}000000000/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_patch_changes_only_what_is_given_and_is_attributed(api, member):
    response = api.patch(
        f"{URL}{member.member_no}/",
        {"city": "杭州", "phone": "139 0013 9000", "consents": {"wechat": True}},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["city"] == "杭州" and body["phone"] == "+8613900139000" and body["name"] == "张伟"
    assert body["consents"]["wechat"] is True
    entry = MemberHistory.objects.filter(member=member, action="updated").get()
    assert entry.channel == api.channel
    assert entry.changes["city"] == ["", "杭州"]
    assert entry.changes["phone"] == ["+8613800138000", "+8613900139000"]


def test_patch_to_a_phone_of_another_member_is_409_and_changes_nothing(api, member):
    other = MemberFactory(phone="+8613900139000")
    response = api.patch(f"{URL}{member.member_no}/", {"phone": "13900139000", "city": "北京"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["member_no"] == other.member_no
    member.refresh_from_db()
    assert member.phone == "+8613800138000" and member.city == ""


def test_withdrawing_consent_is_recorded_not_deleted(api, member):
    api.patch(f"{URL}{member.member_no}/", {"consents": {"sms": True}}, format="json")
    api.patch(f"{URL}{member.member_no}/", {"consents": {"sms": False}}, format="json")
    assert list(ConsentChange.objects.filter(member=member).order_by("id").values_list("granted", flat=True)) == [
        True,
        False,
    ]
    assert api.get(f"{URL}{member.member_no}/").json()["consents"]["sms"] is False


@pytest.mark.parametrize("spelling", ["13800138000", "+86 138-0013-8000", "86-13800138000"])
def test_list_filter_by_phone_in_any_spelling(api, member, spelling):
    MemberFactory()
    body = api.get(URL, {"phone": spelling}).json()
    assert [m["member_no"] for m in body["results"]] == [member.member_no]


def test_list_filter_by_email_case_insensitive_and_by_tag(api, member):
    from members import services

    other = MemberFactory()
    tag = services.tag_get_or_create(name="VIP")
    services.members_tag(member_ids=[other.pk], tag=tag)
    assert [m["member_no"] for m in api.get(URL, {"email": "Zhang.Wei@EXAMPLE.com"}).json()["results"]] == [
        member.member_no
    ]
    tagged = api.get(URL, {"tag": "VIP"}).json()["results"]
    assert [m["member_no"] for m in tagged] == [other.member_no]
    assert tagged[0]["tags"] == ["VIP"]


def test_list_filter_with_an_unreadable_phone_is_400(api):
    response = api.get(URL, {"phone": "abc"})
    assert response.status_code == 400
    assert "phone" in response.json()["error"]["fields"]


def test_member_list_query_count_does_not_grow_with_the_page(api):
    from members import services

    tag = services.tag_get_or_create(name="VIP")

    def page_queries():
        with CaptureQueriesContext(connection) as queries:
            assert api.get(URL, {"page_size": 200}).status_code == 200
        return len(queries)

    MemberFactory.create_batch(2)
    page_queries()  # the key's first call of the minute also records "last used"
    small = page_queries()
    members = MemberFactory.create_batch(30)
    services.members_tag(member_ids=[m.pk for m in members], tag=tag)
    assert page_queries() == small


def test_look_up_by_phone_is_one_indexed_query(api, member):
    from members import selectors

    with CaptureQueriesContext(connection) as queries:
        found = selectors.member_by_contact(phone="+8613800138000")
    assert found == member
    assert len(queries) == 1


def test_joined_at_is_timezone_aware(api):
    body = create(api, name="时区", phone="13700137000").json()
    joined = dt.datetime.fromisoformat(body["joined_at"])
    assert abs((joined - timezone.now()).total_seconds()) < 60
