"""The points mall in the admin: coupon templates and batches, rewards (stock added by an action), coupons,
redemptions and their fulfilment.

Over 500 lines: the mall is one chain for the operator (a reward, its redemptions, the gifts to ship), and its
intermediate pages (ship with tracking numbers, redeem from the member page) each need their form beside the
admin that opens them.
"""

import io
import uuid

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
from members.admin import ReadOnlyAdmin, action_form_page
from members.masking import can_view_personal_data, mask_phone
from members.models import Channel, Member
from members.spreadsheets import csv_writer

from .. import admin_forms, rewards
from ..models import (
    Account,
    Coupon,
    CouponBatch,
    CouponTemplate,
    Fulfilment,
    Program,
    Redemption,
    Reward,
)

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
        return action_form_page(self, request, queryset, form=form, title=_("Cancel redemptions"), action="cancel")

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
