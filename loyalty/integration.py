"""Loyalty's handlers for the members app's domain events and extension points (thin: each calls one service or
selector)."""

import contextlib

from django.utils.translation import gettext as _

from members.models import Event

from . import badges, demo, earning, history, ledger, opening, program_config, refunds, rewards, selectors

ORDER_BADGES = badges.badge_rules.keys(triggered_by="order")
REVIEW_BADGES = badges.badge_rules.keys(triggered_by="review")


def on_order_recorded(*, order, award=True):
    row = earning.points_earn_for_order(order=order, award=award)
    program = program_config.program_for_channel(order.channel, required=False)
    # Badges cost queries only in programmes that have order badges (the configuration is cached per process).
    if award and program is not None and program_config.program_config(program)["badge_rules"] & ORDER_BADGES:
        account = row.account if row is not None else selectors.account_for(member=order.member, program=program)
        if account is not None:
            badges.badges_evaluate(account=account, rules=sorted(ORDER_BADGES))
    return row


def on_orders_importing(*, orders, first=False):
    if orders is None:
        return history.tiers_prepared_sums()
    return history.tiers_prepare_history_part(orders=orders, first=first)


def on_orders_imported(*, orders, prepared=()):
    return history.tiers_count_history(orders=orders, prepared=prepared)


def on_refund_recorded(*, refund, order):
    return refunds.points_reverse_for_refund(refund=refund, order=order)


def on_event_recorded(*, event):
    result = earning.points_earn_for_event(event=event)
    program = program_config.program_for_channel(event.channel, required=False)
    if (
        event.type == Event.Type.REVIEW
        and program is not None
        and program_config.program_config(program)["badge_rules"] & REVIEW_BADGES
    ):
        account = selectors.account_for(member=event.member, program=program)
        if account is not None:
            badges.badges_evaluate(account=account, rules=sorted(REVIEW_BADGES))
    return result


def on_member_merged(*, kept, dropped):
    moved = ledger.accounts_merge(kept=kept, dropped=dropped)
    moved["coupons"] = rewards.coupons_move(from_member=dropped, to_member=kept)
    return moved


def member_compare_rows(*, keep, drop):
    """Tier and points of both members in each programme, for the merge page."""
    accounts = selectors.accounts_of_members(member_ids=[keep.pk, drop.pk])
    rows = []
    for program in sorted({account.program for account in accounts.values()}, key=lambda program: program.pk):
        kept, dropped = accounts.get((keep.pk, program.pk)), accounts.get((drop.pk, program.pk))
        rows.append(
            (
                _("tier · %(program)s") % {"program": program.name},
                kept.tier.name if kept else "–",
                dropped.tier.name if dropped else "–",
            )
        )
        rows.append(
            (
                _("points balance · %(program)s") % {"program": program.name},
                kept.balance if kept else 0,
                dropped.balance if dropped else 0,
            )
        )
    return rows


def member_loyalty_summary(*, members, channel=None):
    program = program_config.program_for_channel(channel, required=False) if channel is not None else None
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

    program = program_config.program_for_channel(channel, required=False)
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
        program = program_config.program_for_channel(channel, required=False)
    else:
        programs = list(Program.objects.filter(is_active=True)[:2])
        program = programs[0] if len(programs) == 1 else None
    if program is None:
        return
    # A programme without tiers yet: the account opens with the first earning.
    with contextlib.suppress(ProgramNotConfigured):
        ledger.account_get_or_create(member=member, program=program)


def member_personal_data(*, member):
    return selectors.member_personal_data(member=member)


def member_tier_filter(*, queryset, tier_code, channel=None):
    program = program_config.program_for_channel(channel, required=False) if channel is not None else None
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
    program_config.program_touch(program_id=instance.program_id)


def on_members_imported(*, program_code=None, rows, actor=None):
    """Opening balances and tiers from the member import's `points_balance` and `tier` columns."""
    from core.errors import DomainError

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
        opening.opening_balances_record(program=programs[0], entries=rows, actor=actor)
    except DomainError as error:
        return [{"row": row.get("row"), "column": "tier", "message": error.message} for row in rows[:1]]
    return []


def on_members_joined(*, member_ids, program_code=None):
    """Every member of a programme has an account in its entry tier, however they arrived."""
    from .models import Program

    program = Program.objects.filter(code=program_code).first() if program_code else None
    ledger.accounts_open(member_ids=member_ids, program=program)


def on_members_import_checked(*, program_code=None, rows):
    """The member import's points and tiers: the programme they go to, each tier matched by its code or name (a
    row with an unknown one is an error), and which known members would change (an opening balance is brought
    over once per member)."""
    from .models import Program

    programs = Program.objects.filter(is_active=True)
    if program_code:
        programs = programs.filter(code=program_code)
    programs = list(programs[:2])
    if len(programs) != 1:
        message = _("Say which programme the points and tiers belong to (there are several, or none).")
        return [{"row": row["row"], "error": ("points_balance", message)} for row in rows]
    program = programs[0]
    tiers = selectors.tiers_for(program)
    by_text = {}
    for tier in tiers:
        for text in (tier.code, tier.name, tier.name_en):
            if text:
                by_text.setdefault(text.strip().lower(), tier.code)
    known = [row["member_id"] for row in rows if row["member_id"] is not None]
    opened = selectors.members_with_opening_balance(program=program, member_ids=known)
    current = selectors.account_tier_codes(program=program, member_ids=known)
    answers = []
    for row in rows:
        answer = {"row": row["row"]}
        code = None
        if row["tier"]:
            code = by_text.get(str(row["tier"]).strip().lower())
            if code is None:
                answer["error"] = (
                    "tier",
                    _("Unknown tier %(tier)s. This programme has: %(known)s.")
                    % {"tier": row["tier"], "known": ", ".join(f"{tier.name} ({tier.code})" for tier in tiers)},
                )
                answers.append(answer)
                continue
            answer["tier"] = code
        if row["member_id"] is not None and row["member_id"] not in opened:
            answer["changes"] = [
                *(["points_balance"] if row["points_balance"] else []),
                *(["tier"] if code and code != current.get(row["member_id"]) else []),
            ]
        answers.append(answer)
    return answers


def on_channel_created(*, channel):
    """A new channel joins the programme when there is exactly one (the common case of one brand)."""
    from .models import ChannelProgram, Program

    programs = list(Program.objects.filter(is_active=True)[:2])
    if len(programs) == 1:
        ChannelProgram.objects.get_or_create(channel=channel, defaults={"program": programs[0]})


def on_demo_members_created(*, member_ids):
    demo.demo_members_standing(member_ids=member_ids)
