"""What loyalty adds to the members' pages and the home page: the member page's panel, the home cards and the
"issue coupons" action of the member list, registered on the admin site in LoyaltyConfig.ready()."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.admin import MemberAdmin, action_form_page, chunked_ids
from members.models import Member

from .. import rewards, selectors
from ..models import (
    Account,
    Coupon,
    CouponTemplate,
    PointsTransaction,
    Program,
    Redemption,
    Tier,
)


def member_panels(*, member, request):
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
    panels += member_rewards_panels(member=member)
    return panels


def member_rewards_panels(*, member):
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
        issued = sum(
            rewards.coupons_issue_to_members(
                template=form.cleaned_data["template"], member_ids=ids, count=form.cleaned_data["quantity"]
            )
            for ids in chunked_ids(queryset.filter(status="active"))
        )
        skipped = queryset.count() - issued
        message = _("Coupons issued to %(count)d members.") % {"count": issued}
        if skipped:
            message += " " + _("%(count)d members are frozen or closed and got none.") % {"count": skipped}
        modeladmin.message_user(request, message, messages.SUCCESS)
        return None
    return action_form_page(modeladmin, request, queryset, form=form, title=_("Issue coupons"), action="issue_coupons")


issue_coupons.required_permission = "loyalty.add_coupon"


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
