"""Members services: merge loses nothing, statuses, tags, numbers, and races between sign-ups."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from members import events, selectors, services
from members.errors import DuplicateMember, MergeRefused
from members.models import (
    ChannelIdentity,
    Consent,
    ConsentChange,
    Event,
    Member,
    MemberHistory,
    MemberMerge,
    MemberTag,
    Order,
)
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db


def _order(member, channel, order_id, amount):
    return Order.objects.create(
        channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=timezone.now()
    )


@pytest.fixture
def two_people(channel):
    keep = MemberFactory(
        name="王芳",
        phone="+8613800138000",
        email=None,
        birthday=None,
        city="",
        joined_at=timezone.now() - dt.timedelta(days=10),
    )
    drop = MemberFactory(
        name="王芳",
        phone="+8613900139000",
        email="wang@example.com",
        birthday=dt.date(1990, 5, 17),
        city="上海",
        joined_at=timezone.now() - dt.timedelta(days=400),
    )
    tmall = ChannelFactory(code="tmall")
    ChannelIdentity.objects.create(member=keep, channel=channel, external_id="CARD-1")
    ChannelIdentity.objects.create(member=drop, channel=tmall, external_id="tb-buyer-9")
    _order(keep, channel, "O-1", "100.00")
    _order(drop, channel, "O-2", "250.50")
    _order(drop, tmall, "T-1", "49.50")
    Event.objects.create(channel=channel, event_id="E-1", member=drop, type="check_in", occurred_at=timezone.now())
    vip, newcomer = services.tag_get_or_create(name="VIP"), services.tag_get_or_create(name="新客")
    services.members_tag(member_ids=[keep.pk, drop.pk], tag=vip)
    services.members_tag(member_ids=[drop.pk], tag=newcomer)
    services.member_update(member=keep, data={}, consents={"sms": True})
    services.member_update(member=drop, data={}, consents={"sms": False, "email": True})
    referred = MemberFactory(referrer=drop)
    return keep, drop, referred


def test_merge_moves_everything_and_loses_nothing(two_people, admin_user):
    keep, drop, referred = two_people
    orders_before = Order.objects.aggregate(n=Sum("amount"))["n"]
    consent_changes_before = ConsentChange.objects.count()

    merge = services.members_merge(keep=keep, drop=drop, by=admin_user)

    keep.refresh_from_db()
    drop.refresh_from_db()
    assert Order.objects.filter(member=keep).count() == 3
    assert Order.objects.filter(member=keep).aggregate(n=Sum("amount"))["n"] == orders_before == Decimal("400.00")
    assert set(ChannelIdentity.objects.filter(member=keep).values_list("external_id", flat=True)) == {
        "CARD-1",
        "tb-buyer-9",
    }
    assert Event.objects.filter(member=keep).count() == 1
    assert sorted(MemberTag.objects.filter(member=keep).values_list("tag__name", flat=True)) == ["VIP", "新客"]
    assert ConsentChange.objects.filter(member=keep).count() == consent_changes_before
    # the latest decision per message channel wins: drop withdrew SMS after keep granted it
    assert dict(Consent.objects.filter(member=keep).values_list("channel", "granted")) == {"sms": False, "email": True}
    referred.refresh_from_db()
    assert referred.referrer == keep
    # keep's blanks are filled from drop; drop's contacts move; the older join date stays
    assert keep.email == "wang@example.com" and keep.birthday == dt.date(1990, 5, 17) and keep.city == "上海"
    assert keep.phone == "+8613800138000"
    assert keep.joined_at == drop.joined_at
    # drop is closed with a pointer, owns nothing any more, and the merge is recorded with who did it
    assert drop.status == "closed" and drop.merged_into == keep and drop.phone is None and drop.email is None
    assert not Order.objects.filter(member=drop).exists() and not MemberTag.objects.filter(member=drop).exists()
    assert merge.merged_by == admin_user
    assert merge.moved["orders"] == 2 and merge.moved["identities"] == 1 and merge.moved["tags"] == 1
    assert merge.moved["contact"] == {"phone": "+8613900139000", "email": "wang@example.com"}
    assert MemberHistory.objects.filter(member=keep, action="merged_in", actor=admin_user).exists()


def test_merge_lets_higher_apps_move_their_rows_in_the_same_transaction(two_people):
    keep, drop, _referred = two_people
    calls = []

    def receiver(*, kept, dropped):
        calls.append((kept.pk, dropped.pk))
        return {"points": 7}

    with events.member_merged.connected(receiver):
        merge = services.members_merge(keep=keep, drop=drop)
    assert calls == [(keep.pk, drop.pk)]
    assert merge.moved["points"] == 7


def test_a_failing_higher_app_rolls_the_whole_merge_back(two_people):
    keep, drop, _referred = two_people

    def receiver(*, kept, dropped):
        raise RuntimeError("loyalty could not move points")

    with events.member_merged.connected(receiver), pytest.raises(RuntimeError):
        services.members_merge(keep=keep, drop=drop)
    drop.refresh_from_db()
    assert drop.status == "active" and drop.merged_into is None
    assert Order.objects.filter(member=drop).count() == 2
    assert not MemberMerge.objects.exists()


def test_merge_refuses_self_and_twice(two_people):
    keep, drop, _referred = two_people
    with pytest.raises(MergeRefused):
        services.members_merge(keep=keep, drop=keep)
    services.members_merge(keep=keep, drop=drop)
    with pytest.raises(MergeRefused):
        services.members_merge(keep=keep, drop=drop)
    assert MemberMerge.objects.count() == 1


def test_duplicate_candidates_find_same_name_and_birthday():
    older = MemberFactory(name="陈静", birthday=dt.date(1988, 1, 2), joined_at=timezone.now() - dt.timedelta(days=9))
    newer = MemberFactory(name="陈静", birthday=dt.date(1988, 1, 2))
    MemberFactory(name="陈静", birthday=dt.date(1999, 1, 2))
    assert selectors.duplicate_candidates() == [{"keep_id": older.pk, "drop_id": newer.pk, "why": "name_birthday"}]


def test_freeze_and_unfreeze_are_recorded(member, admin_user):
    assert services.members_set_status(member_ids=[member.pk], status="frozen", actor=admin_user) == 1
    assert services.members_set_status(member_ids=[member.pk], status="frozen", actor=admin_user) == 0
    member.refresh_from_db()
    assert member.status == "frozen"
    entry = MemberHistory.objects.get(member=member, action="status")
    assert entry.actor == admin_user and entry.changes["status"] == ["active", "frozen"]


def test_only_a_frozen_member_is_unfrozen_and_a_closed_one_stays_closed(member, admin_user):
    frozen = MemberFactory(status="frozen")
    member.status = "closed"
    member.save(update_fields=["status"])

    assert services.members_set_status(member_ids=[member.pk, frozen.pk], status="active", actor=admin_user) == 1

    assert dict(Member.objects.filter(pk__in=[member.pk, frozen.pk]).values_list("pk", "status")) == {
        member.pk: "closed",
        frozen.pk: "active",
    }
    assert list(MemberHistory.objects.filter(action="status").values_list("member_id", flat=True)) == [frozen.pk]


def test_tagging_twice_adds_once(member):
    tag = services.tag_get_or_create(name="VIP")
    assert services.members_tag(member_ids=[member.pk], tag=tag) == 1
    assert services.members_tag(member_ids=[member.pk], tag=tag) == 0
    assert services.members_untag(member_ids=[member.pk], tag=tag) == 1
    assert not MemberTag.objects.exists()


def test_create_refuses_a_taken_phone_and_changes_nothing(member):
    with pytest.raises(DuplicateMember) as raised:
        services.member_create(name="另一个人", phone="+8613800138000")
    assert raised.value.extra["member_no"] == member.member_no
    assert Member.objects.count() == 1


def test_member_numbers_are_never_reused():
    first = services.member_numbers_allocate(count=3)
    second = services.member_numbers_allocate(count=2)
    assert len(set(first + second)) == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sign_ups_with_one_phone_make_one_member():
    results, barrier = [], threading.Barrier(8)

    def sign_up(index):
        barrier.wait()
        try:
            member = services.member_create(name=f"并发{index}", phone="+8613700137000")
            results.append(("created", member.member_no))
        except DuplicateMember as error:
            results.append(("duplicate", error.extra["member_no"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=sign_up, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [number for kind, number in results if kind == "created"]
    assert len(created) == 1
    assert Member.objects.filter(phone="+8613700137000").count() == 1
    assert {number for _kind, number in results} == set(created)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_number_allocation_never_repeats():
    numbers, lock = [], threading.Lock()

    def allocate():
        got = services.member_numbers_allocate(count=50)
        with lock:
            numbers.extend(got)
        connection.close()

    threads = [threading.Thread(target=allocate) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(numbers) == len(set(numbers)) == 300
