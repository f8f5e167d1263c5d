"""Webhooks to partners (API.md § Webhooks): subscriptions, signed deliveries, retries with exponential backoff for
24 hours, then failed. Delivery is at least once: the receiver deduplicates by the event id."""

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ValidationFailed

from .models import Webhook, WebhookDelivery

RETRY_FOR = dt.timedelta(hours=24)
TIMEOUT_SECONDS = 5


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (API.md)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _private(host: str) -> bool:
    """Whether `host` is or resolves to a private, loopback, link-local or reserved address."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False  # an unknown name: refused later by the delivery, not a private address
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            return True
    return False


def url_check(url: str) -> None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise ValidationFailed(fields={"url": [_("Give an http(s) URL.")]})
    if not settings.WEBHOOK_ALLOW_PRIVATE and _private(parsed.hostname):
        raise ValidationFailed(
            fields={"url": [_("This URL points to a private or loopback address, which webhooks may not call.")]}
        )


@transaction.atomic
def webhook_create(*, program, channel, url: str, events) -> Webhook:
    unknown = sorted(set(events) - set(Webhook.Event.values))
    if not events or unknown:
        raise ValidationFailed(
            fields={"events": [_("Choose events among %(known)s.") % {"known": ", ".join(Webhook.Event.values)}]}
        )
    url_check(url)
    return Webhook.objects.create(
        program=program, channel=channel, url=url, events=sorted(set(events)), secret=secrets.token_hex(32)
    )


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    webhook.delete()


EVENT_NAMESPACE = uuid.UUID("5b0c7a4e-0f7e-4d4b-9a53-3c0e2f1b7a11")


def event_emit(*, program, type: str, data: dict, now=None, key: str | None = None) -> list[int]:
    """Queue `type` with `data` for every active webhook of the programme that subscribed to it; the deliveries
    start when the caller's transaction commits. With `key` the event id is derived from it, so the same fact
    emitted twice (a daily job run again) is one event. Returns the new delivery ids."""
    now = now or timezone.now()
    event_id = uuid.uuid5(EVENT_NAMESPACE, f"{program.pk}:{type}:{key}") if key else uuid.uuid4()
    payload = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    subscribed = [
        webhook for webhook in Webhook.objects.filter(program=program, is_active=True) if type in webhook.events
    ]
    if key:
        known = set(
            WebhookDelivery.objects.filter(webhook__in=subscribed, event_id=event_id).values_list(
                "webhook_id", flat=True
            )
        )
        subscribed = [webhook for webhook in subscribed if webhook.pk not in known]
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(webhook=webhook, event_id=event_id, type=type, payload=payload, created_at=now)
            for webhook in subscribed
        ]
    )
    ids = [delivery.pk for delivery in deliveries]
    if ids:
        transaction.on_commit(lambda: _start(ids))
    return ids


def _start(ids):
    from . import tasks

    for delivery_id in ids:
        tasks.webhook_deliver.delay(delivery_id)


def body_of(delivery: WebhookDelivery) -> bytes:
    return json.dumps(
        {
            "id": str(delivery.event_id),
            "type": delivery.type,
            "created_at": delivery.created_at.isoformat(),
            "data": delivery.payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def delivery_attempt(*, delivery_id: int, now=None) -> WebhookDelivery:
    """POST the event once. On a 2xx it is delivered; otherwise `next_attempt_at` says when to try again (base delay
    × 2^attempts), or it is failed once 24 hours have passed since the event."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("webhook").get(pk=delivery_id)
        if delivery.status != WebhookDelivery.Status.PENDING:
            return delivery
        body = body_of(delivery)
        stamp = int(time.time())
        request = urllib.request.Request(  # noqa: S310 - the URL was checked when subscribed, and again below
            delivery.webhook.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-CRM-Event-Id": str(delivery.event_id),
                "X-CRM-Signature": signature(delivery.webhook.secret, stamp, body),
                "User-Agent": "membership-crm-webhooks",
            },
        )
        code, error = None, ""
        try:
            url_check(delivery.webhook.url)
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                code = response.status
        except urllib.error.HTTPError as answer:
            code, error = answer.code, f"HTTP {answer.code}"
        except ValidationFailed as refused:
            error = str(refused.fields["url"][0])
        except (urllib.error.URLError, TimeoutError, OSError) as failure:
            error = str(getattr(failure, "reason", failure))[:500]
        delivery.attempts += 1
        delivery.last_status_code, delivery.last_error = code, error
        if code is not None and 200 <= code < 300:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                WebhookDelivery.Status.DELIVERED,
                now,
                None,
            )
        else:
            wait = dt.timedelta(seconds=settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1))
            if now + wait > delivery.created_at + RETRY_FOR:
                delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
            else:
                delivery.next_attempt_at = now + wait
        delivery.save()
        return delivery


@transaction.atomic
def delivery_resend(*, delivery: WebhookDelivery, now=None) -> WebhookDelivery:
    """Staff send an event again (after the partner fixed its receiver): a new 24 hours of tries."""
    now = now or timezone.now()
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    delivery.status, delivery.created_at, delivery.next_attempt_at = WebhookDelivery.Status.PENDING, now, None
    delivery.save(update_fields=["status", "created_at", "next_attempt_at"])
    delivery_id = delivery.pk
    transaction.on_commit(lambda: _start([delivery_id]))
    return delivery


def deliveries_due(*, now) -> list[int]:
    """Pending deliveries whose retry time has come (the periodic tick re-queues them if a task was lost)."""
    return list(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now).values_list(
            "pk", flat=True
        )[:1000]
    )


EXPIRING_NOTICE = dt.timedelta(days=30)


def daily_events_emit(*, program, as_of: dt.date) -> dict:
    """The daily facts partners subscribe to: points expiring in 30 days (one event per member and expiry day), and
    the daily tier evaluation's moves (downgrades, retentions), each emitted once whatever the re-runs."""
    from zoneinfo import ZoneInfo

    from django.db.models import F, Sum

    from loyalty.models import PointsLot, TierChange

    subscribed = {
        event
        for events in Webhook.objects.filter(program=program, is_active=True).values_list("events", flat=True)
        for event in events
    }
    counts = {}
    if "points.expiring" in subscribed:
        zone = ZoneInfo(program.time_zone)
        day = as_of + EXPIRING_NOTICE
        start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
        rows = (
            PointsLot.objects.filter(
                account__program=program,
                status=PointsLot.Status.AVAILABLE,
                remaining__gt=0,
                expires_at__gte=start,
                expires_at__lt=start + dt.timedelta(days=1),
            )
            .values(member_no=F("account__member__member_no"))
            .annotate(points=Sum("remaining"))
        )
        for row in rows:
            data = {"member_no": row["member_no"], "points": row["points"], "expires_on": day.isoformat()}
            event_emit(program=program, type="points.expiring", data=data, key=f"{row['member_no']}:{day}")
            counts["points.expiring"] = counts.get("points.expiring", 0) + 1
    if "tier.changed" in subscribed:
        moves = TierChange.objects.filter(
            account__program=program,
            reason__in=[TierChange.Reason.DOWNGRADE, TierChange.Reason.RETAINED],
            created_at__gte=timezone.now() - dt.timedelta(days=2),
        ).select_related("account__member", "from_tier", "to_tier")
        for change in moves:
            data = {
                "member_no": change.account.member.member_no,
                "from": change.from_tier.code if change.from_tier else None,
                "to": change.to_tier.code,
                "reason": change.reason,
                "at": change.created_at,
            }
            event_emit(program=program, type="tier.changed", data=data, key=f"tier:{change.pk}")
            counts["tier.changed"] = counts.get("tier.changed", 0) + 1
    return counts
