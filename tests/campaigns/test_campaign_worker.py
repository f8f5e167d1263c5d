"""A small campaign sent end to end by a real Celery worker on the real broker (Redis): frozen at send, delivered in
batches by the worker, each member messaged once, the campaign marked sent."""

import json
import time
from pathlib import Path

import pytest
from django.conf import settings

from campaigns import sending, services
from campaigns.models import Campaign, Message
from loyalty import ledger
from members import services as member_services
from tests.factories import MemberFactory


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_campaign_is_sent_by_a_real_worker(program, monkeypatch):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    assert not app.conf.task_always_eager  # the broker is real here
    monkeypatch.setattr(sending, "BATCH_SIZE", 10)  # several batches for the worker
    monkeypatch.setattr(sending, "quiet_hours_end", lambda **kwargs: None)  # whatever the time of the test run
    Path(settings.CAMPAIGN_MESSAGE_FILE).unlink(missing_ok=True)
    for _ in range(35):
        member = MemberFactory()
        ledger.account_get_or_create(member=member, program=program)
        member_services.member_update(member=member, data={}, consents={"sms": True})
    segment = services.segment_create(
        program=program, code="all", name="all", rule={"all": [{"field": "points_balance", "op": "gte", "value": 0}]}
    )
    campaign = services.campaign_create(
        program=program, code="w", name="w", segment=segment, channel="sms", message={"body": "{member_no}"}
    )
    app.control.purge()
    with start_worker(app, perform_ping_check=False, pool="threads", concurrency=2, shutdown_timeout=30):
        sending.campaign_send(campaign=campaign)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            campaign.refresh_from_db()
            if campaign.status == Campaign.Status.SENT:
                break
            time.sleep(0.2)
    assert campaign.status == Campaign.Status.SENT
    assert Message.objects.filter(status="sent").count() == 35
    lines = [json.loads(line) for line in Path(settings.CAMPAIGN_MESSAGE_FILE).read_text().splitlines()]
    assert sorted(line["body"] for line in lines) == sorted(Message.objects.values_list("member__member_no", flat=True))
