"""Campaigns end to end through the services and the API: the frozen audience and its split, consent and the
frequency cap checked when a message leaves, never twice for one campaign, quiet hours, cancel, offers, results."""

import datetime as dt
import json
import threading
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import translation

from campaigns import results, selectors, sending, services
from campaigns.models import Campaign, Message, ProgramMessaging, Recipient
from loyalty import ledger
from loyalty.models import Account, Coupon, CouponTemplate
from members import services as member_services
from members.models import Member
from tests.factories import MemberFactory

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAYTIME = dt.datetime(2026, 11, 30, 10, 0, tzinfo=SHANGHAI)
EVERYONE = {"all": [{"field": "points_balance", "op": "gte", "value": 0}]}


def join(program, *, sms=True, **fields):
    member = MemberFactory(**fields)
    ledger.account_get_or_create(member=member, program=program)
    if sms:
        member_services.member_update(member=member, data={}, consents={"sms": True})
    return member


def sent_lines():
    path = Path(settings.CAMPAIGN_MESSAGE_FILE)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(autouse=True)
def _fresh_message_file():
    Path(settings.CAMPAIGN_MESSAGE_FILE).unlink(missing_ok=True)


def campaign(program, *, code="c1", rule=EVERYONE, **extra):
    segment = services.segment_create(program=program, code=f"{code}-seg", name="Everyone", rule=rule)
    values = {"message": {"body": "{name}, 您有 {points_balance} 积分 ({tier})"}, **extra}
    return services.campaign_create(program=program, code=code, name="双十二", segment=segment, channel="sms", **values)


def deliver(campaign, now=DAYTIME):
    counts = {}
    for id_from, id_to in sending.delivery_batches(campaign_id=campaign.pk):
        for key, value in sending.campaign_batch_deliver(
            campaign_id=campaign.pk, id_from=id_from, id_to=id_to, now=now
        ).items():
            counts[key] = counts.get(key, 0) + value
    return counts


@pytest.mark.django_db
def test_send_renders_each_message_and_records_it(program):
    member = join(program, name="张伟")
    Account.objects.filter(member=member).update(balance=1234)
    c = campaign(program)
    sending.campaign_send(campaign=c, now=DAYTIME)
    assert deliver(c) == {"sent": 1}
    assert [line["body"] for line in sent_lines()] == ["张伟, 您有 1234 积分 (普通会员)"]
    assert sent_lines()[0]["to"] == member.phone
    message = Message.objects.get()
    assert (message.status, message.body, message.sent_at) == ("sent", "张伟, 您有 1234 积分 (普通会员)", DAYTIME)
    c.refresh_from_db()
    assert c.status == "sent"


@pytest.mark.django_db
def test_consent_is_checked_when_the_message_leaves(program):
    keeps = join(program, name="keeps")
    withdraws = join(program, name="withdraws")
    join(program, name="never", sms=False)
    c = campaign(program)
    sending.campaign_send(campaign=c, now=DAYTIME)
    assert Message.objects.filter(status="queued").count() == 3
    member_services.member_update(member=withdraws, data={}, consents={"sms": False})  # after queueing
    assert deliver(c) == {"sent": 1, "no_consent": 2}
    assert [line["member_no"] for line in sent_lines()] == [keeps.member_no]
    assert results.campaign_results(campaign=c)["skipped"] == {"no_consent": 2, "frequency_cap": 0}


@pytest.mark.django_db
def test_the_frequency_cap_counts_every_campaign_of_the_last_seven_days(program):
    ProgramMessaging.objects.create(program=program, frequency_cap=2)
    join(program)
    for number, day in enumerate((1, 3, 6), start=1):
        c = campaign(program, code=f"c{number}")
        sending.campaign_send(campaign=c, now=DAYTIME + dt.timedelta(days=day))
        deliver(c, now=DAYTIME + dt.timedelta(days=day))
    assert list(Message.objects.order_by("id").values_list("status", "reason")) == [
        ("sent", ""),
        ("sent", ""),
        ("skipped", "frequency_cap"),
    ]
    c = campaign(program, code="c4")  # day 9: the first message is more than 7 days old
    sending.campaign_send(campaign=c, now=DAYTIME + dt.timedelta(days=9))
    assert deliver(c, now=DAYTIME + dt.timedelta(days=9)) == {"sent": 1}


@pytest.mark.django_db
def test_a_second_send_and_a_retried_batch_message_nobody_twice(program):
    for _ in range(3):
        join(program)
    c = campaign(program)
    sending.campaign_send(campaign=c, now=DAYTIME)
    sending.campaign_send(campaign=c, now=DAYTIME + dt.timedelta(hours=1))
    assert Recipient.objects.count() == 3 and Message.objects.count() == 3
    deliver(c)
    Message.objects.update(status="queued")  # as if the worker died after sending, before its commit was seen
    Message.objects.all().delete()
    assert deliver(c) == {}
    assert len(sent_lines()) == 3


@pytest.mark.django_db
def test_the_database_refuses_a_second_message_for_one_campaign(program):
    member = join(program)
    c = campaign(program)
    sending.campaign_send(campaign=c, now=DAYTIME)
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(member=member, campaign=c, variant="A", channel="sms")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sends_freeze_one_audience(program):
    for _ in range(20):
        join(program)
    c = campaign(program)
    barrier = threading.Barrier(2)
    errors = []

    def send():
        try:
            barrier.wait()
            sending.campaign_send(campaign=c, now=DAYTIME)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Recipient.objects.count() == 20 and Message.objects.count() == 20


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_batch_send_each_message_once(program):
    for _ in range(30):
        join(program)
    c = campaign(program)
    with transaction.atomic():  # frozen as campaign_send does, without starting the in-process delivery
        sending.audience_freeze(campaign=c, now=DAYTIME)
        Campaign.objects.filter(pk=c.pk).update(status="sending", sent_at=DAYTIME)
    ((id_from, id_to),) = sending.delivery_batches(campaign_id=c.pk)
    barrier = threading.Barrier(2)

    def work():
        try:
            barrier.wait()
            sending.campaign_batch_deliver(campaign_id=c.pk, id_from=id_from, id_to=id_to, now=DAYTIME)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent_lines()) == 30
    assert len({line["member_no"] for line in sent_lines()}) == 30
    assert Message.objects.filter(status="sent").count() == 30


def test_the_split_follows_the_shares_and_is_stable():
    variants = [("A", Decimal("0.5")), ("B", Decimal("0.5"))]
    groups = [
        sending.group_for(campaign_code="ab", member_no=f"{n:010d}", control_share=Decimal("0.2"), variants=variants)
        for n in range(10_000)
    ]
    shares = {group: groups.count(group) / 10_000 for group in ("control", "A", "B")}
    assert abs(shares["control"] - 0.2) < 0.02
    assert abs(shares["A"] - 0.4) < 0.02 and abs(shares["B"] - 0.4) < 0.02
    again = [
        sending.group_for(campaign_code="ab", member_no=f"{n:010d}", control_share=Decimal("0.2"), variants=variants)
        for n in range(10_000)
    ]
    assert again == groups


@pytest.mark.django_db
def test_control_members_are_never_messaged_and_variants_get_their_text(program):
    for _ in range(40):
        join(program)
    c = campaign(
        program,
        variants=[
            {"code": "A", "share": "0.5", "message": {"body": "A: {member_no}"}},
            {"code": "B", "share": "0.5", "message": {"body": "B: {member_no}"}},
        ],
        control_share=Decimal("0.25"),
    )
    sending.campaign_send(campaign=c, now=DAYTIME)
    deliver(c)
    control = set(Recipient.objects.filter(group="control").values_list("member__member_no", flat=True))
    assert control and not control & {line["member_no"] for line in sent_lines()}
    for recipient in Recipient.objects.exclude(group="control").select_related("member"):
        message = Message.objects.get(member=recipient.member)
        assert message.body == f"{recipient.group}: {recipient.member.member_no}"


@pytest.mark.django_db
def test_quiet_hours_hold_the_message_until_nine(program):
    join(program)
    c = campaign(program)
    evening = dt.datetime(2026, 11, 30, 22, 30, tzinfo=SHANGHAI)
    sending.campaign_send(campaign=c, now=evening)
    ((id_from, id_to),) = sending.delivery_batches(campaign_id=c.pk)
    waiting = sending.campaign_batch_deliver(campaign_id=c.pk, id_from=id_from, id_to=id_to, now=evening)
    assert waiting == {"wait_until": dt.datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)}
    assert Message.objects.get().status == "queued" and sent_lines() == []
    morning = dt.datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI)
    assert sending.campaign_batch_deliver(campaign_id=c.pk, id_from=id_from, id_to=id_to, now=morning) == {"sent": 1}


@pytest.mark.django_db
def test_cancel_leaves_what_is_not_sent_unsent(program):
    for _ in range(3):
        join(program)
    c = campaign(program)
    sending.campaign_send(campaign=c, now=DAYTIME)
    first = Message.objects.order_by("id").first()
    sending.campaign_batch_deliver(campaign_id=c.pk, id_from=first.pk, id_to=first.pk, now=DAYTIME)
    sending.campaign_cancel(campaign=c)
    assert deliver(c) == {}
    assert sorted(Message.objects.values_list("status", "reason")) == [
        ("sent", ""),
        ("skipped", "cancelled"),
        ("skipped", "cancelled"),
    ]
    assert len(sent_lines()) == 1
    c.refresh_from_db()
    assert c.status == "cancelled"


@pytest.mark.django_db
def test_an_offer_is_issued_when_the_message_leaves(program):
    join(program, name="有券")
    join(program, name="无同意", sms=False)
    template = CouponTemplate.objects.get(program=program, code="cny10")
    c = campaign(program, message={"body": "{name}: 券 {coupon_code}"}, coupon_template=template, points=50)
    sending.campaign_send(campaign=c, now=DAYTIME)
    deliver(c)
    coupon = Coupon.objects.get()
    assert coupon.member.name == "有券"
    assert sent_lines()[0]["body"] == f"有券: 券 {coupon.code}"
    assert Account.objects.get(member__name="有券").balance == 50
    assert Account.objects.get(member__name="无同意").balance == 0


def test_uplift_against_a_hand_computation():
    # Variant: 64 of 400 converted (0.16); control: 30 of 300 (0.10). By hand: pooled rate 94/700 = 0.134286,
    # pooled standard error sqrt(0.134286 x 0.865714 x (1/400 + 1/300)) = 0.026041, z = 0.06 / 0.026041 = 2.304,
    # two-sided p = 0.0212; unpooled error sqrt(0.16 x 0.84 / 400 + 0.1 x 0.9 / 300) = 0.027931, interval
    # 0.06 ± 1.96 x 0.027931 = [0.0106, 0.1094].
    lift = results.uplift(converted=64, members=400, control_converted=30, control_members=300)
    assert lift.absolute == Decimal("0.0600")
    assert lift.relative == Decimal("0.6000")
    assert lift.p_value == Decimal("0.0212")
    assert lift.ci95 == [Decimal("0.0106"), Decimal("0.1094")]
    with translation.override("zh-hans"):
        sentence = results.results_sentence({"code": "B", "uplift": lift.__dict__}, {})
    assert sentence == "测试版本 B 的转化率比对照组高 6.0 个百分点；这不太可能是偶然（p = 0.021）。"
    with translation.override("en"):
        sentence = results.results_sentence({"code": "B", "uplift": lift.__dict__}, {})
    assert (
        sentence == "Variant B converted 6.0 points better than the control; this is unlikely to be chance (p = 0.021)."
    )
    close = results.uplift(converted=60, members=400, control_converted=30, control_members=300)
    assert close.p_value == Decimal("0.0505")
    with translation.override("zh-hans"):
        close_sentence = results.results_sentence({"code": "B", "uplift": close.__dict__}, {})
    assert close_sentence.endswith("这很可能只是偶然（p = 0.051）。")


@pytest.mark.django_db
def test_results_count_orders_within_the_window_per_group(program, channel):
    members = [join(program) for _ in range(30)]
    c = campaign(program, control_share=Decimal("0.5"), conversion_days=14)
    sending.campaign_send(campaign=c, now=DAYTIME)
    deliver(c)
    groups = dict(Recipient.objects.values_list("member_id", "group"))
    expected = {"control": [0, Decimal(0)], "A": [0, Decimal(0)]}
    for index, member in enumerate(members):
        if index % 3 == 0:  # inside the window
            member_services.order_record(
                channel=channel,
                order_id=f"in-{index}",
                member=member,
                amount=Decimal("88.00"),
                occurred_at=DAYTIME + dt.timedelta(days=3),
                award=False,
            )
            expected[groups[member.pk]][0] += 1
            expected[groups[member.pk]][1] += Decimal("88.00")
        if index % 5 == 0:  # after the window: not a conversion
            member_services.order_record(
                channel=channel,
                order_id=f"late-{index}",
                member=member,
                amount=Decimal("10.00"),
                occurred_at=DAYTIME + dt.timedelta(days=20),
                award=False,
            )
    c.refresh_from_db()
    answer = results.campaign_results(campaign=c)
    control_members = sum(1 for group in groups.values() if group == "control")
    assert answer["control"]["members"] == control_members
    assert answer["control"]["converted"] == expected["control"][0]
    assert answer["control"]["revenue"] == expected["control"][1]
    variant = answer["variants"][0]
    assert (variant["members"], variant["converted"], variant["revenue"]) == (
        30 - control_members,
        expected["A"][0],
        expected["A"][1],
    )
    assert variant["conversion_rate"] == (Decimal(expected["A"][0]) / (30 - control_members)).quantize(
        Decimal("0.0001")
    )


@pytest.mark.django_db
def test_a_scheduled_campaign_is_sent_by_the_tick(program):
    join(program)
    c = campaign(program, scheduled_at=DAYTIME + dt.timedelta(hours=2))
    assert c.status == "scheduled"
    assert sending.campaigns_run_due(now=DAYTIME + dt.timedelta(hours=1))["sent"] == []
    assert sending.campaigns_run_due(now=DAYTIME + dt.timedelta(hours=2))["sent"] == ["c1"]
    c.refresh_from_db()
    assert c.status in ("sending", "sent")


@pytest.mark.django_db
def test_a_frozen_member_is_skipped(program):
    member = join(program)
    c = campaign(program)
    sending.campaign_send(campaign=c, now=DAYTIME)
    Member.objects.filter(pk=member.pk).update(status="frozen")
    assert deliver(c) == {"member_not_active": 1}


@pytest.mark.django_db
def test_the_audience_list(program):
    for _ in range(4):
        join(program)
    c = campaign(program)
    sending.campaign_send(campaign=c, now=DAYTIME)
    rows = list(selectors.campaign_audience(campaign=c))
    assert [(row.group, row.status) for row in rows] == [("A", "queued")] * 4


def test_the_audience_picker_draws_the_same_groups_as_group_for():
    """The freeze looks a member's draw up among bounds found once; at and around each bound it agrees with
    group_for's own arithmetic, for uneven shares, an empty variant and no control."""
    cases = [
        (Decimal("0.1"), [("A", Decimal("0.5")), ("B", Decimal("0.5"))]),
        (Decimal("0.2"), [("A", Decimal("0.333")), ("B", Decimal("0.333")), ("C", Decimal("0.334"))]),
        (Decimal("0.5"), [("A", Decimal("0.25")), ("B", Decimal("0")), ("C", Decimal("0.75"))]),
        (Decimal("0"), [("A", Decimal("1"))]),
    ]
    for control_share, variants in cases:
        pick = sending.group_picker(campaign_code="ab", control_share=control_share, variants=variants)
        for n in range(5000):
            member_no = f"{n:010d}"
            expected = sending.group_for(
                campaign_code="ab", member_no=member_no, control_share=control_share, variants=variants
            )
            assert pick(member_no) == expected
        for bound in pick.bounds:  # the first draw of a group and the last draw before it
            for draw in (bound - 1, bound):
                if 0 <= draw < sending.DRAWS:
                    index = sending._group_index(draw, control_share, variants)
                    assert pick.names[index] == pick.names[sum(b <= draw for b in pick.bounds)]


@pytest.mark.django_db
def test_the_frozen_groups_are_those_of_group_for(program):
    """On PostgreSQL the groups are drawn in SQL; on either database each member's group is group_for's."""
    members = [join(program) for _ in range(300)]
    c = campaign(
        program,
        variants=[
            {"code": "A", "share": "0.3", "message": {"body": "a"}},
            {"code": "B", "share": "0.7", "message": {"body": "b"}},
        ],
        control_share=Decimal("0.25"),
    )
    with transaction.atomic():
        frozen = sending.audience_freeze(campaign=c, now=DAYTIME)
    assert frozen == 300
    variants = [(variant.code, variant.share) for variant in c.variants.order_by("code")]
    groups = dict(Recipient.objects.filter(campaign=c).values_list("member__member_no", "group"))
    assert groups == {
        member_no: sending.group_for(
            campaign_code=c.code, member_no=member_no, control_share=c.control_share, variants=variants
        )
        for member_no in (member.member_no for member in members)
    }
    assert set(groups.values()) == {"control", "A", "B"}
    queued = dict(Message.objects.filter(campaign=c).values_list("member__member_no", "variant"))
    assert queued == {member_no: group for member_no, group in groups.items() if group != "control"}
    assert set(Message.objects.filter(campaign=c).values_list("status", flat=True)) == {"queued"}


@pytest.mark.django_db
def test_taking_part_in_a_campaign_earns_its_badge_once(program):
    from loyalty.models import Badge, BadgeAward

    Badge.objects.create(program=program, code="joiner", name="活动达人", rule="campaign", points_bonus=30)
    sent_to = join(program, name="messaged")
    join(program, name="no consent", sms=False)
    for code in ("c1", "c2"):
        c = campaign(program, code=code)
        sending.campaign_send(campaign=c, now=DAYTIME)
        deliver(c)
    award = BadgeAward.objects.get()
    assert award.account.member == sent_to
    assert Account.objects.get(member=sent_to).balance == 30
