"""What the brand learns, stored: RFM thresholds per programme, each member's scores, and the fitted CLV models."""

from itertools import pairwise

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

from loyalty.models import Program
from members.models import Member


def _four_numbers(value, *, label: str):
    """Four non-negative numbers, each larger than the one before (recency days go from the score 5 to 2)."""
    if not isinstance(value, list) or len(value) != 4 or not all(isinstance(item, (int, float)) for item in value):
        raise ValidationError(_("%(label)s: give four numbers, such as [30, 90, 180, 365].") % {"label": label})
    if any(item < 0 for item in value):
        raise ValidationError(_("%(label)s: the numbers cannot be negative.") % {"label": label})
    if not all(low < high for low, high in pairwise(value)):
        raise ValidationError(_("%(label)s: each number must be larger than the one before.") % {"label": label})


class RfmThresholds(models.Model):
    """A programme's RFM thresholds, in API.md's form.

    `recency_days` [d5, d4, d3, d2]: days since the last order ≤ d5 scores 5, ≤ d4 scores 4, …, else 1.
    `frequency_orders` [f2, f3, f4, f5] and `monetary_amounts` [m2, m3, m4, m5]: at least f2 orders scores 2, …, at
    least f5 scores 5, else 1. F and M count within `window_days` before the day, or ever when it is empty.
    """

    program = models.OneToOneField(
        Program, on_delete=models.CASCADE, related_name="rfm_thresholds", verbose_name=_("programme")
    )
    recency_days = models.JSONField(
        _("recency (days)"), default=list, help_text=_("[d5, d4, d3, d2], such as [30, 90, 180, 365].")
    )
    frequency_orders = models.JSONField(
        _("frequency (orders)"), default=list, help_text=_("[f2, f3, f4, f5], such as [2, 3, 5, 8].")
    )
    monetary_amounts = models.JSONField(
        _("monetary (amount)"), default=list, help_text=_("[m2, m3, m4, m5], such as [200, 500, 1000, 3000].")
    )
    window_days = models.PositiveIntegerField(
        _("window (days)"),
        null=True,
        blank=True,
        help_text=_("F and M count orders within this many days; empty: ever."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # When the members' stored scores were last computed with these thresholds (empty: not since they were saved);
    # until then the counts are computed on the fly.
    scored_at = models.DateTimeField(_("scores computed at"), null=True, blank=True, editable=False)

    DEFAULTS = {
        "recency_days": [30, 90, 180, 365],
        "frequency_orders": [2, 3, 5, 8],
        "monetary_amounts": [200, 500, 1000, 3000],
        "window_days": 365,
    }

    class Meta:
        ordering = ["program"]
        verbose_name = _("RFM thresholds")
        verbose_name_plural = _("RFM thresholds")

    def __str__(self):
        return str(self.program)

    def save(self, *args, **kwargs):
        self.scored_at = None  # changed thresholds: the stored scores are not theirs until scored again
        super().save(*args, **kwargs)

    def clean(self):
        errors = {}
        for field, label in (
            ("recency_days", _("recency")),
            ("frequency_orders", _("frequency")),
            ("monetary_amounts", _("monetary")),
        ):
            try:
                _four_numbers(getattr(self, field), label=label)
            except ValidationError as error:
                errors[field] = error
        if errors:
            raise ValidationError(errors)


class MemberScore(models.Model):
    """A member's scores in one programme, as of the day the daily job computed them (members with an order)."""

    member = models.ForeignKey(
        Member, on_delete=models.CASCADE, related_name="scores", db_index=False, verbose_name=_("member")
    )
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", verbose_name=_("programme"))
    # RFM
    rfm_as_of = models.DateField(_("RFM as of"), null=True, blank=True)
    recency_days = models.IntegerField(_("days since the last order"), null=True, blank=True)
    frequency = models.IntegerField(_("orders"), null=True, blank=True)
    monetary = models.DecimalField(_("amount"), max_digits=14, decimal_places=2, null=True, blank=True)
    r = models.PositiveSmallIntegerField("R", null=True, blank=True)
    f = models.PositiveSmallIntegerField("F", null=True, blank=True)
    m = models.PositiveSmallIntegerField("M", null=True, blank=True)
    rfm = models.CharField("RFM", max_length=3, blank=True, default="", db_default="")
    # CLV (time unit: weeks)
    clv_as_of = models.DateField(_("CLV as of"), null=True, blank=True)
    x = models.IntegerField(_("repeat order days"), null=True, blank=True)
    t_x = models.FloatField(_("weeks to the last order"), null=True, blank=True)
    T = models.FloatField(_("weeks since the first order"), null=True, blank=True)
    repeat_mean_amount = models.DecimalField(
        _("mean amount of repeat days"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    value_so_far = models.DecimalField(_("spend so far"), max_digits=14, decimal_places=2, null=True, blank=True)
    p_alive = models.FloatField(_("probability alive"), null=True, blank=True)
    expected_purchases = models.FloatField(_("expected purchases (52 weeks)"), null=True, blank=True)
    expected_average_spend = models.DecimalField(
        _("expected average spend"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    clv = models.DecimalField(_("CLV (52 weeks)"), max_digits=14, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["program", "member"]
        verbose_name = _("member score")
        verbose_name_plural = _("member scores")
        constraints = [models.UniqueConstraint(fields=["member", "program"], name="member_score_unique")]
        indexes = [models.Index(fields=["program", "rfm"], name="score_program_rfm_idx")]

    def __str__(self):
        return f"{self.member_id}@{self.program_id}: {self.rfm}"


class ClvFit(models.Model):
    """One fit of the BG/NBD and Gamma-Gamma models for a programme on the orders up to `as_of`."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", verbose_name=_("programme"))
    as_of = models.DateField(_("as of"))
    members = models.PositiveIntegerField(_("members"))
    repeat_members = models.PositiveIntegerField(_("repeat members"))
    r = models.FloatField(null=True, blank=True)
    alpha = models.FloatField(null=True, blank=True)
    a = models.FloatField(null=True, blank=True)
    b = models.FloatField(null=True, blank=True)
    bgnbd_log_likelihood = models.FloatField(_("BG/NBD log-likelihood"), null=True, blank=True)
    bgnbd_converged = models.BooleanField(_("BG/NBD converged"), default=False)
    p = models.FloatField(null=True, blank=True)
    q = models.FloatField(null=True, blank=True)
    v = models.FloatField(null=True, blank=True)
    gamma_gamma_log_likelihood = models.FloatField(_("Gamma-Gamma log-likelihood"), null=True, blank=True)
    gamma_gamma_converged = models.BooleanField(_("Gamma-Gamma converged"), default=False)
    monthly_discount_rate = models.DecimalField(_("monthly discount rate"), max_digits=5, decimal_places=4)
    message = models.CharField(_("message"), max_length=300, blank=True)
    seconds = models.FloatField(_("seconds"), default=0)
    created_at = models.DateTimeField(_("fitted at"), auto_now_add=True)

    class Meta:
        ordering = ["-as_of", "-id"]
        verbose_name = _("CLV model fit")
        verbose_name_plural = _("CLV model fits")
        indexes = [models.Index(fields=["program", "-as_of", "-id"], name="clvfit_latest_idx")]

    def __str__(self):
        return f"{self.program_id} {self.as_of}"


class KpiSnapshot(models.Model):
    """An analytics answer (the KPIs, the monthly series, the cohorts) for one programme and window of whole days,
    kept by the nightly job (analytics.snapshots), so that the usual windows over years of orders answer at once;
    other windows and filtered views are computed live."""

    class Kind(models.TextChoices):
        KPIS = "kpis", _("Key figures")
        MONTHLY = "monthly", _("By month")
        STOCK = "stock", _("Members and points liability by month")
        COHORTS = "cohorts", _("Retention by month of first order")
        JOIN_COHORTS = "join_cohorts", _("Buying by month of joining")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", verbose_name=_("programme"))
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.KPIS)
    date_from = models.DateField(_("from"))
    date_to = models.DateField(_("to"))
    figures = models.JSONField(_("figures"), encoder=DjangoJSONEncoder)
    taken_at = models.DateTimeField(_("taken at"))
    seconds = models.FloatField(_("seconds"), default=0)

    class Meta:
        ordering = ["program", "-date_to", "date_from"]
        verbose_name = _("KPI snapshot")
        verbose_name_plural = _("KPI snapshots")
        constraints = [
            models.UniqueConstraint(fields=["program", "kind", "date_from", "date_to"], name="kpi_snapshot_unique")
        ]

    def __str__(self):
        return f"{self.program_id} {self.kind} {self.date_from}..{self.date_to}"


class Dashboard(models.Model):
    """No table: the Analytics section's entry in the admin, and the permission to see it."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        permissions = [("export_dashboard", _("Can export the dashboard's tables"))]
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboard")

    def __str__(self):
        return str(self._meta.verbose_name)
