"""Webhooks to partners: subscriptions through the API (secret shown once, private URLs refused), a signed POST
that a test receiver verifies, a failing receiver retried with backoff and then marked failed, resend by staff."""

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from campaigns import webhooks
from campaigns.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    """These tests read the messages in English; tests/config checks that they are all in Chinese too."""
    with translation.override("en"):
        yield


class Receiver(BaseHTTPRequestHandler):
    received = []
    answer = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers, body))  # case-insensitive look-ups
        self.send_response(type(self).answer)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the test receiver listens on loopback
    Receiver.received, Receiver.answer = [], 200
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def verify(secret, headers, body):
    """What a partner's receiver does with X-CRM-Signature."""
    parts = dict(item.split("=", 1) for item in headers["X-CRM-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def test_subscribe_receive_a_signed_event_and_unsubscribe(
    api, program, receiver, eager_tasks, django_capture_on_commit_callbacks
):
    created = api.post(
        "/api/v1/webhooks/", {"url": receiver, "events": ["member.created", "tier.changed"]}, format="json"
    )
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    assert len(secret) == 64
    assert "secret" not in api.get("/api/v1/webhooks/").json()["results"][0]
    with django_capture_on_commit_callbacks(execute=True):
        webhooks.event_emit(program=program, type="tier.changed", data={"member_no": "100000018", "to": "gold"})
        webhooks.event_emit(program=program, type="coupon.issued", data={"code": "X"})  # not subscribed
    ((headers, body),) = Receiver.received
    assert verify(secret, headers, body)
    event = json.loads(body)
    assert event["type"] == "tier.changed" and event["data"] == {"member_no": "100000018", "to": "gold"}
    assert headers["X-CRM-Event-Id"] == event["id"]
    assert WebhookDelivery.objects.get().status == "delivered"
    webhook_id = created.json()["id"]
    assert api.delete(f"/api/v1/webhooks/{webhook_id}/").status_code == 204
    assert not Webhook.objects.exists()


def test_private_and_loopback_urls_are_refused(api, program, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    for url in ("http://127.0.0.1/hook", "http://10.0.0.8/hook", "http://192.168.1.2/x", "http://[::1]/x"):
        response = api.post(
            "/api/v1/webhooks/", {"url": url, "events": ["member.created"]}, format="json", HTTP_ACCEPT_LANGUAGE="en"
        )
        assert response.status_code == 400, url
        assert "private" in response.json()["error"]["fields"]["url"][0]
    bad = api.post("/api/v1/webhooks/", {"url": "https://example.com/x", "events": ["member.deleted"]}, format="json")
    assert bad.status_code == 400 and "events" in bad.json()["error"]["fields"]
    assert not Webhook.objects.exists()


def test_a_failing_receiver_is_retried_with_backoff_then_failed(program, channel, receiver, settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 3600
    Receiver.answer = 500
    webhook = webhooks.webhook_create(program=program, channel=channel, url=receiver, events=["member.created"])
    start = timezone.now()
    (delivery_id,) = webhooks.event_emit(program=program, type="member.created", data={"member_no": "1"}, now=start)
    waits = []
    moment = start
    while True:
        delivery = webhooks.delivery_attempt(delivery_id=delivery_id, now=moment)
        if delivery.status != "pending":
            break
        waits.append(delivery.next_attempt_at - moment)
        moment = delivery.next_attempt_at
    assert waits == [dt.timedelta(hours=1), dt.timedelta(hours=2), dt.timedelta(hours=4), dt.timedelta(hours=8)]
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 5, 500)
    assert len(Receiver.received) == 5
    assert webhook.deliveries.count() == 1


def test_staff_resend_a_failed_event(
    admin_client, program, channel, receiver, eager_tasks, django_capture_on_commit_callbacks
):
    webhook = webhooks.webhook_create(program=program, channel=channel, url=receiver, events=["coupon.issued"])
    delivery = WebhookDelivery.objects.create(
        webhook=webhook,
        event_id="6f1d8a52-3a4f-4f39-9a2d-0a8c6e6f0b11",
        type="coupon.issued",
        payload={"code": "A"},
        status="failed",
        attempts=5,
        created_at=timezone.now() - dt.timedelta(days=2),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:campaigns_webhookdelivery_changelist"),
            {"action": "resend", "_selected_action": [delivery.pk]},
        )
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert json.loads(Receiver.received[0][1])["id"] == "6f1d8a52-3a4f-4f39-9a2d-0a8c6e6f0b11"


def test_another_programmes_channel_sees_no_webhook_of_this_one(api, make_client, program, receiver):
    from loyalty.models import ChannelProgram, Program, Tier
    from tests.factories import ChannelFactory

    created = api.post("/api/v1/webhooks/", {"url": receiver, "events": ["member.created"]}, format="json").json()
    other = Program.objects.create(code="hk", name="HK", currency="HKD")
    Tier.objects.create(program=other, code="basic", name="Basic", rank=0, upgrade_threshold=0)
    hk = ChannelFactory(code="hk-pos")
    ChannelProgram.objects.update_or_create(channel=hk, defaults={"program": other})
    client = make_client(hk)
    assert client.get("/api/v1/webhooks/").json()["count"] == 0
    assert client.delete(f"/api/v1/webhooks/{created['id']}/").status_code == 404


def test_what_happens_in_the_programme_reaches_the_subscribers(api, program, receiver):
    """Each fact writes its delivery in the transaction of the change (sent once it commits)."""
    import datetime as dt
    from io import StringIO

    from django.core.management import call_command

    from loyalty.models import Account, PointsLot

    api.post("/api/v1/webhooks/", {"url": receiver, "events": sorted(Webhook.Event.values)}, format="json")
    created = api.post("/api/v1/members/", {"name": "周杰", "phone": "13900139000"}, format="json").json()
    member_no = created["member_no"]
    api.patch(f"/api/v1/members/{member_no}/", {"city": "上海"}, format="json")
    when = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    api.post(
        "/api/v1/orders/",
        {"order_id": "W1", "member_no": member_no, "amount": "1200.00", "occurred_at": when},
        format="json",
    )
    api.post(
        "/api/v1/redemptions/", {"redemption_id": "R1", "member_no": member_no, "reward_code": "CNY10"}, format="json"
    )
    types = list(WebhookDelivery.objects.order_by("id").values_list("type", flat=True))
    assert types == ["member.created", "member.updated", "tier.changed", "coupon.issued", "redemption.created"]
    payloads = {d.type: d.payload for d in WebhookDelivery.objects.all()}
    assert payloads["member.updated"] == {"member_no": member_no, "fields": ["city"]}
    assert (payloads["tier.changed"]["from"], payloads["tier.changed"]["to"]) == ("basic", "silver")
    assert payloads["redemption.created"]["reward"] == "CNY10"
    account = Account.objects.get(member__member_no=member_no)
    today = timezone.localdate()
    PointsLot.objects.filter(account=account).update(
        expires_at=timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=30), dt.time(12)))
    )
    for _ in range(2):
        call_command("run_loyalty_jobs", "--as-of", today.isoformat(), stdout=StringIO())
    expiring = WebhookDelivery.objects.get(type="points.expiring")
    assert expiring.payload["member_no"] == member_no and expiring.payload["points"] == account.balance
