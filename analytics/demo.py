"""The analytics part of the demo: a year of orders for the demo members, so the dashboard shows real curves.

Deterministic (the same members get the same orders) and idempotent (order ids are fixed; a second run adds
nothing), written with bulk inserts. Buyers differ on purpose: some buy most months, some rarely, some stop
part-way through the year, so that RFM, cohorts and P(alive) have something to tell apart.
"""

import datetime as dt
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from loyalty.models import ChannelProgram, Program
from members.models import Member, Order

MAX_MEMBERS = 5000
BATCH = 5000


def demo_year_of_orders(*, program_code: str = "demo") -> int:
    """Up to one order a month over the last 12 months for each demo member; returns the orders added."""
    program = Program.objects.filter(code=program_code).first()
    if program is None:
        return 0
    channels = list(ChannelProgram.objects.filter(program=program).values_list("channel_id", flat=True))
    if not channels:
        return 0
    members = (
        Member.objects.filter(Q(accounts__program=program) | Q(join_channel_id__in=channels), status="active")
        .distinct()
        .order_by("pk")
        .values_list("pk", "member_no", "join_channel_id")[:MAX_MEMBERS]
    )
    now = timezone.now()
    orders = []
    for pk, member_no, join_channel in members:
        appetite = 8 + (pk * 37) % 60  # percent chance of an order in a month
        stops_after = (pk * 11) % 24  # months 12..23: never stops within the year
        channel = join_channel if join_channel in channels else channels[pk % len(channels)]
        for month in range(12):
            if month > stops_after or (pk * 31 + month * 17) % 100 >= appetite:
                continue
            days_ago = 360 - month * 30 - (pk * 13 + month * 7) % 28
            amount = Decimal(30 + (pk * 97 + month * 53) % 900) + Decimal((pk + month) % 100) / 100
            orders.append(
                Order(
                    channel_id=channel,
                    order_id=f"DEMO-Y-{member_no}-{month:02d}",
                    member_id=pk,
                    amount=amount,
                    occurred_at=now - dt.timedelta(days=days_ago, minutes=(pk * 7 + month) % 600),
                )
            )
    before = Order.objects.filter(order_id__startswith="DEMO-Y-").count()
    Order.objects.bulk_create(orders, batch_size=BATCH, ignore_conflicts=True)
    return Order.objects.filter(order_id__startswith="DEMO-Y-").count() - before


def seed_demo_history(*, stdout=None):
    """After the demo members exist: their year of orders, then today's RFM scores and CLV fit."""
    from . import clv, rfm

    added = demo_year_of_orders()
    program = Program.objects.filter(code="demo").first()
    if program is None:
        return
    today = timezone.localdate()
    scored = rfm.rfm_scores_compute(program=program, as_of=today)
    fit = clv.clv_fit(program=program, as_of=today)
    if stdout is not None:
        stdout.write(
            f"analytics: {added} demo orders added, {scored['scored']} members RFM-scored, "
            f"CLV fitted on {fit.members} members"
        )


def demo_snapshot(*, member_ids):
    """Once loyalty has given the new demo members their accounts and points (its handler of the same event runs
    first: loyalty's app is ready before analytics'), the nightly KPI snapshot as of yesterday, so that the dashboard
    opens on it."""
    from . import snapshots

    program = Program.objects.filter(code="demo").first()
    if program is not None:
        snapshots.kpi_snapshots_take(program=program, last_day=timezone.localdate() - dt.timedelta(days=1))
