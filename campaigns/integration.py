"""How campaigns plugs into the apps below it (through the hooks they own)."""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _

from .models import JourneyEntry, Message, Recipient, SegmentMember

PANEL_MESSAGES = 10


def on_member_merged(*, kept, dropped) -> dict:
    """Messages, campaign audiences and list segments follow the member kept. Where both were in one campaign, the
    merged-away member's rows stay with it (the campaign's record of who got what is not rewritten)."""
    moved = {}
    for model, label, keys in (
        (Message, "messages", ("campaign_id",)),
        (Recipient, "campaign audiences", ("campaign_id",)),
        (SegmentMember, "list segments", ("segment_id",)),
        (JourneyEntry, "journeys", ("journey_id", "occurrence")),
    ):
        rows = model.objects.filter(member=dropped)
        if model is Message:
            rows = rows.filter(campaign__isnull=False)
        clash = model.objects.filter(member=kept, **{key: OuterRef(key) for key in keys})
        moved[label] = rows.filter(~Exists(clash)).update(member=kept)
    moved["messages"] += Message.objects.filter(member=dropped, campaign__isnull=True).update(member=kept)
    return moved


def member_panels(*, member, request=None) -> list:
    messages = list(Message.objects.filter(member=member).select_related("campaign").order_by("-id")[:PANEL_MESSAGES])
    rows = [
        (
            message.created_at.strftime("%Y-%m-%d %H:%M"),
            format_html(
                "{} · {} · {}{}",
                message.campaign.name if message.campaign else "-",
                message.get_channel_display(),
                message.get_status_display(),
                f" ({message.get_reason_display()})" if message.reason else "",
            ),
        )
        for message in messages
    ]
    if not rows:
        rows = [("", _("No messages yet."))]
    else:
        url = reverse("admin:campaigns_message_changelist") + f"?member__id__exact={member.pk}"
        rows.append(("", format_html('<a href="{}">{}</a>', url, _("All messages"))))
    entries = JourneyEntry.objects.filter(member=member).select_related("journey").order_by("-id")[:PANEL_MESSAGES]
    journeys = [
        (
            entry.entered_on.isoformat(),
            format_html(
                "{} · {}{}",
                entry.journey.name,
                entry.get_status_display(),
                f" ({_('until')} {entry.waiting_until})" if entry.waiting_until else "",
            ),
        )
        for entry in entries
    ] or [("", _("In no journey yet."))]
    return [{"title": _("Messages"), "rows": rows}, {"title": _("Journeys"), "rows": journeys}]


def daily_work(*, program, as_of) -> list:
    """After the loyalty jobs, once per programme and day (a JobRun "campaigns"): scheduled campaigns that are due
    and the journeys of the day. For a past or future day (`--as-of`, time travel) the work happens as of 10:00 that
    day in the programme's time zone."""
    from loyalty.jobs import job_run_once

    from . import journeys, sending, webhooks

    def work(cursor, program, moment, as_of):
        zone = ZoneInfo(program.time_zone)
        today = timezone.now().astimezone(zone).date()
        moment = timezone.now() if as_of == today else dt.datetime.combine(as_of, dt.time(10, 0), tzinfo=zone)
        due = sending.campaigns_run_due(now=moment, program=program)
        return {
            "campaigns": due,
            "journeys": journeys.journeys_run(program=program, as_of=as_of, now=moment),
            "webhooks": webhooks.daily_events_emit(program=program, as_of=as_of),
        }

    return [job_run_once(program=program, job="campaigns", as_of=as_of, work=work)]


def member_personal_data(*, member) -> dict:
    """The member's messages for a personal data export."""
    return {
        "messages": [
            {
                "campaign": message.campaign.code if message.campaign else None,
                "journey": message.journey_entry.journey.code if message.journey_entry else None,
                "channel": message.channel,
                "status": message.status,
                "reason": message.reason,
                "subject": message.subject,
                "body": message.body,
                "created_at": message.created_at.isoformat(),
                "sent_at": message.sent_at.isoformat() if message.sent_at else None,
            }
            for message in Message.objects.filter(member=member)
            .select_related("campaign", "journey_entry__journey")
            .order_by("id")
        ]
    }


def members_erased(*, member_ids) -> None:
    """Messages keep their outcome (the campaigns' figures) but not their text, which names the member."""
    Message.objects.filter(member_id__in=member_ids).update(subject="", body="", provider_reference="", error="")


# -- webhooks: the lower apps' domain events as partners' events ---------------------------------------------------


def _member_programs(member):
    from loyalty.models import Program

    return Program.objects.filter(accounts__member=member)


def on_member_joined(*, member, channel=None):
    from loyalty.program_config import program_for_channel

    from . import webhooks

    program = program_for_channel(channel, required=False) if channel is not None else None
    for each in [program] if program else _member_programs(member):
        data = {"member_no": member.member_no, "channel": channel.code if channel else None}
        webhooks.event_emit(program=each, type="member.created", data=data)


def on_member_updated(*, member, changes, channel=None):
    """The fields that changed (not their values: the partner reads the member with its key)."""
    from . import webhooks

    for program in _member_programs(member):
        data = {"member_no": member.member_no, "fields": sorted(changes)}
        webhooks.event_emit(program=program, type="member.updated", data=data)


def on_tier_changed(*, change):
    from . import webhooks

    account = change.account
    data = {
        "member_no": account.member.member_no,
        "from": change.from_tier.code if change.from_tier else None,
        "to": change.to_tier.code,
        "reason": change.reason,
        "at": change.created_at,
    }
    webhooks.event_emit(program=account.program, type="tier.changed", data=data, key=f"tier:{change.pk}")


def on_coupons_issued(*, coupons, member):
    from . import webhooks

    for coupon in coupons:
        data = {
            "code": coupon.code,
            "member_no": member.member_no,
            "template": coupon.template.code,
            "valid_until": coupon.valid_until,
        }
        webhooks.event_emit(program=coupon.template.program, type="coupon.issued", data=data)


def on_redemption_created(*, redemption):
    from . import webhooks

    data = {
        "redemption_id": redemption.redemption_id,
        "member_no": redemption.account.member.member_no,
        "reward": redemption.reward.code,
        "quantity": redemption.quantity,
        "points_spent": redemption.points_spent,
    }
    webhooks.event_emit(program=redemption.reward.program, type="redemption.created", data=data)
