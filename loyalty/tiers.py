"""Tiers on the earning path and by hand: the qualifying value over a tier's window, the upgrade when an order
crosses a threshold, and a tier set by staff (the daily evaluation is set-based, in `jobs.py`)."""

import datetime as dt
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import insert_statement
from core.errors import ValidationFailed

from . import events, spend
from . import rules as rule_strategies
from .ledger import Kind, accounts_lock
from .models import (
    Account,
    Tier,
    TierChange,
)
from .program_config import program_config


def window_start(program, tier: Tier, at: dt.datetime) -> dt.datetime:
    if tier.window == Tier.Window.CALENDAR_YEAR:
        zone = rule_strategies.ZoneInfo(program.time_zone)
        return dt.datetime(at.astimezone(zone).year, 1, 1, tzinfo=zone)
    return at - dt.timedelta(days=tier.window_days)


def qualifying_value(*, account: Account, tier: Tier, at: dt.datetime) -> Decimal:
    """The tier's metric for this account over its window ending at `at` (spend net of refunds, orders, points)."""
    start = window_start(account.program, tier, at)
    if tier.metric == Tier.Metric.POINTS:
        total = account.transactions.filter(
            kind=Kind.EARN, order__isnull=False, created_at__gt=start, created_at__lte=at
        ).aggregate(value=Sum("points"))["value"]
        return Decimal(total or 0)
    if tier.metric == Tier.Metric.ORDERS:
        return Decimal(
            spend.member_orders(member_id=account.member_id, program_id=account.program_id, start=start, end=at)
        )
    return spend.member_spend(member_id=account.member_id, program_id=account.program_id, start=start, end=at)


def _higher_tiers(account):
    return [tier for tier in reversed(program_config(account.program)["tiers"]) if tier.rank > account.tier.rank]


def tier_upgrade_if_qualified(account: Account, *, at: dt.datetime, actor=None, known=None) -> TierChange | None:
    """Upgrade at once to the highest tier whose upgrade threshold the account now reaches.
    `known` holds qualifying values already computed, by (metric, window, window_days)."""
    higher = _higher_tiers(account)
    if not higher:
        return None
    values = dict(known or {})
    for tier in higher:
        key = (tier.metric, tier.window, tier.window_days)
        if key not in values:
            values[key] = qualifying_value(account=account, tier=tier, at=at)
        if values[key] >= tier.upgrade_threshold:
            return tier_move(account, tier, reason=TierChange.Reason.UPGRADE, value=values[key], actor=actor)
    return None


def tier_move(account, tier, *, reason, value=None, note="", actor=None, hold_until=None) -> TierChange:
    """Move the account (locked by the caller) to `tier` and record why: on PostgreSQL in one statement, as an
    upgrade happens on the earning path."""
    now = timezone.now()
    change = TierChange(
        account=account,
        from_tier=account.tier,
        to_tier=tier,
        reason=reason,
        metric_value=value,
        note=note,
        actor=actor,
        created_at=now,
    )
    account.tier, account.tier_since = tier, now
    fields = ["tier", "tier_since", "updated_at"]
    if reason == TierChange.Reason.MANUAL:
        account.tier_hold_until = hold_until
        fields.append("tier_hold_until")
    if connection.vendor != "postgresql":
        change.save(force_insert=True)
        account.save(update_fields=fields)
        events.tier_changed.send(change=change)
        return change
    insert_sql, insert_params = insert_statement(change)
    account.updated_at = now
    assignments = ", ".join(f"{Account._meta.get_field(name).column} = %s" for name in fields)
    values = [getattr(account, Account._meta.get_field(name).attname) for name in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH change AS ({insert_sql} RETURNING id) "  # noqa: S608 - columns from the model; values are parameters
            f"UPDATE loyalty_account SET {assignments} WHERE id = %s RETURNING (SELECT id FROM change)",
            [*insert_params, *values, account.pk],
        )
        change.pk = cursor.fetchone()[0]
    change._state.adding = False
    events.tier_changed.send(change=change)
    return change


@transaction.atomic
def tier_set(*, account: Account, tier: Tier, reason: str, hold_until: dt.date | None = None, actor=None) -> TierChange:
    """Staff set a tier by hand, with a reason and an optional date until which evaluation keeps it."""
    if tier.program_id != account.program_id:
        raise ValidationFailed(fields={"tier": [_("This tier belongs to another programme.")]})
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": [_("Say why the tier is set by hand.")]})
    account = accounts_lock(account.pk)[account.pk]
    return tier_move(account, tier, reason=TierChange.Reason.MANUAL, note=reason, actor=actor, hold_until=hold_until)
