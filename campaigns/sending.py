"""Sending: the audience frozen at send, then messages out in batches by Celery tasks.

Each message is rendered, checked against consent and the frequency cap at the moment it leaves (set-based per
batch), and recorded: sent, skipped with the reason, or failed. A campaign messages a member at most once: the
message row is unique per (campaign, member) in the database, and a batch only ever takes rows that are still
queued, under a row lock (`SKIP LOCKED`, so two workers never take the same row).
"""

import bisect
import datetime as dt
import hashlib
import string
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty import badges as loyalty_badges
from loyalty import ledger
from loyalty import rewards as loyalty_rewards
from loyalty.models import Account, PointsLot
from members.models import ChannelIdentity, Consent, Member

from . import delivery, selectors, unsubscribe
from .models import Campaign, Message, ProgramMessaging, Recipient

BATCH_SIZE = 1000
FREEZE_CHUNK = 10_000
MAX_ATTEMPTS = 3
CAP_WINDOW = dt.timedelta(days=7)
PLACEHOLDERS = ("name", "member_no", "tier", "points_balance", "points_expiring", "coupon_code")
EXPIRING_WITHIN = dt.timedelta(days=30)  # what {points_expiring} counts
CONSENT_FOR = {"sms": "sms", "email": "email", "wechat": "wechat"}  # `app` pushes go to the brand's own app


# -- the split ----------------------------------------------------------------------------------------------------


def group_for(*, campaign_code: str, member_no: str, control_share: Decimal, variants) -> str:
    """Control or a variant's code, from a stable hash of the campaign code and the member number: the same member
    always lands in the same group of a campaign, and the groups' sizes follow the shares."""
    return _group_name(_group_index(_draw(campaign_code, member_no), control_share, variants), variants)


def _draw(campaign_code: str, member_no: str) -> int:
    digest = hashlib.md5(f"{campaign_code}:{member_no}".encode(), usedforsecurity=False).hexdigest()
    return int(digest[:15], 16)  # uniform in [0, DRAWS)


DRAWS = 16**15


def _group_index(draw: int, control_share, variants) -> int:
    """0 for the control, i + 1 for variants[i]; never decreases as `draw` grows."""
    fraction = Decimal(draw) / Decimal(DRAWS)  # uniform in [0, 1)
    control_share = Decimal(control_share)
    if fraction < control_share:
        return 0
    fraction = (fraction - control_share) / (1 - control_share)
    cumulative = Decimal(0)
    for index, (_code, share) in enumerate(variants):
        cumulative += Decimal(share)
        if fraction < cumulative:
            return index + 1
    return len(variants)


def _group_name(index: int, variants) -> str:
    return Recipient.CONTROL if index == 0 else variants[index - 1][0]


def group_picker(*, campaign_code: str, control_share: Decimal, variants):
    """`group_for` of one campaign as a function of the member number, for a whole audience: the group of a draw
    only grows with the draw, so the first draw of each group is found once (by bisection, with `group_for`'s own
    arithmetic) and a member's group is a lookup of their draw among those bounds: the same answer, twice as
    fast."""
    bounds = []
    for index in range(1, len(variants) + 1):
        low, high = 0, DRAWS  # the first draw whose group is at least `index` (DRAWS: none)
        while low < high:
            middle = (low + high) // 2
            if _group_index(middle, control_share, variants) >= index:
                high = middle
            else:
                low = middle + 1
        bounds.append(low)
    names = [_group_name(index, variants) for index in range(len(variants) + 1)]

    def pick(member_no: str) -> str:
        return names[bisect.bisect_right(bounds, _draw(campaign_code, member_no))]

    pick.bounds, pick.names = bounds, names  # for the same lookup in SQL
    return pick


def placeholders_check(text: str) -> list[str]:
    """The placeholders of `text` that a message cannot fill (empty when all are known)."""
    try:
        names = [name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name is not None]
    except ValueError:
        return ["{"]
    return [name for name in names if name not in PLACEHOLDERS]


# -- freezing the audience ----------------------------------------------------------------------------------------


def audience_freeze(*, campaign: Campaign, now) -> int:
    """One recipient row per member of the segment now (control included) and one queued message per member not
    held out. The caller holds the campaign's lock. On PostgreSQL the audience never leaves the database: one
    INSERT … SELECT draws each member's group in SQL (the md5 draw of `group_for`, compared with the bounds that
    `group_picker` finds, so the groups are the same), a second queues the messages from the recipients."""
    variants = [(variant.code, variant.share) for variant in campaign.variants.order_by("code")]
    members = (
        selectors.segment_accounts(segment=campaign.segment, now=now)
        .order_by("member_id")
        .values_list("member_id", "member__member_no")
    )
    picker = group_picker(campaign_code=campaign.code, control_share=campaign.control_share, variants=variants)
    if connection.vendor == "postgresql":
        return _audience_insert(campaign=campaign, members=members, picker=picker)
    audience = [(member_id, picker(member_no)) for member_id, member_no in members.iterator(chunk_size=FREEZE_CHUNK)]
    for start in range(0, len(audience), FREEZE_CHUNK):
        chunk = audience[start : start + FREEZE_CHUNK]
        Recipient.objects.bulk_create(
            [Recipient(campaign_id=campaign.pk, member_id=member_id, group=group) for member_id, group in chunk]
        )
        Message.objects.bulk_create(
            [
                Message(member_id=member_id, campaign_id=campaign.pk, variant=group, channel=campaign.channel)
                for member_id, group in chunk
                if group != Recipient.CONTROL
            ]
        )
    return len(audience)


def _audience_insert(*, campaign: Campaign, members, picker) -> int:
    try:
        audience_sql, audience_params = members.query.sql_with_params()
    except EmptyResultSet:  # a rule that can match nobody
        return 0
    # `_draw` in SQL: the first 15 hex digits of md5("code:member_no"), as a bigint.
    draw = "('x0' || substr(md5(%s || a.member_no), 1, 15))::bit(64)::bigint"
    cases = " ".join(f"WHEN {draw} < %s THEN %s" for _bound in picker.bounds)
    case_params = [
        value
        for bound, name in zip(picker.bounds, picker.names, strict=False)
        for value in (f"{campaign.code}:", bound, name)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO campaigns_recipient (campaign_id, member_id, "group") '  # noqa: S608 - fixed SQL, parameters
            f"SELECT %s, a.member_id, CASE {cases} ELSE %s END "
            f"FROM ({audience_sql}) AS a(member_id, member_no) ORDER BY a.member_id",
            [campaign.pk, *case_params, picker.names[-1], *audience_params],
        )
        frozen = cursor.rowcount
        cursor.execute(
            "INSERT INTO campaigns_message (member_id, campaign_id, variant, channel, status, reason, subject, body, "
            "attempts, provider_reference, error, created_at) "
            "SELECT member_id, campaign_id, \"group\", %s, %s, '', '', '', 0, '', '', %s FROM campaigns_recipient "
            'WHERE campaign_id = %s AND "group" <> %s ORDER BY member_id',
            [campaign.channel, Message.Status.QUEUED, timezone.now(), campaign.pk, Recipient.CONTROL],
        )
    return frozen


@transaction.atomic
def campaign_send(*, campaign: Campaign, now=None) -> Campaign:
    """Freeze the audience and start the delivery. A second call (or a retried task) changes nothing."""
    campaign = Campaign.objects.select_for_update().select_related("segment").get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
        return campaign
    now = now or timezone.now()
    audience_freeze(campaign=campaign, now=now)
    campaign.status, campaign.sent_at = Campaign.Status.SENDING, now
    campaign.save(update_fields=["status", "sent_at", "updated_at"])
    campaign_id = campaign.pk
    transaction.on_commit(lambda: _start_delivery(campaign_id))
    return campaign


def _start_delivery(campaign_id):
    from . import tasks  # tasks call this module's services; the import is for the on-commit start only

    tasks.campaign_deliver.delay(campaign_id)


def delivery_batches(*, campaign_id) -> list[tuple[int, int]]:
    """The id ranges of the campaign's queued messages, BATCH_SIZE ids each (ids are dense: frozen in bulk)."""
    bounds = Message.objects.filter(campaign_id=campaign_id, status=Message.Status.QUEUED).aggregate(
        low=Min("id"), high=Max("id")
    )
    if bounds["low"] is None:
        return []
    return [
        (start, min(start + BATCH_SIZE - 1, bounds["high"]))
        for start in range(bounds["low"], bounds["high"] + 1, BATCH_SIZE)
    ]


@transaction.atomic
def campaign_cancel(*, campaign: Campaign, now=None) -> Campaign:
    """Stop a campaign: what is not yet sent stays unsent (skipped, `cancelled`)."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (Campaign.Status.SENT, Campaign.Status.CANCELLED):
        return campaign
    campaign.status, campaign.cancelled_at = Campaign.Status.CANCELLED, now or timezone.now()
    campaign.save(update_fields=["status", "cancelled_at", "updated_at"])
    Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED).update(
        status=Message.Status.SKIPPED, reason=Message.Reason.CANCELLED
    )
    return campaign


# -- delivering ---------------------------------------------------------------------------------------------------


def messaging_for(program) -> ProgramMessaging:
    settings, _created = ProgramMessaging.objects.get_or_create(program=program)
    return settings


def quiet_hours_end(*, program, now) -> dt.datetime | None:
    """When the programme's quiet hours (default 21:00-09:00, its time zone) end, if `now` is inside them."""
    settings = messaging_for(program)
    zone = ZoneInfo(program.time_zone)
    local = now.astimezone(zone)
    start, end = settings.quiet_from, settings.quiet_until
    clock = local.time()
    inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not inside or start == end:
        return None
    day = local.date() if clock < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, end, tzinfo=zone)


MEMBER_FIELDS = ("pk", "name", "member_no", "phone", "email", "status")


def _addresses(people, channel) -> dict:
    """{member_id: where the message goes} for the members that can be reached on `channel`."""
    if channel == "sms":
        return {pk: person["phone"] for pk, person in people.items() if person["phone"]}
    if channel == "email":
        return {pk: person["email"] for pk, person in people.items() if person["email"]}
    if channel == "wechat":
        # The member's openid in a WeChat channel (the newest, when there are several).
        return dict(
            ChannelIdentity.objects.filter(member_id__in=list(people), channel__kind="wechat")
            .order_by("id")
            .values_list("member_id", "external_id")
        )
    return {pk: person["member_no"] for pk, person in people.items()}


def _reachable(member_ids, channel) -> set:
    consent_channel = CONSENT_FOR.get(channel)
    if consent_channel is None:
        return set(member_ids)
    return set(
        Consent.objects.filter(member_id__in=member_ids, channel=consent_channel, granted=True).values_list(
            "member_id", flat=True
        )
    )


def _sent_recently(member_ids, now) -> dict:
    return dict(
        Message.objects.filter(member_id__in=member_ids, status=Message.Status.SENT, sent_at__gt=now - CAP_WINDOW)
        .values("member_id")
        .annotate(count=Count("id"))
        .values_list("member_id", "count")
    )


def _expiring(member_ids, program, now) -> dict:
    """{member_id: points} expiring within EXPIRING_WITHIN (to the end of that day in the programme's time zone),
    for the members of a batch (one grouped query)."""
    zone = ZoneInfo(program.time_zone)
    last_day = (now.astimezone(zone) + EXPIRING_WITHIN).date() + dt.timedelta(days=1)
    until = dt.datetime.combine(last_day, dt.time.min, tzinfo=zone)
    return dict(
        PointsLot.objects.filter(
            account__program=program,
            account__member_id__in=member_ids,
            status=PointsLot.Status.AVAILABLE,
            remaining__gt=0,
            expires_at__gt=now,
            expires_at__lt=until,
        )
        .values("account__member_id")
        .annotate(points=Sum("remaining"))
        .values_list("account__member_id", "points")
    )


def messages_deliver(*, messages, program, now, offer=None, templates=None) -> dict:
    """Check, render, offer and send `messages` (locked, queued, of one channel); record each outcome.

    `templates` maps a message to its (subject, body); `offer` is {"coupon_template", "points", "key"}.
    Returns the counts by outcome. Raises `delivery.TransientError` when the batch must be tried again.
    The batch's members, consents, addresses, recent messages and accounts are read as plain values, a query each
    (no model instances but for an offer or an e-mail's unsubscribe link, which need the member).
    """
    if not messages:
        return {}
    channel = messages[0].channel
    member_ids = list({message.member_id for message in messages})
    people = {person["pk"]: person for person in Member.objects.filter(pk__in=member_ids).values(*MEMBER_FIELDS)}
    instances = Member.objects.in_bulk(member_ids) if offer or channel == "email" else {}
    reachable = _reachable(member_ids, channel)
    addresses = _addresses(people, channel)
    cap = messaging_for(program).frequency_cap
    recent = _sent_recently(member_ids, now)
    accounts = {
        member_id: (tier_name or "", balance)
        for member_id, tier_name, balance in Account.objects.filter(
            member_id__in=member_ids, program=program
        ).values_list("member_id", "tier__name", "balance")
    }
    expiring = (
        _expiring(member_ids, program, now)
        if any("{points_expiring}" in "".join(templates(message)) for message in messages[:1])
        else {}
    )
    outgoing, counts = [], {}
    for message in messages:
        member_id = message.member_id
        person = people[member_id]
        if person["status"] != Member.Status.ACTIVE:
            message.status, message.reason = Message.Status.SKIPPED, Message.Reason.NOT_ACTIVE
        elif member_id not in reachable or member_id not in addresses:
            message.status, message.reason = Message.Status.SKIPPED, Message.Reason.NO_CONSENT
        elif recent.get(member_id, 0) >= cap:
            message.status, message.reason = Message.Status.SKIPPED, Message.Reason.FREQUENCY_CAP
        else:
            recent[member_id] = recent.get(member_id, 0) + 1
            tier_name, balance = accounts.get(member_id, ("", 0))
            coupon_code = message.coupon.code if message.coupon_id else ""  # a journey's coupon step
            if offer and offer.get("coupon_template"):
                member = instances[member_id]
                coupon = loyalty_rewards.coupons_issue(template=offer["coupon_template"], member=member, now=now)[0]
                message.coupon, coupon_code = coupon, coupon.code
            if offer and offer.get("points"):
                locked = ledger.account_lock_or_create(member=instances[member_id], program=program)
                ledger.points_award(
                    account=locked,
                    points=offer["points"],
                    reference=offer["reference"],
                    reason=offer["reason"],
                    key=f"{offer['key']}:{member_id}",
                )
                tier_name, balance = locked.tier.name, locked.balance
            subject, body = templates(message)
            values = {  # every name of PLACEHOLDERS
                "name": person["name"],
                "member_no": person["member_no"],
                "tier": tier_name,
                "points_balance": balance,
                "points_expiring": expiring.get(member_id, 0),
                "coupon_code": coupon_code,
            }
            message.subject, message.body = subject.format_map(values), body.format_map(values)
            if channel == "email":  # every marketing e-mail carries its unsubscribe link
                link = unsubscribe.unsubscribe_url(member=instances[member_id])
                message.body += "\n\n" + _("Unsubscribe: %(link)s") % {"link": link}
            outgoing.append(
                delivery.Outgoing(
                    message_id=message.pk,
                    channel=channel,
                    to=addresses[member_id],
                    member_no=person["member_no"],
                    subject=message.subject,
                    body=message.body,
                    program_id=program.pk,
                )
            )
            continue
        counts[message.reason] = counts.get(message.reason, 0) + 1
    by_id = {message.pk: message for message in messages}
    for result in delivery.backend_for(channel).send(outgoing) if outgoing else []:
        message = by_id[result.message_id]
        message.attempts += 1
        if result.sent:
            message.status, message.sent_at, message.provider_reference = Message.Status.SENT, now, result.reference
        else:
            message.status, message.reason, message.error = Message.Status.FAILED, Message.Reason.FAILED, result.error
        counts[message.status] = counts.get(message.status, 0) + 1
    messages_write(messages)
    return counts


OUTCOME_FIELDS = (
    ("status", "text"),
    ("reason", "text"),
    ("subject", "text"),
    ("body", "text"),
    ("coupon_id", "bigint"),
    ("attempts", "integer"),
    ("provider_reference", "text"),
    ("error", "text"),
    ("sent_at", "timestamptz"),
)


def messages_write(messages) -> None:
    """Write the outcome of a batch: on PostgreSQL one UPDATE … FROM unnest(arrays) (Django's bulk_update builds a
    CASE per row and field, which took seconds for a batch of 1,000); elsewhere bulk_update."""
    if not messages:
        return
    if connection.vendor != "postgresql":
        Message.objects.bulk_update(messages, [name.removesuffix("_id") for name, _type in OUTCOME_FIELDS])
        return
    columns = ", ".join(f"{name} = v.{name}" for name, _type in OUTCOME_FIELDS)
    arrays = ", ".join(f"%s::{sql_type}[]" for _name, sql_type in OUTCOME_FIELDS)
    names = ", ".join(name for name, _type in OUTCOME_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE campaigns_message m SET {columns} "  # noqa: S608 - fixed column names; values are parameters
            f"FROM unnest(%s::bigint[], {arrays}) AS v(id, {names}) WHERE m.id = v.id",
            [[message.pk for message in messages]]
            + [[getattr(message, name) for message in messages] for name, _type in OUTCOME_FIELDS],
        )


def campaign_batch_deliver(*, campaign_id: int, id_from: int, id_to: int, now=None) -> dict:
    """Deliver one batch of a campaign's queued messages. Returns the counts, or {"wait_until": moment} inside the
    quiet hours (nothing is taken then)."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("program", "offer_coupon_template").get(pk=campaign_id)
    wait = quiet_hours_end(program=campaign.program, now=now)
    if wait is not None:
        return {"wait_until": wait}
    with transaction.atomic():
        messages = list(
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(campaign_id=campaign_id, id__gte=id_from, id__lte=id_to, status=Message.Status.QUEUED)
            .order_by("id")
        )
        campaign.refresh_from_db(fields=["status"])
        if campaign.status == Campaign.Status.CANCELLED:
            return {}
        variants = {variant.code: variant for variant in campaign.variants.all()}
        offer = None
        if campaign.offer_coupon_template_id or campaign.offer_points:
            offer = {
                "coupon_template": campaign.offer_coupon_template,
                "points": campaign.offer_points,
                "key": f"campaign:{campaign.pk}",
                "reference": f"campaign:{campaign.code}",
                "reason": _("Campaign %(name)s") % {"name": campaign.name},
            }
        counts = messages_deliver(
            messages=messages,
            program=campaign.program,
            now=now,
            offer=offer,
            templates=lambda message: (variants[message.variant].subject, variants[message.variant].body),
        )
        if counts.get(Message.Status.SENT):
            # "Took part in a campaign" badges: a member who was sent the campaign has taken part.
            loyalty_badges.badges_award_for_campaign(
                program=campaign.program,
                member_ids=[message.member_id for message in messages if message.status == Message.Status.SENT],
                now=now,
            )
    campaign_finish_if_done(campaign_id=campaign_id)
    return counts


def messages_fail(*, campaign_id: int, id_from: int, id_to: int, error: str) -> int:
    """After the last retry of a batch: its messages still queued are failed."""
    return Message.objects.filter(
        campaign_id=campaign_id, id__gte=id_from, id__lte=id_to, status=Message.Status.QUEUED
    ).update(status=Message.Status.FAILED, reason=Message.Reason.FAILED, error=error[:500], attempts=MAX_ATTEMPTS)


def campaign_finish_if_done(*, campaign_id: int) -> None:
    if not Message.objects.filter(campaign_id=campaign_id, status=Message.Status.QUEUED).exists():
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, updated_at=timezone.now()
        )


STALLED_AFTER = dt.timedelta(minutes=15)


def campaigns_run_due(*, now, program=None) -> dict:
    """Send the scheduled campaigns whose time has come; restart the delivery of campaigns still sending with
    queued messages and nothing sent for a while (a worker crashed, or the quiet hours ended)."""
    campaigns = Campaign.objects.filter(program=program) if program is not None else Campaign.objects.all()
    due = list(campaigns.filter(status=Campaign.Status.SCHEDULED, scheduled_at__lte=now).order_by("pk"))
    for campaign in due:
        campaign_send(campaign=campaign, now=now)
    stalled = []
    for campaign in campaigns.filter(status=Campaign.Status.SENDING, sent_at__lte=now - STALLED_AFTER):
        recent = Message.objects.filter(campaign=campaign, sent_at__gt=now - STALLED_AFTER).exists()
        if not recent and Message.objects.filter(campaign=campaign, status=Message.Status.QUEUED).exists():
            campaign_id = campaign.pk
            transaction.on_commit(lambda campaign_id=campaign_id: _start_delivery(campaign_id))
            stalled.append(campaign.code)
    return {"sent": [campaign.code for campaign in due], "resumed": stalled}
