"""Spend net of refunds, and orders kept (not wholly refunded), in a programme's channels over a window: the one
definition that tiers (the per-order check, the general path and the daily job) and badges read, and that RFM,
cohorts and segments will read next.

The window is (start, end]: an order placed at `end` counts (the order that crosses a threshold), one placed at
exactly `start` belongs to the window before. Net spend is the order amount less what was refunded of it.
Parameters of every statement, in this order: programme id, window start, window end.
"""

import datetime as dt
import functools
from decimal import Decimal

from django.db import connection

from core.db import sql_literal
from members.models import Order

from .models import ChannelProgram

# For "ever" (a badge with no window): before and after any order.
BEGINNING = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
END = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)


def _sql(select: str, member: str, group: str = "", only: str = "") -> str:
    orders = connection.ops.quote_name(Order._meta.db_table)
    links = connection.ops.quote_name(ChannelProgram._meta.db_table)
    # Identifiers come from the models' metadata; values are parameters.
    return (
        f"SELECT {select} FROM {orders} o WHERE {member}"  # noqa: S608
        f" o.channel_id IN (SELECT cp.channel_id FROM {links} cp WHERE cp.program_id = %s)"
        f" AND o.occurred_at > %s AND o.occurred_at <= %s{only}{group}"
    )


NET_SPEND = "SUM(o.amount - o.refunded_amount)"
# An order counts while part of it is kept: a wholly refunded order does not.
ORDERS_KEPT = "COUNT(*)"
KEPT = f" AND o.status <> {sql_literal(Order.Status.REFUNDED)}"


@functools.cache
def member_spend_sql(member: str) -> str:
    """A scalar statement (usable as a subquery): the net spend of the member the SQL expression `member` names
    (`a.member_id` in a statement over accounts, or `%s` before the other parameters). Read from
    order_member_spend_idx alone (an index-only scan); the programme's channels are one hashed list."""
    return _sql(NET_SPEND, f"o.member_id = {member} AND")


@functools.cache
def members_spend_sql() -> str:
    """Every member's net spend with an order in the window: rows (member_id, value)."""
    return _sql(f"o.member_id, {NET_SPEND} AS value", "", " GROUP BY o.member_id")


@functools.cache
def members_orders_sql() -> str:
    """Every member's count of kept orders in the window: rows (member_id, value)."""
    return _sql(f"o.member_id, {ORDERS_KEPT} AS value", "", " GROUP BY o.member_id", KEPT)


def member_orders(*, member_id: int, program_id: int, start: dt.datetime | None, end: dt.datetime | None) -> int:
    """One member's count of kept orders in the programme's channels over (start, end]; None: no bound."""
    with connection.cursor() as cursor:
        cursor.execute(
            _sql(ORDERS_KEPT, "o.member_id = %s AND", only=KEPT),
            [member_id, program_id, start or BEGINNING, end or END],
        )
        return int(cursor.fetchone()[0])


def as_amount(value) -> Decimal:
    """A SUM from raw SQL as money (SQLite answers a float, PostgreSQL a Decimal; no orders is None)."""
    return Decimal(str(value)) if value is not None else Decimal(0)


def member_spend(*, member_id: int, program_id: int, start: dt.datetime | None, end: dt.datetime | None) -> Decimal:
    """One member's net spend in the programme's channels over (start, end]; None for either bound: no bound."""
    with connection.cursor() as cursor:
        cursor.execute(member_spend_sql("%s"), [member_id, program_id, start or BEGINNING, end or END])
        return as_amount(cursor.fetchone()[0])
