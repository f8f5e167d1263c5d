"""API.md § Campaigns and messages: create with variants and a control group, send (twice), read the results, the
frozen audience and a member's messages; errors and scopes."""

import json
from pathlib import Path

import pytest
from django.conf import settings

from campaigns.models import Message
from loyalty import ledger
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

EVERYONE = {"all": [{"field": "points_balance", "op": "gte", "value": 0}]}


@pytest.fixture(autouse=True)
def _fresh_message_file():
    Path(settings.CAMPAIGN_MESSAGE_FILE).unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _sent_at_any_hour(no_quiet_hours):
    pass


@pytest.fixture
def audience(api, program):
    members = []
    for _ in range(12):
        member = MemberFactory()
        ledger.account_get_or_create(member=member, program=program)
        member_services.member_update(member=member, data={}, consents={"sms": True})
        members.append(member)
    assert (
        api.post("/api/v1/segments/", {"code": "all", "name": "All", "rule": EVERYONE}, format="json").status_code
        == 201
    )
    return members


BODY = {
    "code": "dec",
    "name": "双十二",
    "segment": "all",
    "channel": "sms",
    "variants": [
        {"code": "A", "share": "0.5", "message": {"body": "A {name}"}},
        {"code": "B", "share": "0.5", "message": {"body": "B {name} {coupon_code}"}},
    ],
    "control_share": "0.25",
    "conversion_days": 7,
    "offer": {"coupon_template": "cny10"},
}


def test_create_send_and_read_results(api, audience, eager_tasks, django_capture_on_commit_callbacks):
    created = api.post("/api/v1/campaigns/", BODY, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["status"] == "draft"
    with django_capture_on_commit_callbacks(execute=True):
        sent = api.post("/api/v1/campaigns/dec/send/")
    assert (sent.status_code, sent.json()) == (202, {"status": "sending"})
    again = api.post("/api/v1/campaigns/dec/send/")
    assert again.status_code == 202
    body = api.get("/api/v1/campaigns/dec/").json()
    assert body["status"] == "sent" and body["audience"] == 12
    messaged = body["sent"]
    assert messaged == 12 - body["control"]["members"]
    assert sum(variant["members"] for variant in body["variants"]) + body["control"]["members"] == 12
    assert {variant["code"] for variant in body["variants"]} == {"A", "B"}
    lines = [json.loads(line) for line in Path(settings.CAMPAIGN_MESSAGE_FILE).read_text().splitlines()]
    assert len(lines) == messaged
    audience_page = api.get("/api/v1/campaigns/dec/audience/?page_size=50").json()
    assert audience_page["count"] == 12
    groups = {row["group"] for row in audience_page["results"]}
    assert groups <= {"control", "A", "B"}
    for row in audience_page["results"]:
        assert (row["status"] is None) == (row["group"] == "control")
    member_no = next(row["member_no"] for row in audience_page["results"] if row["group"] != "control")
    messages = api.get(f"/api/v1/members/{member_no}/messages/").json()["results"]
    assert messages[0]["campaign"] == "dec" and messages[0]["status"] == "sent" and messages[0]["channel"] == "sms"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"segment": "nobody"}, "segment"),
        ({"variants": [{"code": "A", "share": "0.5", "message": {"body": "x"}}]}, "variants"),
        ({"control_share": "0.6"}, "control_share"),
        ({"channel": "fax"}, "channel"),
        ({"variants": None, "message": {"body": "Hi {nickname}"}}, "message.body"),
        ({"offer": {"coupon_template": "nope"}}, "offer.coupon_template"),
    ],
)
def test_a_bad_campaign_is_refused_with_its_field(api, audience, change, field):
    body = {key: value for key, value in {**BODY, **change}.items() if value is not None}
    response = api.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert api.get("/api/v1/campaigns/dec/").status_code == 404


def test_cancel_before_sending(api, audience):
    api.post("/api/v1/campaigns/", BODY, format="json")
    assert api.post("/api/v1/campaigns/dec/cancel/").json() == {"status": "cancelled"}
    assert api.post("/api/v1/campaigns/dec/send/").json() == {"status": "cancelled"}
    assert not Message.objects.exists()


def test_scopes(make_client, channel, audience):
    reader = make_client(channel, scopes=["campaigns:read"])
    assert reader.post("/api/v1/campaigns/", BODY, format="json").status_code == 403
    assert reader.get("/api/v1/campaigns/").status_code == 200
