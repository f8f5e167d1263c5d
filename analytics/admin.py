"""The Analytics section of the admin: the dashboard (permission `analytics.view_dashboard`), RFM thresholds,
CLV fits and member scores, and each member's scores on the member page."""

import datetime as dt
import io
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.models import ChannelProgram, Program, Tier
from members import spreadsheets
from members.admin import ReadOnlyAdmin
from members.models import Channel
from members.normalize import validate_plausible_day

from . import dashboard, rfm
from .models import ClvFit, Dashboard, MemberScore, RfmThresholds
from .sql import MAX_WINDOW_DAYS, Scope


def csv_response(table: dict, filename: str) -> HttpResponse:
    out = io.StringIO()
    writer = spreadsheets.csv_writer(out)  # every cell formula-escaped
    writer.writerow([str(header) for header in table["headers"]])
    writer.writerows(["" if cell is None else cell for cell in row] for row in table["rows"])
    response = HttpResponse(("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _window(program, date_from, date_to):
    """The dashboard's days, (from, to): by default the last 30 whole days (the nightly snapshot's window)."""
    today = timezone.now().astimezone(ZoneInfo(program.time_zone)).date()
    date_to = date_to or today - dt.timedelta(days=1)
    return date_from or date_to - dt.timedelta(days=29), date_to


class DashboardFilterForm(forms.Form):
    program = forms.ModelChoiceField(
        label=gettext_lazy("Programme"), queryset=Program.objects.filter(is_active=True), required=False
    )
    channel = forms.ModelChoiceField(label=gettext_lazy("Channel"), queryset=Channel.objects.all(), required=False)
    tier = forms.CharField(label=gettext_lazy("Tier"), required=False)
    date_from = forms.DateField(
        label=gettext_lazy("From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[validate_plausible_day],
    )
    date_to = forms.DateField(
        label=gettext_lazy("To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[validate_plausible_day],
    )
    at_risk_below = forms.FloatField(
        label=gettext_lazy("At risk below P(alive)"), required=False, min_value=0, max_value=1, initial=0.3
    )

    def clean(self):
        data = super().clean()
        program = data.get("program") or Program.objects.filter(is_active=True).order_by("pk").first()
        data["program"] = program
        if program is not None and "date_from" in data and "date_to" in data:
            # The defaults put in before the window is checked, a lone date included.
            start, end = _window(program, data["date_from"], data["date_to"])
            data["date_from"], data["date_to"] = start, end
            if start > end:
                self.add_error("date_from", _("The start must be on or before the end."))
            elif (end - start).days >= MAX_WINDOW_DAYS:
                self.add_error("date_from", _("Choose at most ten years."))
        channel = data.get("channel")
        if program and channel and not ChannelProgram.objects.filter(channel=channel, program=program).exists():
            self.add_error("channel", _("This channel is not in the chosen programme."))
        tier = data.get("tier")
        if program and tier and not Tier.objects.filter(program=program, code=tier).exists():
            self.add_error("tier", _("The chosen programme has no tier with this code."))
        return data


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    """The dashboard in place of a list: KPI cards, charts and tables, each table exportable as CSV."""

    actions = None

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("analytics.view_dashboard")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path("", self.admin_site.admin_view(self.dashboard_view), name="analytics_dashboard_changelist"),
            path(
                "export/<slug:table>.csv",
                self.admin_site.admin_view(self.dashboard_view),
                name="analytics_dashboard_export",
            ),
        ]

    def dashboard_view(self, request, table=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        # Exports are a permission apart from viewing, as everywhere in the admin.
        if table is not None and not request.user.has_perm("analytics.export_dashboard"):
            raise PermissionDenied
        form = DashboardFilterForm(request.GET or None)
        valid = form.is_valid() if request.GET else True
        data = form.cleaned_data if request.GET and valid else {}
        program = data.get("program") if data else Program.objects.filter(is_active=True).order_by("pk").first()
        context = {
            **self.admin_site.each_context(request),
            "title": _("Analytics"),
            "opts": self.model._meta,
            "form": form,
            "program": program,
        }
        if program is None or not valid:
            return TemplateResponse(request, "admin/analytics/dashboard.html", context)
        date_from, date_to = _window(program, data.get("date_from"), data.get("date_to"))
        channel = data.get("channel")
        scope = Scope(
            program=program,
            date_from=date_from,
            date_to=date_to,
            channel_ids=[channel.pk] if channel else None,
            tier_code=data.get("tier") or None,
        )
        threshold = data.get("at_risk_below")
        built = dashboard.build(scope, at_risk_below=0.3 if threshold is None else threshold)
        if table is not None:
            if table not in built["tables"]:
                raise Http404
            return csv_response(built["tables"][table], f"{program.code}-{table}-{date_from}-{date_to}.csv")
        context.update(built)
        context.update(
            {
                "date_from": date_from,
                "date_to": date_to,
                "previous_from": date_from - dt.timedelta(days=(date_to - date_from).days + 1),
                "previous_to": date_from - dt.timedelta(days=1),
                "query": request.GET.urlencode(),
                "tiers": Tier.objects.filter(program=program).order_by("rank"),
            }
        )
        return TemplateResponse(request, "admin/analytics/dashboard.html", context)


@admin.register(RfmThresholds)
class RfmThresholdsAdmin(admin.ModelAdmin):
    list_display = [
        "program",
        "recency_days",
        "frequency_orders",
        "monetary_amounts",
        "window_days",
        "updated_at",
        "scored_at",
    ]
    readonly_fields = ["scored_at"]

    def get_readonly_fields(self, request, obj=None):
        # A programme's thresholds stay its own; back to the defaults by typing them (a deleted row would leave the
        # scores of the old thresholds looking current).
        return [*self.readonly_fields, "program"] if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        rfm.rfm_thresholds_save(obj)


@admin.register(ClvFit)
class ClvFitAdmin(ReadOnlyAdmin):
    list_display = [
        "as_of",
        "program",
        "members",
        "repeat_members",
        "r",
        "alpha",
        "a",
        "b",
        "bgnbd_log_likelihood",
        "bgnbd_converged",
        "p",
        "q",
        "v",
        "gamma_gamma_converged",
        "seconds",
    ]
    list_filter = ["program"]


@admin.register(MemberScore)
class MemberScoreAdmin(ReadOnlyAdmin):
    list_display = ["member", "program", "rfm", "rfm_as_of", "x", "p_alive", "clv", "value_so_far", "clv_as_of"]
    list_filter = ["program", "r", "f", "m"]
    list_select_related = ["member", "program"]
    search_fields = ["member__member_no", "rfm"]
    raw_id_fields = ["member"]


def _member_panels(*, member, request):
    panels = []
    for score in MemberScore.objects.filter(member=member).select_related("program"):
        rows = []
        if score.rfm:
            rows.append(
                (
                    "RFM",
                    _("%(code)s as of %(day)s: %(days)d days since the last order, %(orders)d orders, %(amount)s")
                    % {
                        "code": score.rfm,
                        "day": score.rfm_as_of,
                        "days": score.recency_days,
                        "orders": score.frequency,
                        "amount": score.monetary,
                    },
                )
            )
        if score.clv_as_of:
            rows.append(
                (
                    _("CLV"),
                    _(
                        "P(alive) %(p_alive).2f, %(purchases).2f purchases and %(clv)s expected in 52 weeks "
                        "(as of %(day)s)"
                    )
                    % {
                        "p_alive": score.p_alive,
                        "purchases": score.expected_purchases,
                        "clv": score.clv,
                        "day": score.clv_as_of,
                    },
                )
            )
        if rows:
            panels.append({"title": _("%(program)s · scores") % {"program": score.program.name}, "rows": rows})
    return panels


def _dashboard_cards(*, request):
    if not request.user.has_perm("analytics.view_dashboard"):
        return []
    return [
        {
            "title": _("Analytics"),
            "value": _("Dashboard"),
            "url": reverse("admin:analytics_dashboard_changelist"),
            "hint": _("KPIs, cohorts, RFM, CLV"),
        }
    ]


admin.site.member_panels.register(_member_panels)
admin.site.dashboard_cards.register(_dashboard_cards)
