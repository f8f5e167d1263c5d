"""Who the customer is: channels and their API keys, members, identities, tags, consents, orders, refunds, events,
merges and import jobs. One module over 500 lines on purpose: Django expects an app's models in one place, and
these tables are one schema that every other module reads.
"""

import datetime as dt
import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The scopes a partner's API key may carry (API.md: Authentication and scopes).
API_SCOPES = (
    "members:read",
    "members:write",
    "orders:write",
    "events:write",
    "points:read",
    "points:write",
    "rewards:read",
    "rewards:redeem",
    "coupons:write",
    "campaigns:read",
    "campaigns:write",
    "webhooks:write",
    "analytics:read",
)


def api_key_hash(raw_key: str) -> str:
    # Keys are 256-bit random, so a fast unsalted hash is safe and lets a request find its key in one indexed query.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class Channel(models.Model):
    """A partner system or sales channel: a store's POS, a Tmall shop, the mini-program, the web shop..."""

    class Kind(models.TextChoices):
        STORE = "store", _("Store")
        ONLINE_SHOP = "online_shop", _("Online shop")
        MARKETPLACE = "marketplace", _("Marketplace (Tmall, JD, Douyin)")
        MINI_PROGRAM = "mini_program", _("Mini-program")
        WECHAT = "wechat", _("WeChat official account / WeCom")
        WEB = "web", _("Website")
        POS = "pos", _("Point of sale")
        PARTNER = "partner", _("Partner system")

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.PARTNER)
    is_active = models.BooleanField(_("active"), default=True)
    throttle_rate = models.CharField(
        _("API rate limit"),
        max_length=20,
        blank=True,
        help_text=_("Requests per key, such as 50/s or 1000/min. Empty: the default rate."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self):
        return f"{self.name} ({self.code})"


class ApiKey(models.Model):
    """A partner's credential. Only the SHA-256 of the key is stored; the key itself is shown once."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="api_keys", verbose_name=_("channel"))
    name = models.CharField(_("name"), max_length=200, blank=True)
    prefix = models.CharField(_("key prefix"), max_length=16, editable=False, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False, verbose_name=_("key hash"))
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")

    def __str__(self):
        return f"{self.prefix}… ({self.channel.code})"

    @property
    def is_active(self):
        return self.revoked_at is None


class MemberNumberCounter(models.Model):
    """Hands out member numbers on databases without sequences (SQLite); PostgreSQL uses a real sequence."""

    last_value = models.BigIntegerField(default=0, verbose_name=_("last value"))

    class Meta:
        verbose_name = _("member number counter")

    def __str__(self):
        return str(self.last_value)


BIRTHDAY_EARLIEST = dt.date(1900, 1, 1)
CONTACT_REQUIRED = _("Give at least one of phone, email or external_id.")


def validate_birthday(value: dt.date) -> None:
    """A birthday is a day from 1900 to today (in the programme's time zone): the one rule for the API, the admin,
    the import and the services (the lower bound is also a database constraint)."""
    if value > timezone.localdate():
        raise ValidationError(_("A birthday cannot be in the future."), code="birthday_in_future")
    if value < BIRTHDAY_EARLIEST:
        raise ValidationError(_("A birthday before 1900 is not plausible."), code="birthday_not_plausible")


def validate_contact(*, phone=None, email=None, external_id=None) -> None:
    """A new member needs a way to be found again: a phone, an e-mail or a channel's id for them. Not a database
    constraint: a member known by a channel identity alone has neither, and a merged-away member gives its
    contacts to the member it joined."""
    if not (phone or email or external_id):
        raise ValidationError(CONTACT_REQUIRED, code="contact_required")


class Member(models.Model):
    """One person across every channel and programme."""

    class Gender(models.TextChoices):
        MALE = "male", _("Male")
        FEMALE = "female", _("Female")
        UNKNOWN = "unknown", _("Unknown")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        FROZEN = "frozen", _("Frozen")
        CLOSED = "closed", _("Closed")

    # Unique through Meta.constraints, not unique=True: that would add a second, LIKE-only index on PostgreSQL for
    # each of these columns, paid on every insert and never used (look-ups are exact).
    member_no = models.CharField(_("member number"), max_length=16, editable=False)
    name = models.CharField(_("name"), max_length=100)
    phone = models.CharField(_("phone"), max_length=20, null=True, blank=True)
    email = models.CharField(_("e-mail"), max_length=254, null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, default=Gender.UNKNOWN)
    birthday = models.DateField(_("birthday"), null=True, blank=True, validators=[validate_birthday])
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text=_("ISO 3166 code, such as CN."))
    language = models.CharField(_("language"), max_length=10, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    joined_at = models.DateTimeField(_("joined at"))
    join_channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("join channel")
    )
    referrer = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="referrals",
        verbose_name=_("referrer"),
        db_index=False,  # a partial index below: few members are referred, and imports need not index the NULLs
    )
    # Not indexed: only a merge reads it, and members are never deleted (so PROTECT never looks it up).
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("merged into"),
        db_index=False,
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, editable=False)
    erased_at = models.DateTimeField(
        _("personal data erased at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_("Set when the member's personal data was erased on request or after the retention period."),
    )
    imported_spend = models.DecimalField(
        _("spend before import"),
        max_digits=14,
        decimal_places=2,
        default=0,
        help_text=_("Total spend brought over from the previous system (累计消费)."),
    )
    tags = models.ManyToManyField(
        "Tag", through="MemberTag", related_name="members", blank=True, verbose_name=_("tags")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-joined_at", "-id"]
        verbose_name = _("member")
        verbose_name_plural = _("members")
        permissions = [
            ("view_personal_data", _("Can see members' full phone numbers and e-mail addresses")),
            ("export_member", _("Can export members")),
            ("import_member", _("Can import members")),
            ("export_personal_data", _("Can export a member's personal data")),
            ("erase_member", _("Can erase a member's personal data")),
        ]
        # Few indexes on purpose: imports write 100,000s of members at a time. Unique phone, e-mail and number are
        # indexed by their constraints; status (three values) and the duplicate finder scan anyway.
        constraints = [
            models.UniqueConstraint(fields=["member_no"], name="member_no_unique"),
            models.UniqueConstraint(fields=["phone"], name="member_phone_unique"),
            models.UniqueConstraint(fields=["email"], name="member_email_unique"),
            models.CheckConstraint(
                condition=~models.Q(phone="") & ~models.Q(email=""), name="member_contact_empty_is_null"
            ),
            models.CheckConstraint(
                condition=models.Q(merged_into__isnull=True) | models.Q(status="closed"),
                name="member_merged_is_closed",
            ),
            models.CheckConstraint(
                condition=models.Q(imported_spend__gte=0), name="member_imported_spend_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(birthday__gte=BIRTHDAY_EARLIEST),
                name="member_birthday_plausible",
                violation_error_message=_("A birthday before 1900 is not plausible."),
            ),
        ]
        indexes = [
            models.Index(fields=["referrer"], condition=models.Q(referrer__isnull=False), name="member_referrer_idx")
        ]

    # Not a field: the channel id `member_create` links once the member is saved; it counts as a contact.
    external_id_to_link = ""

    def __str__(self):
        return f"{self.name} ({self.member_no})"

    def clean(self):
        if self._state.adding:
            validate_contact(phone=self.phone, email=self.email, external_id=self.external_id_to_link)

    @property
    def is_active(self):
        return self.status == self.Status.ACTIVE


class MemberNote(models.Model):
    """A note by staff on a member (a call, a complaint, a promise made), shown on the member's page."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="notes", verbose_name=_("member"))
    text = models.TextField(_("note"), max_length=2000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("written by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("staff note")
        verbose_name_plural = _("staff notes")

    def __str__(self):
        return self.text[:50]


class ChannelIdentity(models.Model):
    """A member's id in one channel: a Tmall buyer id, a WeChat openid or unionid, a POS card number."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="identities", verbose_name=_("member"))
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="identities", verbose_name=_("channel"))
    external_id = models.CharField(_("id in the channel"), max_length=128)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["channel", "external_id"]
        verbose_name = _("channel identity")
        verbose_name_plural = _("channel identities")
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="identity_unique_per_channel"),
        ]

    def __str__(self):
        return f"{self.channel.code}:{self.external_id}"


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=64, unique=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self):
        return self.name


class MemberTag(models.Model):
    class Source(models.TextChoices):
        STAFF = "staff", _("Staff")
        IMPORT = "import", _("Import")
        API = "api", _("API")
        RULE = "rule", _("Rule")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="member_tags", verbose_name=_("member"))
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="member_tags", verbose_name=_("tag"))
    source = models.CharField(_("source"), max_length=10, choices=Source.choices, default=Source.STAFF)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["tag__name"]
        verbose_name = _("member tag")
        verbose_name_plural = _("member tags")
        constraints = [models.UniqueConstraint(fields=["member", "tag"], name="member_tag_unique")]

    def __str__(self):
        return self.tag.name


class Consent(models.Model):
    """The current consent of a member for one message channel; what campaigns obey."""

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")
        WECHAT = "wechat", _("WeChat")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consents", verbose_name=_("member"))
    channel = models.CharField(_("message channel"), max_length=10, choices=Channel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=100, blank=True)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        ordering = ["channel"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        constraints = [models.UniqueConstraint(fields=["member", "channel"], name="consent_unique_per_channel")]

    def __str__(self):
        return f"{self.channel}: {'yes' if self.granted else 'no'}"


class ConsentChange(models.Model):
    """Every grant and withdrawal, kept for ever (proof of consent)."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="consent_changes", verbose_name=_("member")
    )
    channel = models.CharField(_("message channel"), max_length=10, choices=Consent.Channel.choices)
    granted = models.BooleanField(_("granted"))
    source = models.CharField(_("source"), max_length=100, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("changed by"),
    )
    created_at = models.DateTimeField(_("recorded at"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("consent change")
        verbose_name_plural = _("consent history")

    def __str__(self):
        return f"{self.channel}: {'granted' if self.granted else 'withdrawn'}"


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed", _("Placed")
        PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
        REFUNDED = "refunded", _("Refunded")

    # Every order is written on the earning hot path, so only the indexes reads use: (channel, order_id) for the
    # partner's id, which also serves look-ups by channel; (member, occurred_at) for a member's orders.
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="orders", verbose_name=_("channel"), db_index=False
    )
    order_id = models.CharField(_("order id"), max_length=64)
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="orders", verbose_name=_("member"), db_index=False
    )
    store = models.CharField(_("store"), max_length=100, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    refunded_amount = models.DecimalField(_("refunded"), max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    occurred_at = models.DateTimeField(_("occurred at"))
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.PLACED)
    fingerprint = models.CharField(max_length=64, blank=True, editable=False, verbose_name=_("payload fingerprint"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        permissions = [("import_order", _("Can import order history"))]
        indexes = [
            # With the amounts included, a member's spend over a tier window (summed on every order) is read from
            # the index alone, however many orders the member has.
            models.Index(
                fields=["member", "occurred_at"],
                include=["channel", "amount", "refunded_amount"],
                name="order_member_spend_idx",
            )
        ]
        constraints = [
            models.UniqueConstraint(fields=["channel", "order_id"], name="order_unique_per_channel"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="order_amount_not_negative"),
            models.CheckConstraint(
                condition=models.Q(refunded_amount__gte=0) & models.Q(refunded_amount__lte=models.F("amount")),
                name="order_refunds_within_amount",
            ),
        ]

    def __str__(self):
        return self.order_id


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", verbose_name=_("order"))
    sku = models.CharField(_("SKU"), max_length=64)
    name = models.CharField(_("name"), max_length=200, blank=True)
    category = models.CharField(_("category"), max_length=100, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)

    class Meta:
        ordering = ["id"]
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")

    def __str__(self):
        return f"{self.sku} x{self.quantity}"


class Refund(models.Model):
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("channel"))
    refund_id = models.CharField(_("refund id"), max_length=64)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("order"))
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    lines = models.JSONField(_("lines"), default=list, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, editable=False, verbose_name=_("payload fingerprint"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.UniqueConstraint(fields=["channel", "refund_id"], name="refund_unique_per_channel"),
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="refund_amount_positive"),
        ]

    def __str__(self):
        return self.refund_id


class Event(models.Model):
    """A behaviour fact: a check-in, a review, a share, a completed profile, or a brand's custom event."""

    class Type(models.TextChoices):
        CHECK_IN = "check_in", _("Check-in")
        REVIEW = "review", _("Review")
        SHARE = "share", _("Share")
        PROFILE_COMPLETED = "profile_completed", _("Profile completed")
        CUSTOM = "custom", _("Custom")

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="events", verbose_name=_("channel"))
    event_id = models.CharField(_("event id"), max_length=64)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="events", verbose_name=_("member"))
    type = models.CharField(_("type"), max_length=20, choices=Type.choices)
    name = models.CharField(_("name"), max_length=64, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True, editable=False, verbose_name=_("payload fingerprint"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")
        indexes = [models.Index(fields=["member", "type", "occurred_at"], name="event_member_type_time_idx")]
        constraints = [models.UniqueConstraint(fields=["channel", "event_id"], name="event_unique_per_channel")]

    def __str__(self):
        return f"{self.type} {self.event_id}"


class MemberMerge(models.Model):
    """Who merged which duplicate into which member, and what moved."""

    kept = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="merges_kept", verbose_name=_("kept"))
    dropped = models.OneToOneField(
        Member, on_delete=models.PROTECT, related_name="merge_dropped", verbose_name=_("merged away")
    )
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("merged by"),
    )
    moved = models.JSONField(_("what moved"), default=dict)
    # The merged-away member's contacts (freed for uniqueness), so that a look-up by them still finds the person.
    dropped_phone = models.CharField(_("merged-away phone"), max_length=20, null=True, blank=True, db_index=True)
    dropped_email = models.EmailField(_("merged-away e-mail"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("merged at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("member merge")
        verbose_name_plural = _("member merges")

    def __str__(self):
        return f"{self.dropped_id} -> {self.kept_id}"


class MemberHistory(models.Model):
    """An attributed change to a member: who (staff user or channel), when, what."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="history", verbose_name=_("member"))
    action = models.CharField(_("action"), max_length=50)
    changes = models.JSONField(_("changes"), default=dict, blank=True)
    # Partial indexes (below) for the rare rows with a staff user or a channel: an import writes 100,000s of rows
    # with neither, and deleting a user or channel still finds its rows by index.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("staff"),
        db_index=False,
    )
    channel = models.ForeignKey(
        Channel,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("channel"),
        db_index=False,
    )
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("member history")
        verbose_name_plural = _("member history")
        indexes = [
            models.Index(fields=["actor"], condition=models.Q(actor__isnull=False), name="history_actor_idx"),
            models.Index(fields=["channel"], condition=models.Q(channel__isnull=False), name="history_channel_idx"),
        ]

    def __str__(self):
        return self.action


class ImportJob(models.Model):
    """An import run from the admin (members, or order history): the file, the options, progress, and the result
    kept for later."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("Members")
        ORDERS = "orders", _("Order history")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.MEMBERS)
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    dry_run = models.BooleanField(_("preview only"), default=True)
    skip_errors = models.BooleanField(_("import the good rows, skip faulty ones"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(_("progress (percent)"), default=0)
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    preview = models.JSONField(_("rows"), default=list, blank=True)
    message = models.TextField(_("message"), blank=True)
    error_file = models.FileField(_("rejected rows"), upload_to="imports/%Y/%m/", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")

    def __str__(self):
        return self.original_name
