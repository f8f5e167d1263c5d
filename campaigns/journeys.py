"""Journeys (automation): who enters today, and each entry's way through the steps. Run by the daily jobs
(`run_loyalty_jobs --as-of DAY` runs them after the loyalty jobs), so time-travel tests can drive them.

Entering is one grouped query per journey (set-based where the trigger is: birthdays in N days, lots expiring in N
days, no order for N days) and a batched insert that the database keeps unique per (journey, member, occurrence):
running a day twice enters nobody twice. Steps then run for all due entries of a journey, a step at a time.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import F, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty import ledger
from loyalty import rewards as loyalty_rewards
from loyalty.models import Account, ChannelProgram, PointsLot, TierChange
from members import services as member_services
from members.models import Event, Member, Order

from . import selectors, sending
from .models import Journey, JourneyEntry, JourneyStep, Message

CHUNK = 1000
LOST_AFTER = dt.timedelta(minutes=10)


def _bounds(program, first: dt.date, last: dt.date):
    zone = ZoneInfo(program.time_zone)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def _orders(program):
    return Order.objects.filter(
        channel_id__in=ChannelProgram.objects.filter(program=program).values("channel_id")
    ).order_by()


def triggered(journey: Journey, as_of: dt.date):
    """(member_id, occurrence) of the members whose trigger fires as of `as_of` (yesterday's facts included, so a
    fact after the night's run is not missed; the occurrence keeps it from entering twice)."""
    program = journey.program
    start, end = _bounds(program, as_of - dt.timedelta(days=1), as_of)
    trigger, days = journey.trigger, journey.days or 0
    if trigger == Journey.Trigger.JOINED:
        rows = Member.objects.filter(joined_at__gte=start, joined_at__lt=end).values_list("pk", flat=True)
        return ((member_id, "joined") for member_id in rows)
    if trigger == Journey.Trigger.FIRST_ORDER:
        rows = (
            _orders(program)
            .values("member_id")
            .annotate(first=Min("occurred_at"))
            .filter(first__gte=start, first__lt=end)
            .values_list("member_id", flat=True)
        )
        return ((member_id, "first_order") for member_id in rows)
    if trigger == Journey.Trigger.BIRTHDAY:
        target = as_of + dt.timedelta(days=days)
        when = Q(birthday__month=target.month, birthday__day=target.day)
        if target.month == 2 and target.day == 28 and not _leap(target.year):
            when |= Q(birthday__month=2, birthday__day=29)  # a 29 February birthday is kept on the 28th
        rows = Member.objects.filter(when).values_list("pk", flat=True)
        return ((member_id, f"birthday:{target.year}") for member_id in rows)
    if trigger == Journey.Trigger.POINTS_EXPIRING:
        target = as_of + dt.timedelta(days=days)
        day_start, day_end = _bounds(program, target, target)
        rows = (
            PointsLot.objects.filter(
                account__program=program,
                status=PointsLot.Status.AVAILABLE,
                remaining__gt=0,
                expires_at__gte=day_start,
                expires_at__lt=day_end,
                account__balance__gt=0,
            )
            .values(member_id=F("account__member_id"))
            .annotate(points=Sum("remaining"))
            .filter(points__gte=journey.min_points or 1)
            .values_list("member_id", flat=True)
        )
        return ((member_id, f"expiring:{target.isoformat()}") for member_id in rows)
    if trigger == Journey.Trigger.TIER_CHANGED:
        changes = TierChange.objects.filter(
            account__program=program, created_at__gte=start, created_at__lt=end, from_tier__isnull=False
        )
        if journey.direction == Journey.Direction.UP:
            changes = changes.filter(to_tier__rank__gt=F("from_tier__rank"))
        elif journey.direction == Journey.Direction.DOWN:
            changes = changes.filter(to_tier__rank__lt=F("from_tier__rank"))
        else:
            changes = changes.exclude(to_tier__rank=F("from_tier__rank"))
        rows = changes.values_list("account__member_id", "pk")
        return ((member_id, f"tier:{change_id}") for member_id, change_id in rows)
    if trigger == Journey.Trigger.NO_ORDER:
        lapsed_day = as_of - dt.timedelta(days=days)
        day_start, day_end = _bounds(program, lapsed_day, lapsed_day)
        rows = (
            _orders(program)
            .values("member_id")
            .annotate(last=Max("occurred_at"))
            .filter(last__gte=day_start, last__lt=day_end)
            .values_list("member_id", flat=True)
        )
        return ((member_id, f"lapse:{lapsed_day.isoformat()}") for member_id in rows)
    if trigger == Journey.Trigger.EVENT:
        events = Event.objects.filter(
            channel_id__in=ChannelProgram.objects.filter(program=program).values("channel_id"),
            occurred_at__gte=start,
            occurred_at__lt=end,
        ).filter(Q(type=journey.event_type) | Q(type=Event.Type.CUSTOM, name=journey.event_type))
        return ((member_id, f"event:{event_id}") for member_id, event_id in events.values_list("member_id", "pk"))
    return iter(())


def _leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def journey_enter(*, journey: Journey, as_of: dt.date) -> int:
    """Enter today's members (active members of the programme, in the journey's segment if it has one)."""
    eligible = Account.objects.filter(program=journey.program, member__status=Member.Status.ACTIVE)
    if journey.segment_id:
        eligible = selectors.segment_accounts(segment=journey.segment).filter(program=journey.program)
    eligible_ids = eligible.values_list("member_id", flat=True)
    entered = 0
    candidates = list(triggered(journey, as_of))
    for start in range(0, len(candidates), CHUNK):
        chunk = candidates[start : start + CHUNK]
        allowed = set(eligible_ids.filter(member_id__in=[member_id for member_id, _occurrence in chunk]))
        rows = [
            JourneyEntry(journey=journey, member_id=member_id, occurrence=occurrence, entered_on=as_of)
            for member_id, occurrence in chunk
            if member_id in allowed
        ]
        before = JourneyEntry.objects.filter(journey=journey).count()
        JourneyEntry.objects.bulk_create(rows, ignore_conflicts=True, batch_size=CHUNK)
        entered += JourneyEntry.objects.filter(journey=journey).count() - before
    return entered


def _step_run(step: JourneyStep, entries, *, as_of, program, journey) -> None:
    members = {member.pk: member for member in Member.objects.filter(pk__in=[entry.member_id for entry in entries])}
    if step.kind == JourneyStep.Kind.MESSAGE:
        Message.objects.bulk_create(
            [
                Message(
                    member_id=entry.member_id,
                    journey_entry=entry,
                    journey_step=step.position,
                    channel=journey.channel,
                    coupon_id=entry.coupon_id,
                )
                for entry in entries
            ],
            ignore_conflicts=True,
        )
    elif step.kind == JourneyStep.Kind.COUPON and step.coupon_template_id:
        for entry in entries:
            entry.coupon = loyalty_rewards.coupons_issue(
                template=step.coupon_template, member=members[entry.member_id]
            )[0]
    elif step.kind == JourneyStep.Kind.POINTS and step.points:
        for entry in entries:
            account = ledger.account_lock_or_create(member=members[entry.member_id], program=program)
            ledger.points_award(
                account=account,
                points=step.points,
                reference=f"journey:{journey.code}",
                reason=_("Journey %(name)s") % {"name": journey.name},
                key=f"journey:{entry.pk}:{step.position}",
            )
    elif step.kind == JourneyStep.Kind.TAG and step.tag:
        tag = member_services.tag_get_or_create(name=step.tag)
        member_services.members_tag(member_ids=list(members), tag=tag)


@transaction.atomic
def journey_advance(*, journey: Journey, as_of: dt.date) -> dict:
    """Run the due steps of every entry in progress, in order; a wait step parks the entry until its day."""
    steps = list(journey.steps.select_related("coupon_template").order_by("position"))
    counts = {}
    for index, step in enumerate(steps):
        while True:
            entries = list(
                JourneyEntry.objects.select_for_update(skip_locked=True)
                .filter(journey=journey, next_step=index)
                .exclude(status=JourneyEntry.Status.FINISHED)
                .filter(Q(waiting_until__isnull=True) | Q(waiting_until__lte=as_of))
                .order_by("id")[:CHUNK]
            )
            if not entries:
                break
            if step.kind == JourneyStep.Kind.WAIT:
                for entry in entries:
                    entry.status, entry.waiting_until = (
                        JourneyEntry.Status.WAITING,
                        as_of + dt.timedelta(days=step.wait_days or 0),
                    )
                    entry.next_step = index + 1
                    if not step.wait_days:
                        entry.status, entry.waiting_until = JourneyEntry.Status.ACTIVE, None
            else:
                _step_run(step, entries, as_of=as_of, program=journey.program, journey=journey)
                for entry in entries:
                    entry.status, entry.waiting_until, entry.next_step = JourneyEntry.Status.ACTIVE, None, index + 1
            JourneyEntry.objects.bulk_update(entries, ["status", "waiting_until", "next_step", "coupon"])
            counts[step.kind] = counts.get(step.kind, 0) + len(entries)
    finished = (
        JourneyEntry.objects.filter(journey=journey, next_step__gte=len(steps))
        .exclude(status=JourneyEntry.Status.FINISHED)
        .update(status=JourneyEntry.Status.FINISHED, finished_on=as_of, waiting_until=None)
    )
    counts["finished"] = finished
    return counts


def journeys_run(*, program, as_of: dt.date, now=None) -> dict:
    """The campaigns' daily work for a programme: journeys entered and advanced, scheduled campaigns due, and the
    journeys' messages of the day sent when the quiet hours allow."""
    counts = {}
    for journey in Journey.objects.filter(program=program, is_active=True).select_related("program", "segment"):
        with transaction.atomic():
            entered = journey_enter(journey=journey, as_of=as_of)
        counts[journey.code] = {"entered": entered, **journey_advance(journey=journey, as_of=as_of)}
    now = now or timezone.now()
    counts["messages"] = journey_messages_deliver(program=program, now=now)
    return counts


def journey_messages_deliver(*, program, now) -> dict:
    """Send the programme's queued journey messages (outside the quiet hours), a batch at a time."""
    if sending.quiet_hours_end(program=program, now=now) is not None:
        return {
            "waiting": Message.objects.filter(
                journey_entry__journey__program=program, status=Message.Status.QUEUED
            ).count()
        }
    steps = {
        (step.journey_id, step.position): step
        for step in JourneyStep.objects.filter(journey__program=program, kind=JourneyStep.Kind.MESSAGE)
    }
    counts = {}
    while True:
        with transaction.atomic():
            messages = list(
                Message.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("member", "journey_entry", "coupon")
                .filter(journey_entry__journey__program=program, status=Message.Status.QUEUED)
                .order_by("id")[:CHUNK]
            )
            if not messages:
                return counts
            for channel in {message.channel for message in messages}:
                batch = [message for message in messages if message.channel == channel]
                result = sending.messages_deliver(
                    messages=batch,
                    program=program,
                    now=now,
                    templates=lambda message: (
                        steps[(message.journey_entry.journey_id, message.journey_step)].subject,
                        steps[(message.journey_entry.journey_id, message.journey_step)].body,
                    ),
                )
                for key, value in result.items():
                    counts[key] = counts.get(key, 0) + value


def campaigns_tick(*, now) -> dict:
    """Every few minutes: scheduled campaigns due, stalled deliveries resumed, journey messages that waited for the
    end of the quiet hours sent."""
    from loyalty.models import Program

    from . import tasks, webhooks

    answer = sending.campaigns_run_due(now=now)
    lost = webhooks.deliveries_due(now=now - LOST_AFTER)  # a retry whose task was lost (a worker restarted)
    for delivery_id in lost:
        transaction.on_commit(lambda delivery_id=delivery_id: tasks.webhook_deliver.delay(delivery_id))
    answer["webhook_retries"] = len(lost)
    answer["journey_messages"] = {
        program.code: journey_messages_deliver(program=program, now=now)
        for program in Program.objects.filter(is_active=True, journeys__isnull=False).distinct()
    }
    return answer
