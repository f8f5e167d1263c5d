"""Opening balances and tiers for brands moving from another system (issue: the member import's columns)."""

import datetime as dt

import pytest
from django.db.models import Sum

from core.errors import ValidationFailed
from loyalty import opening
from loyalty.models import Account, PointsLot, PointsTransaction, TierChange
from members import events
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_opening_rows_with_their_own_expiry_and_tiers(program, admin_user):
    first, second, third = MemberFactory(), MemberFactory(), MemberFactory()
    expiry = dt.datetime(2027, 12, 31, tzinfo=dt.UTC)
    result = opening.opening_balances_record(
        program=program,
        entries=[
            {"member_id": first.pk, "points_balance": 1200, "tier": "gold", "expires_at": expiry},
            {"member_id": second.pk, "points_balance": 300, "tier": ""},
            {"member_id": third.pk, "points_balance": 0, "tier": "silver"},
        ],
        actor=admin_user,
    )
    assert result == {"opened": 3, "skipped": 0, "points": 1500}
    gold = Account.objects.get(member=first)
    assert (gold.balance, gold.tier.code, gold.lifetime_earned) == (1200, "gold", 1200)
    assert PointsLot.objects.get(account=gold).expires_at == expiry
    row = PointsTransaction.objects.get(account=gold)
    assert (row.kind, row.points, row.balance_after, row.actor) == ("opening", 1200, 1200, admin_user)
    assert Account.objects.get(member=second).tier.code == "basic"
    assert Account.objects.get(member=third).balance == 0
    assert TierChange.objects.filter(reason="manual").count() == 2


def test_importing_the_same_balances_twice_changes_nothing(program):
    member = MemberFactory()
    entries = [{"member_id": member.pk, "points_balance": 500, "tier": "silver"}]
    opening.opening_balances_record(program=program, entries=entries)
    again = opening.opening_balances_record(program=program, entries=entries)
    assert again == {"opened": 0, "skipped": 1}
    assert PointsTransaction.objects.aggregate(s=Sum("points"))["s"] == 500


def test_unknown_tier_or_negative_points_change_nothing(program):
    member = MemberFactory()
    with pytest.raises(ValidationFailed):
        opening.opening_balances_record(
            program=program, entries=[{"member_id": member.pk, "points_balance": 5, "tier": "platinum"}]
        )
    with pytest.raises(ValidationFailed):
        opening.opening_balances_record(
            program=program, entries=[{"member_id": member.pk, "points_balance": -5, "tier": ""}]
        )
    assert not Account.objects.exists() and not PointsTransaction.objects.exists()


def test_the_import_hook_reports_errors_with_row_numbers(program):
    member = MemberFactory()
    errors = [
        error
        for result in events.members_imported.send(
            rows=[{"member_id": member.pk, "points_balance": 10, "tier": "platinum", "row": 7}], actor=None
        )
        for error in result
    ]
    assert errors and errors[0]["row"] == 7
    ok = events.members_imported.send(rows=[{"member_id": member.pk, "points_balance": 10, "tier": "", "row": 8}])
    assert ok == [[]]
    assert Account.objects.get(member=member).balance == 10
