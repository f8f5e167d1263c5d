"""What a campaign earned, as API.md defines it: per group (the control and each variant, compared as drawn) the
members, sent, converted (an order within `conversion_days` after `sent_at`), conversion rate and revenue; for each
variant the uplift over the control with the pooled two-proportion z-test's two-sided p-value and the 95% interval
from the unpooled standard error."""

import dataclasses
import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DecimalField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from loyalty.models import ChannelProgram
from members.models import Order

from .models import Campaign, Message, Recipient

FOUR = Decimal("0.0001")
Z95 = 1.96


def _four(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(FOUR, rounding=ROUND_HALF_UP)


@dataclasses.dataclass
class Uplift:
    absolute: Decimal
    relative: Decimal | None
    p_value: Decimal | None
    ci95: list


def uplift(*, converted: int, members: int, control_converted: int, control_members: int) -> Uplift | None:
    """Variant vs control. None when either group is empty."""
    if not members or not control_members:
        return None
    rate, base = converted / members, control_converted / control_members
    absolute = rate - base
    pooled = (converted + control_converted) / (members + control_members)
    pooled_error = math.sqrt(pooled * (1 - pooled) * (1 / members + 1 / control_members))
    p_value = math.erfc(abs(absolute / pooled_error) / math.sqrt(2)) if pooled_error else None
    error = math.sqrt(rate * (1 - rate) / members + base * (1 - base) / control_members)
    return Uplift(
        absolute=_four(absolute),
        relative=_four(absolute / base) if base else None,
        p_value=_four(p_value) if p_value is not None else None,
        ci95=[_four(absolute - Z95 * error), _four(absolute + Z95 * error)],
    )


def campaign_results(*, campaign: Campaign) -> dict:
    """Two grouped queries: the outcomes of the messages, and the orders of the window per group."""
    statuses = {
        (row["variant"], row["status"], row["reason"]): row["n"]
        for row in Message.objects.filter(campaign=campaign)
        .values("variant", "status", "reason")
        .annotate(n=Count("id"))
        .order_by()
    }
    groups = {}
    if campaign.sent_at:
        end = campaign.sent_at + dt.timedelta(days=campaign.conversion_days)
        revenue = (
            Order.objects.filter(
                member_id=OuterRef("member_id"),
                channel_id__in=ChannelProgram.objects.filter(program_id=campaign.program_id).values("channel_id"),
                occurred_at__gte=campaign.sent_at,
                occurred_at__lt=end,
            )
            .order_by()
            .values("member_id")
            .annotate(total=Sum("amount"))
            .values("total")
        )
        money = DecimalField(max_digits=16, decimal_places=2)
        for row in (
            Recipient.objects.filter(campaign=campaign)
            .annotate(revenue=Subquery(revenue, output_field=money))
            .values("group")
            .annotate(
                members=Count("id"),
                converted=Count("id", filter=Q(revenue__isnull=False)),
                revenue_total=Coalesce(Sum("revenue"), Value(Decimal(0)), output_field=money),
            )
            .order_by()
        ):
            groups[row["group"]] = row
    control = groups.get(Recipient.CONTROL, {"members": 0, "converted": 0, "revenue_total": Decimal(0)})

    def summary(row):
        members = row["members"]
        return {
            "members": members,
            "converted": row["converted"],
            "conversion_rate": _four(row["converted"] / members) if members else None,
            "revenue": Decimal(row["revenue_total"]).quantize(Decimal("0.01")),
        }

    variants = []
    for variant in campaign.variants.order_by("code"):
        row = groups.get(variant.code, {"members": 0, "converted": 0, "revenue_total": Decimal(0)})
        lift = uplift(
            converted=row["converted"],
            members=row["members"],
            control_converted=control["converted"],
            control_members=control["members"],
        )
        variants.append(
            {
                "code": variant.code,
                **summary(row),
                "sent": statuses.get((variant.code, Message.Status.SENT, ""), 0),
                "uplift": dataclasses.asdict(lift) if lift else None,
            }
        )
    skipped = {}
    for (_variant, status, reason), count in statuses.items():
        if status == Message.Status.SKIPPED:
            skipped[reason] = skipped.get(reason, 0) + count
    return {
        "code": campaign.code,
        "name": campaign.name,
        "status": campaign.status,
        "sent_at": campaign.sent_at,
        "audience": sum(row["members"] for row in groups.values()),
        "sent": sum(count for (_v, status, _r), count in statuses.items() if status == Message.Status.SENT),
        "skipped": {"no_consent": 0, "frequency_cap": 0, **skipped},
        "failed": sum(count for (_v, status, _r), count in statuses.items() if status == Message.Status.FAILED),
        "queued": sum(count for (_v, status, _r), count in statuses.items() if status == Message.Status.QUEUED),
        "control": summary(control),
        "variants": variants,
    }


def results_sentence(variant: dict, control: dict) -> str:
    """The uplift in a plain sentence: "variant B converted 2.1 points better than the control; this is unlikely to
    be chance (p = 0.003)"."""
    lift = variant.get("uplift")
    if not lift or lift["p_value"] is None:
        return _("Variant %(code)s cannot be compared with the control yet.") % {"code": variant["code"]}
    points = abs(lift["absolute"]) * 100
    p_value = Decimal(lift["p_value"]).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    values = {"code": variant["code"], "points": f"{points:.1f}", "p": f"{p_value}"}
    if lift["absolute"] >= 0:
        text = _("Variant %(code)s converted %(points)s points better than the control") % values
    else:
        text = _("Variant %(code)s converted %(points)s points worse than the control") % values
    if lift["p_value"] < Decimal("0.05"):
        return text + _("; this is unlikely to be chance (p = %(p)s).") % values
    return text + _("; this could well be chance (p = %(p)s).") % values
