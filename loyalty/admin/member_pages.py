"""What loyalty adds to the members' pages and the home page: the member page's panel, the home cards and the
"issue coupons" action of the member list, registered on the admin site in LoyaltyConfig.ready()."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import rewards, selectors
from ..models import (
    Account,
    CouponTemplate,
    PointsTransaction,
    Program,
)


def member_panels(*, member, request):
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


def dashboard_cards(*, request):
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


# --- an action loyalty adds to the members list (members cannot import loyalty) --------------------------------


class IssueCouponsForm(forms.Form):
    template = forms.ModelChoiceField(CouponTemplate.objects.all(), label=gettext_lazy("coupon template"))
    quantity = forms.IntegerField(label=gettext_lazy("coupons per member"), min_value=1, max_value=10, initial=1)


@admin.action(description=gettext_lazy("Issue coupons to the selected members"))
def issue_coupons(modeladmin, request, queryset):
    # Offered only with this permission (MemberAdmin.get_actions reads `required_permission`), and checked again.
    if not request.user.has_perm(issue_coupons.required_permission):
        raise PermissionDenied
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


issue_coupons.required_permission = "loyalty.add_coupon"
