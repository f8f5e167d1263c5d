"""Every write of the loyalty app. Each balance change is a ledger row written in the same transaction, under a
row lock on the account (`select_for_update`, accounts locked in primary-key order)."""

import datetime as dt
import functools
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from members import services as member_services
from members.db import insert_statement
from members.errors import IdempotencyConflict, ValidationFailed
from members.models import Member, Order
from members.services import payload_fingerprint

from . import rules as rule_strategies
from .errors import InsufficientPoints, ProgramNotConfigured
from .models import (
    Account,
    ChannelProgram,
    EarningRule,
    PointsLot,
    PointsTransaction,
    Program,
    RuleApplication,
    Tier,
    TierChange,
)

Kind = PointsTransaction.Kind


def program_for_channel(channel, *, required=True) -> Program | None:
    # Remembered on the channel instance, which lives for one request or one task: one query per request.
    if not hasattr(channel, "_loyalty_program"):
        link = ChannelProgram.objects.select_related("program").filter(channel=channel).first()
        channel._loyalty_program = link.program if link else None
    if channel._loyalty_program is None and required:
        raise ProgramNotConfigured()
    return channel._loyalty_program


def program_limits_check(*, program: Program, kind: str, occurred_at=None, amount=None, now=None) -> None:
    """Refuse what a partner sends outside the programme's limits, before anything is recorded: an order's or an
    event's time (`kind` "order" or "event") too old or in the future beyond the clock skew, an order's or a
    refund's amount above the ceiling. The partner writes below call it; the order import (staff loading history)
    does not."""
    now = now or timezone.now()
    fields = {}
    if occurred_at is not None:
        days = program.order_max_age_days if kind == "order" else program.event_max_age_days
        if occurred_at < now - dt.timedelta(days=days):
            fields["occurred_at"] = [
                _("More than %(days)d days ago: this programme does not accept it.") % {"days": days}
            ]
        elif occurred_at > now + dt.timedelta(minutes=program.future_skew_minutes):
            fields["occurred_at"] = [
                _("In the future: at most %(minutes)d minutes ahead of the server's clock are accepted.")
                % {"minutes": program.future_skew_minutes}
            ]
    if amount is not None and amount > program.max_order_amount:
        fields["amount"] = [
            _("Above this programme's maximum of %(max)s per order.") % {"max": program.max_order_amount}
        ]
    if fields:
        raise ValidationFailed(fields=fields)


@transaction.atomic
def partner_order_record(*, channel, member: Member, amount: Decimal, occurred_at: dt.datetime, **order):
    """A partner's order (POST /orders/): within the programme's limits, then recorded (and earned) once."""
    program_limits_check(program=program_for_channel(channel), kind="order", occurred_at=occurred_at, amount=amount)
    return member_services.order_record(channel=channel, member=member, amount=amount, occurred_at=occurred_at, **order)


@transaction.atomic
def partner_refund_record(*, channel, order: Order, amount: Decimal, **refund):
    """A partner's refund (POST /orders/{id}/refunds/): within the programme's amount limit, then recorded."""
    program_limits_check(program=program_for_channel(channel), kind="refund", amount=amount)
    return member_services.refund_record(channel=channel, order=order, amount=amount, **refund)


@transaction.atomic
def partner_event_record(*, channel, member: Member, occurred_at: dt.datetime, **event):
    """A partner's event (POST /events/): within the programme's limits, then recorded (and earned) once."""
    program_limits_check(program=program_for_channel(channel), kind="event", occurred_at=occurred_at)
    return member_services.event_record(channel=channel, member=member, occurred_at=occurred_at, **event)


def _entry_tier(program) -> Tier:
    tiers = program_config(program)["tiers"]
    tier = tiers[0] if tiers else None
    if tier is None:
        raise ProgramNotConfigured(_("Programme %(program)s has no tiers yet.") % {"program": program.code})
    return tier


def account_lock_or_create(*, member: Member, program: Program) -> Account:
    """The member's account in the programme, locked for this transaction (created on the first earning)."""
    # of=("self",): lock the account row only, never the programme or tier rows joined to it (that would make
    # every earning in the programme wait on one row).
    query = Account.objects.select_for_update(of=("self",)).select_related("program", "tier")
    account = query.filter(member=member, program=program).first()
    if account is None:
        account = query.get(pk=account_get_or_create(member=member, program=program).pk)
    return account


def account_get_or_create(*, member: Member, program: Program) -> Account:
    account = Account.objects.filter(member=member, program=program).first()
    if account is not None:
        return account
    now = timezone.now()
    tier = _entry_tier(program)
    try:
        with transaction.atomic():
            account = Account.objects.create(member=member, program=program, tier=tier, tier_since=now)
            TierChange.objects.create(account=account, to_tier=tier, reason=TierChange.Reason.JOINED, created_at=now)
    except IntegrityError:
        account = Account.objects.get(member=member, program=program)
    return account


def accounts_lock(*account_ids) -> dict[int, Account]:
    """Lock accounts in primary-key order (so two writers never wait on each other in a cycle)."""
    ids = sorted({pk for pk in account_ids if pk is not None})
    return {
        account.pk: account
        for account in Account.objects.select_for_update(of=("self",))
        .select_related("program", "tier")
        .filter(pk__in=ids)
        .order_by("pk")
    }


# --- the ledger's two primitives -----------------------------------------------------------------------------------


def _credit(
    account: Account,
    points: int,
    *,
    kind: str,
    at: dt.datetime | None = None,
    pending_days: int = 0,
    reference: str = "",
    reason: str = "",
    key: str | None = None,
    fingerprint: str = "",
    channel=None,
    order=None,
    event=None,
    actor=None,
    expires_at: dt.datetime | None = None,
    earned: bool = True,
) -> PointsTransaction:
    """Add `points` (> 0) as a new lot; pending for `pending_days`. A negative balance (debt) is repaid first.
    `earned=False` gives back points that were spent (a cancelled redemption): lifetime spent goes down instead of
    lifetime earned going up. The caller holds the account's lock and saves nothing else on it."""
    now = timezone.now()
    available_at = (at or now) + dt.timedelta(days=pending_days)
    pending = pending_days > 0 and available_at > now
    if not pending:
        available_at = min(available_at, now)
    if expires_at is None:
        expires_at = rule_strategies.expiry_for(account.program, available_at)
    repaid = 0 if pending else rule_strategies.debt_repaid(balance=account.balance, points=points)
    lot = PointsLot(
        account=account,
        points=points,
        remaining=points - repaid,
        status=PointsLot.Status.PENDING if pending else PointsLot.Status.AVAILABLE,
        available_at=available_at,
        expires_at=expires_at,
        reference=reference,
        created_at=now,
    )
    if pending:
        account.pending += points
        fields = ["pending"]
    elif earned:
        account.balance += points
        account.lifetime_earned += points
        fields = ["balance", "lifetime_earned"]
    else:
        account.balance += points
        account.lifetime_spent -= points
        fields = ["balance", "lifetime_spent"]
    account.updated_at = now
    row = PointsTransaction(
        account=account,
        kind=kind,
        points=points,
        balance_after=account.balance,
        status=PointsTransaction.Status.PENDING if pending else PointsTransaction.Status.AVAILABLE,
        reference=reference,
        reason=reason,
        idempotency_key=key,
        fingerprint=fingerprint,
        channel=channel,
        order=order,
        event=event,
        actor=actor,
        expires_at=expires_at,
        created_at=now,
    )
    if connection.vendor == "postgresql":
        _write_credit_in_one_statement(account, fields, lot, row)
    else:
        lot.save(force_insert=True)
        account.save(update_fields=[*fields, "updated_at"])
        row.lot = lot
        row.save(force_insert=True)
    return row


def _write_credit_in_one_statement(account, fields, lot, row):
    """The lot, the account and the ledger row in one round trip (a data-modifying CTE): earning is the hot path,
    and each round trip costs more than the work. Same rows as the ORM path on other databases."""
    lot_sql, lot_params = insert_statement(lot)
    row_sql, row_params = insert_statement(row, expressions={"lot": "(SELECT id FROM new_lot)"})
    assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in [*fields, "updated_at"])
    account_params = [getattr(account, name) for name in fields] + [account.updated_at, account.pk]
    # Identifiers come from the models' metadata and values go as parameters: nothing here is user input.
    sql = (
        f"WITH new_lot AS ({lot_sql} RETURNING id), "  # noqa: S608
        f"changed AS (UPDATE loyalty_account SET {assignments} WHERE id = %s RETURNING id) "
        f"{row_sql} RETURNING id, lot_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*lot_params, *account_params, *row_params])
        row.pk, lot.pk = cursor.fetchone()
    row.lot = lot


def _take_from_lots(account: Account, points: int, *, first_lot_id: int | None = None) -> int:
    """Take up to `points` from the account's available lots, soonest-expiring first (or `first_lot_id` first).
    Returns how many were found."""
    lots = list(
        PointsLot.objects.filter(account=account, status=PointsLot.Status.AVAILABLE, remaining__gt=0).order_by(
            F("expires_at").asc(nulls_last=True), "id"
        )
    )
    if first_lot_id is not None:
        lots.sort(key=lambda lot: lot.pk != first_lot_id)
    taken, changed = 0, []
    for lot in lots:
        if taken == points:
            break
        take = min(lot.remaining, points - taken)
        lot.remaining -= take
        if lot.remaining == 0:
            lot.status = PointsLot.Status.SPENT
        taken += take
        changed.append(lot)
    PointsLot.objects.bulk_update(changed, ["remaining", "status"])
    return taken


def _debit(
    account: Account,
    points: int,
    *,
    kind: str,
    allow_negative: bool = False,
    reference: str = "",
    reason: str = "",
    key: str | None = None,
    fingerprint: str = "",
    channel=None,
    order=None,
    actor=None,
    first_lot_id: int | None = None,
) -> PointsTransaction:
    """Take `points` (> 0) from the balance, soonest-expiring lots first. Refused when the balance does not cover
    it, unless `allow_negative` (a reversal is always recorded in full)."""
    if not allow_negative and account.balance < points:
        raise InsufficientPoints(
            _("The balance is %(balance)d points; %(points)d are needed.")
            % {"balance": account.balance, "points": points},
            balance=account.balance,
        )
    if account.balance > 0:
        _take_from_lots(account, min(points, account.balance), first_lot_id=first_lot_id)
    account.balance -= points
    fields = ["balance"]
    if kind == Kind.REDEEM:
        account.lifetime_spent += points
        fields.append("lifetime_spent")
    account.save(update_fields=[*fields, "updated_at"])
    return PointsTransaction.objects.create(
        account=account,
        kind=kind,
        points=-points,
        balance_after=account.balance,
        reference=reference,
        reason=reason,
        idempotency_key=key,
        fingerprint=fingerprint,
        channel=channel,
        order=order,
        actor=actor,
    )


def points_spend(*, account: Account, points: int, reference: str, reason: str = "", key=None, channel=None):
    """Spend points for a redemption (the caller holds the account's lock). Never below zero."""
    if account.balance < 0:
        raise InsufficientPoints(_("The balance is negative; earn points back before redeeming."))
    return _debit(account, points, kind=Kind.REDEEM, reference=reference, reason=reason, key=key, channel=channel)


# --- orders, refunds and events (called through members' hooks) ----------------------------------------------------


_config_cache: dict = {}


def program_config(program) -> dict:
    """The programme's active rules, its tiers and which badge rules it uses, kept per process for as long as the
    programme's `updated_at` stays the same (any change to a rule, a tier or a badge touches it, see apps.py), so
    earning reads them once."""
    key = (program.pk, program.updated_at)
    config = _config_cache.get(key)
    if config is None:
        from .models import Badge

        config = {
            "rules": list(EarningRule.objects.filter(program=program, is_active=True)),
            "tiers": list(program.tiers.order_by("rank")),
            "badge_rules": set(Badge.objects.filter(program=program, is_active=True).values_list("rule", flat=True)),
        }
        if len(_config_cache) > 256:
            _config_cache.clear()
        _config_cache[key] = config
    return config


def program_touch(*, program_id) -> None:
    Program.objects.filter(pk=program_id).update(updated_at=timezone.now())


def _order_rules(program):
    return [rule for rule in program_config(program)["rules"] if rule.kind in ("order", "referral")]


def _order_lines(order):
    return [
        rule_strategies.Line(sku=line.sku, amount=line.amount, category=line.category) for line in order.lines.all()
    ]


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
    orders = Order.objects.filter(
        member_id=account.member_id,
        channel__program_link__program_id=account.program_id,
        occurred_at__gt=start,
        occurred_at__lte=at,
    )
    if tier.metric == Tier.Metric.ORDERS:
        return Decimal(orders.exclude(status=Order.Status.REFUNDED).count())
    return orders.aggregate(value=Sum(F("amount") - F("refunded_amount")))["value"] or Decimal(0)


def _higher_tiers(account):
    return [tier for tier in reversed(program_config(account.program)["tiers"]) if tier.rank > account.tier.rank]


def _tier_upgrade_if_qualified(account: Account, *, at: dt.datetime, actor=None, known=None) -> TierChange | None:
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
            return _tier_move(account, tier, reason=TierChange.Reason.UPGRADE, value=values[key], actor=actor)
    return None


def _tier_move(account, tier, *, reason, value=None, note="", actor=None, hold_until=None) -> TierChange:
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
    return change


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


_ACCOUNT_FIELDS = [field.attname for field in Account._meta.concrete_fields]
# The account's spend in its programme's channels over a window: parameters program id, window start, window end.
# Read from order_member_spend_idx alone (an index-only scan); the programme's channels are one hashed list.
_WINDOW_SPEND_SQL = (
    "SELECT SUM(o.amount - o.refunded_amount) FROM members_order o WHERE o.member_id = a.member_id"
    " AND o.channel_id IN (SELECT cp.channel_id FROM loyalty_channelprogram cp WHERE cp.program_id = %s)"
    " AND o.occurred_at > %s AND o.occurred_at <= %s"
)


@functools.cache
def _account_lock_sql(vendor_can_lock: bool) -> str:
    """SELECT the account row FOR UPDATE with its spend over one window, as raw SQL built once: this statement
    runs for every order, and compiling the equivalent queryset costs more than running it."""
    columns = ", ".join(f'a."{field.column}"' for field in Account._meta.concrete_fields)
    lock = " FOR UPDATE OF a" if vendor_can_lock else ""
    # Identifiers come from the model's metadata; values are parameters.
    return (
        f"SELECT {columns}, ({_WINDOW_SPEND_SQL}) "  # noqa: S608
        f"FROM loyalty_account a WHERE a.member_id = %s AND a.program_id = %s{lock}"
    )


def _account_lock_for_order(order, program):
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
    spend = row[-1]
    return account, {next(iter(keys)): Decimal(spend) if spend is not None else Decimal(0)}


_FALL_BACK = object()
_REPAID_IN_ONE_STATEMENT = rule_strategies.debt_repaid_sql(
    balance="acc.balance", points="acc.points", vendor="postgresql"
)


def _earn_in_one_statement(order, program, rules):
    """The common order — an existing account, no bonus rule firing, points available at once, tiers on one spend
    window — in one statement: lock the account, pick the points of its tier, write the lot, the balance and the
    ledger row, and sum the window spend for the tier check. Anything else falls back to the general path."""
    tiers = program_config(program)["tiers"]
    windows = {(tier.metric, tier.window, tier.window_days) for tier in tiers[1:]}
    if len(windows) != 1 or next(iter(windows))[0] != Tier.Metric.SPEND:
        return _FALL_BACK
    lines = _order_lines(order) if any(rule.categories or rule.skus for rule in rules) else ()
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
        return _FALL_BACK
    now = timezone.now()
    expires_at = rule_strategies.expiry_for(program, now)
    reference = f"order:{order.order_id}"
    key = f"{order.channel_id}:order:{order.order_id}"
    cases = " ".join("WHEN %s THEN %s" for _tier in tiers)
    case_params = [value for tier in tiers for value in (tier.pk, earnings[tier.pk].total)]
    sql = (
        "WITH acc AS ("  # noqa: S608 - fixed SQL; the tier cases are placeholders, values are parameters
        f" SELECT a.id, a.balance, a.tier_id, CASE a.tier_id {cases} END AS points, ({_WINDOW_SPEND_SQL}) AS spend"
        " FROM loyalty_account a WHERE a.member_id = %s AND a.program_id = %s FOR UPDATE OF a),"
        " new_lot AS ("
        "  INSERT INTO loyalty_pointslot (account_id, points, remaining, status, available_at, expires_at,"
        "  reference, created_at)"
        f"  SELECT acc.id, acc.points, acc.points - {_REPAID_IN_ONE_STATEMENT}, 'available',"
        "  %s, %s, %s, %s FROM acc RETURNING id, account_id, points),"
        " changed AS ("
        "  UPDATE loyalty_account a SET balance = a.balance + l.points,"
        "  lifetime_earned = a.lifetime_earned + l.points, updated_at = %s"
        "  FROM new_lot l WHERE a.id = l.account_id RETURNING a.id, a.balance),"
        " ledger AS ("
        "  INSERT INTO loyalty_pointstransaction (account_id, kind, points, balance_after, status, reference,"
        "  reason, idempotency_key, fingerprint, channel_id, order_id, lot_id, expires_at, created_at)"
        "  SELECT c.id, 'earn', l.points, c.balance, 'available', %s, %s, %s, '', %s, %s, l.id, %s, %s"
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
        now,
        expires_at,
        reference,
        now,
        now,
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
        return _FALL_BACK
    account_id, tier_id, points, spend, row_id, balance_after = found
    tier = next(tier for tier in tiers if tier.pk == tier_id)
    account = Account(pk=account_id, member_id=order.member_id, program=program, tier=tier, balance=balance_after)
    account._state.adding = False
    _tier_upgrade_if_qualified(
        account, at=order.occurred_at, known={next(iter(windows)): Decimal(spend) if spend is not None else Decimal(0)}
    )
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


def points_earn_for_order(*, order: Order, award: bool = True) -> PointsTransaction | None:
    """An order earns base points at the member's current tier plus the order rules' bonuses; then the tier is
    checked (the order that crosses a threshold earns at the old tier's multiplier)."""
    program = program_for_channel(order.channel, required=False)
    if program is None:
        return None
    rules = _order_rules(program) if award else []
    referral_rules = [rule for rule in rules if rule.kind == EarningRule.Kind.REFERRAL]
    referrer_account = _referral_account(order, program) if referral_rules else None
    if award and referrer_account is None and not program.pending_days and connection.vendor == "postgresql":
        earned = _earn_in_one_statement(order, program, rules)
        if earned is not _FALL_BACK:
            return earned
    known = {}
    if referrer_account is None:
        account, known = _account_lock_for_order(order, program)
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
            lines=_order_lines(order) if any(rule.categories or rule.skus for rule in rules) else (),
            channel_code=order.channel.code,
            store=order.store,
            day=day,
        )
        if earning.total > 0:
            transaction_row = _credit(
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
    _tier_upgrade_if_qualified(account, at=order.occurred_at, known=known)
    if referrer_account is not None:
        _referral_reward(referrer_account, referral_rules, order, referred_account=account)
    return transaction_row


def _referral_reward(referrer_account, referral_rules, order, *, referred_account):
    """The referrer's reward (within the rule's cap, e.g. per month) and the referred member's welcome bonus."""
    program = referrer_account.program
    day = rule_strategies.local_date(program, order.occurred_at)
    for rule in referral_rules:
        if not rule_strategies.rule_in_force(rule, day) or rule.points <= 0:
            continue
        if _limit_reached(rule, referrer_account, order.occurred_at):
            RuleApplication.objects.create(
                rule=rule, account=referrer_account, points=0, capped=True, occurred_at=order.occurred_at
            )
            continue
        row = _credit(
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
            _credit(
                referred_account,
                rule.welcome_points,
                kind=Kind.EARN,
                reference=f"welcome:{order.member.member_no}",
                reason=_("Welcome bonus: referred by %(member)s") % {"member": referrer_account.member_id},
                key=f"welcome:{program.pk}:{order.member_id}:{rule.pk}",
                channel=order.channel,
            )


def points_reverse_for_refund(*, refund, order: Order) -> PointsTransaction | None:
    """Take back the order's points in proportion to what is refunded so far (rounded down, so that a full refund
    reverses exactly what was earned). Always recorded in full: the balance may go negative."""
    program = program_for_channel(order.channel, required=False)
    if program is None:
        return None
    account = Account.objects.filter(member_id=order.member_id, program=program).first()
    if account is None:
        return None
    account = accounts_lock(account.pk)[account.pk]
    earn_rows = list(PointsTransaction.objects.filter(order=order, kind=Kind.EARN).select_related("lot"))
    earned = sum(row.points for row in earn_rows)
    if earned <= 0:
        return None
    reversed_so_far = -(
        PointsTransaction.objects.filter(order=order, kind=Kind.REVERSE).aggregate(total=Sum("points"))["total"] or 0
    )
    target = earned * order.refunded_amount // order.amount  # Decimal floor division keeps it exact
    points = int(target) - reversed_so_far
    if points <= 0:
        return None
    lot = earn_rows[0].lot
    lot.refresh_from_db()
    reference = f"refund:{refund.refund_id}"
    reason = _("Refund %(refund)s of order %(order)s") % {"refund": refund.refund_id, "order": order.order_id}
    key = f"{refund.channel_id}:refund:{refund.refund_id}"
    if lot.status == PointsLot.Status.PENDING:
        # Still pending: the points never reached the balance, so the reversal takes them from the pending lot.
        lot.remaining -= points
        if lot.remaining == 0:
            lot.status = PointsLot.Status.SPENT
        lot.save(update_fields=["remaining", "status"])
        account.pending -= points
        account.save(update_fields=["pending", "updated_at"])
        return PointsTransaction.objects.create(
            account=account,
            kind=Kind.REVERSE,
            points=-points,
            balance_after=account.balance,
            status=PointsTransaction.Status.PENDING,
            reference=reference,
            reason=reason,
            idempotency_key=key,
            channel=refund.channel,
            order=order,
            lot=lot,
        )
    return _debit(
        account,
        points,
        kind=Kind.REVERSE,
        allow_negative=True,
        reference=reference,
        reason=reason,
        key=key,
        channel=refund.channel,
        order=order,
        first_lot_id=lot.pk,
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


def points_earn_for_event(*, event) -> dict:
    """Points for a behaviour event by the event rules, within each rule's limit per member and period."""
    program = program_for_channel(event.channel, required=False)
    if program is None:
        return {"points": 0, "capped": False}
    day = rule_strategies.local_date(program, event.occurred_at)
    matching = [
        rule
        for rule in program_config(program)["rules"]
        if rule.kind == EarningRule.Kind.EVENT
        and rule.event_type == event.type
        and rule_strategies.rule_in_force(rule, day)
        and (event.type != "custom" or rule.event_name == event.name)
        and (not rule.channel_codes or event.channel.code in rule.channel_codes)
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
        row = _credit(
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


# --- staff and partner actions --------------------------------------------------------------------------------------


@transaction.atomic
def points_adjust(
    *, account: Account, points: int, reason: str, channel=None, adjustment_id: str | None = None, actor=None
) -> tuple[PointsTransaction, bool]:
    """A correction by staff or a partner: + adds a lot, - takes from the soonest-expiring lots (never below 0).
    Idempotent by the partner's `adjustment_id`. Returns (transaction, created)."""
    if not points:
        raise ValidationFailed(fields={"points": [_("An adjustment cannot be 0.")]})
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": [_("Say why the points are adjusted.")]})
    if actor is not None and not actor.has_perm("loyalty.adjust_points_without_limit"):
        limit = Program.objects.values_list("staff_adjustment_limit", flat=True).get(pk=account.program_id)
        if abs(points) > limit:
            message = _("One adjustment may move at most %(limit)d points; ask a colleague who may go beyond it.") % {
                "limit": limit
            }
            raise ValidationFailed(message, fields={"points": [message]})
    fingerprint = payload_fingerprint({"account": account.pk, "points": points, "reason": reason})
    key = f"{channel.pk}:adjustment:{adjustment_id}" if channel is not None and adjustment_id else None
    if key:
        existing = PointsTransaction.objects.filter(idempotency_key=key).first()
        if existing is not None:
            return _replayed(existing, fingerprint)
    account = accounts_lock(account.pk)[account.pk]
    reference = f"adjustment:{adjustment_id}" if adjustment_id else "adjustment"
    try:
        with transaction.atomic():
            if points > 0:
                row = _credit(
                    account,
                    points,
                    kind=Kind.ADJUST,
                    reference=reference,
                    reason=reason,
                    key=key,
                    fingerprint=fingerprint,
                    channel=channel,
                    actor=actor,
                )
            else:
                row = _debit(
                    account,
                    -points,
                    kind=Kind.ADJUST,
                    reference=reference,
                    reason=reason,
                    key=key,
                    fingerprint=fingerprint,
                    channel=channel,
                    actor=actor,
                )
    except IntegrityError:
        if key is None:
            raise
        return _replayed(PointsTransaction.objects.get(idempotency_key=key), fingerprint)
    return row, True


def _replayed(existing, fingerprint):
    if existing.fingerprint != fingerprint:
        raise IdempotencyConflict(_("This adjustment_id was already used with a different payload."))
    return existing, False


@transaction.atomic
def tier_set(*, account: Account, tier: Tier, reason: str, hold_until: dt.date | None = None, actor=None) -> TierChange:
    """Staff set a tier by hand, with a reason and an optional date until which evaluation keeps it."""
    if tier.program_id != account.program_id:
        raise ValidationFailed(fields={"tier": [_("This tier belongs to another programme.")]})
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": [_("Say why the tier is set by hand.")]})
    account = accounts_lock(account.pk)[account.pk]
    return _tier_move(account, tier, reason=TierChange.Reason.MANUAL, note=reason, actor=actor, hold_until=hold_until)


# --- merge of members (members.hooks.member_merged) -----------------------------------------------------------------


def accounts_merge(*, kept, dropped) -> dict:
    """Move the dropped member's accounts to the kept member: a whole account when the kept member has none in
    that programme, else its lots and balance (as a ledger row on each side) and the higher tier."""
    moved = 0
    for account in Account.objects.filter(member=dropped).select_related("program"):
        target = Account.objects.filter(member=kept, program=account.program).first()
        if target is None:
            Account.objects.filter(pk=account.pk).update(member=kept)
            moved += account.balance
            continue
        locked = accounts_lock(account.pk, target.pk)
        source, target = locked[account.pk], locked[target.pk]
        carried = source.balance
        # As if both histories had happened to one account: a debt on either side is repaid first from the other
        # side's available points (the debt rule), soonest-expiring lots first.
        repaid = rule_strategies.debt_repaid(
            balance=min(source.balance, target.balance), points=max(source.balance, target.balance, 0)
        )
        PointsLot.objects.filter(account=source).update(account=target)
        if repaid:
            _take_from_lots(target, repaid)
        for field in ("balance", "pending", "lifetime_earned", "lifetime_spent"):
            setattr(target, field, getattr(target, field) + getattr(source, field))
            setattr(source, field, 0)
        if source.tier.rank > target.tier.rank:
            target.tier, target.tier_since = source.tier, source.tier_since
        target.save()
        source.save(update_fields=["balance", "pending", "lifetime_earned", "lifetime_spent", "updated_at"])
        if carried:
            PointsTransaction.objects.create(
                account=target,
                kind=Kind.ADJUST,
                points=carried,
                balance_after=target.balance,
                reference=f"merge:{dropped.member_no}",
                reason=_("Merged from member %(member)s") % {"member": dropped.member_no},
            )
            PointsTransaction.objects.create(
                account=source,
                kind=Kind.ADJUST,
                points=-carried,
                balance_after=0,
                reference=f"merge:{kept.member_no}",
                reason=_("Merged into member %(member)s") % {"member": kept.member_no},
            )
        moved += carried
    return {"points": moved}


# --- opening balances (brands moving from another system) -----------------------------------------------------------


@transaction.atomic
def opening_balances_record(*, program: Program, entries, actor=None) -> dict:
    """Bring over balances and tiers from a previous system: for each entry {"member_id", "points_balance",
    "tier" (code or ""), "expires_at" (optional)} an `opening` ledger row with its own lot and expiry, and the tier
    set as a manual move. Once per member and programme: a member who has an opening row already is left as is.
    Set-based: a few statements per batch whatever its size."""
    entries = list(entries)
    tiers = {tier.code: tier for tier in program_config(program)["tiers"]}
    unknown = sorted({entry["tier"] for entry in entries if entry.get("tier") and entry["tier"] not in tiers})
    if unknown:
        raise ValidationFailed(
            _("Unknown tier codes: %(codes)s. This programme has: %(known)s.")
            % {"codes": ", ".join(unknown), "known": ", ".join(tiers)},
            fields={"tier": [_("Unknown tier.")]},
        )
    if any(int(entry.get("points_balance") or 0) < 0 for entry in entries):
        raise ValidationFailed(fields={"points_balance": [_("An opening balance cannot be negative.")]})
    member_ids = [entry["member_id"] for entry in entries]
    done = set(
        PointsTransaction.objects.filter(
            kind=Kind.OPENING, account__program=program, account__member_id__in=member_ids
        ).values_list("account__member_id", flat=True)
    )
    todo = [entry for entry in entries if entry["member_id"] not in done]
    if not todo:
        return {"opened": 0, "skipped": len(entries)}
    now = timezone.now()
    entry_tier = _entry_tier(program)
    existing = set(
        Account.objects.filter(program=program, member_id__in=member_ids).values_list("member_id", flat=True)
    )
    Account.objects.bulk_create(
        [
            Account(member_id=entry["member_id"], program=program, tier=entry_tier, tier_since=now)
            for entry in todo
            if entry["member_id"] not in existing
        ],
        ignore_conflicts=True,
    )
    accounts = {
        account.member_id: account
        for account in Account.objects.select_for_update(of=("self",))
        .filter(program=program, member_id__in=[entry["member_id"] for entry in todo])
        .order_by("pk")
    }
    lots, rows, moves = [], [], []
    for entry in todo:
        account = accounts[entry["member_id"]]
        points = int(entry.get("points_balance") or 0)
        if points > 0:
            expires_at = entry.get("expires_at") or rule_strategies.expiry_for(program, now)
            lot = PointsLot(
                account=account,
                points=points,
                remaining=points,
                status=PointsLot.Status.AVAILABLE,
                available_at=now,
                expires_at=expires_at,
                reference="opening",
            )
            lots.append(lot)
            account.balance += points
            account.lifetime_earned += points
            rows.append(
                PointsTransaction(
                    account=account,
                    kind=Kind.OPENING,
                    points=points,
                    balance_after=account.balance,
                    reference="opening",
                    reason=_("Opening balance from the previous system"),
                    idempotency_key=f"opening:{program.pk}:{account.member_id}",
                    actor=actor,
                    lot=lot,
                    expires_at=expires_at,
                )
            )
        tier = tiers.get(entry.get("tier") or "")
        if tier is not None and tier.pk != account.tier_id:
            moves.append(
                TierChange(
                    account=account,
                    from_tier_id=account.tier_id,
                    to_tier=tier,
                    reason=TierChange.Reason.MANUAL,
                    note=_("Tier from the previous system"),
                    actor=actor,
                    created_at=now,
                )
            )
            account.tier, account.tier_since = tier, now
    PointsLot.objects.bulk_create(lots, batch_size=2000)
    for row in rows:
        row.lot_id = row.lot.pk
    PointsTransaction.objects.bulk_create(rows, batch_size=2000)
    TierChange.objects.bulk_create(moves, batch_size=2000)
    Account.objects.bulk_update(
        list(accounts.values()), ["balance", "lifetime_earned", "tier", "tier_since"], batch_size=2000
    )
    return {"opened": len(todo), "skipped": len(entries) - len(todo), "points": sum(row.points for row in rows)}


def points_give_back(*, account: Account, points: int, reference: str, reason: str, actor=None) -> PointsTransaction:
    """Return spent points (a cancelled redemption) as a new lot and ledger row; the caller holds the lock."""
    return _credit(account, points, kind=Kind.ADJUST, reference=reference, reason=reason, actor=actor, earned=False)


def points_award(*, account: Account, points: int, reference: str, reason: str, key: str | None = None):
    """Points given for a fact other than an order or an event rule (a badge's bonus); the caller holds the lock."""
    return _credit(account, points, kind=Kind.EARN, reference=reference, reason=reason, key=key)


# --- order history loaded without points (the order import) --------------------------------------------------------


def tiers_count_history(*, orders) -> dict:
    """What `points_earn_for_order(award=False)` does for each order, for a whole import at once: every member with
    an order in a programme's channels has an account there (entry tier), and an account moves up to the highest
    tier whose threshold its qualifying value reached over the window ending at any of the imported orders.

    `orders`: [(order id, member id, channel id, occurred_at)], already written in the caller's transaction. The
    values are summed in SQL per (member, window); accounts are locked in id order before they move, as the daily
    jobs do. Returns {"accounts_created", "upgraded"}. One upgrade per account (to the highest tier reached) where
    order-by-order loading may record several steps; the tier it ends in is the same."""
    links = dict(
        ChannelProgram.objects.filter(channel_id__in={order[2] for order in orders}).values_list(
            "channel_id", "program_id"
        )
    )
    by_program = {}
    for order_id, member_id, channel_id, occurred_at in orders:
        program_id = links.get(channel_id)
        if program_id is not None:
            by_program.setdefault(program_id, []).append((order_id, member_id, occurred_at))
    counts = {"accounts_created": 0, "upgraded": 0}
    for program in Program.objects.filter(pk__in=by_program).order_by("pk"):
        created, upgraded = _history_tiers(program, by_program[program.pk])
        counts["accounts_created"] += created
        counts["upgraded"] += upgraded
    return counts


def _history_tiers(program, orders):
    tiers = program_config(program)["tiers"]
    entry = _entry_tier(program)
    member_ids = sorted({member_id for _order_id, member_id, _at in orders})
    now = timezone.now()
    # The accounts there are, locked in id order (so that earning, one account at a time, never waits on this in a
    # cycle); then the missing ones, each with its "joined" record.
    current = _history_accounts_locked(program, member_ids)  # {member id: (account id, tier id)}
    missing = [member_id for member_id in member_ids if member_id not in current]
    created = Account.objects.bulk_create(
        [Account(member_id=member_id, program=program, tier=entry, tier_since=now) for member_id in missing],
        batch_size=5000,
    )
    if connection.vendor != "postgresql":  # SQLite returns no ids from a bulk insert of this size: read them back
        created = list(Account.objects.filter(program=program, member_id__in=missing))
    _tier_changes_write(
        [(account.pk, None, entry.pk, TierChange.Reason.JOINED, None) for account in created], created_at=now
    )
    current.update({account.member_id: (account.pk, entry.pk) for account in created})
    higher = tiers[1:]
    rank = {tier.pk: tier.rank for tier in tiers}
    # Only members below the top tier can move: the others' windows are not summed.
    climbing = {
        member_id for member_id, (_account, tier_id) in current.items() if higher and rank[tier_id] < len(tiers) - 1
    }
    values = {}
    climbing_orders = [order for order in orders if order[1] in climbing]
    for key in {(tier.metric, tier.window, tier.window_days) for tier in higher}:
        sample = next(tier for tier in higher if (tier.metric, tier.window, tier.window_days) == key)
        if not climbing_orders:
            values[key] = {}
        elif connection.vendor == "postgresql" and sample.metric != Tier.Metric.POINTS:
            values[key] = _history_window_values_by_member(program, sample, climbing_orders)
        else:
            values[key] = _history_window_values(program, sample, climbing_orders)
    changes = []
    for member_id in climbing:
        account_id, tier_id = current[member_id]
        for tier in reversed(higher):
            if tier.rank <= rank[tier_id]:
                break
            value = values[(tier.metric, tier.window, tier.window_days)].get(member_id)
            if value is not None and value >= tier.upgrade_threshold:
                changes.append((account_id, tier_id, tier.pk, TierChange.Reason.UPGRADE, value))
                break
    _tier_changes_write(changes, created_at=now)
    if connection.vendor == "postgresql" and changes:
        with connection.cursor() as cursor:  # one statement (bulk_update's CASE per row costs seconds here)
            cursor.execute(
                "UPDATE loyalty_account a SET tier_id = v.tier_id, tier_since = %s, updated_at = %s "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, tier_id) WHERE a.id = v.id",
                [now, now, [change[0] for change in changes], [change[2] for change in changes]],
            )
    else:
        Account.objects.bulk_update(
            [Account(pk=change[0], tier_id=change[2], tier_since=now, updated_at=now) for change in changes],
            ["tier", "tier_since", "updated_at"],
            batch_size=1000,
        )
    return len(created), len(changes)


def _history_accounts_locked(program, member_ids) -> dict:
    """{member id: (account id, tier id)} of the members' accounts in the programme, locked in id order."""
    found = {}
    for start in range(0, len(member_ids), 50_000):
        chunk = member_ids[start : start + 50_000]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT member_id, id, tier_id FROM loyalty_account WHERE program_id = %s "
                    "AND member_id = ANY(string_to_array(%s, ',')::bigint[]) ORDER BY id FOR UPDATE",
                    [program.pk, ",".join(map(str, chunk))],
                )
                rows = cursor.fetchall()
        else:
            rows = []
            for small in range(0, len(chunk), 500):
                rows += Account.objects.filter(program=program, member_id__in=chunk[small : small + 500]).values_list(
                    "member_id", "pk", "tier_id"
                )
        found.update({member_id: (pk, tier_id) for member_id, pk, tier_id in rows})
    return found


def _tier_changes_write(changes, *, created_at):
    """Write [(account id, from tier id, to tier id, reason, metric value)] as TierChange rows (on PostgreSQL one
    statement over arrays)."""
    if not changes:
        return
    if connection.vendor != "postgresql":
        TierChange.objects.bulk_create(
            [
                TierChange(
                    account_id=account_id,
                    from_tier_id=from_tier_id,
                    to_tier_id=to_tier_id,
                    reason=reason,
                    metric_value=value,
                    created_at=created_at,
                )
                for account_id, from_tier_id, to_tier_id, reason, value in changes
            ],
            batch_size=1000,
        )
        return
    columns = list(zip(*changes, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, note, metric_value, "
            "created_at) SELECT a, f, t, r, '', v, %s "
            "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::numeric[]) AS c(a, f, t, r, v) "
            "ORDER BY a",
            [created_at, list(columns[0]), list(columns[1]), list(columns[2]), list(columns[3]), list(columns[4])],
        )


def _history_window_values_by_member(program, tier, orders) -> dict:
    """What _history_window_values() gives, for spend and order counts on PostgreSQL, reading each member's orders
    once: one index range scan per member over the span of its imported orders, the windows summed by a window
    function (RANGE over the order time, whose frame is the window (start, end]), kept at the imported orders."""
    channel_ids = list(ChannelProgram.objects.filter(program=program).values_list("channel_id", flat=True))
    channels = ", ".join(["%s"] * len(channel_ids)) or "NULL"
    if tier.window == Tier.Window.CALENDAR_YEAR:
        # The year's orders up to each one, in the programme's time zone; an order at the very start of a year is
        # outside every window (they start after it), as in qualifying_value().
        year = "(date_trunc('year', o.occurred_at AT TIME ZONE %s) AT TIME ZONE %s)"
        counted = f"o.occurred_at <> {year}"
        frame = f"PARTITION BY {year} ORDER BY o.occurred_at RANGE UNBOUNDED PRECEDING"
        lower = "o.occurred_at >= (date_trunc('year', m.first AT TIME ZONE %s) AT TIME ZONE %s)"
        zone = program.time_zone
        counted_params, frame_params, lower_params = [zone, zone], [zone, zone], [zone, zone]
    else:
        # (end - days, end]: timestamps have microseconds, so the frame starts one microsecond after the start.
        span = f"{int(tier.window_days)} days"
        counted, counted_params = "TRUE", []
        frame = "ORDER BY o.occurred_at RANGE BETWEEN %s::interval - interval '1 microsecond' PRECEDING AND CURRENT ROW"
        frame_params = [span]
        lower, lower_params = "o.occurred_at > m.first - %s::interval", [span]
    if tier.metric == Tier.Metric.ORDERS:
        measure = f"COUNT(*) FILTER (WHERE o.status <> 'refunded' AND {counted})"
    else:
        measure = f"SUM(CASE WHEN {counted} THEN o.amount - o.refunded_amount ELSE 0 END)"
    sql = (
        "WITH m AS (SELECT w.member_id, MIN(w.occurred_at) AS first, MAX(w.occurred_at) AS last, "  # noqa: S608
        "array_agg(w.id) AS ids FROM members_order w WHERE w.id = ANY(string_to_array(%s, ',')::bigint[]) "
        "GROUP BY w.member_id) "
        "SELECT m.member_id, (SELECT MAX(x.value) FROM ("
        f" SELECT o.id, {measure} OVER ({frame}) AS value FROM members_order o"
        f" WHERE o.member_id = m.member_id AND o.channel_id IN ({channels}) AND {lower} AND o.occurred_at <= m.last"
        ") x WHERE x.id = ANY(m.ids)) FROM m"
    )
    params = [
        ",".join(str(order[0]) for order in orders),
        *counted_params,
        *frame_params,
        *channel_ids,
        *lower_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {member_id: Decimal(value or 0) for member_id, value in cursor.fetchall()}


def _history_window_values(program, tier, orders) -> dict:
    """{member id: the largest qualifying value of `tier`'s metric over the windows ending at the given orders
    [(order id, member id, occurred_at)]}, in one statement (each window summed from order_member_spend_idx, or the
    ledger for points). On PostgreSQL the windows are read from the orders themselves; elsewhere from a temporary
    table of (member, start, end)."""
    metric = tier.metric
    table = "loyalty_history_windows"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            if tier.window == Tier.Window.CALENDAR_YEAR:
                start = "(date_trunc('year', w0.occurred_at AT TIME ZONE %s) AT TIME ZONE %s)"
                start_params = [program.time_zone, program.time_zone]
            else:
                start = "(w0.occurred_at - %s * interval '1 day')"
                start_params = [tier.window_days]
            source = (
                f"(SELECT w0.member_id, {start} AS start, w0.occurred_at AS stop FROM members_order w0 "  # noqa: S608
                "WHERE w0.id = ANY(string_to_array(%s, ',')::bigint[]))"
            )
            source_params = [*start_params, ",".join(str(order[0]) for order in orders)]
        else:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TEMP TABLE {table} (member_id bigint, start datetime, stop datetime)")
            adapt = connection.ops.adapt_datetimefield_value
            cursor.executemany(
                f"INSERT INTO {table} (member_id, start, stop) VALUES (%s, %s, %s)",  # noqa: S608
                [(member_id, adapt(window_start(program, tier, at)), adapt(at)) for _order_id, member_id, at in orders],
            )
            source, source_params = table, []
        if metric == Tier.Metric.POINTS:
            value = (
                "SELECT SUM(t.points) FROM loyalty_pointstransaction t JOIN loyalty_account a ON a.id = t.account_id "
                "WHERE a.member_id = w.member_id AND a.program_id = %s AND t.kind = 'earn' "
                "AND t.order_id IS NOT NULL AND t.created_at > w.start AND t.created_at <= w.stop"
            )
            params = [program.pk]
        else:
            # The programme's channels as a list of numbers (a handful): a cheap filter on each order the index gives.
            channel_ids = list(ChannelProgram.objects.filter(program=program).values_list("channel_id", flat=True))
            channels = ", ".join(["%s"] * len(channel_ids)) or "NULL"
            params = channel_ids
            measure = "COUNT(*)" if metric == Tier.Metric.ORDERS else "SUM(o.amount - o.refunded_amount)"
            status = " AND o.status <> 'refunded'" if metric == Tier.Metric.ORDERS else ""
            value = (
                f"SELECT {measure} FROM members_order o WHERE o.member_id = w.member_id "  # noqa: S608 - fixed SQL
                f"AND o.channel_id IN ({channels}) "
                f"AND o.occurred_at > w.start AND o.occurred_at <= w.stop{status}"
            )
        cursor.execute(
            f"SELECT w.member_id, MAX(COALESCE(({value}), 0)) FROM {source} w GROUP BY w.member_id",  # noqa: S608
            [*params, *source_params],
        )
        # SQLite sums decimals as floats: back to cents.
        found = {member_id: Decimal(str(total)).quantize(Decimal("0.01")) for member_id, total in cursor.fetchall()}
        if connection.vendor != "postgresql":
            cursor.execute(f"DROP TABLE {table}")
    return found
