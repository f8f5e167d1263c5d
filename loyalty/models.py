"""What the programme gives: programs, tiers, earning rules, accounts, the points ledger, and the daily jobs' runs.
One module over 500 lines on purpose: Django expects an app's models in one place, and the ledger's invariants
span these tables (they are stated once, here).

The ledger's rules (see README "Loyalty"):
- `PointsTransaction` rows are append-only. An account's `balance` is the sum of its rows with status `available`.
- `PointsLot` is the state behind the rows: one per earning, with what `remaining` of it can still be spent or
  expire. `pending` on the account is the sum of `remaining` over its pending lots.
- While the balance is not negative it equals the sum of `remaining` over the available lots. A reversal that finds
  its points already spent drives the balance negative; the next earnings repay that debt first.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from members.models import Channel, Member

# The highest maximum order amount a programme may set: points (amount x rate x multiplier) then stay far inside a
# 64-bit integer and any sum of accepted amounts inside the qualifying value's column.
MAX_ORDER_AMOUNT_CEILING = Decimal("100000000.00")


class Program(models.Model):
    """A loyalty programme: one per brand or market, with its own currency, rules and time zone."""

    class Rounding(models.TextChoices):
        DOWN = "down", _("Round down")
        HALF_UP = "half_up", _("Round half up")
        UP = "up", _("Round up")

    class ExpiryPolicy(models.TextChoices):
        DAYS_AFTER_AVAILABLE = "days", _("N days after the points became available")
        END_OF_NEXT_YEAR = "end_of_next_year", _("End of the calendar year after earning")
        NEVER = "never", _("Never")

    code = models.SlugField(_("code"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=100)
    currency = models.CharField(_("currency"), max_length=3, default="CNY")
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Shanghai")
    points_per_unit = models.DecimalField(
        _("points per currency unit"), max_digits=8, decimal_places=4, default=Decimal("1")
    )
    rounding = models.CharField(_("rounding"), max_length=10, choices=Rounding.choices, default=Rounding.DOWN)
    pending_days = models.PositiveIntegerField(
        _("pending period (days)"),
        default=0,
        help_text=_("Days before earned points become available, so that returns inside the window reverse cleanly."),
    )
    expiry_policy = models.CharField(
        _("expiry"), max_length=20, choices=ExpiryPolicy.choices, default=ExpiryPolicy.DAYS_AFTER_AVAILABLE
    )
    expiry_days = models.PositiveIntegerField(_("expiry days"), default=365)
    birthday_on = models.CharField(
        _("birthday reward"),
        max_length=10,
        choices=[("month", _("In the birthday month")), ("day", _("On the birthday"))],
        default="month",
        help_text=_("When the tier's birthday points are given (once a year)."),
    )
    point_value = models.DecimalField(
        _("point value"),
        max_digits=10,
        decimal_places=4,
        default=Decimal("0.01"),
        help_text=_("What one point costs the brand in the programme's currency; values the points liability."),
    )
    monthly_discount_rate = models.DecimalField(
        _("monthly discount rate"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.01"),
        help_text=_("Discounts future spend in customer lifetime value (CLV): 0.01 is 1 percent a month."),
    )
    staff_adjustment_limit = models.PositiveIntegerField(
        _("staff adjustment limit (points)"),
        default=1000,
        help_text=_(
            "The most points one adjustment by staff may add or take; staff with the permission to adjust without "
            "limit may go beyond it."
        ),
    )
    # What a partner may send (the API refuses the rest; staff import older history through the order import).
    event_max_age_days = models.PositiveIntegerField(
        _("events accepted up to (days old)"),
        default=90,
        validators=[MinValueValidator(1)],
        help_text=_("An event older than this is refused by the API."),
    )
    order_max_age_days = models.PositiveIntegerField(
        _("orders accepted up to (days old)"),
        default=1095,
        validators=[MinValueValidator(1)],
        help_text=_("An order older than this is refused by the API; import older history instead."),
    )
    future_skew_minutes = models.PositiveIntegerField(
        _("clock skew allowed (minutes)"),
        default=5,
        validators=[MaxValueValidator(24 * 60)],
        help_text=_("How far in the future an order's or event's time may be (partners' clocks differ a little)."),
    )
    max_order_amount = models.DecimalField(
        _("maximum order amount"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("1000000.00"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(MAX_ORDER_AMOUNT_CEILING)],
        help_text=_("An order or a refund above this amount is refused by the API."),
    )
    channels = models.ManyToManyField(
        Channel, through="ChannelProgram", related_name="+", blank=True, verbose_name=_("channels")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("programme")
        verbose_name_plural = _("programmes")
        constraints = [
            models.CheckConstraint(condition=Q(points_per_unit__gt=0), name="program_rate_positive"),
            models.CheckConstraint(condition=Q(point_value__gte=0), name="program_point_value_not_negative"),
            models.CheckConstraint(
                condition=Q(monthly_discount_rate__gte=0) & Q(monthly_discount_rate__lt=1),
                name="program_discount_rate_in_range",
            ),
            models.CheckConstraint(
                condition=Q(max_order_amount__gt=0) & Q(max_order_amount__lte=MAX_ORDER_AMOUNT_CEILING),
                name="program_max_order_amount_in_range",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.currency})"


class ChannelProgram(models.Model):
    """Each channel belongs to one programme; the API answers for the calling channel's programme."""

    channel = models.OneToOneField(
        Channel, on_delete=models.CASCADE, related_name="program_link", verbose_name=_("channel")
    )
    program = models.ForeignKey(
        Program, on_delete=models.PROTECT, related_name="channel_links", verbose_name=_("programme")
    )

    class Meta:
        ordering = ["channel"]
        verbose_name = _("channel of a programme")
        verbose_name_plural = _("channels of programmes")

    def __str__(self):
        return f"{self.channel_id} -> {self.program_id}"


class Tier(models.Model):
    class Metric(models.TextChoices):
        SPEND = "spend", _("Spend")
        POINTS = "points", _("Points earned")
        ORDERS = "orders", _("Number of orders")

    class Window(models.TextChoices):
        ROLLING = "rolling", _("Rolling N days")
        CALENDAR_YEAR = "calendar_year", _("Calendar year")

    class Downgrade(models.TextChoices):
        ONE_STEP = "one_step", _("One tier at a time")
        TO_QUALIFYING = "to_qualifying", _("Straight to the tier that qualifies")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="tiers", verbose_name=_("programme"))
    code = models.SlugField(_("code"), max_length=32)
    name = models.CharField(_("name (Chinese)"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=64, blank=True)
    rank = models.PositiveSmallIntegerField(_("rank"), help_text=_("0 is the entry tier."))
    metric = models.CharField(_("qualification metric"), max_length=10, choices=Metric.choices, default=Metric.SPEND)
    window = models.CharField(_("qualification window"), max_length=20, choices=Window.choices, default=Window.ROLLING)
    window_days = models.PositiveIntegerField(_("window (days)"), default=365)
    upgrade_threshold = models.DecimalField(_("upgrade threshold"), max_digits=14, decimal_places=2, default=0)
    retention_threshold = models.DecimalField(
        _("retention threshold"),
        max_digits=14,
        decimal_places=2,
        default=0,
        help_text=_("保级: what keeps the tier at its review; may be lower than the upgrade threshold."),
    )
    downgrade = models.CharField(
        _("downgrade policy"), max_length=20, choices=Downgrade.choices, default=Downgrade.ONE_STEP
    )
    points_multiplier = models.DecimalField(_("points multiplier"), max_digits=5, decimal_places=2, default=1)
    discount_rate = models.DecimalField(
        _("discount rate"),
        max_digits=4,
        decimal_places=3,
        default=1,
        help_text=_("0.95 means 5 percent off; 1 means no discount."),
    )
    free_shipping = models.BooleanField(_("free shipping"), default=False)
    birthday_points = models.PositiveIntegerField(_("birthday points"), default=0)
    benefits = models.JSONField(_("named benefits"), default=list, blank=True, help_text=_("A list of texts to show."))

    class Meta:
        ordering = ["program", "rank"]
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="tier_code_unique_per_program"),
            models.UniqueConstraint(fields=["program", "rank"], name="tier_rank_unique_per_program"),
            models.CheckConstraint(condition=Q(points_multiplier__gte=0), name="tier_multiplier_not_negative"),
            models.CheckConstraint(
                condition=Q(retention_threshold__lte=F("upgrade_threshold")), name="tier_retention_within_upgrade"
            ),
        ]

    def __str__(self):
        return self.name


class Account(models.Model):
    """A member's standing in one programme."""

    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="accounts",
        verbose_name=_("member"),
        db_index=False,  # account_unique_per_program (member first) is the index
    )
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="accounts", verbose_name=_("programme"))
    balance = models.BigIntegerField(_("balance"), default=0)
    pending = models.BigIntegerField(_("pending"), default=0)
    lifetime_earned = models.BigIntegerField(_("lifetime earned"), default=0)
    lifetime_spent = models.BigIntegerField(_("lifetime spent"), default=0)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="accounts", verbose_name=_("tier"))
    tier_since = models.DateTimeField(_("tier since"))
    tier_hold_until = models.DateField(_("tier held until"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("points account")
        verbose_name_plural = _("points accounts")
        permissions = [
            ("adjust_points", _("Can adjust points by hand")),
            ("set_tier", _("Can set a tier by hand")),
            ("adjust_points_without_limit", _("Can adjust points beyond the programme's limit per adjustment")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["member", "program"], name="account_unique_per_program"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="account_pending_not_negative"),
            models.CheckConstraint(condition=Q(lifetime_earned__gte=0), name="account_lifetime_not_negative"),
        ]

    def __str__(self):
        # What an operator recognises: the member and the programme (list pages select_related both).
        return f"{self.member} · {self.program.name}"


class PointsLot(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        AVAILABLE = "available", _("Available")
        EXPIRED = "expired", _("Expired")
        SPENT = "spent", _("Spent or reversed")

    # Indexed by lot_account_expiry_idx (account first), which serves both spending and a merge.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="lots", db_index=False, verbose_name=_("points account")
    )
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    available_at = models.DateTimeField(_("available at"))
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["expires_at", "id"]
        verbose_name = _("points lot")
        verbose_name_plural = _("points lots")
        indexes = [
            models.Index(fields=["account", "expires_at"], name="lot_account_expiry_idx"),
            models.Index(fields=["status", "expires_at"], name="lot_status_expiry_idx", condition=Q(remaining__gt=0)),
            models.Index(fields=["status", "available_at"], name="lot_pending_idx", condition=Q(status="pending")),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="lot_points_positive"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")), name="lot_remaining_within_points"
            ),
        ]

    def __str__(self):
        return f"{self.remaining}/{self.points}"


class PointsTransaction(models.Model):
    """One line of the ledger. Never updated or deleted; a correction is a new row."""

    class Kind(models.TextChoices):
        EARN = "earn", _("Earn")
        REDEEM = "redeem", _("Redeem")
        EXPIRE = "expire", _("Expire")
        REVERSE = "reverse", _("Reverse")
        ADJUST = "adjust", _("Adjust")
        OPENING = "opening", _("Opening balance")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        AVAILABLE = "available", _("Available")

    # Index-light on purpose: every earning writes a row, so only the indexes that reads use are kept
    # (account + newest first, the order, the idempotency key); the other foreign keys are not indexed.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="transactions", db_index=False, verbose_name=_("points account")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    points = models.BigIntegerField(_("points"))
    balance_after = models.BigIntegerField(_("balance after"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.AVAILABLE)
    reference = models.CharField(_("reference"), max_length=100, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    # Unique through Meta.constraints: unique=True would add a LIKE-only index on PostgreSQL, paid on every earning.
    idempotency_key = models.CharField(
        max_length=160, null=True, blank=True, editable=False, verbose_name=_("idempotency key")
    )
    fingerprint = models.CharField(max_length=64, blank=True, editable=False, verbose_name=_("payload fingerprint"))
    channel = models.ForeignKey(
        Channel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("channel"),
    )
    order = models.ForeignKey(
        "members.Order",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="points_transactions",
        verbose_name=_("order"),
    )
    event = models.ForeignKey(
        "members.Event",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        verbose_name=_("event"),
    )
    lot = models.ForeignKey(
        PointsLot,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="transactions",
        db_index=False,
        verbose_name=_("points lot"),
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("staff"),
        db_index=False,
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("points transaction")
        verbose_name_plural = _("points ledger")
        indexes = [models.Index(fields=["account", "-id"], name="txn_account_newest_idx")]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="txn_points_not_zero"),
            models.UniqueConstraint(fields=["idempotency_key"], name="txn_idempotency_key_unique"),
        ]

    def __str__(self):
        return f"{self.kind} {self.points:+d}"


class EarningRule(models.Model):
    """A rule staff configure without code: a bonus on orders, points for an event, the birthday, a referral."""

    class Kind(models.TextChoices):
        ORDER = "order", _("Order bonus")
        EVENT = "event", _("Event")
        REFERRAL = "referral", _("Referral (to the referrer on the first order)")

    class Combine(models.TextChoices):
        STACK = "stack", _("Adds up with other rules")
        BEST = "best", _("Only the best of the 'best' rules applies")

    class Period(models.TextChoices):
        DAY = "day", _("per day")
        WEEK = "week", _("per week")
        MONTH = "month", _("per month")
        YEAR = "year", _("per year")
        EVER = "ever", _("ever")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="rules", verbose_name=_("programme"))
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    is_active = models.BooleanField(_("active"), default=True)
    # When and where the rule applies.
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    weekdays = models.JSONField(
        _("weekdays"), default=list, blank=True, help_text=_("1 = Monday … 7 = Sunday; empty = every day.")
    )
    channel_codes = models.JSONField(_("channels"), default=list, blank=True, help_text=_("Empty = all channels."))
    stores = models.JSONField(_("stores"), default=list, blank=True, help_text=_("Empty = all stores."))
    categories = models.JSONField(_("categories"), default=list, blank=True)
    skus = models.JSONField(_("SKUs"), default=list, blank=True)
    min_order_amount = models.DecimalField(
        _("minimum order amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    # What it gives.
    points = models.PositiveIntegerField(_("fixed points"), default=0)
    multiplier = models.DecimalField(
        _("multiplier"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Times the base earning on the matching amount: 3 on a member day gives 3x in all."),
    )
    combine = models.CharField(_("combination"), max_length=10, choices=Combine.choices, default=Combine.STACK)
    welcome_points = models.PositiveIntegerField(
        _("welcome bonus"), default=0, help_text=_("Referral rules: points to the referred member too.")
    )
    # Events.
    event_type = models.CharField(_("event type"), max_length=20, blank=True)
    event_name = models.CharField(_("custom event name"), max_length=64, blank=True)
    # Limits per member.
    limit_count = models.PositiveIntegerField(_("limit"), null=True, blank=True)
    limit_period = models.CharField(_("limit period"), max_length=10, choices=Period.choices, blank=True)
    priority = models.PositiveIntegerField(_("priority"), default=100)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["program", "priority", "id"]
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        indexes = [models.Index(fields=["program", "kind", "is_active"], name="rule_program_kind_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(limit_count__isnull=True) | ~Q(limit_period=""), name="rule_limit_has_period"
            ),
            models.CheckConstraint(
                condition=Q(multiplier__isnull=True) | Q(multiplier__gte=1), name="rule_multiplier_at_least_one"
            ),
        ]

    def __str__(self):
        return self.name


class RuleApplication(models.Model):
    """Each time a rule gave points: what counts against its limits, and the explanation on the phone."""

    rule = models.ForeignKey(
        EarningRule, on_delete=models.PROTECT, related_name="applications", verbose_name=_("earning rule")
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="rule_applications", verbose_name=_("points account")
    )
    transaction = models.ForeignKey(
        PointsTransaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rule_applications",
        verbose_name=_("points transaction"),
    )
    event = models.ForeignKey(
        "members.Event", null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("event")
    )
    points = models.BigIntegerField(_("points"))
    capped = models.BooleanField(_("withheld by a limit"), default=False)
    occurred_at = models.DateTimeField(_("occurred at"))

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("rule application")
        verbose_name_plural = _("rule applications")
        indexes = [
            models.Index(fields=["rule", "account", "occurred_at"], name="ruleapp_limit_idx", condition=Q(capped=False))
        ]

    def __str__(self):
        return f"{self.rule_id}: {self.points}"


class TierChange(models.Model):
    class Reason(models.TextChoices):
        JOINED = "joined", _("Joined")
        UPGRADE = "upgrade", _("Upgrade")
        RETAINED = "retained", _("Retained (保级)")
        DOWNGRADE = "downgrade", _("Downgrade")
        MANUAL = "manual", _("Set by staff")

    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="tier_changes", verbose_name=_("points account")
    )
    from_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("from tier")
    )
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+", verbose_name=_("to tier"))
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    note = models.CharField(_("note"), max_length=200, blank=True)
    # Wide: a sum of many orders over the window (imported history included) must never overflow it.
    metric_value = models.DecimalField(_("qualifying value"), max_digits=20, decimal_places=2, null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, verbose_name=_("staff")
    )
    created_at = models.DateTimeField(_("when"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")

    def __str__(self):
        return f"{self.from_tier_id} -> {self.to_tier_id} ({self.reason})"


class JobRun(models.Model):
    """One run of a daily job for one programme and day: what staff see, and what makes a second run a no-op."""

    class Job(models.TextChoices):
        ACTIVATE = "activate", _("Activate pending points")
        EXPIRE = "expire", _("Expire points")
        TIERS = "tiers", _("Evaluate tiers")
        BIRTHDAY = "birthday", _("Birthday rewards")
        BADGES = "badges", _("Badges for years of membership")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="job_runs", verbose_name=_("programme"))
    job = models.CharField(_("job"), max_length=20, choices=Job.choices)
    as_of = models.DateField(_("as of"))
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    counts = models.JSONField(_("counts"), default=dict, blank=True)

    class Meta:
        ordering = ["-as_of", "-started_at"]
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        permissions = [("run_jobs", _("Can run the daily jobs for today"))]
        constraints = [models.UniqueConstraint(fields=["program", "job", "as_of"], name="job_run_once_per_day")]

    def __str__(self):
        return f"{self.job} {self.as_of}"


class CouponTemplate(models.Model):
    """What a coupon is worth and for how long: amount off or percent off, a minimum spend, fixed dates or N days."""

    class Kind(models.TextChoices):
        AMOUNT_OFF = "amount_off", _("Amount off (满减券)")
        PERCENT_OFF = "percent_off", _("Percent off (折扣券)")

    program = models.ForeignKey(
        Program, on_delete=models.CASCADE, related_name="coupon_templates", verbose_name=_("programme")
    )
    code = models.SlugField(_("code"), max_length=32)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices, default=Kind.AMOUNT_OFF)
    value = models.DecimalField(_("value"), max_digits=14, decimal_places=2)
    min_spend = models.DecimalField(_("minimum spend"), max_digits=14, decimal_places=2, default=0)
    valid_days = models.PositiveIntegerField(_("valid for (days from issue)"), null=True, blank=True)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    stackable = models.BooleanField(_("stackable"), default=False)
    channel_codes = models.JSONField(_("channels"), default=list, blank=True, help_text=_("Empty = all channels."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["program", "code"]
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="coupon_template_code_unique"),
            models.CheckConstraint(condition=Q(value__gt=0), name="coupon_template_value_positive"),
            models.CheckConstraint(
                condition=~Q(kind="percent_off") | Q(value__lte=100), name="coupon_template_percent_within_100"
            ),
        ]

    def __str__(self):
        return self.name


class Reward(models.Model):
    """An item of the points mall (积分商城)."""

    class Kind(models.TextChoices):
        COUPON = "coupon", _("Coupon")
        GIFT = "gift", _("Gift")
        SERVICE = "service", _("Service")

    class Period(models.TextChoices):
        DAY = "day", _("per day")
        MONTH = "month", _("per month")
        EVER = "ever", _("ever")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="rewards", verbose_name=_("programme"))
    code = models.SlugField(_("code"), max_length=32)
    name = models.CharField(_("name (Chinese)"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    description = models.TextField(_("description"), blank=True)
    image = models.CharField(_("image URL"), max_length=300, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    points_cost = models.PositiveIntegerField(_("points cost"))
    cash_price = models.DecimalField(_("cash price"), max_digits=14, decimal_places=2, null=True, blank=True)
    stock = models.PositiveIntegerField(_("stock left"), null=True, blank=True, help_text=_("Empty = unlimited."))
    redeemed_count = models.PositiveIntegerField(_("redeemed"), default=0)
    per_member_limit = models.PositiveIntegerField(_("limit per member"), null=True, blank=True)
    limit_period = models.CharField(_("limit period"), max_length=10, choices=Period.choices, default=Period.EVER)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    min_tier = models.ForeignKey(
        Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("minimum tier")
    )
    coupon_template = models.ForeignKey(
        CouponTemplate,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="rewards",
        verbose_name=_("coupon template"),
    )
    channel_codes = models.JSONField(_("channels"), default=list, blank=True, help_text=_("Empty = all channels."))
    sort_order = models.PositiveIntegerField(_("sort order"), default=100)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["program", "sort_order", "points_cost", "id"]
        verbose_name = _("reward")
        verbose_name_plural = _("rewards (points mall)")
        constraints = [
            models.UniqueConstraint(fields=["program", "code"], name="reward_code_unique_per_program"),
            models.CheckConstraint(
                condition=~Q(kind="coupon") | Q(coupon_template__isnull=False), name="reward_coupon_has_template"
            ),
        ]

    def __str__(self):
        return self.name


class Redemption(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed", _("Completed")
        CANCELLED = "cancelled", _("Cancelled")

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("points account")
    )
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("reward"))
    channel = models.ForeignKey(
        Channel, null=True, blank=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("channel")
    )
    redemption_id = models.CharField(_("redemption id"), max_length=64)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    points_spent = models.BigIntegerField(_("points spent"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.COMPLETED)
    fingerprint = models.CharField(max_length=64, blank=True, editable=False, verbose_name=_("payload fingerprint"))
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=200, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("cancelled by"),
    )
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        indexes = [models.Index(fields=["reward", "account", "created_at"], name="redemption_limit_idx")]
        constraints = [
            models.UniqueConstraint(fields=["channel", "redemption_id"], name="redemption_unique_per_channel"),
            models.CheckConstraint(condition=Q(quantity__gte=1), name="redemption_quantity_positive"),
        ]

    def __str__(self):
        return self.redemption_id


class Coupon(models.Model):
    class Status(models.TextChoices):
        ISSUED = "issued", _("Issued")
        USED = "used", _("Used")
        EXPIRED = "expired", _("Expired")
        VOID = "void", _("Void")

    code = models.CharField(_("coupon code"), max_length=20, unique=True)
    template = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("coupon template")
    )
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("member")
    )
    redemption = models.ForeignKey(
        Redemption,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="coupons",
        verbose_name=_("redemption"),
    )
    batch = models.ForeignKey(
        "CouponBatch",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="coupons",
        verbose_name=_("coupon batch"),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ISSUED)
    issued_at = models.DateTimeField(_("issued at"))
    valid_from = models.DateTimeField(_("valid from"))
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    order_reference = models.CharField(_("order"), max_length=64, blank=True)

    class Meta:
        ordering = ["-issued_at", "-id"]
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        indexes = [models.Index(fields=["member", "status"], name="coupon_member_status_idx")]

    def __str__(self):
        return self.code


class CouponBatch(models.Model):
    """N codes issued at once (to print, or for a partner), exported as CSV."""

    template = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, related_name="batches", verbose_name=_("coupon template")
    )
    count = models.PositiveIntegerField(_("number of codes"))
    note = models.CharField(_("note"), max_length=200, blank=True)
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
        ordering = ["-created_at"]
        verbose_name = _("coupon batch")
        verbose_name_plural = _("coupon batches")
        permissions = [("export_couponbatch", _("Can download a batch's codes"))]

    def __str__(self):
        return f"{self.template} x{self.count}"


class Fulfilment(models.Model):
    """Shipping a redeemed gift."""

    class Status(models.TextChoices):
        TO_SHIP = "to_ship", _("To ship")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        CANCELLED = "cancelled", _("Cancelled")

    redemption = models.OneToOneField(
        Redemption, on_delete=models.PROTECT, related_name="fulfilment", verbose_name=_("redemption")
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.TO_SHIP)
    recipient_name = models.CharField(_("recipient"), max_length=100, blank=True)
    recipient_phone = models.CharField(_("recipient's phone"), max_length=32, blank=True)
    address = models.CharField(_("shipping address"), max_length=300, blank=True)
    carrier = models.CharField(_("carrier"), max_length=50, blank=True)
    tracking_no = models.CharField(_("tracking number"), max_length=64, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("updated by"),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["status", "redemption__created_at"]
        verbose_name = _("gift fulfilment")
        verbose_name_plural = _("gift fulfilment")
        permissions = [("export_fulfilment", _("Can export gifts to ship (names and phones)"))]

    def __str__(self):
        return f"{self.redemption} {self.status}"


class Badge(models.Model):
    """An achievement (成就与勋章) with its rule in data, awarded once per member, optionally with points."""

    class Rule(models.TextChoices):
        FIRST_ORDER = "first_order", _("First order")
        ORDERS = "orders", _("N orders")
        SPEND = "spend", _("Spend over X within a window")
        REVIEWS = "reviews", _("N reviews")
        MEMBER_YEARS = "member_years", _("Member for N years")
        CAMPAIGN = "campaign", _("Took part in a campaign")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="badges", verbose_name=_("programme"))
    code = models.SlugField(_("code"), max_length=32)
    name = models.CharField(_("name (Chinese)"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=64, blank=True)
    description = models.CharField(_("description"), max_length=200, blank=True)
    rule = models.CharField(_("rule"), max_length=20, choices=Rule.choices)
    threshold = models.DecimalField(
        _("threshold"), max_digits=14, decimal_places=2, default=1, help_text=_("N, X or the years, by rule.")
    )
    window_days = models.PositiveIntegerField(_("window (days)"), null=True, blank=True)
    points_bonus = models.PositiveIntegerField(_("points bonus"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["program", "code"]
        verbose_name = _("badge")
        verbose_name_plural = _("badges")
        constraints = [models.UniqueConstraint(fields=["program", "code"], name="badge_code_unique_per_program")]

    def __str__(self):
        return self.name


class BadgeAward(models.Model):
    badge = models.ForeignKey(Badge, on_delete=models.PROTECT, related_name="awards", verbose_name=_("badge"))
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="badges", verbose_name=_("points account")
    )
    awarded_at = models.DateTimeField(_("awarded at"))

    class Meta:
        ordering = ["-awarded_at"]
        verbose_name = _("badge awarded")
        verbose_name_plural = _("badges awarded")
        constraints = [models.UniqueConstraint(fields=["badge", "account"], name="badge_awarded_once")]

    def __str__(self):
        return f"{self.badge_id} -> {self.account_id}"
