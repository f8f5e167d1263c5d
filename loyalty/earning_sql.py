"""The earning path's SQL: the common order in one statement, and the account lock that reads the window spend in
the same round trip. Same rows as the general path in `earning.py` (tests/loyalty/test_earning_paths.py)."""

import functools

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext as _

from . import rules as rule_strategies
from . import spend
from .ledger import Kind, account_get_or_create, account_lock_or_create, repaid_sql
from .models import (
    Account,
    PointsLot,
    PointsTransaction,
    Tier,
)
from .program_config import program_config
from .tiers import tier_upgrade_if_qualified, window_start


def order_lines(order):
    return [
        rule_strategies.Line(sku=line.sku, amount=line.amount, category=line.category) for line in order.lines.all()
    ]


_ACCOUNT_FIELDS = [field.attname for field in Account._meta.concrete_fields]


@functools.cache
def _account_lock_sql(vendor_can_lock: bool) -> str:
    """SELECT the account row FOR UPDATE with its spend over one window, as raw SQL built once: this statement
    runs for every order, and compiling the equivalent queryset costs more than running it."""
    columns = ", ".join(f'a."{field.column}"' for field in Account._meta.concrete_fields)
    lock = " FOR UPDATE OF a" if vendor_can_lock else ""
    # Identifiers come from the model's metadata; values are parameters.
    return (
        f"SELECT {columns}, ({spend.member_spend_sql('a.member_id')}) "  # noqa: S608
        f"FROM loyalty_account a WHERE a.member_id = %s AND a.program_id = %s{lock}"
    )


def account_lock_for_order(order, program):
    """Lock the member's account and, in the same round trip, sum its spend over the tiers' window (when the
    tiers above the entry tier share one spend window). Returns (account, {window key: spend})."""
    config = program_config(program)
    keys = {(tier.metric, tier.window, tier.window_days) for tier in config["tiers"][1:]}
    if len(keys) != 1 or next(iter(keys))[0] != Tier.Metric.SPEND:
        return account_lock_or_create(member=order.member, program=program), {}
    start = window_start(program, config["tiers"][1], order.occurred_at)
    params = [program.pk, start, order.occurred_at, order.member_id, program.pk]
    sql = _account_lock_sql(connection.features.has_select_for_update_of)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        if row is None:  # the member's first earning in this programme
            account_get_or_create(member=order.member, program=program)
            cursor.execute(sql, params)
            row = cursor.fetchone()
    account = Account.from_db(connection.alias, _ACCOUNT_FIELDS, row[:-1])
    account.program = program
    account.tier = next(tier for tier in config["tiers"] if tier.pk == account.tier_id)
    return account, {next(iter(keys)): spend.as_amount(row[-1])}


FALL_BACK = object()


def earn_in_one_statement(order, program, rules):
    """The common order — an existing account, no bonus rule firing, points available at once, tiers on one spend
    window — in one statement: lock the account, pick the points of its tier, write the lot, the balance and the
    ledger row, and sum the window spend for the tier check. Anything else falls back to the general path."""
    tiers = program_config(program)["tiers"]
    windows = {(tier.metric, tier.window, tier.window_days) for tier in tiers[1:]}
    if len(windows) != 1 or next(iter(windows))[0] != Tier.Metric.SPEND:
        return FALL_BACK
    lines = order_lines(order) if any(rule.categories or rule.skus for rule in rules) else ()
    day = rule_strategies.local_date(program, order.occurred_at)
    earnings = {
        tier.pk: rule_strategies.earning_compute(
            program=program,
            tier=tier,
            rules=rules,
            amount=order.amount,
            lines=lines,
            channel_code=order.channel.code,
            store=order.store,
            day=day,
        )
        for tier in tiers
    }
    if any(earning.bonuses or earning.total <= 0 for earning in earnings.values()):
        return FALL_BACK
    now = timezone.now()
    expires_at = rule_strategies.expiry_for(program, now)
    reference = f"order:{order.order_id}"
    key = f"{order.channel_id}:order:{order.order_id}"
    cases = " ".join("WHEN %s THEN %s" for _tier in tiers)
    window_spend = spend.member_spend_sql("a.member_id")
    case_params = [value for tier in tiers for value in (tier.pk, earnings[tier.pk].total)]
    sql = (
        "WITH acc AS ("  # noqa: S608 - fixed SQL; the tier cases are placeholders, values are parameters
        f" SELECT a.id, a.balance, a.tier_id, CASE a.tier_id {cases} END AS points, ({window_spend}) AS spend"
        " FROM loyalty_account a WHERE a.member_id = %s AND a.program_id = %s FOR UPDATE OF a),"
        " new_lot AS ("
        "  INSERT INTO loyalty_pointslot (account_id, points, remaining, status, available_at, expires_at,"
        "  reference, created_at)"
        f"  SELECT acc.id, acc.points, acc.points - {repaid_sql('acc.points', 'acc.balance')}, %s,"
        "  %s, %s, %s, %s FROM acc RETURNING id, account_id, points),"
        " changed AS ("
        "  UPDATE loyalty_account a SET balance = a.balance + l.points,"
        "  lifetime_earned = a.lifetime_earned + l.points, updated_at = %s"
        "  FROM new_lot l WHERE a.id = l.account_id RETURNING a.id, a.balance),"
        " ledger AS ("
        "  INSERT INTO loyalty_pointstransaction (account_id, kind, points, balance_after, status, reference,"
        "  reason, idempotency_key, fingerprint, channel_id, order_id, lot_id, expires_at, created_at)"
        "  SELECT c.id, %s, l.points, c.balance, %s, %s, %s, %s, '', %s, %s, l.id, %s, %s"
        "  FROM changed c JOIN new_lot l ON l.account_id = c.id RETURNING id, balance_after)"
        " SELECT acc.id, acc.tier_id, acc.points, acc.spend, ledger.id, ledger.balance_after"
        " FROM acc CROSS JOIN ledger"
    )
    params = [
        *case_params,
        program.pk,
        window_start(program, tiers[1], order.occurred_at),
        order.occurred_at,
        order.member_id,
        program.pk,
        PointsLot.Status.AVAILABLE.value,
        now,
        expires_at,
        reference,
        now,
        now,
        Kind.EARN.value,
        PointsTransaction.Status.AVAILABLE.value,
        reference,
        _("Order %(order)s") % {"order": order.order_id},
        key,
        order.channel_id,
        order.pk,
        expires_at,
        now,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:  # no account yet: the general path creates it
        return FALL_BACK
    account_id, tier_id, points, window_spend, row_id, balance_after = found
    tier = next(tier for tier in tiers if tier.pk == tier_id)
    account = Account(pk=account_id, member_id=order.member_id, program=program, tier=tier, balance=balance_after)
    account._state.adding = False
    tier_upgrade_if_qualified(account, at=order.occurred_at, known={next(iter(windows)): spend.as_amount(window_spend)})
    return PointsTransaction(
        pk=row_id,
        account=account,
        kind=Kind.EARN,
        points=points,
        balance_after=balance_after,
        reference=reference,
        idempotency_key=key,
        channel=order.channel,
        order=order,
        expires_at=expires_at,
        created_at=now,
    )
