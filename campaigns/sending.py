"""Sending: the audience frozen at send, then messages out in batches by Celery tasks.

Each message is rendered, checked against consent and the frequency cap at the moment it leaves (set-based per
batch), and recorded: sent, skipped with the reason, or failed. A campaign messages a member at most once: the
message row is unique per (campaign, member) in the database, and a batch only ever takes rows that are still
queued, under a row lock (`SKIP LOCKED`, so two workers never take the same row).
"""

import datetime as dt
import hashlib
import string
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from psycopg.copy import QueuedLibpqWriter

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
    digest = hashlib.md5(f"{campaign_code}:{member_no}".encode(), usedforsecurity=False).hexdigest()
    draw = Decimal(int(digest[:15], 16)) / Decimal(16**15)  # uniform in [0, 1)
    control_share = Decimal(control_share)
    if draw < control_share:
        return Recipient.CONTROL
    draw = (draw - control_share) / (1 - control_share)
    cumulative = Decimal(0)
    for code, share in variants:
        cumulative += Decimal(share)
        if draw < cumulative:
            return code
    return variants[-1][0]


def placeholders_check(text: str) -> list[str]:
    """The placeholders of `text` that a message cannot fill (empty when all are known)."""
    try:
        names = [name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name is not None]
    except ValueError:
        return ["{"]
    return [name for name in names if name not in PLACEHOLDERS]


def render(text: str, values: dict) -> str:
    return text.format_map({name: values.get(name, "") for name in PLACEHOLDERS})


# -- freezing the audience ----------------------------------------------------------------------------------------


def audience_freeze(*, campaign: Campaign, now) -> int:
    """One recipient row per member of the segment now (control included) and one queued message per member not
    held out. The caller holds the campaign's lock. The audience is read once; on PostgreSQL both tables are written
    with COPY (an audience of 1,000,000 is two million rows)."""
    variants = [(variant.code, variant.share) for variant in campaign.variants.order_by("code")]
    members = (
        selectors.segment_accounts(segment=campaign.segment, now=now)
        .order_by("member_id")
        .values_list("member_id", "member__member_no")
    )
    audience = [
        (
            member_id,
            group_for(
                campaign_code=campaign.code,
                member_no=member_no,
                control_share=campaign.control_share,
                variants=variants,
            ),
        )
        for member_id, member_no in members.iterator(chunk_size=FREEZE_CHUNK)
    ]
    if connection.vendor == "postgresql":
        created = timezone.now()
        _copy(
            'COPY campaigns_recipient (campaign_id, member_id, "group") FROM STDIN',
            ((campaign.pk, member_id, group) for member_id, group in audience),
        )
        _copy(
            "COPY campaigns_message (member_id, campaign_id, variant, channel, status, reason, subject, body, "
            "attempts, provider_reference, error, created_at) FROM STDIN",
            (
                (member_id, campaign.pk, group, campaign.channel, Message.Status.QUEUED, "", "", "", 0, "", "", created)
                for member_id, group in audience
                if group != Recipient.CONTROL
            ),
        )
        return len(audience)
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


def _copy(statement: str, rows) -> None:
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(statement, writer=QueuedLibpqWriter(cursor.cursor)) as copy,
    ):
        for row in rows:
            copy.write_row(row)


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


def _addresses(members, channel) -> dict:
    """{member_id: where the message goes} for the members that can be reached on `channel`."""
    if channel == "sms":
        return {member.pk: member.phone for member in members if member.phone}
    if channel == "email":
        return {member.pk: member.email for member in members if member.email}
    if channel == "wechat":
        # The member's openid in a WeChat channel (the newest, when there are several).
        return dict(
            ChannelIdentity.objects.filter(member__in=members, channel__kind="wechat")
            .order_by("id")
            .values_list("member_id", "external_id")
        )
    return {member.pk: member.member_no for member in members}


def _reachable(members, channel) -> set:
    consent_channel = CONSENT_FOR.get(channel)
    if consent_channel is None:
        return {member.pk for member in members}
    return set(
        Consent.objects.filter(member__in=members, channel=consent_channel, granted=True).values_list(
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


def _expiring(members, program, now) -> dict:
    """{member_id: points} expiring within EXPIRING_WITHIN (to the end of that day in the programme's time zone),
    for the members of a batch (one grouped query)."""
    zone = ZoneInfo(program.time_zone)
    last_day = (now.astimezone(zone) + EXPIRING_WITHIN).date() + dt.timedelta(days=1)
    until = dt.datetime.combine(last_day, dt.time.min, tzinfo=zone)
    return dict(
        PointsLot.objects.filter(
            account__program=program,
            account__member__in=members,
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
    """
    if not messages:
        return {}
    channel = messages[0].channel
    members = [message.member for message in messages]
    reachable = _reachable(members, channel)
    addresses = _addresses(members, channel)
    cap = messaging_for(program).frequency_cap
    recent = _sent_recently([member.pk for member in members], now)
    accounts = {
        account.member_id: account
        for account in Account.objects.select_related("tier").filter(member__in=members, program=program)
    }
    expiring = (
        _expiring(members, program, now)
        if any("{points_expiring}" in "".join(templates(message)) for message in messages[:1])
        else {}
    )
    outgoing, counts = [], {}
    for message in messages:
        member = message.member
        if member.status != Member.Status.ACTIVE:
            message.status, message.reason = Message.Status.SKIPPED, Message.Reason.NOT_ACTIVE
        elif member.pk not in reachable or member.pk not in addresses:
            message.status, message.reason = Message.Status.SKIPPED, Message.Reason.NO_CONSENT
        elif recent.get(member.pk, 0) >= cap:
            message.status, message.reason = Message.Status.SKIPPED, Message.Reason.FREQUENCY_CAP
        else:
            recent[member.pk] = recent.get(member.pk, 0) + 1
            account = accounts.get(member.pk)
            coupon_code = message.coupon.code if message.coupon_id else ""  # a journey's coupon step
            if offer and offer.get("coupon_template"):
                coupon = loyalty_rewards.coupons_issue(template=offer["coupon_template"], member=member, now=now)[0]
                message.coupon, coupon_code = coupon, coupon.code
            if offer and offer.get("points"):
                locked = ledger.account_lock_or_create(member=member, program=program)
                ledger.points_award(
                    account=locked,
                    points=offer["points"],
                    reference=offer["reference"],
                    reason=offer["reason"],
                    key=f"{offer['key']}:{member.pk}",
                )
                account = locked
            subject, body = templates(message)
            values = {
                "name": member.name,
                "member_no": member.member_no,
                "tier": account.tier.name if account else "",
                "points_balance": account.balance if account else 0,
                "points_expiring": expiring.get(member.pk, 0),
                "coupon_code": coupon_code,
            }
            message.subject, message.body = render(subject, values), render(body, values)
            if channel == "email":  # every marketing e-mail carries its unsubscribe link
                link = unsubscribe.unsubscribe_url(member=member)
                message.body += "\n\n" + _("Unsubscribe: %(link)s") % {"link": link}
            outgoing.append(
                delivery.Outgoing(
                    message_id=message.pk,
                    channel=channel,
                    to=addresses[member.pk],
                    member_no=member.member_no,
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
            .select_related("member")
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
