"""The operators' admin: pages render, search finds phones in any spelling, actions go through services."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from members import services
from members.models import ApiKey, Member, MemberHistory, MemberMerge, MemberTag
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/members/member/"


@pytest.fixture
def staff(admin_client):
    return admin_client


def form_data(client, url, **fields):
    """What the browser posts: the page's inline management forms plus the fields filled in."""
    page = client.get(url)
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        for name, field in management.fields.items():
            data[management.add_prefix(name)] = management.initial.get(name, field.initial)
    data.update(fields)
    return data


def test_home_page_shows_the_dashboard_and_language_switch(staff, member):
    response = staff.get("/admin/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="crm-dashboard"' in html and 'name="language"' in html


def test_admin_speaks_chinese_by_default_and_english_on_request(staff):
    assert "会员" in staff.get("/admin/").content.decode()
    staff.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    assert "Membership CRM" in staff.get("/admin/").content.decode()


@pytest.mark.parametrize("term", ["138 0013 8000", "+86-138-0013-8000", "ZHANG.WEI@example.com", "张伟"])
def test_search_finds_a_member_by_phone_in_any_spelling_email_or_name(staff, member, term):
    MemberFactory(name="李娜")
    response = staff.get(CHANGELIST, {"q": term})
    assert list(response.context["cl"].result_list) == [member]


def test_search_by_member_no_and_channel_identity(staff, member, channel):
    services.identity_link(member=member, channel=channel, external_id="oOpenId-42")
    assert list(staff.get(CHANGELIST, {"q": member.member_no}).context["cl"].result_list) == [member]
    assert list(staff.get(CHANGELIST, {"q": "oOpenId-42"}).context["cl"].result_list) == [member]


def test_filters_by_birthday_month_and_status(staff, member):
    member.birthday = dt.date(1990, 5, 17)
    member.save()
    MemberFactory(birthday=dt.date(1990, 6, 1))
    assert list(staff.get(CHANGELIST, {"birthday_month": "5"}).context["cl"].result_list) == [member]
    assert staff.get(CHANGELIST, {"status__exact": "frozen"}).context["cl"].result_count == 0


def test_member_page_is_a_360_view(staff, member, channel):
    services.identity_link(member=member, channel=channel, external_id="CARD-7")
    services.member_update(member=member, data={}, consents={"sms": True})
    response = staff.get(reverse("admin:members_member_change", args=[member.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "CARD-7" in html and member.member_no in html


def test_staff_edit_goes_through_the_service_and_is_attributed(staff, member, admin_user):
    url = reverse("admin:members_member_change", args=[member.pk])
    data = form_data(
        staff,
        url,
        name="张伟",
        phone="139-0013-9000",
        email="zhang.wei@example.com",
        gender="male",
        birthday="",
        city="成都",
        country="",
        language="",
        referrer="",
        consent_email="on",
    )
    response = staff.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    member.refresh_from_db()
    assert member.phone == "+8613900139000" and member.city == "成都" and member.gender == "male"
    entry = MemberHistory.objects.get(member=member, action="updated")
    assert entry.actor == admin_user and entry.changes["city"] == ["", "成都"]
    assert entry.changes["consent_email"] is True


def test_staff_edit_with_a_bad_phone_shows_the_error_and_changes_nothing(staff, member):
    url = reverse("admin:members_member_change", args=[member.pk])
    response = staff.post(url, form_data(staff, url, name="张伟", phone="1380013", email="", gender="unknown"))
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors
    member.refresh_from_db()
    assert member.phone == "+8613800138000"


def test_staff_add_member(staff, admin_user):
    url = reverse("admin:members_member_add")
    response = staff.post(url, form_data(staff, url, name="新会员", phone="13700137000", gender="unknown"))
    assert response.status_code == 302
    member = Member.objects.get(phone="+8613700137000")
    assert member.member_no and MemberHistory.objects.filter(member=member, actor=admin_user).exists()


def test_staff_add_member_with_a_taken_phone_or_email_is_refused_on_the_form(staff, member):
    url = reverse("admin:members_member_add")
    before = Member.objects.count()
    # The same phone in another spelling, and the same e-mail in capitals.
    response = staff.post(url, form_data(staff, url, name="重复", phone="+86 138-0013-8000", gender="unknown"))
    assert response.status_code == 200
    assert "phone" in response.context["adminform"].form.errors
    response = staff.post(
        url, form_data(staff, url, name="重复", phone="13700137000", email=member.email.upper(), gender="unknown")
    )
    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert Member.objects.count() == before


def test_bulk_tag_freeze_and_unfreeze(staff, member):
    other = MemberFactory()
    selected = [member.pk, other.pk]
    response = staff.post(CHANGELIST, {"action": "add_tag", "_selected_action": selected})
    assert response.status_code == 200  # the form asking which tag
    staff.post(CHANGELIST, {"action": "add_tag", "_selected_action": selected, "apply": "1", "tag": "VIP"})
    assert MemberTag.objects.filter(tag__name="VIP").count() == 2
    staff.post(CHANGELIST, {"action": "freeze", "_selected_action": selected})
    assert set(Member.objects.values_list("status", flat=True)) == {"frozen"}
    staff.post(CHANGELIST, {"action": "unfreeze", "_selected_action": [member.pk]})
    member.refresh_from_db()
    assert member.status == "active"


def test_duplicates_page_and_merge_from_the_admin(staff, admin_user):
    older = MemberFactory(name="陈静", birthday=dt.date(1988, 1, 2), joined_at=timezone.now() - dt.timedelta(days=9))
    newer = MemberFactory(name="陈静", birthday=dt.date(1988, 1, 2))
    page = staff.get(reverse("admin:members_member_duplicates"))
    assert page.status_code == 200 and older.member_no in page.content.decode()
    merge_url = reverse("admin:members_member_merge", args=[older.pk, newer.pk])
    assert staff.get(merge_url).status_code == 200
    asked = staff.post(merge_url, {"keep": str(older.pk)})
    assert asked.status_code == 200 and 'id="merge-confirm"' in asked.content.decode()
    assert not MemberMerge.objects.exists()
    response = staff.post(merge_url, {"keep": str(older.pk), "confirm": "yes"})
    assert response.status_code == 302
    merge = MemberMerge.objects.get()
    assert merge.kept == older and merge.dropped == newer and merge.merged_by == admin_user


def test_members_cannot_be_deleted_from_the_admin(staff, member):
    assert staff.get(reverse("admin:members_member_delete", args=[member.pk])).status_code == 403


def test_api_key_created_in_the_admin_is_shown_once(staff, channel):
    response = staff.post(
        reverse("admin:members_apikey_add"),
        {"channel": channel.pk, "name": "POS", "scopes": ["members:read", "orders:write"]},
        follow=True,
    )
    api_key = ApiKey.objects.get()
    shown = [str(message) for message in response.context["messages"]]
    assert any(api_key.prefix in text for text in shown)
    assert api_key.scopes == ["members:read", "orders:write"]
    # the list never shows it again
    listing = staff.get(reverse("admin:members_apikey_changelist")).content.decode()
    assert api_key.key_hash not in listing
    raw = next(text for text in shown if api_key.prefix in text).split("<code")[1].split(">")[1].split("<")[0]
    assert raw not in listing


def test_api_key_revoke_action(staff, channel):
    api_key, _raw = services.api_key_create(channel=channel, scopes=["members:read"])
    staff.post(reverse("admin:members_apikey_changelist"), {"action": "revoke_keys", "_selected_action": [api_key.pk]})
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


@pytest.mark.parametrize(
    "url",
    [
        "/admin/members/order/",
        "/admin/members/refund/",
        "/admin/members/event/",
        "/admin/members/membermerge/",
        "/admin/members/tag/",
        "/admin/members/channel/",
        "/admin/members/apikey/",
        "/admin/members/apikey/add/",
    ],
)
def test_every_members_admin_page_renders(staff, member, url):
    assert staff.get(url).status_code == 200


def test_saving_a_member_writes_consent_rows_only_for_a_consent_that_changed(staff, member, admin_user):
    from members.models import Consent, ConsentChange

    services.member_update(member=member, data={}, consents={"sms": True}, actor=admin_user)
    url = reverse("admin:members_member_change", args=[member.pk])
    profile = {"name": member.name, "phone": member.phone, "email": member.email, "gender": "unknown", "birthday": ""}
    profile.update(country="", language="", referrer="", consent_sms="on")
    response = staff.post(url, form_data(staff, url, **profile, city="杭州"))
    assert response.status_code == 302
    assert list(Consent.objects.filter(member=member).values_list("channel", "granted")) == [("sms", True)]
    assert ConsentChange.objects.filter(member=member).count() == 1
    del profile["consent_sms"]  # the operator unticks SMS: one row, the withdrawal
    staff.post(url, form_data(staff, url, **profile, city="杭州"))
    assert list(ConsentChange.objects.filter(member=member).order_by("id").values_list("channel", "granted")) == [
        ("sms", True),
        ("sms", False),
    ]


def test_adding_a_member_without_ticking_consents_writes_no_consent_rows(staff):
    from members.models import ConsentChange

    url = reverse("admin:members_member_add")
    data = form_data(staff, url, name="林静", phone="13912345678", email="", gender="unknown", birthday="", city="")
    data.update(country="", language="", referrer="")
    assert staff.post(url, data).status_code == 302
    assert ConsentChange.objects.count() == 0


def test_the_merged_away_phone_and_email_still_find_the_member_kept(staff, admin_user, make_client, program):
    from members import selectors

    keep = MemberFactory(name="陈静", phone="+8613800000001", email="chen@example.com")
    drop = MemberFactory(name="陈静", phone="+8613900000002", email="jing.chen@example.com")
    services.members_merge(keep=keep, drop=drop, by=admin_user)
    for term in ("139 0000 0002", "JING.CHEN@example.com"):
        assert list(staff.get(CHANGELIST, {"q": term}).context["cl"].result_list) == [keep]
    assert selectors.member_by_contact(phone="+8613900000002") == keep
    api = make_client()
    found = api.get("/api/v1/members/", {"phone": "139-0000-0002"}).json()
    assert [row["member_no"] for row in found["results"]] == [keep.member_no]
    assert api.get("/api/v1/members/", {"phone": "139-0000-0003"}).json()["count"] == 0
    # and after the kept member is merged away in turn, the pointer is followed
    last = MemberFactory(name="陈静")
    services.members_merge(keep=last, drop=keep, by=admin_user)
    assert selectors.member_by_contact(phone="+8613900000002") == last


def test_the_merge_page_compares_tier_points_and_orders_and_asks_before_merging(staff, program, channel):
    from decimal import Decimal

    from django.conf import settings

    from loyalty.adjustments import points_adjust
    from loyalty.ledger import account_get_or_create

    staff.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    keep, drop = MemberFactory(name="陈静"), MemberFactory(name="陈静")
    points_adjust(account=account_get_or_create(member=drop, program=program), points=1200, reason="t")
    services.order_record(
        channel=channel, order_id="O-1", member=drop, amount=Decimal("88.00"), occurred_at=timezone.now(), award=False
    )
    url = reverse("admin:members_member_merge", args=[keep.pk, drop.pk])
    rows = {str(label): (kept, dropped) for label, kept, dropped in staff.get(url).context["compare_rows"]}
    assert rows["orders"] == (0, 1) and rows["order spend"] == (0, Decimal("88.00"))
    assert rows["tier · 会员计划 Demo"] == ("–", "普通会员")
    assert rows["points balance · 会员计划 Demo"] == (0, 1200)
    asked = staff.post(url, {"keep": str(keep.pk)})  # the first click only asks
    assert "This cannot be undone." in asked.content.decode()
    drop.refresh_from_db()
    assert drop.merged_into is None and drop.status == "active"
    staff.post(url, {"keep": str(keep.pk), "confirm": "yes"})
    drop.refresh_from_db()
    assert drop.merged_into == keep


def test_the_admin_tag_filter_is_the_apis(staff, member, api):
    tag = services.tag_get_or_create(name="VIP")
    services.members_tag(member_ids=[member.pk], tag=tag)
    MemberFactory(name="李娜")

    in_admin = list(staff.get(CHANGELIST, {"tag": "VIP"}).context["cl"].result_list)
    in_api = [row["member_no"] for row in api.get("/api/v1/members/", {"tag": "VIP"}).json()["results"]]

    assert in_admin == [member] and in_api == [member.member_no]
