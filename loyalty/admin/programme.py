"""Programmes, tiers and earning rules in the admin (with "what would this earn?")."""

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.admin import ReadOnlyInline

from .. import admin_forms, program_config, rules
from ..models import (
    ChannelProgram,
    EarningRule,
    Program,
    Tier,
)


class TierInline(ReadOnlyInline):
    """The tier ladder at a glance, read-only so that it fits the page; each tier is edited (and added) on its own
    page, with all its settings and their checks."""

    model = Tier
    show_change_link = True
    verbose_name_plural = gettext_lazy("tiers (edit each on its page; add one under Tiers)")
    fields = [
        "rank",
        "code",
        "name",
        "upgrade_threshold",
        "retention_threshold",
        "points_multiplier",
        "discount_rate",
        "birthday_points",
    ]
    readonly_fields = fields


class ChannelProgramInline(admin.TabularInline):
    model = ChannelProgram
    extra = 0
    autocomplete_fields = ["channel"]
    verbose_name_plural = gettext_lazy("channels of this programme")


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "currency",
        "time_zone",
        "points_per_unit",
        "pending_days",
        "expiry_policy",
        "is_active",
        "account_count",
    ]
    inlines = [TierInline, ChannelProgramInline]
    fieldsets = [
        (None, {"fields": ["code", "name", "is_active"]}),
        (gettext_lazy("Earning"), {"fields": ["currency", "points_per_unit", "rounding", "time_zone"]}),
        (gettext_lazy("Pending and expiry"), {"fields": ["pending_days", "expiry_policy", "expiry_days"]}),
        (gettext_lazy("Birthday"), {"fields": ["birthday_on"]}),
        (gettext_lazy("Staff"), {"fields": ["staff_adjustment_limit"]}),
        (
            gettext_lazy("Limits on partners' data"),
            {"fields": ["event_max_age_days", "order_max_age_days", "future_skew_minutes", "max_order_amount"]},
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(account_count=Count("accounts"))

    @admin.display(description=gettext_lazy("points accounts"), ordering="account_count")
    def account_count(self, obj):
        return obj.account_count


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = [
            "program",
            "code",
            "name",
            "name_en",
            "rank",
            "metric",
            "window",
            "window_days",
            "upgrade_threshold",
            "retention_threshold",
            "downgrade",
            "points_multiplier",
            "discount_rate",
            "free_shipping",
            "birthday_points",
            "benefits",
        ]

    def clean(self):
        cleaned = super().clean()
        upgrade, retention = cleaned.get("upgrade_threshold"), cleaned.get("retention_threshold")
        if upgrade is not None and retention is not None and retention > upgrade:
            self.add_error("retention_threshold", _("The retention threshold cannot be above the upgrade threshold."))
        return cleaned


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    form = TierForm
    list_display = [
        "program",
        "rank",
        "code",
        "name",
        "upgrade_threshold",
        "retention_threshold",
        "points_multiplier",
        "discount_rate",
        "free_shipping",
        "birthday_points",
    ]
    list_filter = ["program"]
    ordering = ["program", "rank"]


class RuleForm(forms.ModelForm):
    weekdays = admin_forms.weekdays_field()
    channel_codes = admin_forms.channels_field()
    stores = admin_forms.stores_field()
    categories = admin_forms.categories_field()
    skus = admin_forms.skus_field()

    class Meta:
        model = EarningRule
        fields = [
            "program",
            "name",
            "kind",
            "is_active",
            "priority",
            "valid_from",
            "valid_until",
            "weekdays",
            "channel_codes",
            "stores",
            "categories",
            "skus",
            "min_order_amount",
            "points",
            "multiplier",
            "combine",
            "welcome_points",
            "event_type",
            "event_name",
            "limit_count",
            "limit_period",
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("limit_count") and not cleaned.get("limit_period"):
            self.add_error("limit_period", _("A limit needs a period."))
        if cleaned.get("kind") == EarningRule.Kind.EVENT and not cleaned.get("event_type"):
            self.add_error("event_type", _("An event rule needs an event type."))
        return cleaned


class PreviewForm(forms.Form):
    program = forms.ModelChoiceField(Program.objects.all(), label=gettext_lazy("programme"))
    tier = forms.ModelChoiceField(Tier.objects.all(), label=gettext_lazy("tier"))
    amount = forms.DecimalField(
        label=gettext_lazy("amount"), max_digits=14, decimal_places=2, min_value=Decimal("0.01")
    )
    channel_code = forms.CharField(label=gettext_lazy("channel"), required=False)
    store = forms.CharField(label=gettext_lazy("store"), required=False)
    day = forms.DateField(label=gettext_lazy("date"), initial=timezone.localdate)
    lines = forms.CharField(
        label=gettext_lazy("lines"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=gettext_lazy("One line per row: sku,category,amount"),
    )

    def clean_lines(self):
        parsed = []
        for number, text in enumerate((self.cleaned_data.get("lines") or "").splitlines(), start=1):
            if not text.strip():
                continue
            parts = [part.strip() for part in text.split(",")]
            try:
                sku, category, amount = parts
                parsed.append(rules.Line(sku=sku, category=category, amount=Decimal(amount)))
            except (ValueError, InvalidOperation):
                raise forms.ValidationError(
                    _("Line %(number)d: write sku,category,amount such as A1,skincare,99.00.") % {"number": number}
                ) from None
        return parsed

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("tier") and cleaned.get("program") and cleaned["tier"].program_id != cleaned["program"].pk:
            self.add_error("tier", _("This tier belongs to another programme."))
        return cleaned


@admin.register(EarningRule)
class EarningRuleAdmin(admin.ModelAdmin):
    form = RuleForm
    list_display = [
        "name",
        "program",
        "kind",
        "is_active",
        "valid_from",
        "valid_until",
        "points",
        "multiplier",
        "combine",
        "limit_count",
        "limit_period",
    ]
    list_filter = ["program", "kind", "is_active"]
    search_fields = ["name", "event_type", "event_name"]
    change_list_template = "admin/loyalty/earningrule/change_list.html"
    fieldsets = [
        (None, {"fields": ["program", "name", "kind", "is_active", "priority"]}),
        (
            gettext_lazy("When and where"),
            {
                "fields": [
                    "valid_from",
                    "valid_until",
                    "weekdays",
                    "channel_codes",
                    "stores",
                    "categories",
                    "skus",
                    "min_order_amount",
                ]
            },
        ),
        (gettext_lazy("What it gives"), {"fields": ["points", "multiplier", "combine", "welcome_points"]}),
        (gettext_lazy("Events"), {"fields": ["event_type", "event_name"]}),
        (gettext_lazy("Limits per member"), {"fields": ["limit_count", "limit_period"]}),
    ]

    def get_urls(self):
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="loyalty_earningrule_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        # A tool for whoever writes the rules.
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = PreviewForm(request.POST or None)
        earning = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            earning = rules.earning_compute(
                program=data["program"],
                tier=data["tier"],
                rules=[
                    rule for rule in program_config.program_config(data["program"])["rules"] if rule.kind == "order"
                ],
                amount=data["amount"],
                lines=data["lines"],
                channel_code=data["channel_code"],
                store=data["store"],
                day=data["day"],
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("What would this earn?"),
            "form": form,
            "earning": earning,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/earningrule/preview.html", context)
