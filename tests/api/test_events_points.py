"""API.md: Events, Points, Tiers, and programmes that never see each other's points."""

import pytest
from django.utils import timezone

from loyalty.models import Account, ChannelProgram, PointsTransaction, Program, Tier
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db

DAY = "2026-11-02"


@pytest.fixture
def program(program):
    """These scenarios are dated in November 2026: here the demo programme accepts events and orders of any age
    (the limits on partners' dates have their own tests in test_partner_limits.py)."""
    Program.objects.filter(pk=program.pk).update(event_max_age_days=100 * 365, order_max_age_days=100 * 365)
    program.refresh_from_db()
    return program


def event(api, member, event_id, kind, at=f"{DAY}T10:00:00+08:00", **extra):
    body = {"event_id": event_id, "member_no": member.member_no, "type": kind, "occurred_at": at, **extra}
    return api.post("/api/v1/events/", body, format="json")


def test_check_in_gives_5_points_once_a_day_in_the_programme_time_zone(api, member):
    first = event(api, member, "E-1", "check_in", at=f"{DAY}T08:00:00+08:00")
    again = event(api, member, "E-2", "check_in", at=f"{DAY}T23:59:00+08:00")
    # 16:30 UTC on the 2nd is 00:30 on the 3rd in Shanghai: a new day there
    next_day = event(api, member, "E-3", "check_in", at=f"{DAY}T16:30:00Z")
    assert first.status_code == 201
    assert first.json() == {"event_id": "E-1", "points_earned": 5, "capped": False}
    assert again.json() == {"event_id": "E-2", "points_earned": 0, "capped": True}
    assert next_day.json()["points_earned"] == 5
    assert Account.objects.get(member=member).balance == 10


def test_share_at_most_3_a_day_and_review_at_most_5_a_month(api, member):
    shares = [event(api, member, f"S-{i}", "share").json()["points_earned"] for i in range(4)]
    reviews = [
        event(api, member, f"R-{i}", "review", at=f"2026-11-{i + 1:02d}T10:00:00+08:00").json()["points_earned"]
        for i in range(6)
    ]
    december = event(api, member, "R-9", "review", at="2026-12-01T10:00:00+08:00").json()["points_earned"]
    assert shares == [10, 10, 10, 0]
    assert reviews == [20, 20, 20, 20, 20, 0]
    assert december == 20


def test_profile_completed_once_ever(api, member):
    first = event(api, member, "P-1", "profile_completed").json()
    later = event(api, member, "P-2", "profile_completed", at="2026-11-20T10:00:00+08:00").json()
    assert (first["points_earned"], later["points_earned"], later["capped"]) == (50, 0, True)


def test_custom_event_needs_a_name_and_earns_by_its_rule(api, member, program):
    from loyalty.models import EarningRule

    EarningRule.objects.create(
        program=program, name="直播", kind="event", event_type="custom", event_name="live_stream_watch", points=15
    )
    response = event(api, member, "C-0", "custom")
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]
    assert event(api, member, "C-1", "custom", name="live_stream_watch").json()["points_earned"] == 15
    assert event(api, member, "C-2", "custom", name="other").json()["points_earned"] == 0


def test_event_replay_and_conflict(api, member):
    first = event(api, member, "E-1", "check_in")
    replay = event(api, member, "E-1", "check_in")
    conflict = event(api, member, "E-1", "share")
    assert (first.status_code, replay.status_code, conflict.status_code) == (201, 200, 409)
    assert replay.json() == first.json()
    assert PointsTransaction.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "dance"}, "type"),
        ({"occurred_at": "2026-11-02 10:00"}, "occurred_at"),
        ({"attributes": [1]}, "attributes"),
    ],
)
def test_bad_events_are_400(api, member, body, field):
    payload = {
        "event_id": "E-1",
        "member_no": member.member_no,
        "type": "check_in",
        "occurred_at": f"{DAY}T10:00:00+08:00",
        **body,
    }
    response = api.post("/api/v1/events/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_points_summary_and_ledger_newest_first(api, member):
    api.post(
        "/api/v1/orders/",
        {"order_id": "O-1", "member_no": member.member_no, "amount": "300.00", "occurred_at": f"{DAY}T10:00:00+08:00"},
        format="json",
    )
    event(api, member, "E-1", "check_in")
    summary = api.get(f"/api/v1/members/{member.member_no}/points/").json()
    assert summary["balance"] == 305 and summary["pending"] == 0 and summary["lifetime_earned"] == 305
    assert [lot["points"] for lot in summary["expiring"]] == [300, 5]
    ledger = api.get(f"/api/v1/members/{member.member_no}/points/transactions/").json()
    assert ledger["count"] == 2
    assert [(row["kind"], row["points"], row["balance_after"]) for row in ledger["results"]] == [
        ("earn", 5, 305),
        ("earn", 300, 300),
    ]
    assert set(ledger["results"][0]) == {
        "id",
        "kind",
        "points",
        "balance_after",
        "status",
        "reference",
        "reason",
        "created_at",
        "expires_at",
    }


def test_points_of_a_member_who_never_earned(api, member):
    assert api.get(f"/api/v1/members/{member.member_no}/points/").json() == {
        "balance": 0,
        "pending": 0,
        "lifetime_earned": 0,
        "expiring": [],
    }
    assert api.get(f"/api/v1/members/{member.member_no}/points/transactions/").json()["count"] == 0


def test_adjustments_add_and_take_with_a_reason_and_are_idempotent(api, member):
    url = f"/api/v1/members/{member.member_no}/points/adjustments/"
    added = api.post(url, {"adjustment_id": "A-1", "points": 500, "reason": "客诉补偿"}, format="json")
    assert added.status_code == 201
    assert (added.json()["kind"], added.json()["points"], added.json()["balance_after"]) == ("adjust", 500, 500)
    replay = api.post(url, {"adjustment_id": "A-1", "points": 500, "reason": "客诉补偿"}, format="json")
    assert replay.status_code == 200 and replay.json() == added.json()
    conflict = api.post(url, {"adjustment_id": "A-1", "points": 400, "reason": "客诉补偿"}, format="json")
    assert conflict.json()["error"]["code"] == "idempotency_conflict"
    too_much = api.post(url, {"adjustment_id": "A-2", "points": -501, "reason": "纠错"}, format="json")
    assert too_much.status_code == 409 and too_much.json()["error"]["code"] == "insufficient_points"
    taken = api.post(url, {"adjustment_id": "A-3", "points": -200, "reason": "纠错"}, format="json")
    assert taken.json()["balance_after"] == 300
    assert api.post(url, {"adjustment_id": "A-4", "points": 0, "reason": "x"}, format="json").status_code == 400
    assert api.post(url, {"adjustment_id": "A-5", "points": 5}, format="json").status_code == 400


def test_adjustments_need_the_points_write_scope(make_client, member, program):
    client = make_client(scopes=["points:read"])
    response = client.post(
        f"/api/v1/members/{member.member_no}/points/adjustments/",
        {"adjustment_id": "A-1", "points": 5, "reason": "x"},
        format="json",
    )
    assert response.status_code == 403


def test_tiers_lowest_rank_first(api):
    tiers = api.get("/api/v1/tiers/").json()
    assert [(t["code"], t["name"], t["rank"]) for t in tiers] == [
        ("basic", "普通会员", 0),
        ("silver", "银卡会员", 1),
        ("gold", "金卡会员", 2),
        ("diamond", "钻石会员", 3),
    ]
    assert tiers[2]["qualification"]["upgrade_threshold"] == "5000.00"
    assert tiers[3]["benefits"]["points_multiplier"] == "2.00"


def test_member_answers_show_the_tier_and_points_and_filter_by_tier(api, member):
    other = MemberFactory()
    api.post(
        "/api/v1/orders/",
        {"order_id": "O-1", "member_no": member.member_no, "amount": "6000.00", "occurred_at": f"{DAY}T10:00:00+08:00"},
        format="json",
    )
    body = api.get(f"/api/v1/members/{member.member_no}/").json()
    assert body["tier"] == {"code": "gold", "name": "金卡会员"} and body["points"] == {"balance": 6000, "pending": 0}
    gold = api.get("/api/v1/members/", {"tier": "gold"}).json()["results"]
    basic = api.get("/api/v1/members/", {"tier": "basic"}).json()["results"]
    assert [m["member_no"] for m in gold] == [member.member_no]
    assert [m["member_no"] for m in basic] == [other.member_no]


def test_two_programmes_never_see_each_others_points_or_tiers(api, make_client, member, program):
    overseas = Program.objects.create(
        code="sg", name="Singapore", currency="SGD", time_zone="Asia/Singapore", points_per_unit=2
    )
    Tier.objects.create(program=overseas, code="member", name="Member", rank=0)
    Tier.objects.create(
        program=overseas, code="vip", name="VIP", rank=1, upgrade_threshold=100, retention_threshold=100
    )
    sg_channel = ChannelFactory(code="sg-web")
    ChannelProgram.objects.create(channel=sg_channel, program=overseas)
    sg = make_client(sg_channel)
    # The member joins the Singapore programme by signing up there (API.md: Members): the same member.
    joined = sg.post("/api/v1/members/", {"name": "Zhang Wei", "phone": member.phone}, format="json")
    assert (joined.status_code, joined.json()["member_no"]) == (201, member.member_no)
    api.post(
        "/api/v1/orders/",
        {
            "order_id": "CN-1",
            "member_no": member.member_no,
            "amount": "2000.00",
            "occurred_at": f"{DAY}T10:00:00+08:00",
        },
        format="json",
    )
    sg_order = sg.post(
        "/api/v1/orders/",
        {
            "order_id": "SG-1",
            "member_no": member.member_no,
            "amount": "50.00",
            "currency": "SGD",
            "occurred_at": f"{DAY}T10:00:00+08:00",
        },
        format="json",
    )
    assert sg_order.json()["points_earned"] == 100
    assert sg_order.json()["member"] == {
        "points": {"balance": 100, "pending": 0},
        "tier": {"code": "member", "name": "Member"},
    }
    assert api.get(f"/api/v1/members/{member.member_no}/points/").json()["balance"] == 2000
    assert sg.get(f"/api/v1/members/{member.member_no}/points/").json()["balance"] == 100
    assert [t["code"] for t in sg.get("/api/v1/tiers/").json()] == ["member", "vip"]
    assert sg.get(f"/api/v1/members/{member.member_no}/").json()["tier"]["code"] == "member"
    assert api.get(f"/api/v1/members/{member.member_no}/").json()["tier"]["code"] == "silver"
    # a CNY order cannot be sent to the SGD programme
    wrong = sg.post(
        "/api/v1/orders/",
        {
            "order_id": "SG-2",
            "member_no": member.member_no,
            "amount": "5.00",
            "currency": "CNY",
            "occurred_at": f"{DAY}T10:00:00+08:00",
        },
        format="json",
    )
    assert wrong.status_code == 400


def test_a_channel_without_a_programme_is_told_so(make_client, member):
    client = make_client(ChannelFactory(code="lonely"))
    response = client.post(
        "/api/v1/orders/",
        {"order_id": "O-1", "member_no": member.member_no, "amount": "1.00", "occurred_at": timezone.now().isoformat()},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "program_not_configured"
