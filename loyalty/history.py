"""Order history loaded without points (the order import): every member with an imported order gets an account in
the programme of the order's channel, and moves up to the tier the history qualifies for, set-based for a whole
import (what `points_earn_for_order(award=False)` does order by order)."""

import datetime as dt
import operator
import threading
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from core.db import jit_off, session_settings

from .models import Account, ChannelProgram, Program, Tier, TierChange
from .program_config import entry_tier, program_config
from .tiers import window_start

# --- order history loaded without points (the order import) --------------------------------------------------------


def tiers_count_history(*, orders, prepared=()) -> dict:
    """What `points_earn_for_order(award=False)` does for each order, for a whole import at once: every member with
    an order in a programme's channels has an account there (entry tier), and an account moves up to the highest
    tier whose threshold its qualifying value reached over the window ending at any of the imported orders.

    `orders`: [(order id, member id, channel id, occurred_at)], already written in the caller's transaction. The
    values are summed in SQL per (member, window); accounts are locked in id order before they move, as the daily
    jobs do. Returns {"accounts_created", "upgraded"}. One upgrade per account (to the highest tier reached) where
    order-by-order loading may record several steps; the tier it ends in is the same.

    `prepared`: what `tiers_prepare_history()` summed while the orders were being stored (the import's
    `orders_importing` results); members it did not cover are summed here."""
    by_program = _by_program(orders, channel_at=2, kept=operator.itemgetter(0, 1, 3))
    counts = {"accounts_created": 0, "upgraded": 0}
    sums = next((found for found in prepared if isinstance(found, HistorySums)), HistorySums())
    for program in Program.objects.filter(pk__in=by_program).order_by("pk"):
        created, upgraded = _history_tiers(program, by_program[program.pk], sums.values.get(program.pk, {}))
        counts["accounts_created"] += created
        counts["upgraded"] += upgraded
    return counts


def _by_program(orders, *, channel_at, kept) -> dict:
    """{programme id: [kept(order)]} of the orders whose channel (at index `channel_at`) is in a programme."""
    links = dict(
        ChannelProgram.objects.filter(channel_id__in={order[channel_at] for order in orders}).values_list(
            "channel_id", "program_id"
        )
    )
    by_program = {}
    for order in orders:
        program_id = links.get(order[channel_at])
        if program_id is not None:
            by_program.setdefault(program_id, []).append(kept(order))
    return by_program


@dataclass
class HistorySums:
    """What tiers_prepare_history() summed: {program id: {(metric, window, days): {member id: value}}}."""

    values: dict = field(default_factory=dict)


# The new orders given so far to tiers_prepare_history_part(), each with the qualifying value of the orders recorded
# before over its window, and the members a part left out for being in the top tier (no metric): a temporary table of
# the preparing connection (dropped by the sums).
_PREPARED = "loyalty_history_prepared"


def tiers_prepare_history(*, orders) -> HistorySums:
    """The reading half of tiers_count_history(), for orders still being stored in another connection's transaction:
    for each member, the largest qualifying value over the windows ending at its new orders, the orders recorded
    before summed with the new ones given here, [(member id, channel id, occurred_at, amount)]. Spend and order
    counts on PostgreSQL; members whose account is in the top tier already are left out (they cannot move), and the
    points metric is summed after (from the ledger). Writes nothing but a temporary table.

    The order import gives its new orders chunk by chunk (tiers_prepare_history_part(), while the chunks are decided
    and stored), then takes the sums (tiers_prepared_sums(), on the same connection); this is both in one call."""
    tiers_prepare_history_part(orders=orders, first=True)
    return tiers_prepared_sums()


def tiers_prepare_history_part(*, orders, first=False) -> None:
    """Some of an import's new orders [(member id, channel id, occurred_at (aware, or as ISO 8601 text), amount)],
    each kept with what the orders recorded before add up to over its window (one index range scan of
    order_member_spend_idx per new order, read from the index alone), for tiers_prepared_sums(). `first`: the
    import's first part (what an earlier import left on this connection is dropped). Only on PostgreSQL (elsewhere
    the sums are read after the orders are stored)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if first:
            cursor.execute(f"DROP TABLE IF EXISTS {_PREPARED}")
            _parts.tiers = {}
        _prepared_table(cursor)
    if not orders:
        return
    by_program = _by_program(orders, channel_at=1, kept=operator.itemgetter(0, 2, 3))
    for program in Program.objects.filter(pk__in=by_program).order_by("pk"):
        top, keys, channel_ids = _parts_tiers(program)
        if not keys:
            continue
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT member_id FROM loyalty_account WHERE program_id = %s AND tier_id = %s "
                "AND member_id = ANY(string_to_array(%s, ',')::bigint[])",
                [program.pk, top, _text_array({order[0] for order in by_program[program.pk]})],
            )
            at_top = {member_id for (member_id,) in cursor.fetchall()}
            if at_top:
                # Marked, so that a member in the top tier for one part and not for another (a downgrade committed
                # meanwhile) is not summed from part of its orders: the sums leave it out, and it is summed once the
                # orders are stored.
                cursor.execute(
                    f"INSERT INTO {_PREPARED} (program_id, member_id) "
                    "SELECT %s, unnest(string_to_array(%s, ',')::bigint[])",
                    [program.pk, _text_array(at_top)],
                )
        climbing = [order for order in by_program[program.pk] if order[0] not in at_top]
        if not climbing:
            continue
        members, ats, amounts = zip(*climbing, strict=True)
        times = ",".join(at if isinstance(at, str) else at.isoformat() for at in ats)
        arrays = [_text_array(members), times, _text_array(amounts)]
        for key in keys:
            _prepare_windows(program, key, arrays, channel_ids)


# The tiers and channels of each programme as the import's first part with its orders read them (on the preparing
# thread): tier settings or channels edited while the import runs cannot leave a window summed one way for some parts
# and another way for the others. A window whose settings changed before the count is summed again then.
_parts = threading.local()


def _parts_tiers(program):
    """(the top tier's id, the window kinds of the tiers above the entry tier (points aside), the channel ids)."""
    known = _parts.__dict__.setdefault("tiers", {})
    if program.pk not in known:
        tiers = program_config(program)["tiers"]
        keys = sorted(
            {(tier.metric, tier.window, tier.window_days) for tier in tiers[1:] if tier.metric != Tier.Metric.POINTS}
        )
        channel_ids = list(ChannelProgram.objects.filter(program=program).values_list("channel_id", flat=True))
        known[program.pk] = (tiers[-1].pk, keys, channel_ids)
    return known[program.pk]


def _prepared_table(cursor):
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_PREPARED} (program_id bigint, metric text, window_kind text, "
        "window_days integer, member_id bigint, at timestamptz, amount numeric, recorded numeric)"
    )


def _window_sql(program, key):
    """(the window's start for an order at `t`, the start's parameters, whether an order at `t` counts): the
    windows of qualifying_value(), (t - days, t] rolling, or (the start of t's year, t] in the programme's time zone
    (an order at the very start of a year counts in no window)."""
    _metric, window, days = key
    if window == Tier.Window.CALENDAR_YEAR:
        start = "(date_trunc('year', {t} AT TIME ZONE %s) AT TIME ZONE %s)"
        return start, [program.time_zone, program.time_zone], "{t} <> " + start
    return "({t} - %s::interval)", [f"{int(days)} days"], "TRUE"


def _prepare_windows(program, key, arrays, channel_ids):
    """Adds the new orders (text arrays of members, times, amounts) for one window kind of the programme's tiers,
    each with the recorded orders' value over its window in the programme's channels."""
    metric = key[0]
    channels = ", ".join(["%s"] * len(channel_ids)) or "NULL"
    start, start_params, counts = _window_sql(program, key)
    if metric == Tier.Metric.ORDERS:
        measure, own = "COUNT(*) FILTER (WHERE r.status <> 'refunded')", "1"
    else:
        measure, own = "COALESCE(SUM(r.amount - r.refunded_amount), 0)", "i.amount"
    own_counts = counts.format(t="i.at")
    sql = (
        f"INSERT INTO {_PREPARED} (program_id, metric, window_kind, window_days, member_id, at, amount, recorded) "  # noqa: S608
        f"SELECT %s, %s, %s, %s, i.member_id, i.at, CASE WHEN {own_counts} THEN {own} ELSE 0 END, "
        f"(SELECT {measure} FROM members_order r WHERE r.member_id = i.member_id AND r.channel_id IN ({channels}) "
        f"AND r.occurred_at > {start.format(t='i.at')} AND r.occurred_at <= i.at) "
        "FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ',')::timestamptz[], "
        "string_to_array(%s, ',')::numeric[]) AS i(member_id, at, amount)"
    )
    own_params = [] if counts == "TRUE" else start_params
    params = [program.pk, *key, *own_params, *channel_ids, *start_params, *arrays]
    with jit_off(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def tiers_prepared_sums() -> HistorySums:
    """The sums of the parts given on this connection: for each member, the largest over its new orders of the
    recorded value over the order's window plus the new orders in that window (rows at the same time are peers of a
    RANGE frame: they count in each other's windows, as in one statement over all the orders). Drops the parts."""
    sums = HistorySums()
    if connection.vendor != "postgresql":
        return sums
    with connection.cursor() as cursor:
        _prepared_table(cursor)  # none when no part was given
        cursor.execute(
            f"SELECT DISTINCT program_id, metric, window_kind, window_days FROM {_PREPARED} "  # noqa: S608
            "WHERE metric IS NOT NULL"
        )
        keys = cursor.fetchall()
    for program in Program.objects.filter(pk__in={program_id for program_id, *_key in keys}):
        with connection.cursor() as cursor:  # the members a part left out (read apart: the table has no statistics)
            cursor.execute(
                f"SELECT DISTINCT member_id FROM {_PREPARED} WHERE metric IS NULL AND program_id = %s",  # noqa: S608
                [program.pk],
            )
            left_out = {member_id for (member_id,) in cursor.fetchall()}
        for key in (tuple(key) for program_id, *key in keys if program_id == program.pk):
            start, frame_params, _counts = _window_sql(program, key)
            if key[1] == Tier.Window.CALENDAR_YEAR:
                frame = f"PARTITION BY p.member_id, {start.format(t='p.at')} ORDER BY p.at RANGE UNBOUNDED PRECEDING"
            else:  # (t - days, t]: timestamps have microseconds
                frame = "PARTITION BY p.member_id ORDER BY p.at RANGE BETWEEN %s::interval - interval '1 microsecond' "
                frame += "PRECEDING AND CURRENT ROW"
            with session_settings(jit="off", work_mem="64MB"), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT w.member_id, MAX(w.value) FROM (SELECT p.member_id, "  # noqa: S608 - fixed SQL
                    f"p.recorded + SUM(p.amount) OVER ({frame}) AS value FROM {_PREPARED} p "
                    "WHERE p.program_id = %s AND p.metric = %s AND p.window_kind = %s AND p.window_days = %s) w "
                    "GROUP BY w.member_id",
                    [*frame_params, program.pk, *key],
                )
                found = {
                    member_id: Decimal(value) for member_id, value in cursor.fetchall() if member_id not in left_out
                }
            sums.values.setdefault(program.pk, {})[key] = found
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {_PREPARED}")
    _parts.tiers = {}
    return sums


def _history_tiers(program, orders, prepared):
    tiers = program_config(program)["tiers"]
    entry = entry_tier(program)
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
    for key in {(tier.metric, tier.window, tier.window_days) for tier in higher}:
        sample = next(tier for tier in higher if (tier.metric, tier.window, tier.window_days) == key)
        values[key], covered = dict(prepared.get(key, {})), prepared.get(key, {})
        climbing_orders = [order for order in orders if order[1] in climbing and order[1] not in covered]
        if not climbing_orders:
            continue
        if connection.vendor == "postgresql" and sample.metric != Tier.Metric.POINTS:
            values[key].update(_history_window_values_by_member(program, sample, climbing_orders))
        else:
            values[key].update(_history_window_values(program, sample, climbing_orders))
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
                "FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ',')::bigint[]) AS v(id, tier_id) "
                "WHERE a.id = v.id",
                [now, now, _text_array(change[0] for change in changes), _text_array(change[2] for change in changes)],
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
            "created_at) SELECT a, f, t, r, '', v, %s FROM unnest(string_to_array(%s, ',')::bigint[], "
            "string_to_array(%s, ',', '')::bigint[], string_to_array(%s, ',')::bigint[], string_to_array(%s, ','), "
            "string_to_array(%s, ',', '')::numeric[]) AS c(a, f, t, r, v) ORDER BY a",
            [created_at, *(_text_array(column) for column in columns)],
        )


def _text_array(values) -> str:
    """Numbers or codes as one comma-separated text for string_to_array(text, ',', ''), None as '' (NULL): for tens
    of thousands of values, psycopg's adaptation of a list costs seconds where this costs milliseconds."""
    return ",".join("" if value is None else str(value) for value in values)


def _history_window_values_by_member(program, tier, orders) -> dict:
    """What _history_window_values() gives, for spend and order counts on PostgreSQL, reading each member's orders
    once: one index range scan per member over the span of its imported orders, the windows summed by a window
    function (RANGE over the order time, whose frame is the window (start, end]), kept at the imported orders' times
    (rows at the same time are peers in a RANGE frame, so they share the value of the imported order).

    The imported orders come as arrays from the caller (not read back by id), and spend is read from
    order_member_spend_idx alone (an index-only scan: no order row is fetched). JIT is off for the statement: its
    estimate (one scan per member) makes PostgreSQL compile it, which costs more than running it."""
    channel_ids = list(ChannelProgram.objects.filter(program=program).values_list("channel_id", flat=True))
    channels = ", ".join(["%s"] * len(channel_ids)) or "NULL"
    if tier.window == Tier.Window.CALENDAR_YEAR:
        # The year's orders up to each one, in the programme's time zone; an order at the very start of a year is
        # outside every window (they start after it), as in qualifying_value().
        year = "(date_trunc('year', o.occurred_at AT TIME ZONE %s) AT TIME ZONE %s)"
        counted = f"o.occurred_at <> {year}"
        frame = f"PARTITION BY {year} ORDER BY o.occurred_at RANGE UNBOUNDED PRECEDING"
        lower = "r.occurred_at >= (date_trunc('year', m.times[1] AT TIME ZONE %s) AT TIME ZONE %s)"
        zone = program.time_zone
        counted_params, frame_params, lower_params = [zone, zone], [zone, zone], [zone, zone]
    else:
        # (end - days, end]: timestamps have microseconds, so the frame starts one microsecond after the start.
        span = f"{int(tier.window_days)} days"
        counted, counted_params = "TRUE", []
        frame = "ORDER BY o.occurred_at RANGE BETWEEN %s::interval - interval '1 microsecond' PRECEDING AND CURRENT ROW"
        frame_params = [span]
        lower, lower_params = "r.occurred_at > m.times[1] - %s::interval", [span]
    if tier.metric == Tier.Metric.ORDERS:
        measure = f"COUNT(*) FILTER (WHERE o.status <> 'refunded' AND {counted})"
    else:
        measure = f"SUM(CASE WHEN {counted} THEN o.amount ELSE 0 END)"
    # The imported orders as flat arrays (member, time), grouped per member by the server into its times in order
    # (MATERIALIZED: once per member): grouping 200,000 orders in Python costs a second, in SQL 0.1 s.
    _ids, members, ats = zip(*orders, strict=True) if orders else ((), (), ())
    recorded = (
        "SELECT r.occurred_at, r.amount - r.refunded_amount AS amount, r.status, "  # noqa: S608 - fixed SQL
        "r.occurred_at = ANY(m.times) AS imported FROM members_order r"
        f" WHERE r.member_id = m.member_id AND r.channel_id IN ({channels}) AND {lower}"
        " AND r.occurred_at <= m.times[cardinality(m.times)]"
    )
    sql = (
        "WITH m AS MATERIALIZED (SELECT i.member_id, array_agg(DISTINCT i.at ORDER BY i.at) AS times "  # noqa: S608
        "FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ',')::timestamptz[]) AS i(member_id, at) "
        "GROUP BY i.member_id) "
        "SELECT m.member_id, (SELECT MAX(x.value) FROM ("
        f" SELECT o.imported, {measure} OVER ({frame}) AS value FROM ({recorded}) o"
        ") x WHERE x.imported) FROM m"
    )
    params = [
        ",".join(map(str, members)),
        ",".join(map(dt.datetime.isoformat, ats)),
        *counted_params,
        *frame_params,
        *channel_ids,
        *lower_params,
    ]
    with jit_off(), connection.cursor() as cursor:
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
            cursor.executemany(
                f"INSERT INTO {table} (member_id, start, stop) VALUES (%s, %s, %s)",  # noqa: S608
                [(member_id, window_start(program, tier, at), at) for _order_id, member_id, at in orders],
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
