"""The marketers' screens: segments built with a rule editor, counted live. Thin: every change calls a service."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from core.errors import DomainError, ValidationFailed
from loyalty.models import Program
from members.admin import ReadOnlyAdmin
from members.errors import ImportFailed

from . import results, rules, selectors, sending, services, webhooks
from .models import (
    Campaign,
    Journey,
    JourneyEntry,
    JourneyStep,
    Message,
    ProgramMessaging,
    Segment,
    Variant,
    Webhook,
    WebhookDelivery,
)


class RuleBuilderWidget(forms.Textarea):
    """The rule's JSON in a textarea, edited through the rule builder (campaigns/static/campaigns/rule_builder.js)."""

    template_name = "campaigns/rule_builder.html"

    def __init__(self, *, program=None, code="", attrs=None):
        super().__init__(attrs={"rows": 4, **(attrs or {})})
        self.program = program
        self.code = code

    class Media:
        js = ["campaigns/rule_builder.js"]
        css = {"all": ["campaigns/rule_builder.css"]}

    def format_value(self, value):
        if value in (None, ""):
            return ""
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        program = self.program or Program.objects.order_by("pk").first()
        context.update(
            {
                "fields": rules.editor_fields(rules.Context(program=program)) if program else [],
                "fields_id": f"{name}-fields",
                "words_id": f"{name}-words",
                "words": {
                    "all": _("all of these"),
                    "any": _("any of these"),
                    "condition": _("condition"),
                    "group": _("group"),
                    "remove": _("Remove"),
                    "comma": _("values, separated by commas"),
                    "within": _("in the last"),
                    "days": _("days"),
                    "ever": _("ever"),
                },
                "preview_url": reverse("admin:campaigns_segment_preview"),
                "program_id": program.pk if program else "",
                "code": self.code,
            }
        )
        return context


class SegmentForm(forms.ModelForm):
    rule = forms.JSONField(label=gettext_lazy("Rule"), required=False)
    members_file = forms.FileField(
        label=gettext_lazy("Members file"),
        required=False,
        help_text=gettext_lazy(
            "For a list segment: a CSV or XLSX file whose first column holds phone numbers (any spelling) or member "
            "numbers. Loading a file replaces the list."
        ),
    )

    class Meta:
        model = Segment
        fields = ["program", "code", "name", "kind", "rule"]

    def clean(self):
        data = super().clean()
        program = data.get("program") or (self.instance.program if self.instance.pk else None)
        kind = data.get("kind") or self.instance.kind
        if program is None:
            return data
        if kind == Segment.Kind.DYNAMIC:
            if not data.get("rule"):
                self.add_error("rule", _("Add at least one condition."))
                return data
            try:
                selectors.rule_accounts(program=program, rule=data["rule"], code=data.get("code") or self.instance.code)
            except ValidationFailed as error:
                for message in (error.fields or {}).get("rule", [error.message]):
                    self.add_error("rule", message)
        else:
            upload = data.get("members_file")
            if upload is None and not self.instance.pk:
                self.add_error("members_file", _("Choose the file that lists the members."))
            elif upload is not None:
                try:
                    member_ids, unmatched = selectors.members_in_file(data=upload.read())
                except ImportFailed as error:
                    self.add_error("members_file", error.message)
                    return data
                if not member_ids:
                    self.add_error("members_file", _("No row of the file names a member."))
                data["member_ids"], data["unmatched"] = member_ids, unmatched
        return data


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = ["code", "name", "kind", "program", "count", "counted_at"]
    list_filter = ["program", "kind"]
    search_fields = ["code", "name"]
    readonly_fields = ["audience", "count", "counted_at", "created_by", "created_at", "updated_at"]

    def get_fieldsets(self, request, obj=None):
        main = ["program", "code", "name", "kind"]
        if obj is None or obj.kind == Segment.Kind.DYNAMIC:
            main.append("rule")
        if obj is None or obj.kind == Segment.Kind.STATIC:
            main.append("members_file")
        fieldsets = [(None, {"fields": main})]
        if obj is not None:
            fieldsets.append((_("Who is in it now"), {"fields": ["audience", "counted_at"]}))
            fieldsets.append((_("Record"), {"fields": ["created_by", "created_at", "updated_at"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fixed = ["program", "code", "kind"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        programs = list(Program.objects.order_by("pk")[:2])
        if len(programs) == 1:
            initial.setdefault("program", programs[0].pk)  # the usual case: one programme, chosen already
        return initial

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "rule" in form.base_fields:
            form.base_fields["rule"].widget = RuleBuilderWidget(
                program=obj.program if obj else None, code=obj.code if obj else ""
            )
        return form

    @admin.display(description=gettext_lazy("members now"))
    def audience(self, obj):
        try:
            segment = services.segment_recount(segment=obj)
            sample = list(selectors.segment_member_numbers(segment=segment)[: selectors.SAMPLE_SIZE])
        except DomainError as error:
            return error.message
        words = rules.rule_describe(obj.rule) if obj.kind == Segment.Kind.DYNAMIC else _("a list loaded from a file")
        return format_html(
            "<strong>{}</strong><br>{}<br><span class='help'>{} {}</span>",
            ngettext("%(count)s member", "%(count)s members", segment.count) % {"count": segment.count},
            words,
            _("For example:"),
            format_html_join(", ", "{}", ((number,) for number in sample)),
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        member_ids = data.get("member_ids")
        if change:
            segment = services.segment_update(
                segment=obj,
                name=data["name"],
                rule=data.get("rule") if obj.kind == Segment.Kind.DYNAMIC else None,
                member_ids=member_ids,
            )
        else:
            segment = services.segment_create(
                program=data["program"],
                code=data["code"],
                name=data["name"],
                rule=data.get("rule") if data["kind"] == Segment.Kind.DYNAMIC else None,
                member_ids=member_ids if data["kind"] == Segment.Kind.STATIC else None,
                actor=request.user,
            )
        obj.pk, obj.count, obj._state.adding = segment.pk, segment.count, False
        unmatched = data.get("unmatched") or []
        if unmatched:
            rows = ", ".join(f"{number}: {value}" for number, value in unmatched[:20])
            self.message_user(
                request,
                ngettext(
                    "%(count)s row named no member and was left out (%(rows)s).",
                    "%(count)s rows named no member and were left out (%(rows)s).",
                    len(unmatched),
                )
                % {"count": len(unmatched), "rows": rows},
                messages.WARNING,
            )

    def delete_model(self, request, obj):
        services.segment_delete(segment=obj)

    def get_urls(self):
        return [
            path("preview/", self.admin_site.admin_view(self.preview_view), name="campaigns_segment_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """The live count, a sample and the rule in words, for the editor (POST: rule, program, code); for those who
        may build segments."""
        if request.method != "POST" or not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        program = Program.objects.filter(pk=request.POST.get("program") or None).first()
        if program is None:
            return JsonResponse({"errors": [_("Choose a programme first.")]})
        try:
            rule = json.loads(request.POST.get("rule") or "null")
            preview = selectors.rule_preview(program=program, rule=rule)
        except json.JSONDecodeError:
            return JsonResponse({"errors": [_("The rule is not valid JSON.")]})
        except ValidationFailed as error:
            return JsonResponse({"errors": [str(message) for message in (error.fields or {}).get("rule", [error])]})
        count = preview["count"]
        return JsonResponse(
            {
                "count": count,
                "count_text": ngettext("%(count)s member", "%(count)s members", count) % {"count": count},
                "sample": preview["sample"],
                "sample_text": _("For example:"),
                "words": rules.rule_describe(rule),
            }
        )


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    min_num = 1
    fields = ["code", "share", "subject", "body"]

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (obj is None or obj.status in EDITABLE)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) and (obj is None or obj.status in EDITABLE)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or obj.status in EDITABLE)


EDITABLE = (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED)


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "program",
            "code",
            "name",
            "segment",
            "channel",
            "control_share",
            "conversion_days",
            "offer_coupon_template",
            "offer_points",
            "scheduled_at",
        ]

    def clean(self):
        data = super().clean()
        segment, program = data.get("segment"), data.get("program")
        if segment and program and segment.program_id != program.pk:
            self.add_error("segment", _("This segment belongs to another programme."))
        template = data.get("offer_coupon_template")
        if template and program and template.program_id != program.pk:
            self.add_error("offer_coupon_template", _("This coupon template belongs to another programme."))
        return data


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    inlines = [VariantInline]
    list_display = ["code", "name", "channel", "segment", "status", "scheduled_at", "sent_at"]
    list_filter = ["program", "status", "channel"]
    search_fields = ["code", "name"]
    readonly_fields = ["status", "sent_at", "cancelled_at", "results", "created_by", "created_at"]
    change_form_template = "admin/campaigns/campaign/change_form.html"

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["program", "code", "name", "segment", "channel"]}),
            (
                _("Test and offer"),
                {"fields": ["control_share", "conversion_days", "offer_coupon_template", "offer_points"]},
            ),
            (_("When"), {"fields": ["scheduled_at", "status", "sent_at", "cancelled_at"]}),
        ]
        if obj is not None and obj.status not in EDITABLE:
            fieldsets.append((_("Results"), {"fields": ["results"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status not in EDITABLE:
            return [*CampaignForm.Meta.fields, *self.readonly_fields]
        return ["program", "code", *self.readonly_fields] if obj else self.readonly_fields

    @admin.display(description=gettext_lazy("results"))
    def results(self, obj):
        answer = results.campaign_results(campaign=obj)
        control = answer["control"]

        def rate(value):
            return "-" if value is None else f"{value * 100:.2f}%"

        rows = [
            (
                _("control"),
                control["members"],
                "-",
                control["converted"],
                rate(control["conversion_rate"]),
                control["revenue"],
                "",
            )
        ]
        for variant in answer["variants"]:
            lift = variant["uplift"]
            rows.append(
                (
                    variant["code"],
                    variant["members"],
                    variant["sent"],
                    variant["converted"],
                    rate(variant["conversion_rate"]),
                    variant["revenue"],
                    results.results_sentence(variant, control) if lift else "",
                )
            )
        head = format_html_join(
            "",
            "<th>{}</th>",
            ((label,) for label in (_("group"), _("members"), _("sent"), _("converted"), _("rate"), _("revenue"), "")),
        )
        body = format_html_join("", "<tr>" + "<td>{}</td>" * 7 + "</tr>", rows)
        skipped = ", ".join(
            f"{Message.Reason(reason).label if reason in Message.Reason.values else reason}: {count}"
            for reason, count in answer["skipped"].items()
        )
        return format_html(
            '<table class="campaign-results"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'
            "<p>{}: {} · {}: {} · {}: {} · {}: {}</p>",
            head,
            body,
            _("Sent"),
            answer["sent"],
            _("Queued"),
            answer["queued"],
            _("Failed"),
            answer["failed"],
            _("Skipped"),
            skipped,
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.status = Campaign.Status.SCHEDULED if obj.scheduled_at else Campaign.Status.DRAFT
        elif obj.status in EDITABLE:
            obj.status = Campaign.Status.SCHEDULED if obj.scheduled_at else Campaign.Status.DRAFT
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        campaign = form.instance
        try:
            services.campaign_check(campaign=campaign)
        except ValidationFailed as error:
            for field, problems in (error.fields or {}).items():
                self.message_user(request, f"{field}: {' '.join(map(str, problems))}", messages.WARNING)

    def get_urls(self):
        return [
            path("<int:pk>/send/", self.admin_site.admin_view(self.send_view), name="campaigns_campaign_send"),
            path("<int:pk>/cancel/", self.admin_site.admin_view(self.cancel_view), name="campaigns_campaign_cancel"),
            *super().get_urls(),
        ]

    def _act(self, request, pk, act, done):
        if request.method != "POST" or not request.user.has_perm("campaigns.send_campaign"):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=pk)
        try:
            if act is sending.campaign_send:
                services.campaign_check(campaign=campaign)
            campaign = act(campaign=campaign)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, done % {"name": campaign.name, "status": campaign.get_status_display()})
        return HttpResponseRedirect(reverse("admin:campaigns_campaign_change", args=[pk]))

    def send_view(self, request, pk):
        return self._act(request, pk, sending.campaign_send, _("%(name)s: %(status)s."))

    def cancel_view(self, request, pk):
        return self._act(request, pk, sending.campaign_cancel, _("%(name)s: %(status)s."))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["can_send"] = request.user.has_perm("campaigns.send_campaign")
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["member", "campaign", "channel", "variant", "status", "reason", "created_at", "sent_at"]
    list_filter = ["status", "reason", "channel"]
    search_fields = ["member__member_no", "member__phone", "campaign__code"]
    list_select_related = ["member", "campaign"]


@admin.register(ProgramMessaging)
class ProgramMessagingAdmin(admin.ModelAdmin):
    list_display = ["program", "frequency_cap", "quiet_from", "quiet_until"]


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    list_display = ["url", "program", "channel", "events", "is_active", "created_at"]
    list_filter = ["program", "is_active"]
    fields = ["program", "channel", "url", "events", "is_active", "created_at"]
    readonly_fields = ["program", "channel", "url", "events", "created_at"]

    def has_add_permission(self, request):
        return False  # partners subscribe through the API, which shows the secret once


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["type", "webhook", "status", "attempts", "last_status_code", "last_error", "created_at"]
    list_filter = ["status", "type"]
    search_fields = ["event_id", "webhook__url"]
    list_select_related = ["webhook"]
    actions = ["resend"]
    readonly_fields = [field.name for field in WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resend_permission(self, request):
        return request.user.has_perm("campaigns.change_webhookdelivery")

    @admin.action(description=gettext_lazy("Send the selected events again"), permissions=["resend"])
    def resend(self, request, queryset):
        count = 0
        for delivery in queryset.iterator():
            webhooks.delivery_resend(delivery=delivery)
            count += 1
        self.message_user(
            request, ngettext("%(count)s event sent again.", "%(count)s events sent again.", count) % {"count": count}
        )


class JourneyStepInline(admin.TabularInline):
    model = JourneyStep
    extra = 0
    fields = ["position", "kind", "subject", "body", "coupon_template", "points", "tag", "wait_days"]
    ordering = ["position"]


@admin.register(Journey)
class JourneyAdmin(admin.ModelAdmin):
    inlines = [JourneyStepInline]
    list_display = ["code", "name", "trigger", "days", "channel", "is_active", "entries_in_progress"]
    list_filter = ["program", "trigger", "is_active"]
    search_fields = ["code", "name"]
    fieldsets = [
        (None, {"fields": ["program", "code", "name", "is_active"]}),
        (_("Trigger"), {"fields": ["trigger", "days", "min_points", "direction", "event_type", "segment"]}),
        (_("Messages"), {"fields": ["channel"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(in_progress=Count("entries", filter=~Q(entries__status=JourneyEntry.Status.FINISHED)))
        )

    @admin.display(description=gettext_lazy("in progress"), ordering="in_progress")
    def entries_in_progress(self, obj):
        return obj.in_progress


@admin.register(JourneyEntry)
class JourneyEntryAdmin(ReadOnlyAdmin):
    list_display = ["journey", "member", "occurrence", "status", "next_step", "waiting_until", "entered_on"]
    list_filter = ["journey", "status"]
    search_fields = ["member__member_no", "member__phone"]
    list_select_related = ["journey", "member"]
