"""Points for orders (with referrals) and for behaviour events, by the programme's earning rules (called through
members' domain events)."""

import datetime as dt

from django.db import connection, transaction
from django.utils.translation import gettext as _

from members.models import Member, Order

from . import rules as rule_strategies
from .earning_sql import FALL_BACK, account_lock_for_order, earn_in_one_statement, order_lines
from .ledger import Kind, account_get_or_create, account_lock_or_create, accounts_lock, credit
from .models import (
    EarningRule,
    PointsTransaction,
    RuleApplication,
)
from .program_config import program_config, program_for_channel
from .tiers import tier_upgrade_if_qualified


def _order_rules(program):
    return [rule for rule in program_config(program)["rules"] if rule.kind in ("order", "referral")]


def _referral_account(order, program):
    """The referrer's account when this is the referred member's first order in the programme."""
    referrer_id = order.member.referrer_id
    if referrer_id is None:
        return None
    earlier = Order.objects.filter(member_id=order.member_id, channel__program_link__program=program).exclude(
        pk=order.pk
    )
    if earlier.exists():
        return None
    referrer = Member.objects.get(pk=referrer_id)
    if referrer.status != Member.Status.ACTIVE:
        return None
    return account_get_or_create(member=referrer, program=program)


@transaction.atomic(savepoint=False)
def points_earn_for_order(*, order: Order, award: bool = True, one_statement: bool = True) -> PointsTransaction | None:
    """An order earns base points at the member's current tier plus the order rules' bonuses; then the tier is
    checked (the order that crosses a threshold earns at the old tier's multiplier).

    On PostgreSQL the common order takes one statement (`earning_sql`); `one_statement=False` takes the general
    path, which writes the same rows (tests compare the two)."""
    program = program_for_channel(order.channel, required=False)
    if program is None:
        return None
    rules = _order_rules(program) if award else []
    referral_rules = [rule for rule in rules if rule.kind == EarningRule.Kind.REFERRAL]
    referrer_account = _referral_account(order, program) if referral_rules else None
    if (
        one_statement
        and award
        and referrer_account is None
        and not program.pending_days
        and connection.vendor == "postgresql"
    ):
        earned = earn_in_one_statement(order, program, rules)
        if earned is not FALL_BACK:
            return earned
    known = {}
    if referrer_account is None:
        account, known = account_lock_for_order(order, program)
    else:
        account = account_get_or_create(member=order.member, program=program)
        locked = accounts_lock(account.pk, referrer_account.pk)
        account, referrer_account = locked[account.pk], locked[referrer_account.pk]
    transaction_row = None
    if award:
        day = rule_strategies.local_date(program, order.occurred_at)
        earning = rule_strategies.earning_compute(
            program=program,
            tier=account.tier,
            rules=rules,
            amount=order.amount,
            lines=order_lines(order) if any(rule.categories or rule.skus for rule in rules) else (),
            channel_code=order.channel.code,
            store=order.store,
            day=day,
        )
        if earning.total > 0:
            transaction_row = credit(
                account,
                earning.total,
                kind=Kind.EARN,
                pending_days=program.pending_days,
                reference=f"order:{order.order_id}",
                reason=_("Order %(order)s") % {"order": order.order_id},
                key=f"{order.channel_id}:order:{order.order_id}",
                channel=order.channel,
                order=order,
            )
            RuleApplication.objects.bulk_create(
                RuleApplication(
                    rule=rule,
                    account=account,
                    transaction=transaction_row,
                    points=points,
                    occurred_at=order.occurred_at,
                )
                for rule, points in earning.bonuses
            )
    tier_upgrade_if_qualified(account, at=order.occurred_at, known=known)
    if referrer_account is not None:
        _referral_reward(referrer_account, referral_rules, order, referred_account=account)
    return transaction_row


def _referral_reward(referrer_account, referral_rules, order, *, referred_account):
    """The referrer's reward (within the rule's cap, e.g. per month) and the referred member's welcome bonus."""
    program = referrer_account.program
    day = rule_strategies.local_date(program, order.occurred_at)
    for rule in referral_rules:
        if not rule_strategies.earning_rule_types.get(rule.kind).rewards_referral(rule, day):
            continue
        if _limit_reached(rule, referrer_account, order.occurred_at):
            RuleApplication.objects.create(
                rule=rule, account=referrer_account, points=0, capped=True, occurred_at=order.occurred_at
            )
            continue
        row = credit(
            referrer_account,
            rule.points,
            kind=Kind.EARN,
            reference=f"referral:{order.member.member_no}",
            reason=_("Referral: first order of %(member)s") % {"member": order.member.member_no},
            key=f"referral:{program.pk}:{order.member_id}:{rule.pk}",
            channel=order.channel,
        )
        RuleApplication.objects.create(
            rule=rule, account=referrer_account, transaction=row, points=rule.points, occurred_at=order.occurred_at
        )
        if rule.welcome_points:
            credit(
                referred_account,
                rule.welcome_points,
                kind=Kind.EARN,
                reference=f"welcome:{order.member.member_no}",
                reason=_("Welcome bonus: referred by %(member)s") % {"member": referrer_account.member_id},
                key=f"welcome:{program.pk}:{order.member_id}:{rule.pk}",
                channel=order.channel,
            )


def _limit_reached(rule, account, at) -> bool:
    if not rule.limit_count:
        return False
    applications = RuleApplication.objects.filter(rule=rule, account=account, capped=False)
    start = rule_strategies.period_start(account.program, rule.limit_period, at)
    if start is not None:
        end = start + _period_length(rule.limit_period, start)
        applications = applications.filter(occurred_at__gte=start, occurred_at__lt=end)
    return applications.count() >= rule.limit_count


def _period_length(period, start):
    if period == "day":
        return dt.timedelta(days=1)
    if period == "week":
        return dt.timedelta(days=7)
    if period == "month":
        following = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return following - start
    return start.replace(year=start.year + 1) - start


@transaction.atomic(savepoint=False)
def points_earn_for_event(*, event) -> dict:
    """Points for a behaviour event by the event rules, within each rule's limit per member and period."""
    program = program_for_channel(event.channel, required=False)
    if program is None:
        return {"points": 0, "capped": False}
    day = rule_strategies.local_date(program, event.occurred_at)
    facts = rule_strategies.EventFacts(type=event.type, name=event.name, channel_code=event.channel.code, day=day)
    matching = [
        rule
        for rule in program_config(program)["rules"]
        if rule_strategies.earning_rule_types.get(rule.kind).matches_event(rule, facts)
    ]
    if not matching:
        return {"points": 0, "capped": False}
    account = account_lock_or_create(member=event.member, program=program)
    granted, capped = [], []
    for rule in matching:
        (capped if _limit_reached(rule, account, event.occurred_at) else granted).append(rule)
    row = None
    total = sum(rule.points for rule in granted)
    if total > 0:
        row = credit(
            account,
            total,
            kind=Kind.EARN,
            pending_days=0,
            reference=f"event:{event.event_id}",
            reason=_("Event %(type)s") % {"type": event.get_type_display()},
            key=f"{event.channel_id}:event:{event.event_id}",
            channel=event.channel,
            event=event,
        )
    RuleApplication.objects.bulk_create(
        [
            RuleApplication(
                rule=rule,
                account=account,
                transaction=row,
                event=event,
                points=rule.points,
                occurred_at=event.occurred_at,
            )
            for rule in granted
        ]
        + [
            RuleApplication(
                rule=rule, account=account, event=event, points=0, capped=True, occurred_at=event.occurred_at
            )
            for rule in capped
        ]
    )
    return {"points": total, "capped": bool(capped)}
