"""Withdrawals through the channel: an SMS reply "TD"/"退订" pushed by the provider, an e-mail's unsubscribe link;
both recorded in the consent history, and a message still queued is then skipped."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse

from campaigns import sending, services, unsubscribe
from campaigns.models import Message
from loyalty import ledger
from members import services as member_services
from members.models import ConsentChange
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
DAYTIME = dt.datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def member(program):
    member = MemberFactory(phone="+8613800138000", email="li@example.com")
    ledger.account_get_or_create(member=member, program=program)
    member_services.member_update(member=member, data={}, consents={"sms": True, "email": True})
    return member


@pytest.mark.parametrize("text", ["TD", "td", "退订", " T ", "退订。"])
def test_a_stop_reply_withdraws_the_sms_consent(client, settings, member, text):
    settings.CAMPAIGN_REPLY_TOKEN = "s3cret"
    payload = [{"phone_number": "13800138000", "content": text, "send_time": "2026-11-30 10:00:00"}]
    response = client.post(reverse("campaigns-sms-replies", args=["s3cret"]), payload, content_type="application/json")
    assert response.json()["code"] == 0 and response.json()["withdrawn"] == 1
    change = ConsentChange.objects.filter(member=member, channel="sms").latest("id")
    assert change.granted is False and "aliyun" in change.source


def test_other_replies_and_a_wrong_token_change_nothing(client, settings, member):
    settings.CAMPAIGN_REPLY_TOKEN = "s3cret"
    payload = [{"phone_number": "13800138000", "content": "谢谢"}]
    assert (
        client.post(reverse("campaigns-sms-replies", args=["s3cret"]), payload, content_type="application/json").json()[
            "withdrawn"
        ]
        == 0
    )
    assert (
        client.post(
            reverse("campaigns-sms-replies", args=["guess"]), payload, content_type="application/json"
        ).status_code
        == 403
    )
    assert member.consents.get(channel="sms").granted is True


def test_the_email_link_asks_then_withdraws_and_a_queued_message_is_skipped(client, program, member):
    segment = services.segment_create(
        program=program, code="s", name="s", rule={"all": [{"field": "consent", "op": "eq", "value": "email"}]}
    )
    campaign = services.campaign_create(
        program=program,
        code="c",
        name="c",
        segment=segment,
        channel="email",
        message={"subject": "冬季", "body": "{name} 您好"},
    )
    sending.campaign_send(campaign=campaign, now=DAYTIME)
    url = unsubscribe.unsubscribe_url(member=member)
    path = url.split("8000", 1)[1]
    assert client.get(path).status_code == 200
    assert member.consents.get(channel="email").granted is True  # a GET (a mail scanner) changes nothing
    assert client.post(path).status_code == 200
    assert member.consents.get(channel="email").granted is False
    ((id_from, id_to),) = sending.delivery_batches(campaign_id=campaign.pk)
    sending.campaign_batch_deliver(campaign_id=campaign.pk, id_from=id_from, id_to=id_to, now=DAYTIME)
    assert (Message.objects.get().status, Message.objects.get().reason) == ("skipped", "no_consent")
    assert client.post(path[:-5] + "xxxx/").status_code == 400


def test_an_email_carries_its_unsubscribe_link(program, member):
    segment = services.segment_create(
        program=program, code="s", name="s", rule={"all": [{"field": "consent", "op": "eq", "value": "email"}]}
    )
    campaign = services.campaign_create(
        program=program,
        code="c",
        name="c",
        segment=segment,
        channel="email",
        message={"subject": "冬季", "body": "{name} 您好"},
    )
    sending.campaign_send(campaign=campaign, now=DAYTIME)
    ((id_from, id_to),) = sending.delivery_batches(campaign_id=campaign.pk)
    sending.campaign_batch_deliver(campaign_id=campaign.pk, id_from=id_from, id_to=id_to, now=DAYTIME)
    assert mail.outbox[0].subject == "冬季"
    assert "/m/u/" in mail.outbox[0].body and mail.outbox[0].to == ["li@example.com"]
