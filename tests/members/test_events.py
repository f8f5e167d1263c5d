"""Domain events: in-transaction handlers share the change's fate; on-commit handlers run only after a commit."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from loyalty import integration
from loyalty.models import PointsTransaction
from members import events, services
from members.importing.services import members_import
from members.models import Order

pytestmark = pytest.mark.django_db


def _record(channel, member, order_id):
    return services.order_record(
        channel=channel, order_id=order_id, member=member, amount=Decimal("100.00"), occurred_at=timezone.now()
    )


def test_an_on_commit_handler_never_hears_of_a_rolled_back_order(
    program, channel, member, django_capture_on_commit_callbacks
):
    told = []

    def notify(*, order, award):
        told.append(order.order_id)

    with (
        events.order_recorded.connected(notify, on_commit=True),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        with pytest.raises(RuntimeError), transaction.atomic():
            _record(channel, member, "A-1")
            raise RuntimeError("the caller's next step failed")
        assert callbacks == [] and told == []
        _record(channel, member, "A-2")

    assert told == ["A-2"]
    assert list(Order.objects.values_list("order_id", flat=True)) == ["A-2"]
    assert events.order_recorded.handlers(on_commit=True) == []


def test_in_transaction_handlers_run_before_the_commit_and_roll_back_with_the_order(program, channel, member):
    with pytest.raises(RuntimeError), transaction.atomic():
        _record(channel, member, "B-1")
        assert PointsTransaction.objects.filter(account__member=member).count() == 1  # earned inside
        raise RuntimeError("rolled back")

    assert not Order.objects.exists() and not PointsTransaction.objects.exists()


def test_a_test_can_switch_loyaltys_handler_off_for_a_block_and_it_comes_back(program, channel, member):
    with events.order_recorded.disconnected(integration.on_order_recorded):
        _record(channel, member, "C-1")
    assert not PointsTransaction.objects.exists()

    _record(channel, member, "C-2")
    assert PointsTransaction.objects.filter(account__member=member).count() == 1
    assert events.order_recorded.handlers() == [integration.on_order_recorded]


def test_import_finished_is_told_after_commit_with_the_counts_and_not_for_a_dry_run(
    channel, django_capture_on_commit_callbacks
):
    told = []

    def finished(*, counts, actor):
        told.append(counts)

    data = "name,phone\n李雷,13700137000\n韩梅梅,13700137001\n".encode()
    with (
        events.members_import_finished.connected(finished, on_commit=True),
        django_capture_on_commit_callbacks(execute=True),
    ):
        members_import(data=data, dry_run=True)
        assert told == []
        members_import(data=data)

    assert told == [{"new": 2, "updated": 0, "unchanged": 0, "errors": 0}]
