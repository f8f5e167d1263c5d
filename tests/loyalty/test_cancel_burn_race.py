"""Staff cancel a redemption while its coupon is burnt at a till, on PostgreSQL: exactly one of them wins, every
time. Either the points come back and the coupon is void (the burn refused), or the coupon is used and the
cancellation refused; never the points back and the coupon used."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum

from loyalty import rewards
from loyalty.errors import CouponNotValid, RewardUnavailable
from loyalty.models import Account, Coupon, PointsLot, PointsTransaction, Redemption
from loyalty.services import account_get_or_create, points_adjust
from tests.factories import MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TRIES = 25


def race(*works):
    """Run each work in its own thread and connection, released together; returns their results or errors."""
    barrier, results = threading.Barrier(len(works)), [None] * len(works)

    def runner(index):
        barrier.wait()
        try:
            results[index] = works[index]()
        except Exception as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(index,)) for index in range(len(works))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_cancel_and_burn_of_one_coupon_never_both_succeed(channel, program, admin_user):
    outcomes = {"cancelled": 0, "used": 0}
    for attempt in range(TRIES):
        member = MemberFactory()
        account = account_get_or_create(member=member, program=program)
        points_adjust(account=account, points=1000, reason="test")
        redemption, _created = rewards.reward_redeem(
            channel=channel, member=member, reward_code="CNY10", quantity=1, redemption_id=f"R-{attempt}"
        )
        code = redemption.coupons.get().code

        cancel, burn = race(
            lambda redemption=redemption: rewards.redemption_cancel(
                redemption=redemption, reason="客诉", actor=admin_user
            ),
            lambda code=code, attempt=attempt: rewards.coupon_redeem(
                channel=channel, code=code, order_id=f"O-{attempt}", amount=Decimal("60.00")
            ),
        )

        account.refresh_from_db()
        coupon = Coupon.objects.get(code=code)
        status = Redemption.objects.get(pk=redemption.pk).status
        if isinstance(cancel, Redemption):
            assert isinstance(burn, CouponNotValid), (attempt, burn)
            assert (status, coupon.status, account.balance) == ("cancelled", "void", 1000)
            outcomes["cancelled"] += 1
        else:
            assert isinstance(cancel, RewardUnavailable), (attempt, cancel)
            assert isinstance(burn, Coupon), (attempt, burn)
            assert (status, coupon.status, account.balance) == ("completed", "used", 0)
            outcomes["used"] += 1
        ledger = PointsTransaction.objects.filter(account=account, status="available").aggregate(s=Sum("points"))
        lots = PointsLot.objects.filter(account=account, status="available").aggregate(s=Sum("remaining"))
        assert ledger["s"] == account.balance == (lots["s"] or 0)
    assert sum(outcomes.values()) == TRIES
    assert Account.objects.filter(balance__lt=0).count() == 0
