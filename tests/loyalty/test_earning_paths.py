"""The one-statement earning path (PostgreSQL, earning_sql.py) and the general path (earning.py) write the same
rows for the same order: the ledger row, the lot, the account and a tier upgrade, debt repaid first."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty import earning, ledger
from loyalty.models import Account, ChannelProgram, PointsLot, PointsTransaction, TierChange
from members import events, services
from members.models import Order
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db

ROW_FIELDS = ["kind", "points", "balance_after", "status", "reference", "reason", "fingerprint", "expires_at"]
LOT_FIELDS = ["points", "remaining", "status", "reference"]
ACCOUNT_FIELDS = ["balance", "pending", "lifetime_earned", "lifetime_spent", "tier__code"]


def _earn(channel, member, program, *, one_statement):
    account = ledger.account_get_or_create(member=member, program=program)
    Account.objects.filter(pk=account.pk).update(balance=-30)  # a debt, as after a refund of spent points
    # Recorded without loyalty's handler, then earned by the path under test, as order_record would.
    with events.order_recorded.disconnected(earning_handler()):
        order, _ = services.order_record(
            channel=channel, order_id="SAME-1", member=member, amount=Decimal("6123.45"), occurred_at=timezone.now()
        )
    order = Order.objects.get(pk=order.pk)
    with CaptureQueriesContext(connection) as queries:
        row = earning.points_earn_for_order(order=order, one_statement=one_statement)
    took_one_statement = any(query["sql"].startswith("WITH acc AS") for query in queries.captured_queries)
    assert took_one_statement == one_statement
    return Account.objects.get(pk=account.pk), row


def earning_handler():
    from loyalty import integration

    return integration.on_order_recorded


def _facts(account, row):
    row = PointsTransaction.objects.get(pk=row.pk)
    return {
        "row": {field: getattr(row, field) for field in ROW_FIELDS if field != "expires_at"},
        "expires_after": row.expires_at - row.created_at if row.expires_at else None,
        "lot": dict(PointsLot.objects.filter(pk=row.lot_id).values(*LOT_FIELDS).get()),
        "account": dict(Account.objects.filter(pk=account.pk).values(*ACCOUNT_FIELDS).get()),
        "tier_changes": list(
            TierChange.objects.filter(account=account)
            .order_by("pk")
            .values_list("from_tier__code", "to_tier__code", "reason", "metric_value")
        ),
    }


@pytest.mark.postgres
def test_the_one_statement_path_and_the_general_path_write_the_same_rows(program):
    fast, general = ChannelFactory(code="shop-a"), ChannelFactory(code="shop-b")
    for channel in (fast, general):
        ChannelProgram.objects.create(channel=channel, program=program)
    member_a, member_b = MemberFactory(), MemberFactory()

    account_a, row_a = _earn(fast, member_a, program, one_statement=True)
    account_b, row_b = _earn(general, member_b, program, one_statement=False)

    facts_a, facts_b = _facts(account_a, row_a), _facts(account_b, row_b)
    assert facts_a == facts_b
    # And what they agree on is right: 6123 points at the entry tier, 30 of them repay the debt, one upgrade.
    assert facts_a["row"]["points"] == 6123 and facts_a["account"]["balance"] == 6093
    assert facts_a["lot"] == {"points": 6123, "remaining": 6093, "status": "available", "reference": "order:SAME-1"}
    assert [change[2] for change in facts_a["tier_changes"]] == ["joined", "upgrade"]


@pytest.mark.parametrize("balance", [-100, -30, -10, 0, 20])
@pytest.mark.parametrize("points", [0, 5, 30, 50])
def test_the_debt_rule_reads_the_same_in_python_and_in_sql_on_this_database(points, balance):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {ledger.repaid_sql(str(points), f'({balance})')}")
        in_sql = cursor.fetchone()[0]
    assert in_sql == ledger.repaid(points, balance) == (min(points, -balance) if balance < 0 else 0)
