"""The points mall in the admin: coupon templates and batches, rewards (stock added by an action), coupons,
redemptions and their fulfilment."""

import io

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import DomainError
from members.admin import ReadOnlyAdmin
from members.masking import can_view_personal_data, mask_phone
from members.spreadsheets import csv_writer

from .. import rewards
from ..models import (
    Coupon,
    CouponBatch,
    CouponTemplate,
    Fulfilment,
    Redemption,
    Reward,
)

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
    actions = ["add_stock"]

    def get_readonly_fields(self, request, obj=None):
        # Redemptions change stock and the redeemed count with F() while staff edit the page: a saved form would
        # write back the numbers it was loaded with. Stock is set when the reward is created, then added to.
        return ["stock", "redeemed_count"] if obj is not None else ["redeemed_count"]

    @admin.action(description=gettext_lazy("Add stock to the selected rewards"), permissions=["change"])
    def add_stock(self, request, queryset):
        form = AddStockForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                count = rewards.rewards_stock_add(
                    reward_ids=list(queryset.values_list("pk", flat=True)), quantity=form.cleaned_data["quantity"]
                )
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
                return None
            self.message_user(request, _("Stock added to %(count)d rewards.") % {"count": count}, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Add stock"),
            "form": form,
            "rewards": queryset.order_by("pk")[:50],
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/reward/add_stock.html", context)


class AddStockForm(forms.Form):
    quantity = forms.IntegerField(label=gettext_lazy("quantity to add"), min_value=1, max_value=1_000_000)


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
