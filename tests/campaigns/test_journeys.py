"""Journeys driven by the daily jobs with --as-of (time travel): the demo's birthday, points-expiring and win-back
journeys enter a member once per occurrence, run their steps and send under the frequency cap with campaigns."""

import datetime as dt
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command

from campaigns import demo, sending, services
from campaigns.models import Journey, JourneyEntry, JourneyStep, Message, ProgramMessaging
from loyalty import ledger
from loyalty.models import Account, Coupon, PointsLot
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def _fresh_message_file():
    Path(settings.CAMPAIGN_MESSAGE_FILE).unlink(missing_ok=True)


@pytest.fixture
def journeys(program):
    demo.demo_campaigns(program=program)
    Journey.objects.filter(code="welcome").update(is_active=False)  # members are made "today" in these tests
    return program


def join(program, **fields):
    member = MemberFactory(**fields)
    ledger.account_get_or_create(member=member, program=program)
    member_services.member_update(member=member, data={}, consents={"sms": True})
    return member


def run(day):
    call_command("run_loyalty_jobs", "--as-of", day.isoformat(), stdout=StringIO())


def lines():
    path = Path(settings.CAMPAIGN_MESSAGE_FILE)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def test_birthday_seven_days_before_once_a_year_with_a_coupon(journeys):
    member = join(journeys, name="王芳", birthday=dt.date(1990, 12, 20))
    run(dt.date(2026, 12, 12))
    assert not JourneyEntry.objects.exists()
    run(dt.date(2026, 12, 13))
    run(dt.date(2026, 12, 13))  # the same day twice: nobody enters twice
    entry = JourneyEntry.objects.get()
    assert (entry.member, entry.occurrence, entry.status) == (member, "birthday:2026", "finished")
    coupon = Coupon.objects.get(member=member)
    assert lines()[0]["body"] == f"王芳，生日快乐！送您一张10元券 {coupon.code}，满50可用，30天内有效。回TD退订"
    run(dt.date(2027, 12, 13))
    assert JourneyEntry.objects.filter(member=member).count() == 2


def test_points_expiring_in_thirty_days_names_the_points(journeys):
    member = join(journeys, name="李娜")
    account = Account.objects.get(member=member)
    ledger.points_award(account=account, points=150, reference="t", reason="test")
    PointsLot.objects.filter(account=account).update(expires_at=dt.datetime(2026, 12, 31, 12, tzinfo=SHANGHAI))
    small = join(journeys, name="少")
    ledger.points_award(account=Account.objects.get(member=small), points=50, reference="t", reason="t")
    PointsLot.objects.filter(account__member=small).update(expires_at=dt.datetime(2026, 12, 31, 12, tzinfo=SHANGHAI))
    run(dt.date(2026, 12, 1))
    entry = JourneyEntry.objects.get(journey__code="points_expiring")
    assert (entry.member, entry.occurrence) == (member, "expiring:2026-12-31")
    assert lines()[0]["body"] == "李娜，您有 150 积分将在30天内到期，快来积分商城兑换吧。回TD退订"
    run(dt.date(2026, 12, 1))
    assert JourneyEntry.objects.filter(journey__code="points_expiring").count() == 1


def test_winback_after_ninety_days_without_an_order_once_per_lapse(journeys, channel):
    member = join(journeys, name="赵磊")
    join(journeys, name="never bought")
    member_services.order_record(
        channel=channel,
        order_id="o1",
        member=member,
        amount=Decimal("99.00"),
        occurred_at=dt.datetime(2026, 9, 1, 15, tzinfo=SHANGHAI),
        award=False,
    )
    run(dt.date(2026, 11, 29))
    assert not JourneyEntry.objects.filter(journey__code="winback").exists()
    run(dt.date(2026, 11, 30))  # 90 days after 1 September
    run(dt.date(2026, 12, 1))
    entry = JourneyEntry.objects.get(journey__code="winback")
    assert (entry.member, entry.occurrence) == (member, "lapse:2026-09-01")
    assert Coupon.objects.filter(member=member).count() == 1
    assert len(lines()) == 1


def test_a_wait_step_parks_the_entry_until_its_day(program):
    journey = Journey.objects.create(program=program, code="w", name="wait", trigger="joined", channel="sms")
    JourneyStep.objects.create(journey=journey, position=0, kind="tag", tag="新客")
    JourneyStep.objects.create(journey=journey, position=1, kind="wait", wait_days=3)
    JourneyStep.objects.create(journey=journey, position=2, kind="message", body="{name}，三天了")
    today = dt.datetime.now(SHANGHAI).date()
    member = join(program, name="钱")
    run(today)
    entry = JourneyEntry.objects.get()
    assert (entry.status, entry.next_step, entry.waiting_until) == ("waiting", 2, today + dt.timedelta(days=3))
    assert member.member_tags.get().tag.name == "新客"
    run(today + dt.timedelta(days=2))
    assert not Message.objects.exists()
    run(today + dt.timedelta(days=3))
    entry.refresh_from_db()
    assert entry.status == "finished"
    assert lines()[0]["body"] == "钱，三天了"


def test_the_frequency_cap_counts_journeys_and_campaigns_together(journeys):
    ProgramMessaging.objects.filter(program=journeys).update(frequency_cap=1)
    member = join(journeys, name="孙", birthday=dt.date(1991, 12, 20))
    segment = services.segment_create(
        program=journeys, code="one", name="one", rule={"all": [{"field": "tag", "op": "ne", "value": "x"}]}
    )
    campaign = services.campaign_create(
        program=journeys, code="c", name="c", segment=segment, channel="sms", message={"body": "hi"}
    )
    day = dt.datetime(2026, 12, 12, 10, tzinfo=SHANGHAI)
    sending.campaign_send(campaign=campaign, now=day)
    for id_from, id_to in sending.delivery_batches(campaign_id=campaign.pk):
        sending.campaign_batch_deliver(campaign_id=campaign.pk, id_from=id_from, id_to=id_to, now=day)
    run(dt.date(2026, 12, 13))
    birthday = Message.objects.get(journey_entry__isnull=False)
    assert (birthday.member, birthday.status, birthday.reason) == (member, "skipped", "frequency_cap")


def test_journey_messages_wait_for_the_end_of_the_quiet_hours(journeys):
    join(journeys, name="周", birthday=dt.date(1990, 12, 20))
    from campaigns import journeys as journey_work

    night = dt.datetime(2026, 12, 13, 0, 30, tzinfo=SHANGHAI)
    journey_work.journeys_run(program=journeys, as_of=dt.date(2026, 12, 13), now=night)
    assert Message.objects.get().status == "queued"
    journey_work.campaigns_tick(now=dt.datetime(2026, 12, 13, 9, 5, tzinfo=SHANGHAI))
    assert Message.objects.get().status == "sent"
