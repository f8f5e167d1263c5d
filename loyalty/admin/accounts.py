"""Points accounts with their ledger, staff adjustments and manual tiers (each behind its own permission), the
ledger itself and the daily jobs' runs."""

import contextlib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import DomainError
from members.admin import ReadOnlyAdmin, ReadOnlyInline
from members.normalize import normalize_phone

from .. import adjustments, tiers
from ..models import (
    Account,
    JobRun,
    PointsLot,
    PointsTransaction,
    Tier,
    TierChange,
)


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
                adjustments.points_adjust(
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
                tiers.tier_set(
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
    change_list_template = "admin/loyalty/jobrun/change_list.html"

    def get_urls(self):
        return [
            path("run/", self.admin_site.admin_view(self.run_view), name="loyalty_jobrun_run"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_run_jobs": request.user.has_perm("loyalty.run_jobs")}
        return super().changelist_view(request, extra_context)

    def run_view(self, request):
        """Run today's daily jobs now (a second run the same day changes nothing): for development, where beat does
        not run, and for an operator who cannot wait for the night's schedule."""
        if request.method != "POST" or not request.user.has_perm("loyalty.run_jobs"):
            raise PermissionDenied
        from ..tasks import run_daily_jobs

        result = run_daily_jobs.delay()
        if result.ready():
            # The task answers {programme code: {job: counts}}, plus other apps' entries (members_erased: a count).
            programs = [code for code, runs in result.get().items() if isinstance(runs, dict)]
            self.message_user(
                request,
                _("Today's jobs ran for %(count)d programmes: %(programs)s.")
                % {"count": len(programs), "programs": ", ".join(programs) or "-"},
                messages.SUCCESS,
            )
        else:
            self.message_user(request, _("Today's jobs are queued for a worker."), messages.INFO)
        return HttpResponseRedirect(reverse("admin:loyalty_jobrun_changelist"))
