"""A marketer builds a segment in the admin: the rule editor's JSON is checked on the form, the page shows the
live count, a sample and the rule in words; list segments load from a file of phones or member numbers."""

import json

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from campaigns.models import Segment
from loyalty import ledger
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SHANGHAI = {"all": [{"field": "city", "op": "eq", "value": "上海"}]}


@pytest.fixture
def members(program):
    found = []
    for city, phone in (("上海", "+8613800138001"), ("上海", "+8613800138002"), ("北京", "+8613800138003")):
        member = MemberFactory(city=city, phone=phone)
        ledger.account_get_or_create(member=member, program=program)
        found.append(member)
    return found


def test_add_a_rule_segment_and_see_its_count_sample_and_words(admin_client, program, members):
    response = admin_client.post(
        reverse("admin:campaigns_segment_add"),
        {"program": program.pk, "code": "sh", "name": "上海会员", "kind": "dynamic", "rule": json.dumps(SHANGHAI)},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    segment = Segment.objects.get(code="sh")
    assert segment.count == 2 and segment.rule == SHANGHAI
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the operator switched to English
    page = admin_client.get(reverse("admin:campaigns_segment_change", args=[segment.pk]))
    text = page.content.decode()
    assert "2 members" in text
    assert "all of (city is 上海)" in text
    assert members[0].member_no in text and members[2].member_no not in text
    assert 'class="rule-builder"' in text


def test_a_bad_rule_is_a_message_on_the_form_and_nothing_is_saved(admin_client, program, members):
    rule = {"all": [{"field": "points_balance", "op": "gte", "value": "lots"}]}
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the operator switched to English
    response = admin_client.post(
        reverse("admin:campaigns_segment_add"),
        {"program": program.pk, "code": "bad", "name": "bad", "kind": "dynamic", "rule": json.dumps(rule)},
    )
    assert response.status_code == 200
    assert "whole number" in str(response.context["adminform"].form.errors["rule"])
    assert not Segment.objects.exists()


def test_the_live_preview(admin_client, program, members):
    url = reverse("admin:campaigns_segment_preview")
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the operator switched to English
    body = admin_client.post(url, {"program": program.pk, "rule": json.dumps(SHANGHAI)}).json()
    assert body["count"] == 2
    assert body["sample"] == sorted(m.member_no for m in members[:2])
    bad = admin_client.post(url, {"program": program.pk, "rule": '{"all": [{"field": "x"}]}'}).json()
    assert "unknown field" in bad["errors"][0]


def test_the_preview_needs_a_permission(client, program, members):
    user = User.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(user)
    response = client.post(reverse("admin:campaigns_segment_preview"), {"program": program.pk, "rule": "{}"})
    assert response.status_code == 403


def test_a_list_segment_from_a_file_of_phones_and_member_numbers(admin_client, program, members):
    rows = f"phone\n138 0013 8001\n{members[2].member_no}\n139 9999 9999\n".encode()
    upload = SimpleUploadedFile("list.csv", rows, content_type="text/csv")
    response = admin_client.post(
        reverse("admin:campaigns_segment_add"),
        {"program": program.pk, "code": "vip", "name": "VIP", "kind": "static", "members_file": upload},
        follow=True,
    )
    segment = Segment.objects.get(code="vip")
    assert set(segment.listed.values_list("member_id", flat=True)) == {members[0].pk, members[2].pk}
    assert segment.count == 2
    warning = [str(message) for message in response.context["messages"]]
    assert any("4: 139 9999 9999" in message for message in warning), warning
