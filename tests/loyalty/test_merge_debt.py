"""A merge leaves the kept account as if both histories had happened to one account: a debt (negative balance) on
either side is repaid from the other side's available lots, soonest-expiring first, so that the ledger's sum, the
balance and the lots' remaining points agree, after the merge and after a later expiry run."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from loyalty import services
from loyalty.models import Account, PointsLot, PointsTransaction
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def earn(channel, member, order_id, amount):
    order, _created = member_services.order_record(
        channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=timezone.now()
    )
    return order


def in_debt(channel, program, member, points):
    """Earn `points`, spend them, then refund the order: the reversal finds them spent and leaves a debt."""
    order = earn(channel, member, f"DEBT-{member.pk}", f"{points}.00")
    account = Account.objects.get(member=member, program=program)
    services.points_adjust(account=account, points=-points, reason="spent")
    member_services.refund_record(channel=channel, order=order, refund_id=f"R-{member.pk}", amount=order.amount)
    account.refresh_from_db()
    assert account.balance == -points
    return account


def totals(account):
    account.refresh_from_db()
    ledger = PointsTransaction.objects.filter(account=account, status="available").aggregate(s=Sum("points"))["s"]
    lots = PointsLot.objects.filter(account=account, status="available").aggregate(s=Sum("remaining"))["s"] or 0
    return ledger, account.balance, lots


def expire_everything_earned_now(program):
    day = (timezone.now() + dt.timedelta(days=program.expiry_days + 2)).date()
    call_command("run_loyalty_jobs", "--as-of", day.isoformat(), stdout=open("/dev/null", "w"))  # noqa: SIM115


def test_a_dropped_members_debt_is_repaid_from_the_kept_members_lots(channel, program):
    keep, drop = MemberFactory(), MemberFactory()
    earn(channel, keep, "K-1", "1000.00")
    in_debt(channel, program, drop, 300)
    member_services.members_merge(keep=keep, drop=drop)
    kept = Account.objects.get(member=keep, program=program)
    assert totals(kept) == (700, 700, 700)
    assert totals(Account.objects.get(member=drop, program=program)) == (0, 0, 0)
    expire_everything_earned_now(program)
    assert totals(kept) == (0, 0, 0)


def test_the_kept_members_debt_is_repaid_from_the_dropped_members_lots(channel, program):
    keep, drop = MemberFactory(), MemberFactory()
    in_debt(channel, program, keep, 500)
    earn(channel, drop, "D-1", "800.00")
    member_services.members_merge(keep=keep, drop=drop)
    kept = Account.objects.get(member=keep, program=program)
    assert totals(kept) == (300, 300, 300)
    expire_everything_earned_now(program)
    assert totals(kept) == (0, 0, 0)


def test_a_debt_larger_than_the_lots_takes_them_all_and_stays(channel, program):
    keep, drop = MemberFactory(), MemberFactory()
    earn(channel, keep, "K-1", "200.00")
    in_debt(channel, program, drop, 500)
    member_services.members_merge(keep=keep, drop=drop)
    kept = Account.objects.get(member=keep, program=program)
    assert totals(kept) == (-300, -300, 0)
    expire_everything_earned_now(program)
    assert totals(kept) == (-300, -300, 0)
    earn(channel, keep, "K-2", "1000.00")
    assert totals(kept) == (700, 700, 700)


def test_the_debt_is_repaid_from_the_soonest_expiring_lot_first(channel, program):
    keep, drop = MemberFactory(), MemberFactory()
    earn(channel, keep, "K-1", "400.00")
    earn(channel, keep, "K-2", "400.00")
    soon = PointsLot.objects.get(reference="order:K-2")
    PointsLot.objects.filter(pk=soon.pk).update(expires_at=timezone.now() + dt.timedelta(days=10))
    in_debt(channel, program, drop, 300)
    member_services.members_merge(keep=keep, drop=drop)
    remaining = dict(
        PointsLot.objects.filter(reference__in=["order:K-1", "order:K-2"]).values_list("reference", "remaining")
    )
    assert remaining == {"order:K-1": 400, "order:K-2": 100}
