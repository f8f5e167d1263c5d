"""Points history recorded after the fact: each order earns on its own date, redemptions spend on theirs, and
points expire on the day they expire, as if the live services and the daily jobs had run at the time (the demo's
year; a brand bringing over its order history with the points it earned).

Worked out per account in time order, in memory, by the rules of the live path: an order earns what
`rules.earning_compute` gives at the account's tier (the programme's order rules included), available at once or
after the programme's pending period; spending takes the soonest-expiring points first; a redemption the balance
does not cover (or the reward's own conditions refuse on that day) is refused; a lot expires at its `expires_at`.
Then written in batches in one transaction, the accounts locked in id order: the lots, the ledger rows with their
own times and balances after (every balance change a row, the account's cached balance, pending points and
lifetime counters updated with them), the redemptions with their coupons, the rules' applications.

History comes first: an account's history is recorded once, before anything else happens to it. Accounts that
have ledger rows already are left as they are (their balances after would no longer follow one another), so a
second call adds nothing. Nothing is announced (no domain events: no webhook or journey reacts to the past)."""

import datetime as dt
import itertools
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import insert_as_given
from core.errors import ValidationFailed
from core.idempotency import payload_fingerprint
from members.models import Order, OrderLine

from . import rules as rule_strategies
from .ledger import Kind, accounts_open, repaid
from .models import (
    Account,
    ChannelProgram,
    Coupon,
    EarningRule,
    PointsLot,
    PointsTransaction,
    Program,
    Redemption,
    Reward,
    RuleApplication,
)
from .program_config import program_config
from .rewards import coupon_code, reward_unavailable_reason

BATCH = 5000
Status = PointsTransaction.Status
LotStatus = PointsLot.Status


@dataclass
class _Lot:
    lot: PointsLot
    seq: int


@dataclass
class _Account:
    """One account's history while it is worked out: its rows in time order and its lots."""

    account: Account
    lots: list = field(default_factory=list)
    rows: list = field(default_factory=list)  # [(PointsTransaction, PointsLot | None, [(rule, points)])]
    redemptions: list = field(default_factory=list)  # [Redemption]
    redeemed: list = field(default_factory=list)  # [(reward id, at)] for the rewards' limits


@transaction.atomic
def points_history_record(*, program: Program, member_ids, redemptions=(), now: dt.datetime | None = None) -> dict:
    """Record the points history of these members in `program`: every order of theirs in the programme's channels
    (net of refunds, up to now) earns on its date, then `redemptions` [{"member_id", "reward_code", "at",
    "redemption_id", "channel"}] (coupon rewards) spend on theirs, and points whose expiry has passed expire then.
    Members without an account get one. Returns {"accounts", "orders", "points", "redemptions", "refused",
    "expired"}."""
    now = now or timezone.now()
    member_ids, redemptions = sorted(set(member_ids)), list(redemptions)
    counts = dict.fromkeys(("accounts", "orders", "points", "redemptions", "refused", "expired"), 0)
    if not member_ids:
        return counts
    rewards, taken = _redemptions_checked(program, redemptions)
    accounts_open(member_ids=member_ids, program=program)
    accounts = {}
    for start in range(0, len(member_ids), BATCH):
        chunk = member_ids[start : start + BATCH]
        locked = (
            Account.objects.select_for_update(of=("self",))
            .select_related("tier")
            .filter(program=program, member_id__in=chunk)
            .exclude(Exists(PointsTransaction.objects.filter(account_id=OuterRef("pk"))))
            .order_by("pk")
        )
        accounts.update({account.member_id: _Account(account) for account in locked})
    if not accounts:
        return counts
    config = program_config(program)
    order_rules = [rule for rule in config["rules"] if rule.kind == EarningRule.Kind.ORDER]
    events = []  # (time, order of kind at the same time, sequence, member id, what happens)
    for order in _orders(program, list(accounts), now, lines=any(rule.categories or rule.skus for rule in order_rules)):
        events.append((order.occurred_at, 0, len(events), order.member_id, ("order", order)))
    for entry in redemptions:
        if entry["member_id"] not in accounts:
            continue
        if entry["at"] > now:  # not history yet
            counts["refused"] += 1
            continue
        events.append((entry["at"], 1, len(events), entry["member_id"], ("redeem", entry)))
    events.sort(key=lambda event: event[:3])
    by_account = {}
    for event in events:
        by_account.setdefault(event[3], []).append(event)
    sequence = itertools.count()
    for member_id, history in by_account.items():
        state = accounts[member_id]
        due = []  # pending lots becoming available: (time, sequence, lot)
        for at, _rank, _seq, _member, (what, item) in history:
            _release(state, due, at, program, counts)
            if what == "order":
                _earn(state, item, program, order_rules, now, due, next(sequence), counts)
            else:
                _redeem(state, item, rewards[item["reward_code"]], taken, program, counts)
        _release(state, due, now, program, counts)
    _write(accounts.values(), rewards, now)
    counts["accounts"] = len(accounts)
    return counts


def _orders(program, member_ids, now, *, lines):
    channels = ChannelProgram.objects.filter(program=program).values("channel_id")
    orders = []
    for start in range(0, len(member_ids), BATCH):
        orders += (
            Order.objects.filter(
                member_id__in=member_ids[start : start + BATCH], channel_id__in=channels, occurred_at__lte=now
            )
            .exclude(status=Order.Status.REFUNDED)
            .exclude(Exists(PointsTransaction.objects.filter(order_id=OuterRef("pk"))))
            .select_related("channel")
            .only("pk", "order_id", "member_id", "channel__code", "store", "amount", "refunded_amount", "occurred_at")
        )
    if lines:
        found = {}
        ids = [order.pk for order in orders]
        for start in range(0, len(ids), BATCH):
            for line in OrderLine.objects.filter(order_id__in=ids[start : start + BATCH]):
                found.setdefault(line.order_id, []).append(
                    rule_strategies.Line(sku=line.sku, amount=line.amount, category=line.category)
                )
        for order in orders:
            order.history_lines = found.get(order.pk, [])
    return orders


def _redemptions_checked(program, redemptions):
    """The rewards the planned redemptions name (locked, as the live redemption locks its reward): coupon rewards
    of this programme only."""
    codes = sorted({entry["reward_code"] for entry in redemptions})
    rewards = {
        reward.code: reward
        for reward in Reward.objects.select_for_update(of=("self",))
        .select_related("min_tier", "coupon_template")
        .filter(program=program, code__in=codes)
        .order_by("pk")
    }
    unknown = [code for code in codes if code not in rewards or rewards[code].kind != Reward.Kind.COUPON]
    if unknown:
        raise ValidationFailed(
            _("Recorded history redeems coupon rewards of this programme only, not: %(codes)s.")
            % {"codes": ", ".join(unknown)}
        )
    for reward in rewards.values():
        reward.history_redeemed = 0
    channels = {entry["channel"].pk for entry in redemptions}
    taken = set()
    for channel_id in channels:
        ids = [entry["redemption_id"] for entry in redemptions if entry["channel"].pk == channel_id]
        for start in range(0, len(ids), BATCH):
            taken |= {
                (channel_id, redemption_id)
                for redemption_id in Redemption.objects.filter(
                    channel_id=channel_id, redemption_id__in=ids[start : start + BATCH]
                ).values_list("redemption_id", flat=True)
            }
    return rewards, taken


def _earn(state, order, program, order_rules, now, due, seq, counts):
    account = state.account
    amount = order.amount - order.refunded_amount
    earning = rule_strategies.earning_compute(
        program=program,
        tier=account.tier,
        rules=order_rules,
        amount=amount,
        lines=getattr(order, "history_lines", ()),
        channel_code=order.channel.code,
        store=order.store,
        day=rule_strategies.local_date(program, order.occurred_at),
    )
    points = earning.total
    if points <= 0:
        return
    at = order.occurred_at
    available_at = at + dt.timedelta(days=program.pending_days)
    pending = program.pending_days > 0
    expires_at = rule_strategies.expiry_for(program, available_at)
    reference = f"order:{order.order_id}"
    lot = PointsLot(
        account=account,
        points=points,
        remaining=points if pending else points - repaid(points, account.balance),
        status=LotStatus.PENDING if pending else LotStatus.AVAILABLE,
        available_at=available_at,
        expires_at=expires_at,
        reference=reference,
        created_at=at,
    )
    state.lots.append(_Lot(lot, seq))
    if pending:
        account.pending += points
        if available_at <= now:
            due.append((available_at, seq, lot))
    else:
        account.balance += points
        account.lifetime_earned += points
    row = PointsTransaction(
        account=account,
        kind=Kind.EARN,
        points=points,
        balance_after=account.balance,
        status=Status.PENDING if pending else Status.AVAILABLE,
        reference=reference,
        reason=_("Order %(order)s") % {"order": order.order_id},
        idempotency_key=f"{order.channel_id}:order:{order.order_id}",
        channel_id=order.channel_id,
        order_id=order.pk,
        expires_at=expires_at,
        created_at=at,
    )
    state.rows.append((row, lot, earning.bonuses))
    counts["orders"] += 1
    counts["points"] += points


def _release(state, due, moment, program, counts):
    """Up to `moment`, in time order: pending lots become available (as the daily job activates them) and
    available lots expire (as the daily job expires them), each a ledger row at its own time."""
    account = state.account
    while True:
        due.sort(key=lambda item: item[:2])
        activation = due[0] if due and due[0][0] <= moment else None
        expiring = [
            item
            for item in state.lots
            if item.lot.status == LotStatus.AVAILABLE
            and item.lot.remaining > 0
            and item.lot.expires_at is not None
            and item.lot.expires_at <= moment
        ]
        expiry = min(expiring, key=lambda item: (item.lot.expires_at, item.seq)) if expiring else None
        if activation is None and expiry is None:
            return
        if expiry is None or (activation is not None and activation[0] <= expiry.lot.expires_at):
            due.pop(0)
            lot = activation[2]
            lot.remaining = lot.points - repaid(lot.points, account.balance)
            lot.status = LotStatus.AVAILABLE if lot.remaining > 0 else LotStatus.SPENT
            account.pending -= lot.points
            account.balance += lot.points
            account.lifetime_earned += lot.points
            row = PointsTransaction(
                account=account,
                kind=Kind.EARN,
                points=lot.points,
                balance_after=account.balance,
                status=Status.AVAILABLE,
                reference=lot.reference,
                reason=_("Pending points became available"),
                expires_at=lot.expires_at,
                created_at=lot.available_at,
            )
            state.rows.append((row, lot, []))
            continue
        lot = expiry.lot
        points = lot.remaining
        lot.remaining, lot.status = 0, LotStatus.EXPIRED
        account.balance -= points
        row = PointsTransaction(
            account=account,
            kind=Kind.EXPIRE,
            points=-points,
            balance_after=account.balance,
            status=Status.AVAILABLE,
            reference=lot.reference,
            reason=_("Points expired"),
            created_at=lot.expires_at,
        )
        state.rows.append((row, lot, []))
        counts["expired"] += points


def _redeem(state, entry, reward, taken, program, counts):
    account, at, channel = state.account, entry["at"], entry["channel"]
    points = reward.points_cost
    refused = (
        (channel.pk, entry["redemption_id"]) in taken
        or account.balance < points
        or reward_unavailable_reason(reward, account, now=at) is not None
        or _limit_reached(state, reward, program, at)
    )
    if refused:
        counts["refused"] += 1
        return
    taken.add((channel.pk, entry["redemption_id"]))
    _take_from_lots(state, points)
    account.balance -= points
    account.lifetime_spent += points
    row = PointsTransaction(
        account=account,
        kind=Kind.REDEEM,
        points=-points,
        balance_after=account.balance,
        status=Status.AVAILABLE,
        reference=f"redemption:{entry['redemption_id']}",
        reason=_("Redeemed %(reward)s") % {"reward": reward.name},
        idempotency_key=f"{channel.pk}:redemption:{entry['redemption_id']}",
        channel=channel,
        created_at=at,
    )
    payload = {
        "member": account.member_id,
        "reward": reward.code,
        "quantity": 1,
        "redemption_id": entry["redemption_id"],
    }
    redemption = Redemption(
        account=account,
        reward=reward,
        channel=channel,
        redemption_id=entry["redemption_id"],
        quantity=1,
        points_spent=points,
        fingerprint=payload_fingerprint(payload),
        created_at=at,
    )
    state.rows.append((row, None, []))
    state.redemptions.append(redemption)
    state.redeemed.append((reward.pk, at))
    reward.history_redeemed += 1
    if reward.stock is not None:
        reward.stock -= 1  # what is left for the next one (the table's stock moves by F() when written)
    counts["redemptions"] += 1


def _limit_reached(state, reward, program, at) -> bool:
    if reward.per_member_limit is None:
        return False
    start = rule_strategies.period_start(program, reward.limit_period, at)
    used = sum(1 for reward_id, when in state.redeemed if reward_id == reward.pk and (start is None or when >= start))
    return used + 1 > reward.per_member_limit


def _take_from_lots(state, points):
    """Soonest-expiring available points first (`ledger._take_from_lots`)."""
    lots = sorted(
        (item for item in state.lots if item.lot.status == LotStatus.AVAILABLE and item.lot.remaining > 0),
        key=lambda item: (item.lot.expires_at is None, item.lot.expires_at, item.seq),
    )
    for item in lots:
        if points == 0:
            return
        take = min(item.lot.remaining, points)
        item.lot.remaining -= take
        if item.lot.remaining == 0:
            item.lot.status = LotStatus.SPENT
        points -= take


def _write(states, rewards, now):
    states = list(states)
    insert_as_given([item.lot for state in states for item in state.lots])
    rows = []
    for state in states:
        for row, lot, _bonuses in state.rows:
            if lot is not None:
                row.lot_id = lot.pk
            rows.append(row)
    insert_as_given(rows)
    redemptions = insert_as_given([redemption for state in states for redemption in state.redemptions])
    coupons = []
    for redemption in redemptions:
        template = redemption.reward.coupon_template
        valid_from = template.valid_from or redemption.created_at
        if template.valid_days:
            valid_until = redemption.created_at + dt.timedelta(days=template.valid_days)
        else:
            valid_until = template.valid_until
        coupons.append(
            Coupon(
                template=template,
                member_id=redemption.account.member_id,
                redemption=redemption,
                issued_at=redemption.created_at,
                valid_from=valid_from,
                valid_until=valid_until,
                status=Coupon.Status.EXPIRED if valid_until is not None and valid_until < now else Coupon.Status.ISSUED,
            )
        )
    _coupons_insert(coupons)
    RuleApplication.objects.bulk_create(
        [
            RuleApplication(
                rule=rule, account=state.account, transaction=row, points=points, occurred_at=row.created_at
            )
            for state in states
            for row, _lot, bonuses in state.rows
            for rule, points in bonuses
        ],
        batch_size=BATCH,
    )
    _accounts_update([state.account for state in states], now)
    for reward in rewards.values():
        if reward.history_redeemed:
            Reward.objects.filter(pk=reward.pk).update(
                redeemed_count=F("redeemed_count") + reward.history_redeemed,
                **({"stock": F("stock") - reward.history_redeemed} if reward.stock is not None else {}),
            )


def _accounts_update(accounts, now):
    """The accounts' cached balance, pending points and lifetime counters, one UPDATE ... FROM (VALUES ...) per
    batch on both databases (bulk_update's CASE per row costs more than the rest of the history)."""
    table = Account._meta.db_table
    with connection.cursor() as cursor:
        for start in range(0, len(accounts), 1000):
            batch = accounts[start : start + 1000]
            values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(batch))
            params = [
                value
                for account in batch
                for value in (
                    account.pk,
                    account.balance,
                    account.pending,
                    account.lifetime_earned,
                    account.lifetime_spent,
                )
            ]
            cursor.execute(
                f"UPDATE {table} SET balance = v.column2, pending = v.column3, lifetime_earned = v.column4, "  # noqa: S608
                f"lifetime_spent = v.column5, updated_at = %s FROM (VALUES {values}) AS v WHERE {table}.id = v.column1",
                [connection.ops.adapt_datetimefield_value(now), *params],
            )
            for account in batch:
                account.updated_at = now


def _coupons_insert(coupons):
    """Unique unguessable codes, a rare clash drawn again (as `rewards.coupons_issue_to_members`)."""
    while coupons:
        for coupon in coupons:
            coupon.code = coupon_code()
        taken = set(Coupon.objects.filter(code__in=[coupon.code for coupon in coupons]).values_list("code", flat=True))
        Coupon.objects.bulk_create([coupon for coupon in coupons if coupon.code not in taken], batch_size=2000)
        coupons = [coupon for coupon in coupons if coupon.code in taken]
