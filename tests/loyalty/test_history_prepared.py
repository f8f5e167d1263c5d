"""The order import's tier sums read ahead (`tiers_prepare_history`): on a second connection, while the import's COPY
stores the new orders, each member's largest qualifying value over the windows ending at its new orders is summed
from the orders recorded before and the new ones given as arrays. They must be the values read once the orders are
stored, whatever the window and the metric."""

import datetime as dt
from decimal import Decimal

import pytest

from loyalty import history
from loyalty.models import Account, Tier
from members.models import Order
from tests.factories import MemberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

NOW = dt.datetime(2026, 6, 1, 10, 0, tzinfo=dt.UTC)


def _history(channel):
    """Recorded orders and new ones for three members: windows that take in recorded orders before and after a new
    one, new orders at the same time as a recorded one and as each other, a year's first instant in Shanghai, and a
    refunded recorded order."""
    busy, quiet, new_year = MemberFactory(), MemberFactory(), MemberFactory()
    year_start = dt.datetime(2025, 12, 31, 16, 0, tzinfo=dt.UTC)  # 2026-01-01 00:00 in Shanghai
    recorded = [
        (busy, NOW - dt.timedelta(days=400), "900"),
        (busy, NOW - dt.timedelta(days=200), "3000"),
        (busy, NOW - dt.timedelta(days=100), "2000"),
        (busy, NOW - dt.timedelta(days=10), "700"),
        (quiet, NOW - dt.timedelta(days=50), "400"),
        (new_year, year_start, "800"),
        (new_year, year_start + dt.timedelta(days=3), "300"),
    ]
    for number, (member, at, amount) in enumerate(recorded):
        order = Order.objects.create(
            channel=channel, order_id=f"R-{number}", member=member, amount=Decimal(amount), occurred_at=at
        )
        if number == 3:
            Order.objects.filter(pk=order.pk).update(refunded_amount=order.amount, status=Order.Status.REFUNDED)
    new = [
        (busy, NOW - dt.timedelta(days=300), "150.50"),
        (busy, NOW - dt.timedelta(days=100), "10"),  # the same time as a recorded order
        (busy, NOW - dt.timedelta(days=100), "20"),  # and as another new one
        (busy, NOW - dt.timedelta(days=5), "0"),
        (quiet, NOW - dt.timedelta(days=49), "300"),
        (new_year, year_start, "50"),
        (new_year, year_start + dt.timedelta(days=1), "999.99"),
    ]
    return [(member.pk, channel.pk, at, Decimal(amount)) for member, at, amount in new]


@pytest.mark.parametrize(
    ("metric", "window"),
    [("spend", "rolling"), ("spend", "calendar_year"), ("orders", "rolling"), ("orders", "calendar_year")],
)
def test_sums_read_before_the_orders_are_stored_are_the_sums_after(channel, program, metric, window):
    program.tiers.exclude(rank=0).update(metric=metric, window=window)
    program.time_zone = "Asia/Shanghai"
    program.save()
    new = _history(channel)
    prepared = history.tiers_prepare_history(orders=new)
    stored = [
        Order.objects.create(channel_id=channel_id, order_id=f"N-{n}", member_id=member, amount=amount, occurred_at=at)
        for n, (member, channel_id, at, amount) in enumerate(new)
    ]
    sample = program.tiers.get(rank=1)
    after = history._history_window_values_by_member(
        program, sample, [(order.pk, order.member_id, order.occurred_at) for order in stored]
    )
    key = (sample.metric, sample.window, sample.window_days)
    assert prepared.values[program.pk][key] == after
    assert len(after) == 3 and any(after.values())


def test_members_in_the_top_tier_are_left_out_and_summed_by_nobody(channel, program):
    new = _history(channel)
    top = MemberFactory()
    Account.objects.create(member=top, program=program, tier=program.tiers.order_by("rank").last(), tier_since=NOW)
    prepared = history.tiers_prepare_history(orders=[*new, (top.pk, channel.pk, NOW, Decimal("10"))])
    sums = prepared.values[program.pk][(Tier.Metric.SPEND, Tier.Window.ROLLING, 365)]
    assert top.pk not in sums and {member for member, *_rest in new} == set(sums)
    # A channel outside every programme, or nothing to read: nothing summed.
    assert history.tiers_prepare_history(orders=[]).values == {}


@pytest.mark.parametrize("window", ["rolling", "calendar_year"])
def test_sums_of_new_orders_given_in_parts_are_the_sums_of_one_call(channel, program, window):
    """The import gives its new orders chunk by chunk: a member's orders split over parts, two at the same time in
    different parts, count in each other's windows as when given at once. A first part drops what an import left."""
    program.tiers.exclude(rank=0).update(window=window)
    program.time_zone = "Asia/Shanghai"
    program.save()
    new = _history(channel)
    whole = history.tiers_prepare_history(orders=new).values
    history.tiers_prepare_history_part(orders=new, first=True)  # an import that stopped before its sums
    parts = [new[1::2], new[0::2]]  # the two orders at the same time are in different parts
    for number, part in enumerate(parts):
        history.tiers_prepare_history_part(orders=part, first=number == 0)
    assert history.tiers_prepared_sums().values == whole
    assert history.tiers_prepared_sums().values == {}  # the parts are dropped with the sums


def test_a_member_in_the_top_tier_for_some_parts_only_is_summed_after_the_orders_are_stored(channel, program):
    """A member's account in the top tier while the first part is read, then moved down (a downgrade committed while
    the import runs): the second part's orders alone would be a partial sum. It is left out of the sums, and the
    count after the store reads its whole window, so that its 6,000 of new orders still make it Gold."""
    tiers = list(program.tiers.order_by("rank"))
    member = MemberFactory()
    account = Account.objects.create(member=member, program=program, tier=tiers[-1], tier_since=NOW)
    new = [
        (member.pk, channel.pk, NOW - dt.timedelta(days=2), Decimal("5000")),
        (member.pk, channel.pk, NOW - dt.timedelta(days=1), Decimal("1000")),
    ]
    history.tiers_prepare_history_part(orders=new[:1], first=True)
    Account.objects.filter(pk=account.pk).update(tier=tiers[0])
    history.tiers_prepare_history_part(orders=new[1:])
    sums = history.tiers_prepared_sums()
    assert member.pk not in sums.values[program.pk][(Tier.Metric.SPEND, Tier.Window.ROLLING, 365)]
    stored = [
        Order.objects.create(
            channel_id=channel_id, order_id=f"T-{n}", member_id=member_id, amount=amount, occurred_at=at
        )
        for n, (member_id, channel_id, at, amount) in enumerate(new)
    ]
    counts = history.tiers_count_history(
        orders=[(order.pk, order.member_id, order.channel_id, order.occurred_at) for order in stored], prepared=[sums]
    )
    account.refresh_from_db()
    assert (counts["upgraded"], account.tier.code) == (1, "gold")


def test_tier_windows_edited_while_an_import_runs_are_summed_again_after_the_store(channel, program):
    """Staff move the tiers from a rolling year to the calendar year between two parts: every part is summed over the
    windows the first part read (the whole rolling sum, not half of each), and the calendar windows the count now
    needs, which no part covered, are summed once the orders are stored: 6,000 in 2026 makes the member Gold."""
    member = MemberFactory()
    new = [
        (member.pk, channel.pk, NOW - dt.timedelta(days=2), Decimal("5000")),
        (member.pk, channel.pk, NOW - dt.timedelta(days=1), Decimal("1000")),
    ]
    history.tiers_prepare_history_part(orders=new[:1], first=True)
    program.tiers.exclude(rank=0).update(window=Tier.Window.CALENDAR_YEAR)
    program.save()  # the programme's settings are read again
    history.tiers_prepare_history_part(orders=new[1:])
    sums = history.tiers_prepared_sums()
    assert sums.values[program.pk] == {(Tier.Metric.SPEND, Tier.Window.ROLLING, 365): {member.pk: Decimal("6000")}}
    stored = [
        Order.objects.create(
            channel_id=channel_id, order_id=f"E-{n}", member_id=member_id, amount=amount, occurred_at=at
        )
        for n, (member_id, channel_id, at, amount) in enumerate(new)
    ]
    history.tiers_count_history(
        orders=[(order.pk, order.member_id, order.channel_id, order.occurred_at) for order in stored], prepared=[sums]
    )
    assert Account.objects.get(member=member, program=program).tier.code == "gold"
