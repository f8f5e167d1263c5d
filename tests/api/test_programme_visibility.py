"""A programme's partners see only that programme's members; a sign-up through another programme joins the member
to it (API.md: Authentication and scopes, Members; issue 9, item 12)."""

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from loyalty.models import Account, ChannelProgram, PointsTransaction, Program, Tier
from members import services
from members.errors import DuplicateMember
from members.models import ChannelIdentity, Event, Member, MemberHistory, Order
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db

# An hour ago: within every programme limit on how old a partner's order or event may be.
WHEN = (timezone.now() - dt.timedelta(hours=1)).isoformat()


@pytest.fixture
def other_program(db):
    program = Program.objects.create(code="sg", name="Singapore", currency="SGD", time_zone="Asia/Singapore")
    Tier.objects.create(program=program, code="member", name="Member", rank=0)
    return program


@pytest.fixture
def sg_channel(other_program):
    channel = ChannelFactory(code="sg-web", name="SG web shop")
    ChannelProgram.objects.create(channel=channel, program=other_program)
    return channel


@pytest.fixture
def sg(make_client, sg_channel):
    return make_client(sg_channel)


@pytest.fixture
def cn_member(program):
    """A member of the demo programme alone (joined through its channel `pos-shanghai`)."""
    return MemberFactory(name="张伟", phone="+8613800138000", email=None, city="", birthday=None)


def assert_not_found(response):
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


def test_a_key_of_another_programme_cannot_list_read_or_change_the_member(sg, cn_member):
    no = cn_member.member_no
    assert sg.get("/api/v1/members/").json()["count"] == 0
    assert sg.get("/api/v1/members/?phone=13800138000").json()["count"] == 0
    assert_not_found(sg.get(f"/api/v1/members/{no}/"))
    assert_not_found(sg.patch(f"/api/v1/members/{no}/", {"name": "改名", "city": "新加坡"}, format="json"))
    assert_not_found(sg.get(f"/api/v1/members/{no}/points/"))
    assert_not_found(sg.get(f"/api/v1/members/{no}/points/transactions/"))
    assert_not_found(
        sg.post(
            f"/api/v1/members/{no}/points/adjustments/",
            {"adjustment_id": "a1", "points": 100, "reason": "x"},
            format="json",
        )
    )
    assert_not_found(sg.get(f"/api/v1/members/{no}/coupons/"))
    assert_not_found(sg.get(f"/api/v1/members/{no}/badges/"))
    assert_not_found(sg.get(f"/api/v1/rewards/?member_no={no}"))
    assert_not_found(
        sg.post("/api/v1/orders/", {"order_id": "o1", "member_no": no, "amount": "10.00", "occurred_at": WHEN}, "json")
    )
    assert_not_found(
        sg.post(
            "/api/v1/orders/", {"order_id": "o2", "phone": "13800138000", "amount": "1", "occurred_at": WHEN}, "json"
        )
    )
    assert_not_found(
        sg.post("/api/v1/events/", {"event_id": "e1", "member_no": no, "type": "check_in", "occurred_at": WHEN}, "json")
    )
    assert_not_found(
        sg.post("/api/v1/redemptions/", {"redemption_id": "r1", "member_no": no, "reward_code": "CNY10"}, "json")
    )
    assert_not_found(sg.delete(f"/api/v1/members/{no}/"))
    cn_member.refresh_from_db()
    assert (cn_member.name, cn_member.city, cn_member.status) == ("张伟", "", "active")
    assert not Order.objects.exists() and not Event.objects.exists() and not PointsTransaction.objects.exists()
    assert not Account.objects.filter(program__code="sg").exists()


def test_the_own_programme_sees_the_member(api, cn_member):
    assert api.get(f"/api/v1/members/{cn_member.member_no}/").status_code == 200
    assert api.get("/api/v1/members/").json()["count"] == 1


@pytest.mark.parametrize("how", ["account", "order", "joined", "joined_through_a_sibling_channel"])
def test_a_member_belongs_to_a_programme_by_account_order_or_join_channel(sg, sg_channel, other_program, how):
    elsewhere = ChannelFactory(code="jd", name="JD")
    member = MemberFactory(join_channel=elsewhere)
    if how == "account":
        Account.objects.create(
            member=member, program=other_program, tier=other_program.tiers.get(), tier_since=dt.datetime.now(dt.UTC)
        )
    elif how == "order":
        Order.objects.create(
            channel=sg_channel, order_id="old-1", member=member, amount=5, occurred_at=dt.datetime.now(dt.UTC)
        )
    elif how == "joined":
        Member.objects.filter(pk=member.pk).update(join_channel=sg_channel)
    else:
        sibling = ChannelFactory(code="sg-pos", name="SG POS")
        ChannelProgram.objects.create(channel=sibling, program=other_program)
        Member.objects.filter(pk=member.pk).update(join_channel=sibling)
    assert sg.get(f"/api/v1/members/{member.member_no}/").status_code == 200
    assert [row["member_no"] for row in sg.get("/api/v1/members/").json()["results"]] == [member.member_no]


def test_a_sign_up_of_another_programmes_member_joins_this_programme(sg, sg_channel, cn_member):
    response = sg.post(
        "/api/v1/members/",
        {
            "name": "Zhang Wei",
            "phone": "+86 138 0013 8000",
            "email": "Zhang.Wei@Example.com",
            "city": "Singapore",
            "birthday": "1990-05-17",
            "gender": "male",
            "external_id": "sg-42",
            "consents": {"email": True},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["member_no"] == cn_member.member_no
    assert body["tier"] == {"code": "member", "name": "Member"}
    cn_member.refresh_from_db()
    # Blank fields filled, nothing overwritten.
    assert (cn_member.name, cn_member.email, cn_member.city, cn_member.birthday, cn_member.gender) == (
        "张伟",
        "zhang.wei@example.com",
        "Singapore",
        dt.date(1990, 5, 17),
        "male",
    )
    assert cn_member.join_channel.code == "pos-shanghai"
    assert Member.objects.count() == 1
    assert Account.objects.filter(member=cn_member, program__code="sg").count() == 1
    assert ChannelIdentity.objects.get(channel=sg_channel, external_id="sg-42").member == cn_member
    assert body["consents"]["email"] is True
    assert MemberHistory.objects.filter(member=cn_member, action="joined", channel=sg_channel).count() == 1
    # Now a member of both programmes: each sees it, and a second sign-up in either is a duplicate.
    assert sg.get(f"/api/v1/members/{cn_member.member_no}/").status_code == 200
    again = sg.post("/api/v1/members/", {"name": "Zhang Wei", "phone": "13800138000"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_member"
    assert again.json()["error"]["member_no"] == cn_member.member_no
    assert Account.objects.filter(member=cn_member, program__code="sg").count() == 1


def test_a_sign_up_never_overwrites_what_the_member_has(sg, cn_member):
    Member.objects.filter(pk=cn_member.pk).update(email="old@example.com", city="上海", gender="female")
    response = sg.post(
        "/api/v1/members/",
        {"name": "Other", "email": "old@example.com", "phone": "+6591234567", "city": "Singapore", "gender": "male"},
        format="json",
    )
    assert response.status_code == 201, response.content
    cn_member.refresh_from_db()
    assert (cn_member.name, cn_member.phone, cn_member.city, cn_member.gender) == (
        "张伟",
        "+8613800138000",
        "上海",
        "female",
    )


def test_a_sign_up_naming_two_different_people_is_409_and_changes_nothing(sg, sg_channel, cn_member):
    other = MemberFactory(phone="+8613900139000", email="li.na@example.com", join_channel=sg_channel)
    response = sg.post(
        "/api/v1/members/", {"name": "张伟", "phone": "13800138000", "email": "li.na@example.com"}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "duplicate_member"
    assert response.json()["error"]["member_no"] == other.member_no
    assert not Account.objects.filter(program__code="sg").exists()
    cn_member.refresh_from_db()
    assert cn_member.email is None


def test_a_duplicate_never_names_a_member_of_another_programme(sg, cn_member):
    other = MemberFactory(join_channel=None, phone="+8613900139000", email="li.na@example.com")
    mine = sg.post("/api/v1/members/", {"name": "Tan", "phone": "+6591234567"}, format="json").json()
    response = sg.patch(f"/api/v1/members/{mine['member_no']}/", {"phone": cn_member.phone}, format="json")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "duplicate_member" and "member_no" not in error
    assert cn_member.member_no not in response.content.decode() and list(error["fields"]) == ["phone"]
    both = sg.post("/api/v1/members/", {"name": "x", "phone": cn_member.phone, "email": other.email}, format="json")
    assert both.status_code == 409 and "member_no" not in both.json()["error"]
    assert Member.objects.get(member_no=mine["member_no"]).phone == "+6591234567"


def test_a_sign_up_in_the_own_programme_stays_409(api, cn_member):
    response = api.post("/api/v1/members/", {"name": "张伟", "phone": "13800138000"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["member_no"] == cn_member.member_no


def test_a_new_sign_up_opens_the_account_in_the_channels_programme(api):
    response = api.post("/api/v1/members/", {"name": "李娜", "phone": "13900139000"}, format="json")
    member = Member.objects.get(member_no=response.json()["member_no"])
    assert [account.program.code for account in Account.objects.filter(member=member)] == ["demo"]


def test_referrer_of_another_programme_is_not_found(sg, cn_member):
    response = sg.post(
        "/api/v1/members/",
        {"name": "王芳", "phone": "13700137000", "referrer_member_no": cn_member.member_no},
        format="json",
    )
    assert response.status_code == 400
    assert "referrer_member_no" in response.json()["error"]["fields"]
    assert not Member.objects.filter(phone="+8613700137000").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_ups_in_one_programme_join_once(sg_channel, cn_member):
    count = 6
    barrier, results, lock = threading.Barrier(count), [], threading.Lock()

    def sign_up():
        barrier.wait()
        try:
            member, created = services.member_sign_up(channel=sg_channel, name="Zhang Wei", phone=cn_member.phone)
            outcome = (member.pk, created)
        except DuplicateMember as error:
            outcome = error.code
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=sign_up) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results, key=str) == sorted([(cn_member.pk, False)] + ["duplicate_member"] * (count - 1), key=str)
    assert Account.objects.filter(member=cn_member, program__code="sg").count() == 1
    assert MemberHistory.objects.filter(member=cn_member, action="joined").count() == 1
