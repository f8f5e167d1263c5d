"""The marketers' screens: segments built with a rule editor, counted live. Thin: every change calls a service."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from loyalty.models import Program
from members.errors import DomainError, ImportFailed, ValidationFailed

from . import rules, selectors, services
from .models import Segment


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
        """The live count, a sample and the rule in words, for the editor (POST: rule, program, code)."""
        if request.method != "POST" or not self.has_view_permission(request):
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
