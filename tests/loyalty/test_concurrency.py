"""Many writers on one member at once, on PostgreSQL: the ledger always adds up, each id has one effect,
and nothing goes below zero that must not."""

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from core.errors import IdempotencyConflict
from loyalty import adjustments, ledger, program_config
from loyalty.errors import InsufficientPoints
from loyalty.models import Account, PointsLot, PointsTransaction
from members import services as member_services
from members.errors import RefundExceedsOrder
from members.models import Order
from tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_threads(count, work):
    barrier, results, lock = threading.Barrier(count), [], threading.Lock()

    def runner(index):
        barrier.wait()
        try:
            outcome = work(index)
        except Exception as error:
            outcome = error
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=runner, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def assert_ledger_adds_up(account):
    account.refresh_from_db()
    available = PointsTransaction.objects.filter(account=account, status="available").aggregate(s=Sum("points"))["s"]
    assert available == account.balance
    if account.balance >= 0:
        lots = PointsLot.objects.filter(account=account, status="available").aggregate(s=Sum("remaining"))["s"] or 0
        assert lots == account.balance


@pytest.fixture
def shop(channel, program):
    return channel


def test_many_orders_for_one_member_at_once_all_count(shop):
    member = MemberFactory()

    def place(index):
        return member_services.order_record(
            channel=shop, order_id=f"O-{index}", member=member, amount=Decimal("10.00"), occurred_at=timezone.now()
        )

    results = run_threads(12, place)
    assert all(not isinstance(result, Exception) for result in results), results
    account = Account.objects.get(member=member)
    assert account.balance == 120 and account.lifetime_earned == 120
    assert_ledger_adds_up(account)


def test_concurrent_replays_of_one_order_have_one_effect(shop):
    member = MemberFactory()
    when = timezone.now()

    def place(index):
        return member_services.order_record(
            channel=shop, order_id="SAME", member=member, amount=Decimal("99.00"), occurred_at=when
        )[1]

    results = run_threads(10, place)
    assert sorted(results) == [False] * 9 + [True]
    assert Order.objects.count() == 1
    assert Account.objects.get(member=member).balance == 99
    assert PointsTransaction.objects.count() == 1


def test_concurrent_replays_with_different_payloads_conflict(shop):
    member = MemberFactory()
    when = timezone.now()

    def place(index):
        return member_services.order_record(
            channel=shop, order_id="SAME", member=member, amount=Decimal(10 + index), occurred_at=when
        )

    results = run_threads(6, place)
    assert sum(isinstance(result, IdempotencyConflict) for result in results) == 5
    assert Order.objects.count() == 1


def test_concurrent_refunds_never_exceed_the_order(shop):
    member = MemberFactory()
    order, _created = member_services.order_record(
        channel=shop, order_id="O-1", member=member, amount=Decimal("100.00"), occurred_at=timezone.now()
    )

    def refund(index):
        return member_services.refund_record(channel=shop, order=order, refund_id=f"R-{index}", amount=Decimal("30.00"))

    results = run_threads(8, refund)
    assert sum(isinstance(result, RefundExceedsOrder) for result in results) == 5
    order.refresh_from_db()
    assert order.refunded_amount == Decimal("90.00")
    account = Account.objects.get(member=member)
    assert account.balance == 10
    assert_ledger_adds_up(account)


def test_concurrent_spending_never_overspends(shop):
    member = MemberFactory()
    member_services.order_record(
        channel=shop, order_id="O-1", member=member, amount=Decimal("100.00"), occurred_at=timezone.now()
    )
    account_id = Account.objects.get(member=member).pk

    def spend(index):
        with transaction.atomic():
            account = ledger.accounts_lock(account_id)[account_id]
            return ledger.points_spend(account=account, points=30, reference=f"spend-{index}")

    results = run_threads(8, spend)
    assert sum(isinstance(result, InsufficientPoints) for result in results) == 5
    account = Account.objects.get(pk=account_id)
    assert account.balance == 10
    assert_ledger_adds_up(account)


def test_mixed_traffic_on_one_member_adds_up(shop):
    member = MemberFactory()
    account = ledger.account_get_or_create(member=member, program=program_config.program_for_channel(shop))

    def work(index):
        if index % 3 == 0:
            return member_services.order_record(
                channel=shop,
                order_id=f"O-{index}",
                member=member,
                amount=Decimal("50.00"),
                occurred_at=timezone.now(),
            )
        if index % 3 == 1:
            return adjustments.points_adjust(
                account=account, points=7, reason="goodwill", channel=shop, adjustment_id=f"A-{index}"
            )
        return member_services.event_record(
            channel=shop, event_id=f"E-{index}", member=member, type="share", occurred_at=timezone.now()
        )

    results = run_threads(15, work)
    assert all(not isinstance(result, Exception) for result in results), results
    account.refresh_from_db()
    # 5 orders x 50, 5 adjustments x 7, shares: 10 points at most 3 a day
    assert account.balance == 5 * 50 + 5 * 7 + 3 * 10
    assert_ledger_adds_up(account)


def test_concurrent_adjustment_replays_have_one_effect(shop):
    member = MemberFactory()
    account = ledger.account_get_or_create(member=member, program=program_config.program_for_channel(shop))

    def adjust(index):
        return adjustments.points_adjust(
            account=account, points=100, reason="welcome", channel=shop, adjustment_id="A-1"
        )

    results = run_threads(8, adjust)
    assert sorted(created for _row, created in results) == [False] * 7 + [True]
    account.refresh_from_db()
    assert account.balance == 100
