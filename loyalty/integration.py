"""Loyalty's answers to the members app's hooks (thin: each calls one service or selector)."""

import contextlib

from django.utils.translation import gettext as _

from . import badges, demo, rewards, selectors, services

ORDER_BADGES = {"first_order", "orders", "spend"}


def on_order_recorded(*, order, award=True):
    row = services.points_earn_for_order(order=order, award=award)
    program = services.program_for_channel(order.channel, required=False)
    # Badges cost queries only in programmes that have order badges (the configuration is cached per process).
    if award and program is not None and services.program_config(program)["badge_rules"] & ORDER_BADGES:
        account = row.account if row is not None else selectors.account_for(member=order.member, program=program)
        if account is not None:
            badges.badges_evaluate(account=account, rules=sorted(ORDER_BADGES))
    return row


def on_orders_imported(*, orders):
    return services.tiers_count_history(orders=orders)


def on_refund_recorded(*, refund, order):
    return services.points_reverse_for_refund(refund=refund, order=order)


def on_event_recorded(*, event):
    result = services.points_earn_for_event(event=event)
    program = services.program_for_channel(event.channel, required=False)
    if event.type == "review" and program is not None and "reviews" in services.program_config(program)["badge_rules"]:
        account = selectors.account_for(member=event.member, program=program)
        if account is not None:
            badges.badges_evaluate(account=account, rules=["reviews"])
    return result


def on_member_merged(*, kept, dropped):
    moved = services.accounts_merge(kept=kept, dropped=dropped)
    moved["coupons"] = rewards.coupons_move(from_member=dropped, to_member=kept)
    return moved


def member_loyalty_summary(*, members, channel=None):
    program = services.program_for_channel(channel, required=False) if channel is not None else None
    if program is None:
        return {}
    accounts = selectors.accounts_by_member(member_ids=[member.pk for member in members], program=program)
    entry = selectors.tiers_for(program).first()
    summary = {}
    for member in members:
        account = accounts.get(member.pk)
        tier = account.tier if account else entry
        summary[member.pk] = {
            "tier": {"code": tier.code, "name": tier.name} if tier else None,
            "points": {"balance": account.balance if account else 0, "pending": account.pending if account else 0},
        }
    return summary


def member_visibility(*, channel):
    """A partner channel sees its programme's members: those holding an account in it, those who joined through one
    of its channels, and those who bought in one (API.md: Authentication and scopes). A channel outside any
    programme sees the members who joined or bought through it."""
    from django.db.models import Exists, OuterRef, Q

    from members.models import Order

    from .models import Account, ChannelProgram

    program = services.program_for_channel(channel, required=False)
    if program is None:
        return Q(join_channel=channel) | Q(Exists(Order.objects.filter(member=OuterRef("pk"), channel=channel)))
    channels = ChannelProgram.objects.filter(program=program).values("channel_id")
    return (
        Q(Exists(Account.objects.filter(member=OuterRef("pk"), program=program)))
        | Q(join_channel__in=channels)
        | Q(Exists(Order.objects.filter(member=OuterRef("pk"), channel__in=channels)))
    )


def on_member_joined(*, member, channel=None):
    """A sign-up opens the member's account in the channel's programme (staff and imports: in the only programme,
    when there is exactly one), so the member is the programme's from the start."""
    from .errors import ProgramNotConfigured
    from .models import Program

    if channel is not None:
        program = services.program_for_channel(channel, required=False)
    else:
        programs = list(Program.objects.filter(is_active=True)[:2])
        program = programs[0] if len(programs) == 1 else None
    if program is None:
        return
    # A programme without tiers yet: the account opens with the first earning.
    with contextlib.suppress(ProgramNotConfigured):
        services.account_get_or_create(member=member, program=program)


def member_personal_data(*, member):
    return selectors.member_personal_data(member=member)


def member_tier_filter(*, queryset, tier_code, channel=None):
    program = services.program_for_channel(channel, required=False) if channel is not None else None
    if program is None:
        return queryset.none()
    entry = selectors.tiers_for(program).first()
    in_tier = queryset.filter(accounts__program=program, accounts__tier__code=tier_code)
    if entry is not None and entry.code == tier_code:
        # Members who never earned have no account yet and stand in the entry tier.
        return queryset.filter(pk__in=in_tier.values("pk")) | queryset.exclude(accounts__program=program)
    return in_tier


def seed_demo(*, stdout=None):
    demo.demo_program(stdout=stdout)


def program_changed(*, instance, **kwargs):
    services.program_touch(program_id=instance.program_id)


def on_members_imported(*, program_code=None, rows, actor=None):
    """Opening balances and tiers from the member import's `points_balance` and `tier` columns."""
    from members.errors import DomainError

    from .models import Program

    rows = [row for row in rows if row.get("points_balance") or row.get("tier")]
    if not rows:
        return []
    programs = Program.objects.filter(is_active=True)
    if program_code:
        programs = programs.filter(code=program_code)
    programs = list(programs[:2])
    if len(programs) != 1:
        message = _("Say which programme the points and tiers belong to (there are several, or none).")
        return [{"row": rows[0].get("row"), "column": "points_balance", "message": message}]
    try:
        services.opening_balances_record(program=programs[0], entries=rows, actor=actor)
    except DomainError as error:
        return [{"row": row.get("row"), "column": "tier", "message": error.message} for row in rows[:1]]
    return []


def on_channel_created(*, channel):
    """A new channel joins the programme when there is exactly one (the common case of one brand)."""
    from .models import ChannelProgram, Program

    programs = list(Program.objects.filter(is_active=True)[:2])
    if len(programs) == 1:
        ChannelProgram.objects.get_or_create(channel=channel, defaults={"program": programs[0]})


def on_demo_members_created(*, member_ids):
    """Demo members get the points and tier their demo orders would have earned (one point per unit, spend over
    the last year for the tier), as opening balances: set-based, whatever the number of members."""
    from decimal import Decimal

    from django.db.models import Sum
    from django.utils import timezone

    from members.models import Order

    from .models import Program

    program = Program.objects.filter(code="demo").first()
    if program is None:
        return
    tiers = list(program.tiers.order_by("-rank"))
    year_ago = timezone.now() - timezone.timedelta(days=365)
    spend = dict(
        Order.objects.filter(member_id__in=member_ids, occurred_at__gte=year_ago)
        .values("member_id")
        .annotate(total=Sum("amount"))
        .values_list("member_id", "total")
    )
    lifetime = dict(
        Order.objects.filter(member_id__in=member_ids)
        .values("member_id")
        .annotate(total=Sum("amount"))
        .values_list("member_id", "total")
    )
    entries = []
    for member_id in member_ids:
        year = spend.get(member_id) or Decimal(0)
        tier = next(t for t in tiers if year >= t.upgrade_threshold)
        entries.append({"member_id": member_id, "points_balance": int(lifetime.get(member_id) or 0), "tier": tier.code})
    for start in range(0, len(entries), 5000):
        services.opening_balances_record(program=program, entries=entries[start : start + 5000])
