"""Campaigns: who the brand reaches (segments) and how (campaigns, journeys, messages)."""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.models import Program
from members.models import Member


class Segment(models.Model):
    """A set of a programme's members: a rule evaluated as one query (dynamic), or a list loaded from a file (static).

    `count` and `counted_at` remember the last count; the detail page and the API's detail recount.
    """

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", _("Rule (always up to date)")
        STATIC = "static", _("List (loaded from a file)")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="segments", verbose_name=_("programme"))
    code = models.SlugField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    rule = models.JSONField(_("rule"), null=True, blank=True)
    count = models.PositiveIntegerField(_("members"), null=True, blank=True, editable=False)
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["program", "code"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="segment_code_unique_per_program"),
            models.CheckConstraint(condition=Q(kind="static") | Q(rule__isnull=False), name="segment_dynamic_has_rule"),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"


class SegmentMember(models.Model):
    """A member listed in a static segment."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="listed", verbose_name=_("segment"))
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+", verbose_name=_("member"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["segment", "member"]
        verbose_name = _("member of a list segment")
        verbose_name_plural = _("members of list segments")
        constraints = [models.UniqueConstraint(fields=["segment", "member"], name="segment_member_unique")]

    def __str__(self):
        return f"{self.segment_id}:{self.member_id}"


class ProgramMessaging(models.Model):
    """A programme's rules for marketing messages: the frequency cap and the quiet hours (API.md)."""

    program = models.OneToOneField(
        Program, on_delete=models.CASCADE, related_name="messaging", verbose_name=_("programme")
    )
    frequency_cap = models.PositiveIntegerField(
        _("marketing messages per member per 7 days"),
        default=3,
        help_text=_("Campaigns and journeys together; a message over the cap is skipped."),
    )
    quiet_from = models.TimeField(_("quiet hours from"), default=dt.time(21, 0))
    quiet_until = models.TimeField(_("quiet hours until"), default=dt.time(9, 0))

    class Meta:
        ordering = ["program"]
        verbose_name = _("messaging settings")
        verbose_name_plural = _("messaging settings")

    def __str__(self):
        return str(self.program)


class Campaign(models.Model):
    """A message to a segment, once or at a set time, with variants, a held-out control group and an offer."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")
        WECHAT = "wechat", _("WeChat")
        APP = "app", _("App")

    program = models.ForeignKey(
        Program, on_delete=models.CASCADE, related_name="campaigns", verbose_name=_("programme")
    )
    code = models.SlugField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    segment = models.ForeignKey(Segment, on_delete=models.PROTECT, related_name="campaigns", verbose_name=_("segment"))
    channel = models.CharField(_("message channel"), max_length=10, choices=Channel.choices)
    control_share = models.DecimalField(
        _("control group share"),
        max_digits=4,
        decimal_places=3,
        default=0,
        help_text=_(
            "Share of the audience held out and never messaged (0 to 0.5), to measure what the campaign earned."
        ),
    )
    conversion_days = models.PositiveIntegerField(_("conversion window (days)"), default=14)
    offer_coupon_template = models.ForeignKey(
        "loyalty.CouponTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("coupon offered"),
    )
    offer_points = models.PositiveIntegerField(_("bonus points offered"), null=True, blank=True)
    scheduled_at = models.DateTimeField(_("scheduled at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        permissions = [("send_campaign", _("Can send or cancel a campaign"))]
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="campaign_code_unique_per_program"),
            models.CheckConstraint(
                condition=Q(control_share__gte=0) & Q(control_share__lte="0.5"), name="campaign_control_share_range"
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.code})"


class Variant(models.Model):
    """One version of a campaign's message, sent to its share of the members not held out."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="variants", verbose_name=_("campaign")
    )
    code = models.SlugField(_("code"), max_length=32)
    share = models.DecimalField(_("share"), max_digits=4, decimal_places=3, default=1)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("body"))

    class Meta:
        ordering = ["campaign", "code"]
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        constraints = [
            models.UniqueConstraint(fields=["campaign", "code"], name="variant_code_unique"),
            models.CheckConstraint(condition=Q(share__gt=0) & Q(share__lte=1), name="variant_share_range"),
        ]

    def __str__(self):
        return self.code


class Recipient(models.Model):
    """A member of a campaign's audience, frozen when it was sent: in the control group or in one variant."""

    CONTROL = "control"

    # Indexed by the unique (campaign, member): one index less to write for each member frozen.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="recipients", db_index=False, verbose_name=_("campaign")
    )
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="+", verbose_name=_("member"))
    group = models.CharField(_("group"), max_length=32)

    class Meta:
        ordering = ["campaign", "id"]
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")
        constraints = [models.UniqueConstraint(fields=["campaign", "member"], name="recipient_once_per_campaign")]

    def __str__(self):
        return f"{self.campaign_id}:{self.member_id}"


class Message(models.Model):
    """One marketing message to one member, from a campaign or a journey step: queued, then sent, skipped (with the
    reason) or failed after the backend's retries. A campaign messages a member at most once (a constraint)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Skipped")
        FAILED = "failed", _("Failed")

    class Reason(models.TextChoices):
        NO_CONSENT = "no_consent", _("No consent (or no address) for this channel")
        FREQUENCY_CAP = "frequency_cap", _("Over the frequency cap")
        CANCELLED = "cancelled", _("Campaign cancelled")
        NOT_ACTIVE = "member_not_active", _("Member frozen or closed")
        FAILED = "failed", _("The provider refused it")

    # The other foreign keys are indexed by the composite indexes and constraints below (the campaign by
    # message_campaign_status_idx, a journey entry by its unique step, a coupon by a partial index): an audience of
    # 1,000,000 writes four index entries per queued message, not seven.
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="messages", verbose_name=_("member"))
    campaign = models.ForeignKey(
        Campaign,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("campaign"),
        db_index=False,
    )
    journey_entry = models.ForeignKey(
        "JourneyEntry",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("journey"),
        db_index=False,
    )
    journey_step = models.PositiveSmallIntegerField(_("journey step"), null=True, blank=True)
    variant = models.CharField(_("variant"), max_length=32, blank=True)
    channel = models.CharField(_("message channel"), max_length=10, choices=Campaign.Channel.choices)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(_("reason"), max_length=20, choices=Reason.choices, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("body"), blank=True)
    coupon = models.ForeignKey(
        "loyalty.Coupon",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("coupon"),
        db_index=False,
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    provider_reference = models.CharField(_("provider reference"), max_length=100, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    not_before = models.DateTimeField(_("not before"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [
            # The frequency cap's look-up (a batch's members' messages sent within 7 days): sent messages only, so
            # that the planner never combines it with a scan of every sent message by status.
            models.Index(fields=["member", "sent_at"], condition=Q(status="sent"), name="message_member_sent_idx"),
            models.Index(fields=["campaign", "status"], name="message_campaign_status_idx"),
            models.Index(fields=["coupon"], condition=Q(coupon__isnull=False), name="message_coupon_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "member"], condition=Q(campaign__isnull=False), name="message_once_per_campaign"
            ),
            models.UniqueConstraint(
                fields=["journey_entry", "journey_step"],
                condition=Q(journey_entry__isnull=False),
                name="message_once_per_journey_step",
            ),
        ]

    def __str__(self):
        return f"{self.channel}:{self.member_id}:{self.status}"


class Journey(models.Model):
    """An automation: a trigger (and optionally a segment the member must match), then steps. A member enters a
    journey once per occurrence of its trigger (one birthday a year, one expiry date, one lapse)."""

    class Trigger(models.TextChoices):
        JOINED = "joined", _("Joined")
        FIRST_ORDER = "first_order", _("First order")
        BIRTHDAY = "birthday", _("Birthday (N days before)")
        POINTS_EXPIRING = "points_expiring", _("Points expiring (N days before, at least P points)")
        TIER_CHANGED = "tier_changed", _("Tier changed")
        NO_ORDER = "no_order", _("No order for N days (win-back)")
        EVENT = "event", _("An event")

    class Direction(models.TextChoices):
        ANY = "any", _("Up or down")
        UP = "up", _("Up")
        DOWN = "down", _("Down")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="journeys", verbose_name=_("programme"))
    code = models.SlugField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    trigger = models.CharField(_("trigger"), max_length=20, choices=Trigger.choices)
    days = models.PositiveIntegerField(
        _("days"), null=True, blank=True, help_text=_("Birthday and expiry: days before; win-back: days without order.")
    )
    min_points = models.PositiveIntegerField(_("at least points"), null=True, blank=True)
    direction = models.CharField(_("direction"), max_length=5, choices=Direction.choices, default=Direction.ANY)
    event_type = models.CharField(_("event type"), max_length=64, blank=True)
    segment = models.ForeignKey(
        Segment,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="journeys",
        verbose_name=_("segment"),
        help_text=_("Optional: the member must also be in this segment when entering."),
    )
    channel = models.CharField(
        _("message channel"), max_length=10, choices=Campaign.Channel.choices, default=Campaign.Channel.SMS
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["program", "code"]
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        constraints = [models.UniqueConstraint(fields=["program", "code"], name="journey_code_unique_per_program")]

    def __str__(self):
        return self.name


class JourneyStep(models.Model):
    class Kind(models.TextChoices):
        MESSAGE = "message", _("Send a message")
        COUPON = "coupon", _("Issue a coupon")
        POINTS = "points", _("Grant points")
        TAG = "tag", _("Add a tag")
        WAIT = "wait", _("Wait N days")

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="steps", verbose_name=_("journey"))
    position = models.PositiveSmallIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(
        _("message"), blank=True, help_text=_("Placeholders: {name} {member_no} {tier} {points_balance} {coupon_code}")
    )
    coupon_template = models.ForeignKey(
        "loyalty.CouponTemplate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("coupon template"),
    )
    points = models.PositiveIntegerField(_("points"), null=True, blank=True)
    tag = models.CharField(_("tag"), max_length=64, blank=True)
    wait_days = models.PositiveIntegerField(_("wait (days)"), null=True, blank=True)

    class Meta:
        ordering = ["journey", "position"]
        verbose_name = _("journey step")
        verbose_name_plural = _("journey steps")
        constraints = [models.UniqueConstraint(fields=["journey", "position"], name="journey_step_position_unique")]

    def __str__(self):
        return f"{self.position}. {self.get_kind_display()}"


class JourneyEntry(models.Model):
    """A member's way through a journey, for one occurrence of its trigger."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("In progress")
        WAITING = "waiting", _("Waiting")
        FINISHED = "finished", _("Finished")

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="entries", verbose_name=_("journey"))
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="journey_entries", verbose_name=_("member")
    )
    occurrence = models.CharField(_("occurrence"), max_length=64)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    next_step = models.PositiveSmallIntegerField(_("next step"), default=0)
    waiting_until = models.DateField(_("waiting until"), null=True, blank=True)
    coupon = models.ForeignKey(
        "loyalty.Coupon", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("coupon")
    )
    entered_on = models.DateField(_("entered on"))
    finished_on = models.DateField(_("finished on"), null=True, blank=True)

    class Meta:
        ordering = ["-entered_on", "-id"]
        verbose_name = _("journey entry")
        verbose_name_plural = _("journey entries")
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "member", "occurrence"], name="journey_entry_once_per_occurrence"
            )
        ]
        indexes = [models.Index(fields=["journey", "status", "next_step"], name="journey_entry_due_idx")]

    def __str__(self):
        return f"{self.journey_id}:{self.member_id}:{self.occurrence}"


class Webhook(models.Model):
    """A partner's subscription: events of the channel's programme POSTed to a URL, signed with a secret."""

    class Event(models.TextChoices):
        MEMBER_CREATED = "member.created", "member.created"
        MEMBER_UPDATED = "member.updated", "member.updated"
        TIER_CHANGED = "tier.changed", "tier.changed"
        POINTS_EXPIRING = "points.expiring", "points.expiring"
        COUPON_ISSUED = "coupon.issued", "coupon.issued"
        REDEMPTION_CREATED = "redemption.created", "redemption.created"
        CAMPAIGN_MESSAGE = "campaign.message", "campaign.message"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="webhooks", verbose_name=_("programme"))
    channel = models.ForeignKey(
        "members.Channel", on_delete=models.CASCADE, related_name="webhooks", verbose_name=_("channel")
    )
    url = models.URLField(_("URL"), max_length=500)
    events = models.JSONField(_("events"), default=list)
    secret = models.CharField(_("signing secret"), max_length=64, editable=False)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("webhook")
        verbose_name_plural = _("webhooks")

    def __str__(self):
        return self.url


class WebhookDelivery(models.Model):
    """One event for one webhook: delivered at least once, retried with backoff for 24 hours, then failed."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("webhook"))
    event_id = models.UUIDField(_("event id"))
    type = models.CharField(_("event"), max_length=40)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveSmallIntegerField(_("last answer"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        ordering = ["-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        constraints = [models.UniqueConstraint(fields=["webhook", "event_id"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx")]

    def __str__(self):
        return f"{self.type} {self.event_id}"
