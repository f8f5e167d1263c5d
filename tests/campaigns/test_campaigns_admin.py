"""A marketer in the admin: creates a campaign with two variants and a control group, sends it, reads the results;
sending needs its own permission; the member page lists the member's messages; a merge moves them."""

from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from campaigns import services
from campaigns.models import Campaign, Message
from loyalty import ledger
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_message_file():
    Path(settings.CAMPAIGN_MESSAGE_FILE).unlink(missing_ok=True)


@pytest.fixture
def segment(program):
    for _ in range(8):
        member = MemberFactory()
        ledger.account_get_or_create(member=member, program=program)
        member_services.member_update(member=member, data={}, consents={"sms": True})
    return services.segment_create(
        program=program, code="all", name="All", rule={"all": [{"field": "points_balance", "op": "gte", "value": 0}]}
    )


def inline(prefix, rows):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "1",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"{prefix}-{index}-{key}": value for key, value in row.items()})
    return data


def test_a_marketer_builds_sends_and_reads_a_campaign(
    admin_client, program, segment, eager_tasks, django_capture_on_commit_callbacks, no_quiet_hours
):
    data = {
        "program": program.pk,
        "code": "dec",
        "name": "双十二",
        "segment": segment.pk,
        "channel": "sms",
        "control_share": "0.25",
        "conversion_days": "14",
        **inline(
            "variants",
            [
                {"code": "A", "share": "0.5", "subject": "", "body": "A {name}"},
                {"code": "B", "share": "0.5", "subject": "", "body": "B {name}"},
            ],
        ),
    }
    response = admin_client.post(reverse("admin:campaigns_campaign_add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get(code="dec")
    assert campaign.status == "draft" and campaign.variants.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:campaigns_campaign_send", args=[campaign.pk]))
    campaign.refresh_from_db()
    assert campaign.status == "sent"
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # the operator switched to English
    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    text = page.content.decode()
    assert "campaign-results" in text
    assert f"Sent: {Message.objects.filter(status='sent').count()}" in text


def test_sending_needs_the_send_permission(client, program, segment):
    campaign = services.campaign_create(
        program=program, code="x", name="x", segment=segment, channel="sms", message={"body": "hi"}
    )
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_campaign", "change_campaign"]))
    client.force_login(user)
    response = client.post(reverse("admin:campaigns_campaign_send", args=[campaign.pk]))
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not Message.objects.exists()


def test_the_member_page_lists_messages_and_a_merge_moves_them(admin_client, program, segment):
    campaign = services.campaign_create(
        program=program, code="x", name="冬季促销", segment=segment, channel="sms", message={"body": "hi"}
    )
    from campaigns import sending

    sending.campaign_send(campaign=campaign)
    message = Message.objects.order_by("id").first()
    page = admin_client.get(reverse("admin:members_member_change", args=[message.member_id]))
    assert "冬季促销" in page.content.decode()
    listed = admin_client.get(reverse("admin:campaigns_message_changelist") + f"?member__id__exact={message.member_id}")
    assert listed.status_code == 200 and listed.context["cl"].result_count == 1
    keep = MemberFactory()
    member_services.members_merge(keep=keep, drop=message.member)
    message.refresh_from_db()
    assert message.member_id == keep.pk


def test_the_personal_data_export_has_the_messages_and_erasure_blanks_their_text(program, segment):
    from campaigns import sending
    from members.extensions import member_personal_data

    campaign = services.campaign_create(
        program=program, code="x", name="x", segment=segment, channel="sms", message={"body": "hi"}
    )
    sending.campaign_send(campaign=campaign)
    message = Message.objects.order_by("id").first()
    Message.objects.filter(pk=message.pk).update(body="张伟您好", status="sent")
    sections = {}
    for part in (entry(member=message.member) for entry in member_personal_data):
        sections.update(part or {})
    assert sections["messages"][0]["body"] == "张伟您好" and sections["messages"][0]["campaign"] == "x"
    member_services.member_erase(member=message.member, reason="request", actor=None)
    message.refresh_from_db()
    assert (message.body, message.status) == ("", "sent")
