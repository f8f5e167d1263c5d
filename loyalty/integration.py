"""Loyalty's answers to the members app's hooks (thin: each calls one service or selector)."""

from . import demo, selectors, services


def on_order_recorded(*, order, award=True):
    return services.points_earn_for_order(order=order, award=award)


def on_refund_recorded(*, refund, order):
    return services.points_reverse_for_refund(refund=refund, order=order)


def on_event_recorded(*, event):
    return services.points_earn_for_event(event=event)


def on_member_merged(*, kept, dropped):
    return services.accounts_merge(kept=kept, dropped=dropped)


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
