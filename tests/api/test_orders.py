"""API.md: Orders and refunds, on the demo programme (1 point per 1.00 x tier multiplier, rounded down, per order;
tiers by spend over 365 days: silver 1,000, gold 5,000, diamond 20,000; multipliers 1.0, 1.2, 1.5, 2.0)."""

from decimal import Decimal

import pytest

from loyalty.models import Account, PointsTransaction, TierChange
from members.models import Order, OrderLine
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/orders/"
WHEN = "2026-11-01T10:00:00+08:00"


def order(api, member, order_id, amount, **extra):
    body = {"order_id": order_id, "member_no": member.member_no, "amount": amount, "occurred_at": WHEN, **extra}
    return api.post(URL, body, format="json")


def balance(member):
    return Account.objects.get(member=member).balance


def test_an_order_earns_one_point_per_yuan_rounded_down(api, member):
    response = order(api, member, "O-1", "199.99")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["order_id"] == "O-1" and body["member_no"] == member.member_no
    assert body["amount"] == "199.99"
    assert body["points_earned"] == 199
    assert body["points_status"] == "available"
    assert body["available_at"]
    assert body["member"] == {"points": {"balance": 199, "pending": 0}, "tier": {"code": "basic", "name": "普通会员"}}


def test_the_order_that_crosses_a_threshold_earns_at_the_old_multiplier_then_upgrades(api, member):
    assert order(api, member, "O-1", "800.00").json()["points_earned"] == 800
    crossing = order(api, member, "O-2", "300.00").json()
    assert crossing["points_earned"] == 300  # still basic x1.0 for this order
    assert crossing["member"]["tier"]["code"] == "silver"
    assert order(api, member, "O-3", "100.00").json()["points_earned"] == 120  # silver x1.2
    change = TierChange.objects.get(reason="upgrade")
    assert (change.from_tier.code, change.to_tier.code, change.metric_value) == ("basic", "silver", Decimal("1100.00"))


def test_a_big_order_jumps_straight_to_the_tier_it_reaches(api, member):
    body = order(api, member, "O-1", "25000.00").json()
    assert body["points_earned"] == 25000
    assert body["member"]["tier"]["code"] == "diamond"


def test_order_by_phone_in_any_spelling(api, member):
    body = api.post(
        URL, {"order_id": "O-1", "phone": "138-0013-8000", "amount": 10, "occurred_at": WHEN}, format="json"
    ).json()
    assert body["member_no"] == member.member_no and body["points_earned"] == 10


def test_lines_are_recorded_and_must_add_up(api, member):
    lines = [
        {"sku": "A1", "category": "skincare", "quantity": 2, "amount": "60.00"},
        {"sku": "B2", "name": "口红", "category": "makeup", "amount": "40.00"},
    ]
    assert order(api, member, "O-1", "100.00", lines=lines).status_code == 201
    assert list(OrderLine.objects.values_list("sku", "quantity", "amount")) == [
        ("A1", 2, Decimal("60.00")),
        ("B2", 1, Decimal("40.00")),
    ]
    response = order(api, member, "O-2", "100.00", lines=[{"sku": "A1", "amount": "99.00"}])
    assert response.status_code == 400
    assert "lines" in response.json()["error"]["fields"]
    assert not Order.objects.filter(order_id="O-2").exists()


def test_replay_with_the_same_payload_answers_200_with_the_original_and_changes_nothing(api, member):
    first = order(api, member, "O-1", "100.00")
    replay = api.post(
        URL,
        {"amount": "100.0", "occurred_at": "2026-11-01T02:00:00Z", "order_id": "O-1", "member_no": member.member_no},
        format="json",
    )
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert PointsTransaction.objects.count() == 1 and balance(member) == 100


def test_same_order_id_with_another_payload_is_409_idempotency_conflict(api, member):
    order(api, member, "O-1", "100.00")
    response = order(api, member, "O-1", "101.00")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert balance(member) == 100


def test_order_ids_are_per_channel(api, make_client, member, program):
    from loyalty.models import ChannelProgram
    from tests.factories import ChannelFactory

    tmall = ChannelFactory(code="tmall")
    ChannelProgram.objects.create(channel=tmall, program=program)
    order(api, member, "O-1", "100.00")
    assert order(make_client(tmall), member, "O-1", "50.00").status_code == 201
    assert balance(member) == 150


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.234"}, "amount"),
        ({"occurred_at": "2026-11-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"currency": "USD"}, "currency"),
        ({"order_id": ""}, "order_id"),
        ({"lines": [{"sku": "A", "amount": "x"}]}, "lines.0.amount"),
    ],
)
def test_bad_orders_are_400_and_change_nothing(api, member, body, field):
    payload = {"order_id": "O-9", "member_no": member.member_no, "amount": "10.00", "occurred_at": WHEN, **body}
    response = api.post(URL, payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not Order.objects.exists() and not PointsTransaction.objects.exists()


def test_an_order_of_amount_0_is_recorded_and_earns_nothing(api, member):
    """A fully discounted order (a free gift) is an order: recorded, with its lines, and no points."""
    free = [{"sku": "GIFT", "name": "赠品", "amount": "0.00"}]
    response = order(api, member, "O-0", "0.00", lines=free)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["amount"], body["points_earned"]) == ("0.00", 0)
    assert body["member"]["points"] == {"balance": 0, "pending": 0}
    recorded = Order.objects.get(order_id="O-0")
    assert recorded.amount == Decimal("0.00")
    assert list(recorded.lines.values_list("sku", "amount")) == [("GIFT", Decimal("0.00"))]
    assert not PointsTransaction.objects.exists()
    assert order(api, member, "O-0", "0.00", lines=free).status_code == 200  # a replay, not a second order
    assert Order.objects.count() == 1


def test_an_order_of_amount_0_with_lines_that_do_not_add_up_is_refused(api, member):
    response = order(api, member, "O-0", "0", lines=[{"sku": "A", "amount": "5.00"}])
    assert response.status_code == 400
    assert "lines" in response.json()["error"]["fields"]
    assert not Order.objects.exists()


def test_unknown_member_is_404(api):
    response = api.post(
        URL, {"order_id": "O-1", "member_no": "99999999", "amount": "1", "occurred_at": WHEN}, format="json"
    )
    assert response.status_code == 404


@pytest.mark.parametrize("status", ["frozen", "closed"])
def test_a_frozen_or_closed_member_earns_nothing(api, member, status):
    member.status = status
    member.save()
    response = order(api, member, "O-1", "100.00")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "member_not_active"
    assert not Order.objects.exists()


def test_refund_reverses_points_in_proportion(api, member):
    order(api, member, "O-1", "999.00")
    response = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "333.00"}, format="json")
    assert response.status_code == 201
    assert response.json()["points_reversed"] == 333
    assert response.json()["member"]["points"]["balance"] == 666
    second = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-2", "amount": "666.00"}, format="json")
    assert second.json()["points_reversed"] == 666
    assert balance(member) == 0
    assert Order.objects.get().status == "refunded"


def test_partial_refunds_add_up_to_exactly_what_was_earned(api, member):
    order(api, member, "O-1", "100.00")  # 100 points
    reversed_points = [
        api.post("/api/v1/orders/O-1/refunds/", {"refund_id": f"R-{i}", "amount": "33.33"}, format="json").json()[
            "points_reversed"
        ]
        for i in range(3)
    ]
    last = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-9", "amount": "0.01"}, format="json").json()
    assert reversed_points == [33, 33, 33]
    assert last["points_reversed"] == 1
    assert balance(member) == 0


def test_refunds_never_exceed_the_order(api, member):
    order(api, member, "O-1", "100.00")
    api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "60.00"}, format="json")
    response = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-2", "amount": "40.01"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "refund_exceeds_order"
    assert Order.objects.get().refunded_amount == Decimal("60.00") and balance(member) == 40


def test_refund_replay_and_conflict(api, member):
    order(api, member, "O-1", "100.00")
    first = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "10.00"}, format="json")
    replay = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "10"}, format="json")
    conflict = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "11.00"}, format="json")
    assert (first.status_code, replay.status_code, conflict.status_code) == (201, 200, 409)
    assert replay.json()["points_reversed"] == 10
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    assert balance(member) == 90


def test_refund_of_spent_points_drives_the_balance_negative(api, member):
    from django.db import transaction

    from loyalty import services

    order(api, member, "O-1", "100.00")
    with transaction.atomic():
        account = services.accounts_lock(Account.objects.get(member=member).pk)
        services.points_spend(account=next(iter(account.values())), points=80, reference="test")
    response = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "100.00"}, format="json")
    assert response.json()["points_reversed"] == 100
    assert balance(member) == -80
    # the debt is repaid by the next earning first
    assert order(api, member, "O-2", "50.00").json()["member"]["points"]["balance"] == -30
    ledger = list(PointsTransaction.objects.order_by("id").values_list("kind", "points", "balance_after"))
    assert ledger == [("earn", 100, 100), ("redeem", -80, 20), ("reverse", -100, -80), ("earn", 50, -30)]


def test_refund_of_an_unknown_order_is_404(api):
    response = api.post("/api/v1/orders/NOPE/refunds/", {"refund_id": "R-1", "amount": "1.00"}, format="json")
    assert response.status_code == 404


def test_pending_points_and_their_reversal(api, member, program):
    program.pending_days = 14
    program.save()
    body = order(api, member, "O-1", "100.00").json()
    assert body["points_status"] == "pending" and body["member"]["points"] == {"balance": 0, "pending": 100}
    refund = api.post("/api/v1/orders/O-1/refunds/", {"refund_id": "R-1", "amount": "25.00"}, format="json").json()
    assert refund["points_reversed"] == 25
    assert refund["member"]["points"] == {"balance": 0, "pending": 75}


def test_referrer_earns_on_the_first_order_of_the_referred_member(api, member):
    friend = MemberFactory(referrer=member)
    order(api, friend, "O-1", "10.00")
    order(api, friend, "O-2", "10.00")
    assert balance(member) == 200
    assert PointsTransaction.objects.filter(account__member=member, reference__startswith="referral:").count() == 1


def test_order_list_query_free_path_count(api, member, django_assert_max_num_queries):
    order(api, member, "O-0", "10.00")
    with django_assert_max_num_queries(40):
        order(api, member, "O-1", "10.00")
