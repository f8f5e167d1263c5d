"""The points ledger: the one place that writes balances, lots and ledger rows account by account. Every
balance change is a ledger row written in the same transaction, under a row lock on the account
(`select_for_update`, accounts locked in primary-key order).

The rule "a negative balance (debt) is repaid first" is stated here once (`repaid`, and `repaid_sql` for the
set-based writers: the one-statement earning in `earning_sql.py` and the daily jobs in `jobs.py`, which follow
this module's rules in SQL for speed)."""

import datetime as dt

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import insert_statement
from members.models import Member

from . import rules as rule_strategies
from .errors import InsufficientPoints
from .models import (
    Account,
    PointsLot,
    PointsTransaction,
    Program,
    Tier,
    TierChange,
)
from .program_config import entry_tier

Kind = PointsTransaction.Kind


def repaid(points: int, balance: int) -> int:
    """How much of `points` coming in repays debt: a negative balance is repaid first, up to the points."""
    return 0 if balance >= 0 else min(points, -balance)


def repaid_sql(points: str, balance: str) -> str:
    """`repaid()` as an SQL expression over two SQL expressions, the same on every database (plain CASE, no
    GREATEST/LEAST or MIN/MAX, whose names differ between PostgreSQL and SQLite)."""
    return f"(CASE WHEN {balance} >= 0 THEN 0 WHEN -({balance}) >= {points} THEN {points} ELSE -({balance}) END)"


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
    tier = entry_tier(program)
    try:
        with transaction.atomic():
            account = Account.objects.create(member=member, program=program, tier=tier, tier_since=now)
            TierChange.objects.create(account=account, to_tier=tier, reason=TierChange.Reason.JOINED, created_at=now)
    except IntegrityError:
        account = Account.objects.get(member=member, program=program)
    return account


ACCOUNT_OPEN_BATCH = 5000


def accounts_open(*, member_ids=None, program: Program | None = None) -> int:
    """Every member given (all members when `member_ids` is None) gets an account in the entry tier, with its
    "joined" tier change, in `program`, or else in the programme of the channel they joined through, or else in the
    only active programme. Members who have their account already are left as they are. Set-based: per programme
    one INSERT ... SELECT for the accounts and their tier changes (on PostgreSQL one statement for any number of
    members; elsewhere two per batch of 5,000). Returns how many accounts were opened."""
    programs = [program] if program is not None else list(Program.objects.filter(is_active=True).order_by("pk"))
    only = program is not None or len(programs) == 1
    # One statement for any number of members on PostgreSQL (the ids travel as one parameter); batches elsewhere.
    size = 10**9 if connection.vendor == "postgresql" else ACCOUNT_OPEN_BATCH
    batches = [None] if member_ids is None else list(_batches(sorted(set(member_ids)), size))
    opened = 0
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        for each in programs:
            tier = Tier.objects.filter(program=each).order_by("rank").first()
            if tier is None:
                continue
            for batch in batches:
                opened += accounts_open_sql(
                    cursor, program_id=each.pk, tier_id=tier.pk, now=now, member_ids=batch, by_channel=not only
                )
    return opened


def _batches(items, size):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def accounts_open_sql(cursor, *, program_id, tier_id, now, member_ids=None, by_channel=False) -> int:
    """The statements of `accounts_open` (also run by a data migration, hence plain SQL on a cursor): on
    PostgreSQL one statement (the accounts, and their "joined" tier changes from what the insert returns, with the
    ids as one array parameter); elsewhere two."""
    postgres = cursor.db.vendor == "postgresql"
    if member_ids is None:
        members, member_params = "", []
    elif postgres:
        members, member_params = "AND m.id = ANY(string_to_array(%s, ',')::bigint[])", [",".join(map(str, member_ids))]
    else:
        members, member_params = f"AND m.id IN ({', '.join(['%s'] * len(member_ids))})", list(member_ids)
    channel = (
        "AND m.join_channel_id IN (SELECT cp.channel_id FROM loyalty_channelprogram cp WHERE cp.program_id = %s)"
        if by_channel
        else ""
    )
    insert = (
        "INSERT INTO loyalty_account (member_id, program_id, tier_id, tier_since, balance, pending, "  # noqa: S608
        "lifetime_earned, lifetime_spent, created_at, updated_at) "
        "SELECT m.id, %s, %s, %s, 0, 0, 0, 0, %s, %s FROM members_member m "
        f"WHERE m.merged_into_id IS NULL {members} "
        "AND NOT EXISTS (SELECT 1 FROM loyalty_account a WHERE a.member_id = m.id AND a.program_id = %s) "
        f"{channel} ON CONFLICT (member_id, program_id) DO NOTHING"
    )
    params = [program_id, tier_id, now, now, now, *member_params, program_id, *([program_id] if by_channel else [])]
    if postgres:
        cursor.execute(
            f"WITH opened AS ({insert} RETURNING id) "  # noqa: S608
            "INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, note, created_at) "
            "SELECT id, NULL, %s, 'joined', '', %s FROM opened",
            [*params, tier_id, now],
        )
        return max(cursor.rowcount, 0)
    cursor.execute(insert, params)
    opened = max(cursor.rowcount, 0)
    if opened:
        accounts = "" if member_ids is None else f"AND a.member_id IN ({', '.join(['%s'] * len(member_ids))})"
        cursor.execute(
            "INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, note, created_at) "  # noqa: S608
            "SELECT a.id, NULL, %s, 'joined', '', %s FROM loyalty_account a "
            f"WHERE a.program_id = %s {accounts} AND a.created_at = %s "
            "AND NOT EXISTS (SELECT 1 FROM loyalty_tierchange t WHERE t.account_id = a.id)",
            [tier_id, now, program_id, *(member_ids or []), now],
        )
    return opened


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


def credit(
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
    lot = PointsLot(
        account=account,
        points=points,
        remaining=points if pending else points - repaid(points, account.balance),
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


def debit(
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


def reverse_pending(*, account: Account, lot: PointsLot, points: int, **row) -> PointsTransaction:
    """Take `points` back from a lot that is still pending (they never reached the balance): the lot, the account's
    pending points and a pending ledger row. The caller holds the account's lock."""
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
        lot=lot,
        **row,
    )


@transaction.atomic(savepoint=False)
def points_spend(*, account: Account, points: int, reference: str, reason: str = "", key=None, channel=None):
    """Spend points for a redemption (the caller holds the account's lock). Never below zero."""
    if account.balance < 0:
        raise InsufficientPoints(_("The balance is negative; earn points back before redeeming."))
    return debit(account, points, kind=Kind.REDEEM, reference=reference, reason=reason, key=key, channel=channel)


@transaction.atomic(savepoint=False)
def points_give_back(*, account: Account, points: int, reference: str, reason: str, actor=None) -> PointsTransaction:
    """Return spent points (a cancelled redemption) as a new lot and ledger row; the caller holds the lock."""
    return credit(account, points, kind=Kind.ADJUST, reference=reference, reason=reason, actor=actor, earned=False)


@transaction.atomic(savepoint=False)
def points_award(*, account: Account, points: int, reference: str, reason: str, key: str | None = None):
    """Points given for a fact other than an order or an event rule (a badge's bonus); the caller holds the lock."""
    return credit(account, points, kind=Kind.EARN, reference=reference, reason=reason, key=key)


@transaction.atomic(savepoint=False)
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
        debt_repaid = repaid(max(source.balance, target.balance, 0), min(source.balance, target.balance))
        PointsLot.objects.filter(account=source).update(account=target)
        if debt_repaid:
            _take_from_lots(target, debt_repaid)
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
