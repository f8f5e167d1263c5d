"""The loyalty programme in the admin: programmes, tiers, rules (with "what would this earn?"), accounts with their
ledger, staff adjustments and manual tiers (each behind its own permission), and the daily jobs' runs.
Thin: every change calls a service; domain errors are shown on the form."""

import contextlib
import io
from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
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
from members.normalize import normalize_phone
from members.spreadsheets import csv_writer

from . import rewards, rules, selectors, services
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


class TierInline(admin.TabularInline):
    model = Tier
    extra = 0
    fields = [
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
    ]


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
        weekdays = cleaned.get("weekdays") or []
        if any(day not in range(1, 8) for day in weekdays):
            self.add_error("weekdays", _("Weekdays are numbers from 1 (Monday) to 7 (Sunday)."))
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
    list_select_related = ["account", "actor"]
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
            (_("tier"), f"{account.tier.name} ({_('since')} {timezone.localtime(account.tier_since):%Y-%m-%d})"),
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


@admin.register(CouponTemplate)
class CouponTemplateAdmin(admin.ModelAdmin):
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


@admin.register(Reward)
class RewardAdmin(admin.ModelAdmin):
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
    list_select_related = ["account", "reward", "cancelled_by"]
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


class ShipForm(forms.Form):
    carrier = forms.CharField(label=gettext_lazy("carrier"), max_length=50)
    tracking_no = forms.CharField(label=gettext_lazy("tracking number"), max_length=64)


@admin.register(Fulfilment)
class FulfilmentAdmin(ReadOnlyAdmin):
    list_display = ["redemption", "member_no", "gift", "status", "carrier", "tracking_no", "updated_at"]
    list_filter = ["status"]
    list_select_related = ["redemption__reward", "redemption__account__member"]
    actions = ["mark_delivered", "export_csv"]

    @admin.display(description=gettext_lazy("member number"))
    def member_no(self, obj):
        return obj.redemption.account.member.member_no

    @admin.display(description=gettext_lazy("reward"))
    def gift(self, obj):
        return obj.redemption.reward.name

    def has_change_permission(self, request, obj=None):
        return super(ReadOnlyAdmin, self).has_change_permission(request, obj) and obj is None

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
                return HttpResponseRedirect(reverse("admin:loyalty_fulfilment_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Ship a gift"),
            "form": form,
            "account": None,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/account/action_form.html", context)

    @admin.action(description=gettext_lazy("Mark the selected gifts delivered"), permissions=["change"])
    def mark_delivered(self, request, queryset):
        for fulfilment in queryset:
            try:
                rewards.fulfilment_update(fulfilment=fulfilment, status=Fulfilment.Status.DELIVERED, actor=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)

    def has_export_permission(self, request):
        return request.user.has_perm("loyalty.export_fulfilment")

    @admin.action(description=gettext_lazy("Export the selected gifts for the warehouse (CSV)"), permissions=["export"])
    def export_csv(self, request, queryset):
        out = io.StringIO()
        writer = csv_writer(out)
        writer.writerow(["redemption_id", "member_no", "name", "phone", "gift", "quantity", "status", "redeemed_at"])
        show_phone = can_view_personal_data(request.user)
        for item in queryset.select_related("redemption__account__member", "redemption__reward"):
            member = item.redemption.account.member
            writer.writerow(
                [
                    item.redemption.redemption_id,
                    member.member_no,
                    member.name,
                    (member.phone if show_phone else mask_phone(member.phone)) or "",
                    item.redemption.reward.name,
                    item.redemption.quantity,
                    item.status,
                    f"{timezone.localtime(item.redemption.created_at):%Y-%m-%d %H:%M}",
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
    list_select_related = ["badge", "account"]


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
