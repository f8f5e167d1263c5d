"""The operators' daily tool for members, channels and API keys. Thin: every change calls a service.

Over 500 lines: the member page, its actions and the duplicate finder are one screen for operators; other
apps add to it through the admin site's registries (config/admin.py), not here.
"""

import contextlib

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Count, Exists, OuterRef, Q
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import DomainError

from . import selectors, services
from .filters import MemberFilter
from .importing.admin import MemberImportExportMixin, OrderHistoryImportMixin
from .masking import can_view_personal_data, mask_email, mask_phone
from .models import (
    API_SCOPES,
    ApiKey,
    Channel,
    ChannelIdentity,
    Consent,
    ConsentChange,
    Event,
    Member,
    MemberHistory,
    MemberMerge,
    MemberNote,
    MemberTag,
    Order,
    OrderLine,
    Refund,
    Tag,
)
from .normalize import normalize_email, normalize_phone


class EraseForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=gettext_lazy("Such as: the member's request of 2026-11-30, ticket 4711. Recorded with your name."),
    )


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Facts and records staff read but never edit: corrections go through refunds, merges or new rows."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- channels and keys -------------------------------------------------------------------------------------------


class ApiKeyInline(ReadOnlyInline):
    model = ApiKey
    fields = ["prefix", "name", "scopes", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "kind", "is_active", "throttle_rate", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["code", "name"]
    inlines = [ApiKeyInline]


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("scopes"),
        choices=[(scope, scope) for scope in API_SCOPES],
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = ApiKey
        fields = ["channel", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = ["prefix", "channel", "name", "scope_list", "created_at", "last_used_at", "status"]
    list_filter = ["channel", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "channel__code"]
    actions = ["revoke_keys"]
    list_select_related = ["channel"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["channel", "name", "prefix", "scope_list", "created_at", "created_by", "last_used_at", "revoked_at"]

    def get_fields(self, request, obj=None):
        return ["channel", "name", "scopes"] if obj is None else self.get_readonly_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        # A key is never edited: revoke it and create another.
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description=gettext_lazy("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    @admin.display(description=gettext_lazy("status"))
    def status(self, obj):
        return _("revoked") if obj.revoked_at else _("active")

    def save_model(self, request, obj, form, change):
        api_key, raw_key = services.api_key_create(
            channel=form.cleaned_data["channel"],
            scopes=form.cleaned_data["scopes"],
            name=form.cleaned_data["name"],
            created_by=request.user,
        )
        obj.pk = api_key.pk
        self.message_user(
            request,
            format_html(
                "{} <code style='user-select:all'>{}</code>",
                _("Copy the key now; it is shown only once:"),
                raw_key,
            ),
            messages.WARNING,
        )

    @admin.action(description=gettext_lazy("Revoke selected keys"), permissions=["change"])
    def revoke_keys(self, request, queryset):
        keys = list(queryset.filter(revoked_at__isnull=True))
        for api_key in keys:
            services.api_key_revoke(api_key=api_key, revoked_by=request.user)
        self.message_user(request, _("%(count)d keys revoked.") % {"count": len(keys)}, messages.SUCCESS)


# --- members -----------------------------------------------------------------------------------------------------


class BirthdayMonthFilter(admin.SimpleListFilter):
    title = gettext_lazy("birthday month")
    parameter_name = "birthday_month"

    def lookups(self, request, model_admin):
        return [(str(month), _("Month %(month)d") % {"month": month}) for month in range(1, 13)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(birthday__month=int(self.value()))
        return queryset


class TagFilter(admin.SimpleListFilter):
    """The API's `tag` filter (MemberFilter), offered as a list of tags."""

    title = gettext_lazy("tag")
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        return [(tag.name, tag.name) for tag in Tag.objects.all()[:200]]

    def queryset(self, request, queryset):
        if self.value():
            return MemberFilter(data={"tag": self.value()}, queryset=queryset, request=request).qs
        return queryset


class IdentityInline(ReadOnlyInline):
    model = ChannelIdentity
    fields = ["channel", "external_id", "created_at"]
    readonly_fields = fields
    verbose_name_plural = gettext_lazy("channel identities (OneID)")


class ConsentInline(ReadOnlyInline):
    model = Consent
    fields = ["channel", "granted", "source", "updated_at"]
    readonly_fields = fields


class ConsentChangeInline(ReadOnlyInline):
    model = ConsentChange
    fields = ["created_at", "channel", "granted", "source", "changed_by"]
    readonly_fields = fields
    classes = ["collapse"]


class MemberTagInline(ReadOnlyInline):
    model = MemberTag
    fields = ["tag", "source", "created_by", "created_at"]
    readonly_fields = fields
    verbose_name_plural = gettext_lazy("tags")


class OrderInline(ReadOnlyInline):
    model = Order
    fields = ["order_id", "channel", "store", "amount", "refunded_amount", "currency", "occurred_at", "status"]
    readonly_fields = fields
    ordering = ["-occurred_at"]
    show_change_link = True


class EventInline(ReadOnlyInline):
    model = Event
    fields = ["type", "name", "channel", "occurred_at", "attributes"]
    readonly_fields = fields
    ordering = ["-occurred_at"]


class ReferralInline(ReadOnlyInline):
    model = Member
    fk_name = "referrer"
    fields = ["member_no", "name", "joined_at", "status"]
    readonly_fields = fields
    verbose_name = gettext_lazy("referred member")
    verbose_name_plural = gettext_lazy("referrals (members this member brought in)")
    show_change_link = True


HISTORY_ACTIONS = {
    "created": gettext_lazy("created"),
    "updated": gettext_lazy("updated"),
    "status": gettext_lazy("status changed"),
    "tag_added": gettext_lazy("tag added"),
    "tag_removed": gettext_lazy("tag removed"),
    "identity_linked": gettext_lazy("channel identity linked"),
    "imported": gettext_lazy("imported"),
    "merged_in": gettext_lazy("another member merged in"),
    "merged_away": gettext_lazy("merged into another member"),
}
HISTORY_KEYS = {
    "consent_sms": gettext_lazy("SMS consent"),
    "consent_email": gettext_lazy("E-mail consent"),
    "consent_wechat": gettext_lazy("WeChat consent"),
    "tag": gettext_lazy("tag"),
    "reason": gettext_lazy("reason"),
    "channel": gettext_lazy("channel"),
    "external_id": gettext_lazy("external id"),
    "from": gettext_lazy("merged from"),
    "into": gettext_lazy("merged into"),
    "row": gettext_lazy("file row"),
}


def _history_value(field, value):
    """A recorded value as the operator reads it: choices by their label, yes/no, a dash for nothing."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    with contextlib.suppress(FieldDoesNotExist, TypeError):  # not a member field; a value that is not a choice
        choices = dict(Member._meta.get_field(field).flatchoices)
        if value in choices:
            return str(choices[value])
    return str(value)


def history_changes_display(action, changes):
    """{"city": ["上海", "北京"], "tag": "VIP"} as lines of "城市: 上海 → 北京", "标签: VIP"."""
    lines = []
    for key, value in (changes or {}).items():
        try:
            label = HISTORY_KEYS.get(key) or Member._meta.get_field(key).verbose_name
        except FieldDoesNotExist:  # a key of another kind of entry (the moved counts of a merge...)
            label = key
        if isinstance(value, list) and len(value) == 2:
            text = f"{_history_value(key, value[0])} → {_history_value(key, value[1])}"
        else:
            text = _history_value(key, value)
        lines.append((str(label), text))
    return format_html_join(mark_safe("<br>"), "{}: {}", lines)


class NoteInline(ReadOnlyInline):
    model = MemberNote
    fields = ["created_at", "text", "created_by"]
    readonly_fields = fields
    verbose_name_plural = gettext_lazy("staff notes")


class NoteForm(forms.Form):
    text = forms.CharField(label=gettext_lazy("note"), max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))


class HistoryInline(ReadOnlyInline):
    model = MemberHistory
    fields = ["created_at", "action_display", "changes_display", "actor", "channel"]
    readonly_fields = [*fields, "masked_changes_display"]
    verbose_name_plural = gettext_lazy("history: who changed what")

    def get_fields(self, request, obj=None):
        if can_view_personal_data(request.user):
            return self.fields
        return ["masked_changes_display" if name == "changes_display" else name for name in self.fields]

    @admin.display(description=gettext_lazy("action"))
    def action_display(self, obj):
        return HISTORY_ACTIONS.get(obj.action, obj.action)

    @admin.display(description=gettext_lazy("changes"))
    def changes_display(self, obj):
        return history_changes_display(obj.action, obj.changes)

    @admin.display(description=gettext_lazy("changes"))
    def masked_changes_display(self, obj):
        masks = {"phone": mask_phone, "email": mask_email}
        masked = {
            key: [masks[key](value) for value in values] if key in masks and isinstance(values, list) else values
            for key, values in (obj.changes or {}).items()
        }
        return history_changes_display(obj.action, masked)


PROFILE_FIELDS = ["name", "phone", "email", "gender", "birthday", "city", "country", "language", "referrer"]


class MemberForm(forms.ModelForm):
    consent_sms = forms.BooleanField(label=gettext_lazy("SMS consent"), required=False)
    consent_email = forms.BooleanField(label=gettext_lazy("E-mail consent"), required=False)
    consent_wechat = forms.BooleanField(label=gettext_lazy("WeChat consent"), required=False)

    class Meta:
        model = Member
        fields = PROFILE_FIELDS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            current = selectors.member_consents(self.instance)
            for channel, granted in current.items():
                self.fields[f"consent_{channel}"].initial = granted

    def _normalised(self, field, function):
        value = self.cleaned_data.get(field)
        if not value:
            return None
        try:
            return function(value)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_phone(self):
        return self._normalised("phone", normalize_phone)

    def clean_email(self):
        return self._normalised("email", normalize_email)

    # The birthday and contact rules are the model's (its field validator and clean()), run by the form.

    def consents(self):
        """Only the consents the operator changed: an untouched box is no decision, and writes no consent row."""
        return {
            channel: self.cleaned_data[f"consent_{channel}"]
            for channel in ("sms", "email", "wechat")
            if f"consent_{channel}" in self.changed_data
        }


class TagChoiceForm(forms.Form):
    tag = forms.CharField(label=gettext_lazy("tag"), max_length=64)


def action_form_page(modeladmin, request, queryset, *, form, title, action):
    """The intermediate page of an action that asks for something first (a tag, a reason, a template). It carries
    the selection forward as the changelist posted it: the ticked ids and, after "select all N", `select_across`,
    so the second post acts on the whole filtered queryset again, not on the page's ids."""
    return TemplateResponse(
        request,
        "admin/members/member/tag_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "members": queryset[:20],
            "count": queryset.count(),
            "action": action,
            "select_across": request.POST.get("select_across") == "1",
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "opts": modeladmin.model._meta,
        },
    )


def chunked_ids(queryset, size=5000):
    """The primary keys of a (possibly very large) selection, a batch at a time, in key order."""
    ids = queryset.order_by("pk").values_list("pk", flat=True)
    last = None
    while True:
        batch = list((ids.filter(pk__gt=last) if last is not None else ids)[:size])
        if not batch:
            return
        yield batch
        last = batch[-1]


@admin.register(Member)
class MemberAdmin(MemberImportExportMixin, admin.ModelAdmin):
    form = MemberForm
    list_display = ["member_no", "name", "phone", "email", "status", "join_channel", "joined_at"]
    list_filter = ["status", "join_channel", TagFilter, ("joined_at", admin.DateFieldListFilter), BirthdayMonthFilter]
    list_select_related = ["join_channel"]
    search_fields = ["member_no"]  # widened in get_search_results
    search_help_text = gettext_lazy("Phone in any spelling, e-mail, name, member number or a channel identity.")
    readonly_fields = [
        "member_no",
        "status",
        "joined_at",
        "join_channel",
        "merged_into",
        "imported_spend",
        "closed_at",
        "erased_at",
    ]
    raw_id_fields = ["referrer"]
    show_full_result_count = False
    list_per_page = 50
    own_actions = ["add_tag", "remove_tag", "freeze", "unfreeze", "merge_two"]

    @property
    def actions(self):
        # Higher apps add actions to the member list through the site's `member_actions` (config.admin).
        return [*self.own_actions, *self.admin_site.member_actions]

    def get_actions(self, request):
        # An action another app adds may name the permission it needs (`required_permission`): offered only then.
        actions = super().get_actions(request)
        return {
            name: action
            for name, action in actions.items()
            if not getattr(action[0], "required_permission", None)
            or request.user.has_perm(action[0].required_permission)
        }

    inlines = [
        NoteInline,
        IdentityInline,
        ConsentInline,
        ConsentChangeInline,
        MemberTagInline,
        OrderInline,
        EventInline,
        ReferralInline,
        HistoryInline,
    ]
    change_form_template = "admin/members/member/change_form.html"

    def _masked(self, request, obj=None):
        """Staff without the "view personal data" permission see an existing member's phone and e-mail in part
        (and cannot edit them)."""
        return not can_view_personal_data(request.user)

    def get_list_display(self, request):
        if not self._masked(request):
            return self.list_display
        masked = {"phone": "masked_phone", "email": "masked_email"}
        return [masked.get(name, name) for name in self.list_display]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and self._masked(request):
            return [*self.readonly_fields, "masked_phone", "masked_email"]
        return self.readonly_fields

    @admin.display(description=gettext_lazy("phone"))
    def masked_phone(self, obj):
        return mask_phone(obj.phone)

    @admin.display(description=gettext_lazy("e-mail"))
    def masked_email(self, obj):
        return mask_email(obj.email)

    def get_fieldsets(self, request, obj=None):
        profile = PROFILE_FIELDS
        if obj is not None and self._masked(request):
            masked = {"phone": "masked_phone", "email": "masked_email"}
            profile = [masked.get(name, name) for name in PROFILE_FIELDS]
        fieldsets = [
            (None, {"fields": (["member_no", "status"] if obj else []) + profile}),
            (_("Consents"), {"fields": ["consent_sms", "consent_email", "consent_wechat"]}),
        ]
        if obj:
            origin = ["joined_at", "join_channel", "merged_into", "imported_spend", "closed_at", "erased_at"]
            fieldsets.append((_("Origin"), {"fields": origin}))
        return fieldsets

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        condition = Q(member_no=term) | Q(name__icontains=term)
        if len(term) == 4 and term.isdigit():
            condition |= Q(phone__endswith=term)  # the last four digits, as a member says them at the counter
        condition |= Q(Exists(ChannelIdentity.objects.filter(member=OuterRef("pk"), external_id=term)))
        for field, function in (("phone", normalize_phone), ("email", normalize_email)):
            with contextlib.suppress(ValueError):
                value = function(term)
                condition |= Q(**{field: value})
                # A merged-away member's phone or e-mail finds the member it was merged into.
                kept = selectors.member_by_former_contact(**{field: value})
                if kept is not None:
                    condition |= Q(pk=kept.pk)
        return queryset.filter(condition), False

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["can_export_personal_data"] = request.user.has_perm("members.export_personal_data")
            context["can_erase_member"] = request.user.has_perm("members.erase_member")
            context["member_panels"] = self.admin_site.member_panels.collect(member=obj, request=request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_model(self, request, obj, form, change):
        # A field left out of the form (a masked phone or e-mail) keeps its value.
        data = {
            field: form.cleaned_data[field] if field in form.cleaned_data else getattr(obj, field)
            for field in PROFILE_FIELDS
        }
        data["city"], data["country"], data["language"] = (
            data["city"] or "",
            data["country"] or "",
            data["language"] or "",
        )
        if change:
            saved = services.member_update(member=obj, data=data, consents=form.consents(), actor=request.user)
        else:
            saved = services.member_create(consents=form.consents(), actor=request.user, **data)
        obj.pk, obj.member_no = saved.pk, saved.member_no

    def has_delete_permission(self, request, obj=None):
        # Members are closed or merged, never deleted: their orders and ledger must keep pointing somewhere.
        return False

    def _tag_action(self, request, queryset, service, done_message):
        form = TagChoiceForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            tag = services.tag_get_or_create(name=form.cleaned_data["tag"])
            count = sum(service(member_ids=ids, tag=tag, actor=request.user) for ids in chunked_ids(queryset))
            self.message_user(request, done_message % {"count": count, "tag": tag.name}, messages.SUCCESS)
            return None
        return action_form_page(
            self, request, queryset, form=form, title=_("Tag members"), action=request.POST.get("action")
        )

    @admin.action(description=gettext_lazy("Add a tag to the selected members"), permissions=["change"])
    def add_tag(self, request, queryset):
        return self._tag_action(request, queryset, services.members_tag, _("%(count)d members tagged %(tag)s."))

    @admin.action(description=gettext_lazy("Remove a tag from the selected members"), permissions=["change"])
    def remove_tag(self, request, queryset):
        return self._tag_action(request, queryset, services.members_untag, _("%(tag)s removed from %(count)d members."))

    @admin.action(description=gettext_lazy("Freeze the selected members"), permissions=["change"])
    def freeze(self, request, queryset):
        count = sum(
            services.members_set_status(member_ids=ids, status=Member.Status.FROZEN, actor=request.user)
            for ids in chunked_ids(queryset)
        )
        self.message_user(request, _("%(count)d members frozen.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Unfreeze the selected members"), permissions=["change"])
    def unfreeze(self, request, queryset):
        # The rule (only a frozen member is unfrozen) is the service's; the selection goes in batches.
        count = sum(
            services.members_set_status(member_ids=ids, status=Member.Status.ACTIVE, actor=request.user)
            for ids in chunked_ids(queryset)
        )
        self.message_user(request, _("%(count)d members unfrozen.") % {"count": count}, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Merge the two selected members"), permissions=["change"])
    def merge_two(self, request, queryset):
        members = list(queryset.order_by("joined_at", "pk")[:3])
        if len(members) != 2:
            self.message_user(request, _("Select exactly two members to merge."), messages.ERROR)
            return None
        url = reverse("admin:members_member_merge", args=[members[0].pk, members[1].pk])
        return HttpResponseRedirect(url)

    def get_urls(self):
        return [
            path(
                "duplicates/",
                self.admin_site.admin_view(self.duplicates_view),
                name="members_member_duplicates",
            ),
            path("<int:pk>/note/", self.admin_site.admin_view(self.note_view), name="members_member_note"),
            path(
                "merge/<int:keep_id>/<int:drop_id>/",
                self.admin_site.admin_view(self.merge_view),
                name="members_member_merge",
            ),
            path(
                "<int:member_id>/personal-data/",
                self.admin_site.admin_view(self.personal_data_view),
                name="members_member_personal_data",
            ),
            path("<int:member_id>/erase/", self.admin_site.admin_view(self.erase_view), name="members_member_erase"),
            *super().get_urls(),
        ]

    def personal_data_view(self, request, member_id):
        """One member's personal data as a JSON file (PIPL/GDPR access), recorded on the member's history."""
        if not request.user.has_perm("members.export_personal_data"):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=member_id)
        data = selectors.member_personal_data(member=member)
        services.member_personal_data_exported(member=member, actor=request.user)
        response = JsonResponse(data, encoder=DjangoJSONEncoder, json_dumps_params={"ensure_ascii": False, "indent": 2})
        response["Content-Disposition"] = f'attachment; filename="member-{member.member_no}-personal-data.json"'
        return response

    def erase_view(self, request, member_id):
        if not request.user.has_perm("members.erase_member"):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=member_id)
        form = EraseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.member_erase(member=member, reason=form.cleaned_data["reason"], actor=request.user)
            except DomainError as error:
                form.add_error("reason", error.message)
            else:
                self.message_user(
                    request,
                    _("The personal data of member %(member_no)s was erased.") % {"member_no": member.member_no},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:members_member_change", args=[member.pk]))
        return TemplateResponse(
            request,
            "admin/members/member/erase.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Erase personal data"),
                "form": form,
                "member": member,
                "opts": self.model._meta,
            },
        )

    def _show_contacts(self, request, members):
        """`shown_phone` and `shown_email` on each member for a page: in full, or masked for staff without the
        "view personal data" permission."""
        masked = self._masked(request)
        for member in members:
            member.shown_phone = mask_phone(member.phone) if masked else member.phone
            member.shown_email = mask_email(member.email) if masked else member.email

    def note_view(self, request, pk):
        # Writing a note is its own permission: customer service writes notes without changing the member.
        if not request.user.has_perm("members.add_membernote"):
            raise PermissionDenied
        member = get_object_or_404(Member, pk=pk)
        form = NoteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                services.member_note_add(member=member, text=form.cleaned_data["text"], actor=request.user)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(request, _("Note added."), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:members_member_change", args=[member.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Add a note on %(member)s") % {"member": member},
            "form": form,
            "account": None,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/loyalty/account/action_form.html", context)

    def duplicates_view(self, request):
        # A tool for merging: only for staff who may merge.
        if not self.has_change_permission(request):
            raise PermissionDenied
        pairs = selectors.duplicate_candidates()
        members = Member.objects.in_bulk({pk for pair in pairs for pk in (pair["keep_id"], pair["drop_id"])})
        reasons = {"name_birthday": _("same name and birthday"), "name_phone": _("same name and phone digits")}
        self._show_contacts(request, members.values())
        rows = [{"keep": members[p["keep_id"]], "drop": members[p["drop_id"]], "why": reasons[p["why"]]} for p in pairs]
        return TemplateResponse(
            request,
            "admin/members/member/duplicates.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Likely duplicates"),
                "rows": rows,
                "opts": self.model._meta,
            },
        )

    def merge_view(self, request, keep_id, drop_id):
        if not self.has_change_permission(request):
            raise PermissionDenied
        keep = get_object_or_404(Member, pk=keep_id)
        drop = get_object_or_404(Member, pk=drop_id)
        if request.method == "POST" and request.POST.get("keep") == str(drop.pk):
            keep, drop = drop, keep
        confirming = request.method == "POST"
        if confirming and request.POST.get("confirm") == "yes":
            try:
                merge = services.members_merge(keep=keep, drop=drop, by=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
                confirming = False
            else:
                self.message_user(
                    request,
                    _("%(dropped)s merged into %(kept)s.") % {"dropped": drop.member_no, "kept": keep.member_no},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:members_member_change", args=[merge.kept_id]))
        self._show_contacts(request, [keep, drop])
        return TemplateResponse(
            request,
            "admin/members/member/merge.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Merge members: are you sure?") if confirming else _("Merge members"),
                "keep": keep,
                "drop": drop,
                "compare_rows": selectors.members_compare(keep=keep, drop=drop),
                "confirming": confirming,
                "opts": self.model._meta,
            },
        )


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "member_count", "created_at"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("member_tags"))

    @admin.display(description=gettext_lazy("members"), ordering="member_count")
    def member_count(self, obj):
        return obj.member_count


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["sku", "name", "category", "quantity", "amount"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(OrderHistoryImportMixin, ReadOnlyAdmin):
    """Orders are read-only facts; history from a previous system comes in through *Import* (with its preview)."""

    list_display = ["order_id", "member", "channel", "store", "amount", "refunded_amount", "occurred_at", "status"]
    list_filter = ["channel", "status", ("occurred_at", admin.DateFieldListFilter)]
    list_select_related = ["member", "channel"]
    search_fields = ["order_id", "member__member_no"]
    inlines = [OrderLineInline]


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["refund_id", "order", "channel", "amount", "created_at"]
    list_filter = ["channel", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["order", "channel"]
    search_fields = ["refund_id", "order__order_id", "order__member__member_no"]


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "name", "member", "channel", "occurred_at"]
    list_filter = ["type", "channel", ("occurred_at", admin.DateFieldListFilter)]
    list_select_related = ["member", "channel"]
    search_fields = ["event_id", "member__member_no", "name"]


@admin.register(MemberMerge)
class MemberMergeAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kept", "dropped", "merged_by"]
    list_select_related = ["kept", "dropped", "merged_by"]
    readonly_fields = ["created_at", "kept", "dropped", "merged_by", "moved"]
    search_fields = ["kept__member_no", "dropped__member_no"]


def member_cards(*, request):
    today = timezone.localdate()
    stats = Member.objects.aggregate(
        total=Count("id", filter=Q(merged_into__isnull=True)),
        new_7d=Count("id", filter=Q(joined_at__date__gte=today - timezone.timedelta(days=7))),
    )
    cards = [
        {"title": _("Members"), "value": stats["total"], "url": reverse("admin:members_member_changelist")},
        {"title": _("New members, last 7 days"), "value": stats["new_7d"]},
    ]
    if request.user.has_perm("members.change_member"):
        cards.append(
            {
                "title": _("Likely duplicates"),
                "value": _("Review"),
                "url": reverse("admin:members_member_duplicates"),
                "hint": _("same name and birthday, or same name and phone digits"),
            }
        )
    return cards
