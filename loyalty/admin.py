"""The loyalty programme in the admin: programmes, tiers, rules (with "what would this earn?"), accounts with their
ledger, staff adjustments and manual tiers (each behind its own permission), and the daily jobs' runs.
Thin: every change calls a service; domain errors are shown on the form."""

import contextlib
import io
import uuid
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, OuterRef, Q
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members import hooks
from members.admin import MemberAdmin, ReadOnlyAdmin, ReadOnlyInline
from members.errors import DomainError
from members.masking import can_view_personal_data, mask_phone
from members.models import Channel, Member
from members.normalize import normalize_phone
from members.spreadsheets import csv_writer

from . import admin_forms, rewards, rules, selectors, services
from .models import (
    Account,
    Badge,
    BadgeAward,
    ChannelProgram,
    Coupon,
    CouponBatch,
    CouponTemplate,
    EarningRule,
    Fulfilment,
    JobRun,
    PointsLot,
    PointsTransaction,
    Program,
    Redemption,
    Reward,
    Tier,
    TierChange,
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
                rules=[rule for rule in services.program_config(data["program"])["rules"] if rule.kind == "order"],
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


class LedgerInline(ReadOnlyInline):
    model = PointsTransaction
    fields = ["created_at", "kind", "points", "balance_after", "status", "reference", "reason", "actor", "expires_at"]
    readonly_fields = fields
    ordering = ["-id"]
    verbose_name_plural = gettext_lazy("points ledger (latest first)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class LotInline(ReadOnlyInline):
    model = PointsLot
    fields = ["points", "remaining", "status", "available_at", "expires_at", "reference"]
    readonly_fields = fields
    classes = ["collapse"]


class TierChangeInline(ReadOnlyInline):
    model = TierChange
    fields = ["created_at", "from_tier", "to_tier", "reason", "metric_value", "note", "actor"]
    readonly_fields = fields


class AdjustForm(forms.Form):
    points = forms.IntegerField(label=gettext_lazy("points"), help_text=gettext_lazy("Negative to take points."))
    reason = forms.CharField(label=gettext_lazy("reason"), max_length=200)

    def clean_points(self):
        if self.cleaned_data["points"] == 0:
            raise forms.ValidationError(_("An adjustment cannot be 0."))
        return self.cleaned_data["points"]


class SetTierForm(forms.Form):
    tier = forms.ModelChoiceField(Tier.objects.none(), label=gettext_lazy("tier"))
    reason = forms.CharField(label=gettext_lazy("reason"), max_length=200)
    hold_until = forms.DateField(label=gettext_lazy("tier held until"), required=False)

    def __init__(self, *args, program, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = Tier.objects.filter(program=program).order_by("rank")


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = [
        "member",
        "program",
        "tier",
        "balance",
        "pending",
        "lifetime_earned",
        "lifetime_spent",
        "tier_since",
    ]
    list_filter = ["program", "tier"]
    list_select_related = ["member", "program", "tier"]
    search_fields = ["member__member_no"]
    readonly_fields = [
        "member",
        "program",
        "tier",
        "tier_since",
        "tier_hold_until",
        "balance",
        "pending",
        "lifetime_earned",
        "lifetime_spent",
    ]
    fields = readonly_fields
    inlines = [TierChangeInline, LedgerInline, LotInline]
    show_full_result_count = False
    change_form_template = "admin/loyalty/account/change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(member__member_no=term)
        with contextlib.suppress(ValueError):
            condition |= Q(member__phone=normalize_phone(term))
        return queryset.filter(condition), False

    def get_urls(self):
        return [
            path("<int:pk>/adjust/", self.admin_site.admin_view(self.adjust_view), name="loyalty_account_adjust"),
            path("<int:pk>/set-tier/", self.admin_site.admin_view(self.set_tier_view), name="loyalty_account_set_tier"),
            *super().get_urls(),
        ]

    def _form_page(self, request, account, form, title):
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "account": account,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/account/action_form.html", context)

    def adjust_view(self, request, pk):
        if not request.user.has_perm("loyalty.adjust_points"):
            raise PermissionDenied
        account = get_object_or_404(Account.objects.select_related("member", "program"), pk=pk)
        form = AdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.points_adjust(
                    account=account,
                    points=form.cleaned_data["points"],
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, _("Points adjusted."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:loyalty_account_change", args=[pk]))
        return self._form_page(request, account, form, _("Adjust points"))

    def set_tier_view(self, request, pk):
        if not request.user.has_perm("loyalty.set_tier"):
            raise PermissionDenied
        account = get_object_or_404(Account.objects.select_related("member", "program"), pk=pk)
        form = SetTierForm(request.POST or None, program=account.program)
        if request.method == "POST" and form.is_valid():
            try:
                services.tier_set(
                    account=account,
                    tier=form.cleaned_data["tier"],
                    reason=form.cleaned_data["reason"],
                    hold_until=form.cleaned_data["hold_until"],
                    actor=request.user,
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, _("Tier set."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:loyalty_account_change", args=[pk]))
        return self._form_page(request, account, form, _("Set tier"))


@admin.register(PointsTransaction)
class PointsTransactionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "account",
        "kind",
        "points",
        "balance_after",
        "status",
        "reference",
        "reason",
        "actor",
    ]
    list_filter = ["kind", "status", "account__program", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["account__member", "account__program", "actor"]
    search_fields = ["account__member__member_no", "reference"]


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = ["as_of", "program", "job", "started_at", "finished_at", "counts"]
    list_filter = ["program", "job"]


def _member_panels(*, member, request):
    panels = []
    for account in Account.objects.filter(member=member).select_related("program", "tier"):
        latest = list(PointsTransaction.objects.filter(account=account).select_related("actor").order_by("-id")[:5])
        rows = [
            (
                _("tier"),
                _("%(tier)s (since %(date)s)")
                % {"tier": account.tier.name, "date": f"{timezone.localtime(account.tier_since):%Y-%m-%d}"},
            ),
            (
                _("points"),
                _("%(balance)d available, %(pending)d pending, %(earned)d earned in all")
                % {"balance": account.balance, "pending": account.pending, "earned": account.lifetime_earned},
            ),
        ]
        rows += [
            (
                timezone.localtime(row.created_at).strftime("%Y-%m-%d %H:%M"),
                f"{row.get_kind_display()} {row.points:+d} · {row.reason}" + (f" · {row.actor}" if row.actor else ""),
            )
            for row in latest
        ]
        rows.append(
            (
                "",
                format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:loyalty_account_change", args=[account.pk]),
                    _("Points account and ledger"),
                ),
            )
        )
        panels.append({"title": _("%(program)s · tier and points") % {"program": account.program.name}, "rows": rows})
    if request.user.has_perm("loyalty.add_redemption"):
        link = format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:loyalty_redemption_redeem", args=[member.pk]),
            _("Redeem a reward"),
        )
        if panels:
            panels[0]["rows"].append(("", link))
        else:
            panels.append({"title": _("Tier and points"), "rows": [("", link)]})
    panels += _member_rewards_panels(member=member)
    return panels


def _member_rewards_panels(*, member):
    """The member's latest coupons and redemptions, each list linked to its full page."""
    shown = 10
    coupons = list(
        Coupon.objects.filter(member=member).select_related("template").order_by("-issued_at", "-id")[:shown]
    )
    redemptions = list(
        Redemption.objects.filter(account__member=member)
        .select_related("reward", "fulfilment")
        .order_by("-created_at", "-id")[:shown]
    )
    panels = []
    if coupons:
        rows = [
            (
                coupon.code,
                f"{coupon.template.name} · {coupon.get_status_display()}"
                + (
                    f" · {_('valid until')} {timezone.localtime(coupon.valid_until):%Y-%m-%d}"
                    if coupon.valid_until
                    else ""
                ),
            )
            for coupon in coupons
        ]
        url = reverse("admin:loyalty_coupon_changelist") + f"?q={member.member_no}"
        rows.append(("", format_html('<a href="{}">{}</a>', url, _("All coupons of this member"))))
        panels.append({"title": _("Coupons"), "rows": rows})
    if redemptions:
        rows = []
        for redemption in redemptions:
            text = _("%(reward)s × %(quantity)d · %(points)d points · %(status)s") % {
                "reward": redemption.reward.name,
                "quantity": redemption.quantity,
                "points": redemption.points_spent,
                "status": redemption.get_status_display(),
            }
            fulfilment = getattr(redemption, "fulfilment", None)
            if fulfilment is not None:
                text += f" · {fulfilment.get_status_display()}"
            rows.append((timezone.localtime(redemption.created_at).strftime("%Y-%m-%d %H:%M"), text))
        url = reverse("admin:loyalty_redemption_changelist") + f"?q={member.member_no}"
        rows.append(("", format_html('<a href="{}">{}</a>', url, _("All redemptions of this member"))))
        panels.append({"title": _("Redemptions"), "rows": rows})
    return panels


def _dashboard_cards(*, request):
    cards = []
    for program in Program.objects.filter(is_active=True):
        cards.append(
            {
                "title": _("Points liability · %(program)s") % {"program": program.name},
                "value": f"{selectors.points_liability(program=program):,}",
            }
        )
        tiers = ", ".join(f"{row['tier__name']} {row['count']}" for row in selectors.members_by_tier(program=program))
        cards.append({"title": _("Members per tier"), "value": "", "hint": tiers or "-"})
    return cards


hooks.member_panels.register(_member_panels)
hooks.dashboard_cards.register(_dashboard_cards)


# --- the points mall -------------------------------------------------------------------------------------------


class CouponTemplateForm(forms.ModelForm):
    channel_codes = admin_forms.channels_field()

    class Meta:
        model = CouponTemplate
        fields = [
            "program",
            "code",
            "name",
            "kind",
            "value",
            "min_spend",
            "valid_days",
            "valid_from",
            "valid_until",
            "stackable",
            "channel_codes",
        ]


@admin.register(CouponTemplate)
class CouponTemplateAdmin(admin.ModelAdmin):
    form = CouponTemplateForm
    list_display = ["code", "name", "program", "kind", "value", "min_spend", "valid_days", "valid_until", "stackable"]
    list_filter = ["program", "kind"]
    change_form_template = "admin/loyalty/coupontemplate/change_form.html"

    def get_urls(self):
        return [
            path("<int:pk>/batch/", self.admin_site.admin_view(self.batch_view), name="loyalty_coupontemplate_batch"),
            *super().get_urls(),
        ]

    def batch_view(self, request, pk):
        if not self.has_change_permission(request):
            raise PermissionDenied
        template = get_object_or_404(CouponTemplate, pk=pk)
        form = BatchForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            batch = rewards.coupons_issue_batch(
                template=template, count=form.cleaned_data["count"], note=form.cleaned_data["note"], actor=request.user
            )
            self.message_user(request, _("%(count)d codes issued.") % {"count": batch.count}, messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:loyalty_couponbatch_change", args=[batch.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Issue a batch of codes"),
            "form": form,
            "account": None,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/account/action_form.html", context)


class BatchForm(forms.Form):
    count = forms.IntegerField(label=gettext_lazy("number of codes"), min_value=1, max_value=1_000_000)
    note = forms.CharField(label=gettext_lazy("note"), max_length=200, required=False)


@admin.register(CouponBatch)
class CouponBatchAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "template", "count", "note", "created_by", "csv_link"]
    readonly_fields = ["template", "count", "note", "created_by", "created_at", "csv_link"]

    def has_change_permission(self, request, obj=None):
        return obj is not None and super().has_view_permission(request, obj)

    def get_urls(self):
        return [
            path("<int:pk>/codes.csv", self.admin_site.admin_view(self.csv_view), name="loyalty_couponbatch_csv"),
            *super().get_urls(),
        ]

    @admin.display(description=gettext_lazy("codes"))
    def csv_link(self, obj):
        return format_html('<a href="{}">CSV</a>', reverse("admin:loyalty_couponbatch_csv", args=[obj.pk]))

    def csv_view(self, request, pk):
        # The codes are money: downloading them is a permission of its own.
        if not request.user.has_perm("loyalty.export_couponbatch"):
            raise PermissionDenied
        batch = get_object_or_404(CouponBatch.objects.select_related("template"), pk=pk)
        rows = Coupon.objects.filter(batch=batch).order_by("id").values_list("code", "valid_from", "valid_until")

        def lines():
            buffer = io.StringIO()
            writer = csv_writer(buffer)
            writer.writerow(["code", "value", "min_spend", "valid_from", "valid_until"])
            yield "\ufeff" + buffer.getvalue()
            for code, valid_from, valid_until in rows.iterator(chunk_size=5000):
                buffer.seek(0)
                buffer.truncate()
                until = f"{valid_until:%Y-%m-%d}" if valid_until else ""
                writer.writerow([code, batch.template.value, batch.template.min_spend, f"{valid_from:%Y-%m-%d}", until])
                yield buffer.getvalue()

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="coupons-{batch.pk}.csv"'
        return response


class RewardForm(forms.ModelForm):
    channel_codes = admin_forms.channels_field()

    class Meta:
        model = Reward
        fields = [
            "program",
            "code",
            "name",
            "name_en",
            "description",
            "image",
            "kind",
            "points_cost",
            "cash_price",
            "stock",
            "redeemed_count",
            "per_member_limit",
            "limit_period",
            "valid_from",
            "valid_until",
            "min_tier",
            "coupon_template",
            "channel_codes",
            "sort_order",
            "is_active",
        ]

    def clean(self):
        cleaned = super().clean()
        program, min_tier = cleaned.get("program"), cleaned.get("min_tier")
        if program and min_tier and min_tier.program_id != program.pk:
            self.add_error("min_tier", _("This tier belongs to another programme."))
        return cleaned


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
    form = RewardForm
    list_display = [
        "code",
        "name",
        "program",
        "kind",
        "points_cost",
        "cash_price",
        "stock",
        "redeemed_count",
        "per_member_limit",
        "min_tier",
        "is_active",
        "sort_order",
    ]
    list_filter = ["program", "kind", "is_active"]
    list_editable = ["is_active", "sort_order"]
    search_fields = ["code", "name"]


@admin.register(Coupon)
class CouponAdmin(ReadOnlyAdmin):
    list_display = ["code", "template", "member", "status", "issued_at", "valid_until", "used_at", "order_reference"]
    list_filter = ["status", "template"]
    list_select_related = ["template", "member"]
    search_fields = ["=code", "member__member_no"]


class CancelForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("reason"), max_length=200)


class StaffRedeemForm(forms.Form):
    """The counter without a POS: staff redeem a reward for a member, in a channel of the member's programme."""

    channel = forms.ModelChoiceField(
        Channel.objects.none(), label=gettext_lazy("channel"), help_text=gettext_lazy("Where the member redeems.")
    )
    reward = forms.ModelChoiceField(Reward.objects.none(), label=gettext_lazy("reward"))
    quantity = forms.IntegerField(label=gettext_lazy("quantity"), min_value=1, max_value=100, initial=1)
    recipient_name = forms.CharField(label=gettext_lazy("recipient"), max_length=100, required=False)
    recipient_phone = forms.CharField(label=gettext_lazy("recipient's phone"), max_length=32, required=False)
    address = forms.CharField(label=gettext_lazy("shipping address"), max_length=300, required=False)
    redemption_id = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, member, **kwargs):
        super().__init__(*args, **kwargs)
        programs = Program.objects.filter(is_active=True)
        self.fields["channel"].queryset = Channel.objects.filter(
            is_active=True, program_link__program__in=programs
        ).order_by("code")
        self.fields["reward"].queryset = (
            Reward.objects.filter(program__in=programs, is_active=True)
            .select_related("program")
            .order_by("program", "sort_order", "points_cost")
        )
        self.fields["reward"].label_from_instance = lambda reward: (
            _("%(name)s · %(points)d points (%(kind)s)")
            % {
                "name": reward.name,
                "points": reward.points_cost,
                "kind": reward.get_kind_display(),
            }
        )
        self.fields["recipient_name"].help_text = _("Gifts only: who receives it, and where.")
        self.initial.setdefault("recipient_name", member.name)
        self.initial.setdefault("recipient_phone", member.phone or "")
        self.initial.setdefault("redemption_id", f"staff-{uuid.uuid4().hex[:12]}")
        # A store first: this is the counter without a POS.
        channels = self.fields["channel"].queryset
        first_channel = channels.filter(kind__in=[Channel.Kind.STORE, Channel.Kind.POS]).first() or channels.first()
        if first_channel is not None:
            self.initial.setdefault("channel", first_channel.pk)

    def clean(self):
        cleaned = super().clean()
        channel, reward = cleaned.get("channel"), cleaned.get("reward")
        if channel and reward and channel.program_link.program_id != reward.program_id:
            self.add_error("reward", _("This reward belongs to another programme than the channel."))
        if reward and reward.kind == Reward.Kind.GIFT:
            for field in ("recipient_name", "recipient_phone", "address"):
                if not (cleaned.get(field) or "").strip():
                    self.add_error(field, _("A gift is shipped: this field is required."))
        return cleaned


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "redemption_id",
        "account",
        "reward",
        "quantity",
        "points_spent",
        "status",
        "cancelled_by",
    ]
    list_filter = ["status", "reward"]
    list_select_related = ["account__member", "account__program", "reward", "cancelled_by"]
    search_fields = ["redemption_id", "account__member__member_no"]
    actions = ["cancel"]

    @admin.action(
        description=gettext_lazy("Cancel the selected redemptions (points back, stock back)"), permissions=["change"]
    )
    def cancel(self, request, queryset):
        form = CancelForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for redemption in queryset:
                try:
                    rewards.redemption_cancel(
                        redemption=redemption, reason=form.cleaned_data["reason"], actor=request.user
                    )
                    done += 1
                except DomainError as error:
                    self.message_user(request, f"{redemption}: {error.message}", messages.ERROR)
            self.message_user(request, _("%(count)d redemptions cancelled.") % {"count": done}, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Cancel redemptions"),
            "form": form,
            "members": queryset,
            "count": queryset.count(),
            "action": "cancel",
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/members/member/tag_action.html", context)

    def has_change_permission(self, request, obj=None):
        return super(ReadOnlyAdmin, self).has_change_permission(request, obj) and obj is None

    def get_urls(self):
        return [
            path(
                "redeem/<int:member_id>/",
                self.admin_site.admin_view(self.redeem_view),
                name="loyalty_redemption_redeem",
            ),
            *super().get_urls(),
        ]

    def redeem_view(self, request, member_id):
        if not request.user.has_perm("loyalty.add_redemption"):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=member_id)
        form = StaffRedeemForm(request.POST or None, member=member)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            shipping = None
            if data["reward"].kind == Reward.Kind.GIFT:
                shipping = {
                    "name": data["recipient_name"],
                    "phone": data["recipient_phone"],
                    "address": data["address"],
                }
            try:
                redemption, _created = rewards.reward_redeem(
                    channel=data["channel"],
                    member=member,
                    reward_code=data["reward"].code,
                    quantity=data["quantity"],
                    redemption_id=data["redemption_id"],
                    shipping=shipping,
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    _("%(reward)s redeemed for %(member)s: %(points)d points.")
                    % {"reward": redemption.reward.name, "member": member.member_no, "points": redemption.points_spent},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:members_member_change", args=[member.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Redeem a reward for %(member)s") % {"member": member},
            "form": form,
            "member": member,
            "accounts": Account.objects.filter(member=member).select_related("program", "tier"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/redemption/redeem.html", context)


class ShipForm(forms.Form):
    carrier = forms.CharField(label=gettext_lazy("carrier"), max_length=50)
    tracking_no = forms.CharField(label=gettext_lazy("tracking number"), max_length=64)


class ShipSelectedForm(forms.Form):
    """One carrier for the parcels, a tracking number for each."""

    carrier = forms.CharField(label=gettext_lazy("carrier"), max_length=50)

    def __init__(self, *args, fulfilments, **kwargs):
        super().__init__(*args, **kwargs)
        self.fulfilments = fulfilments
        for fulfilment in fulfilments:
            self.fields[f"tracking_{fulfilment.pk}"] = forms.CharField(
                label=_("tracking number"), max_length=64, required=True
            )

    def rows(self):
        return [(fulfilment, self[f"tracking_{fulfilment.pk}"]) for fulfilment in self.fulfilments]


class FulfilmentForm(forms.ModelForm):
    class Meta:
        model = Fulfilment
        fields = ["recipient_name", "recipient_phone", "address"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = True


SHIP_AT_ONCE = 200


@admin.register(Fulfilment)
class FulfilmentAdmin(admin.ModelAdmin):
    """The warehouse's list: gifts to ship with where they go; ship (carrier and tracking numbers), deliver, export.
    The address can be corrected until the gift ships."""

    form = FulfilmentForm
    list_display = ["redemption", "member_no", "gift", "ship_to", "status", "parcel", "ship_link"]
    list_filter = ["status"]
    list_select_related = ["redemption__reward", "redemption__account__member"]
    search_fields = ["redemption__redemption_id", "redemption__account__member__member_no", "tracking_no"]
    actions = ["ship", "mark_delivered", "export_csv"]
    show_full_result_count = False

    @admin.display(description=gettext_lazy("member number"))
    def member_no(self, obj):
        return obj.redemption.account.member.member_no

    @admin.display(description=gettext_lazy("reward"))
    def gift(self, obj):
        return f"{obj.redemption.reward.name} × {obj.redemption.quantity}"

    @admin.display(description=gettext_lazy("ship to"))
    def ship_to(self, obj):
        return format_html("{} {}<br>{}", obj.recipient_name, obj.recipient_phone, obj.address)

    @admin.display(description=gettext_lazy("ship to"))
    def masked_ship_to(self, obj):
        return format_html("{} {}<br>{}", obj.recipient_name, mask_phone(obj.recipient_phone), obj.address)

    @admin.display(description=gettext_lazy("recipient's phone"))
    def masked_recipient_phone(self, obj):
        return mask_phone(obj.recipient_phone)

    def get_list_display(self, request):
        if can_view_personal_data(request.user):
            return self.list_display
        return ["masked_ship_to" if name == "ship_to" else name for name in self.list_display]

    @admin.display(description=gettext_lazy("parcel"))
    def parcel(self, obj):
        return f"{obj.carrier} {obj.tracking_no}".strip() or "-"

    @admin.display(description="")
    def ship_link(self, obj):
        if obj.status != Fulfilment.Status.TO_SHIP:
            return ""
        return format_html('<a href="{}">{}</a>', reverse("admin:loyalty_fulfilment_ship", args=[obj.pk]), _("Ship"))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        readonly = ["redemption", "status", "carrier", "tracking_no", "updated_by", "updated_at"]
        if obj is not None and obj.status != Fulfilment.Status.TO_SHIP:
            readonly += ["recipient_name", "recipient_phone", "address"]
        if not can_view_personal_data(request.user):
            readonly.append("masked_recipient_phone")  # shown in part, kept as it is on save
        return readonly

    def get_fields(self, request, obj=None):
        phone = "recipient_phone" if can_view_personal_data(request.user) else "masked_recipient_phone"
        return ["redemption", "status", "recipient_name", phone, "address", "carrier", "tracking_no"]

    def save_model(self, request, obj, form, change):
        if "address" not in form.cleaned_data:
            return  # shipped: nothing on the page is editable
        rewards.fulfilment_address_update(
            fulfilment=obj,
            recipient_name=form.cleaned_data["recipient_name"],
            recipient_phone=form.cleaned_data.get("recipient_phone", obj.recipient_phone),
            address=form.cleaned_data["address"],
            actor=request.user,
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_urls(self):
        return [
            path("<int:pk>/ship/", self.admin_site.admin_view(self.ship_view), name="loyalty_fulfilment_ship"),
            *super().get_urls(),
        ]

    def ship_view(self, request, pk):
        if not self.has_change_permission(request):
            raise PermissionDenied
        fulfilment = get_object_or_404(Fulfilment, pk=pk)
        form = ShipForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                rewards.fulfilment_update(
                    fulfilment=fulfilment, status=Fulfilment.Status.SHIPPED, actor=request.user, **form.cleaned_data
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, _("The gift is shipped."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:loyalty_fulfilment_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Ship a gift"),
            "form": form,
            "account": None,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/account/action_form.html", context)

    @admin.action(
        description=gettext_lazy("Ship the selected gifts (carrier and tracking numbers)"), permissions=["change"]
    )
    def ship(self, request, queryset):
        waiting = list(
            queryset.filter(status=Fulfilment.Status.TO_SHIP)
            .select_related("redemption__reward", "redemption__account__member")
            .order_by("pk")[: SHIP_AT_ONCE + 1]
        )
        if not waiting:
            self.message_user(request, _("None of the selected gifts is waiting to ship."), messages.WARNING)
            return None
        if len(waiting) > SHIP_AT_ONCE:
            self.message_user(
                request,
                _("Ship at most %(count)d gifts at a time: each needs its tracking number.") % {"count": SHIP_AT_ONCE},
                messages.ERROR,
            )
            return None
        form = ShipSelectedForm(request.POST if "apply" in request.POST else None, fulfilments=waiting)
        if form.is_valid():
            shipped = 0
            for fulfilment in waiting:
                try:
                    rewards.fulfilment_update(
                        fulfilment=fulfilment,
                        status=Fulfilment.Status.SHIPPED,
                        carrier=form.cleaned_data["carrier"],
                        tracking_no=form.cleaned_data[f"tracking_{fulfilment.pk}"],
                        actor=request.user,
                    )
                    shipped += 1
                except DomainError as error:
                    self.message_user(request, f"{fulfilment.redemption}: {error.message}", messages.ERROR)
            self.message_user(request, _("%(count)d gifts shipped.") % {"count": shipped}, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Ship gifts"),
            "form": form,
            "action": "ship",
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/fulfilment/ship.html", context)

    @admin.action(description=gettext_lazy("Mark the selected gifts delivered"), permissions=["change"])
    def mark_delivered(self, request, queryset):
        delivered = 0
        for fulfilment in queryset.filter(status=Fulfilment.Status.SHIPPED).order_by("pk").iterator(chunk_size=500):
            try:
                rewards.fulfilment_update(fulfilment=fulfilment, status=Fulfilment.Status.DELIVERED, actor=request.user)
                delivered += 1
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
        self.message_user(request, _("%(count)d gifts marked delivered.") % {"count": delivered}, messages.SUCCESS)

    def has_export_permission(self, request):
        return request.user.has_perm("loyalty.export_fulfilment")

    @admin.action(description=gettext_lazy("Export the selected gifts for the warehouse (CSV)"), permissions=["export"])
    def export_csv(self, request, queryset):
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow(
            [
                _("redemption id"),
                _("member number"),
                _("recipient"),
                _("recipient's phone"),
                _("shipping address"),
                _("reward"),
                _("quantity"),
                _("status"),
                _("carrier"),
                _("tracking number"),
                _("redeemed at"),
            ]
        )
        show_phone = can_view_personal_data(request.user)
        rows = queryset.select_related("redemption__account__member", "redemption__reward").order_by("pk")
        for item in rows.iterator(chunk_size=2000):
            redemption = item.redemption
            writer.writerow(
                [
                    redemption.redemption_id,
                    redemption.account.member.member_no,
                    item.recipient_name,
                    item.recipient_phone if show_phone else mask_phone(item.recipient_phone),
                    item.address,
                    redemption.reward.name,
                    redemption.quantity,
                    item.get_status_display(),
                    item.carrier,
                    item.tracking_no,
                    f"{timezone.localtime(redemption.created_at):%Y-%m-%d %H:%M}",
                ]
            )
        response = HttpResponse("\ufeff" + out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="gifts-to-ship.csv"'
        return response


@admin.register(Badge)
class BadgeAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "program",
        "rule",
        "threshold",
        "window_days",
        "points_bonus",
        "is_active",
        "awarded",
    ]
    list_filter = ["program", "rule", "is_active"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(awarded=Count("awards"))

    @admin.display(description=gettext_lazy("awarded"), ordering="awarded")
    def awarded(self, obj):
        return obj.awarded


@admin.register(BadgeAward)
class BadgeAwardAdmin(ReadOnlyAdmin):
    list_display = ["awarded_at", "badge", "account"]
    list_filter = ["badge"]
    list_select_related = ["badge", "account__member", "account__program"]


# --- an action loyalty adds to the members list (members cannot import loyalty) --------------------------------


class IssueCouponsForm(forms.Form):
    template = forms.ModelChoiceField(CouponTemplate.objects.all(), label=gettext_lazy("coupon template"))
    quantity = forms.IntegerField(label=gettext_lazy("coupons per member"), min_value=1, max_value=10, initial=1)


@admin.action(description=gettext_lazy("Issue coupons to the selected members"), permissions=["issue_coupons"])
def issue_coupons(modeladmin, request, queryset):
    form = IssueCouponsForm(request.POST if "apply" in request.POST else None)
    if form.is_valid():
        members = list(queryset.filter(status="active"))
        for member in members:
            rewards.coupons_issue(
                template=form.cleaned_data["template"], member=member, count=form.cleaned_data["quantity"]
            )
        modeladmin.message_user(
            request, _("Coupons issued to %(count)d members.") % {"count": len(members)}, messages.SUCCESS
        )
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": _("Issue coupons"),
        "form": form,
        "members": queryset[:20],
        "count": queryset.count(),
        "action": "issue_coupons",
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/members/member/tag_action.html", context)


MemberAdmin.actions = [*MemberAdmin.actions, issue_coupons]
MemberAdmin.has_issue_coupons_permission = lambda self, request: request.user.has_perm("loyalty.add_coupon")


class MemberTierFilter(admin.SimpleListFilter):
    title = gettext_lazy("tier")
    parameter_name = "tier"

    def lookups(self, request, model_admin):
        tiers = list(Tier.objects.filter(program__is_active=True).select_related("program").order_by("program", "rank"))
        several = len({tier.program_id for tier in tiers}) > 1
        return [(str(tier.pk), f"{tier.program.name} · {tier.name}" if several else tier.name) for tier in tiers]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(Exists(Account.objects.filter(member=OuterRef("pk"), tier_id=self.value())))
        return queryset


class MemberWithLoyaltyAdmin(MemberAdmin):
    """The member list with what an operator looks for first: tier, points and spend, and a filter by tier
    (members cannot import loyalty, so loyalty extends the members' admin here)."""

    # Short columns, so that the list with its filters fits a 1,440-pixel screen: the channel by name, the join
    # date without the time, no e-mail (the search finds it).
    list_display = [
        *(column for column in MemberAdmin.list_display if column not in ("email", "join_channel", "joined_at")),
        "tier_column",
        "points_column",
        "spend_column",
        "channel_column",
        "joined_column",
    ]

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        return [*filters[:1], MemberTierFilter, *filters[1:]]

    def get_queryset(self, request):
        return selectors.members_with_standing(super().get_queryset(request))

    @admin.display(description=gettext_lazy("tier"), ordering="tier_name")
    def tier_column(self, obj):
        return obj.tier_name or "-"

    @admin.display(description=gettext_lazy("points"), ordering="points_balance")
    def points_column(self, obj):
        return "-" if obj.points_balance is None else f"{obj.points_balance:,}"

    @admin.display(description=gettext_lazy("spend"), ordering="total_spend")
    def spend_column(self, obj):
        return f"{obj.total_spend:,.2f}"

    @admin.display(description=gettext_lazy("join channel"), ordering="join_channel__name")
    def channel_column(self, obj):
        return obj.join_channel.name if obj.join_channel_id else "-"

    @admin.display(description=gettext_lazy("joined at"), ordering="joined_at")
    def joined_column(self, obj):
        return f"{timezone.localtime(obj.joined_at):%Y-%m-%d}"


admin.site.unregister(Member)
admin.site.register(Member, MemberWithLoyaltyAdmin)
