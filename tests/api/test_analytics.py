"""API.md § Analytics: shapes, scope `analytics:read`, and every figure for the calling channel's programme only."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from analytics import clv, rfm
from loyalty.models import ChannelProgram, Program, Tier
from members import services as member_services
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
AS_OF = dt.date(2026, 10, 31)


def at(day, hour=12):
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=SH)


def buy(channel, member, order_id, amount, when):
    member_services.order_record(
        channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=when
    )


@pytest.fixture
def history(program, channel):
    """Ten members: member i first buys on (1 Jan + 20 i days) and comes back i % 4 times, two weeks apart."""
    members = []
    for index in range(10):
        first = dt.date(2026, 1, 1) + dt.timedelta(days=20 * index)
        member = MemberFactory(joined_at=at(first, 8))
        members.append(member)
        for repeat in range(index % 4 + 1):
            buy(
                channel,
                member,
                f"O-{index}-{repeat}",
                f"{100 + 10 * index}.00",
                at(first + dt.timedelta(days=14 * repeat)),
            )
    return members


@pytest.fixture
def other_brand():
    other = Program.objects.create(code="other", name="Other brand", time_zone="Asia/Shanghai")
    Tier.objects.create(program=other, code="basic", name="普通", rank=0)
    shop = ChannelFactory(code="other-shop")
    ChannelProgram.objects.filter(channel=shop).delete()
    ChannelProgram.objects.create(channel=shop, program=other)
    return shop


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/analytics/kpis/",
        "/api/v1/analytics/cohorts/",
        "/api/v1/analytics/rfm/",
        "/api/v1/analytics/clv/",
        "/api/v1/members/{member_no}/clv/",
    ],
)
def test_every_endpoint_needs_the_analytics_scope(make_client, channel, program, member, url):
    url = url.format(member_no=member.member_no)
    assert make_client(channel, scopes=["members:read"]).get(url).status_code == 403
    from rest_framework.test import APIClient

    assert APIClient().get(url).status_code == 401


def test_kpis_shape_and_values(api, history):
    response = api.get("/api/v1/analytics/kpis/", {"from": "2026-01-01", "to": "2026-01-31"})
    assert response.status_code == 200, response.content
    body = response.json()
    # In January: member 0 (100.00 once on 1 Jan) and member 1 (110.00 on 21 Jan, 110.00 on 4 Feb: one in January).
    # The points ledger and the tier changes are written today, after January: nothing issued or held then.
    assert body == {
        "members_total": 2,
        "members_new": 2,
        "purchasing_members": 2,
        "orders": 2,
        "revenue": "210.00",
        "refunds": "0.00",
        "aov": "105.00",
        "purchase_frequency": "1.0000",
        "repeat_purchase_rate": "0.0000",
        "revenue_per_purchasing_member": "105.00",
        "points_issued": 0,
        "points_redeemed": 0,
        "points_expired": 0,
        "points_liability": 0,
        "tier_distribution": {"basic": 0, "silver": 0, "gold": 0, "diamond": 0},
        "taken_at": None,  # computed now: no nightly snapshot of this window
    }
    today = api.get("/api/v1/analytics/kpis/").json()  # the last 30 days: the ledger's rows and today's tiers
    assert today["points_issued"] == 3360 and today["points_liability"] == 3360  # 1 point per 1.00
    assert today["tier_distribution"] == {"basic": 10, "silver": 0, "gold": 0, "diamond": 0}


def test_kpis_refuse_bad_dates_with_the_error_body(api):
    response = api.get("/api/v1/analytics/kpis/", {"from": "2026-02-01", "to": "2026-01-01"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert "from" in response.json()["error"]["fields"]
    response = api.get("/api/v1/analytics/kpis/", {"from": "yesterday"})
    assert response.status_code == 400 and "from" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("url", "query", "field"),
    [
        # A day outside the years an order can have: the error body, not a server error.
        ("kpis", {"to": "9999-12-31"}, "to"),
        ("kpis", {"from": "0001-01-01", "to": "2026-01-01"}, "from"),
        ("cohorts", {"to": "9999-12-31"}, "to"),
        ("rfm", {"as_of": "9999-12-31"}, "as_of"),
        ("rfm", {"as_of": "0001-01-01"}, "as_of"),
        # `from` alone is checked against the default `to` (today) like a `from` after a given `to`, and the ten-year
        # cap holds for it too.
        ("kpis", {"from": "2999-01-01"}, "from"),
        ("kpis", {"from": "1900-01-01"}, "from"),
        ("cohorts", {"from": "2999-01-01"}, "from"),
        ("cohorts", {"from": "1900-01-01"}, "from"),
    ],
)
def test_days_outside_a_possible_window_are_refused_with_the_error_body(api, url, query, field):
    response = api.get(f"/api/v1/analytics/{url}/", query)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]


def test_an_rfm_window_reaching_before_any_order_counts_every_order(api, program, history):
    """Staff may type a window of a million days: it counts every order, as an empty window does."""
    from analytics.models import RfmThresholds

    RfmThresholds.objects.create(program=program, **{**RfmThresholds.DEFAULTS, "window_days": 1_000_000})
    wide = api.get("/api/v1/analytics/rfm/", {"as_of": "1900-01-02"})
    assert wide.status_code == 200 and sum(wide.json()["counts"]["f"].values()) == 0
    wide = api.get("/api/v1/analytics/rfm/", {"as_of": AS_OF.isoformat()}).json()
    RfmThresholds.objects.filter(program=program).update(window_days=None)
    ever = api.get("/api/v1/analytics/rfm/", {"as_of": AS_OF.isoformat()}).json()
    assert wide["counts"] == ever["counts"] and sum(ever["counts"]["f"].values()) == 10


def test_cohorts_by_quarter(api, history):
    response = api.get("/api/v1/analytics/cohorts/", {"period": "quarter", "from": "2026-01-01", "to": "2026-06-30"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["period"] == "quarter"
    # Q1 (1 Jan..31 Mar): members 0-4 first bought; of them only member 3 (first 2 Mar, back 16 Mar, 30 Mar and
    # 13 Apr) buys in Q2 too. Q2: members 5-9 (first 11 Apr .. 30 Jun).
    assert body["cohorts"] == [
        {"cohort": "2026Q1", "members": 5, "active": ["1.0000", "0.2000"]},
        {"cohort": "2026Q2", "members": 5, "active": ["1.0000"]},
    ]
    assert api.get("/api/v1/analytics/cohorts/", {"period": "week"}).status_code == 400


def test_rfm_shape(api, program, history):
    rfm.rfm_scores_compute(program=program, as_of=AS_OF)
    body = api.get("/api/v1/analytics/rfm/", {"as_of": AS_OF.isoformat()}).json()
    assert body["as_of"] == "2026-10-31"
    assert body["thresholds"] == {
        "r": [30, 90, 180, 365],
        "f": [2, 3, 5, 8],
        "m": ["200.00", "500.00", "1000.00", "3000.00"],
        "window_days": 365,
    }
    assert sum(body["counts"]["r"].values()) == 10 and set(body["counts"]["f"]) == {"1", "2", "3", "4", "5"}
    assert sum(body["segments"].values()) == 10


def test_clv_before_and_after_the_fit_and_on_the_member(api, program, history):
    assert api.get("/api/v1/analytics/clv/").json()["error"]["code"] == "not_found"
    member = history[3]  # 3 repeat days
    assert api.get(f"/api/v1/members/{member.member_no}/").json()["clv"] is None
    rfm.rfm_scores_compute(program=program, as_of=AS_OF)
    fit = clv.clv_fit(program=program, as_of=AS_OF)
    body = api.get("/api/v1/analytics/clv/").json()
    assert body == {
        "as_of": "2026-10-31",
        "time_unit": "week",
        "members": 10,
        "repeat_members": 7,
        "bgnbd": {"r": fit.r, "alpha": fit.alpha, "a": fit.a, "b": fit.b, "log_likelihood": fit.bgnbd_log_likelihood},
        "gamma_gamma": {"p": fit.p, "q": fit.q, "v": fit.v, "log_likelihood": fit.gamma_gamma_log_likelihood},
    }
    one = api.get(f"/api/v1/members/{member.member_no}/clv/").json()
    assert set(one) == {"as_of", "x", "t_x", "T", "p_alive", "expected_purchases", "expected_average_spend", "clv"}
    # First order 2 Mar 2026, back three times 14 days apart (t_x = 6 weeks); 31 Oct is 243 days after 2 Mar.
    assert (one["as_of"], one["x"], one["t_x"], one["T"]) == ("2026-10-31", 3, 6.0, round(243 / 7, 4))
    longer = api.get(f"/api/v1/members/{member.member_no}/clv/", {"horizon_weeks": 104}).json()
    assert Decimal(longer["expected_purchases"]) > Decimal(one["expected_purchases"])
    assert api.get(f"/api/v1/members/{member.member_no}/clv/", {"horizon_weeks": 0}).status_code == 400
    answer = api.get(f"/api/v1/members/{member.member_no}/").json()
    assert answer["rfm"] and len(answer["rfm"]) == 3
    assert answer["clv"] == {"p_alive": one["p_alive"], "clv": answer["clv"]["clv"]}
    stored = member.scores.get()
    assert answer["clv"]["clv"] == f"{stored.clv:.2f}"


def test_the_clv_answers_agree_after_a_failed_fit_and_a_fit_for_an_earlier_day(api, program, history):
    """The model of GET /analytics/clv/, of /members/{no}/clv/ and the member answer's `clv` is the one that scored
    the member: an attempt with too few repeat buyers changes none of them, and a fit for an earlier day, run after,
    answers for the members who had bought by then, with its own parameters and their summaries of that day (the
    others lose their CLV, as the fit clears it)."""
    good = clv.clv_fit(program=program, as_of=AS_OF)
    member, late = history[3], history[9]  # first orders 2 Mar and 30 Jun
    before = api.get(f"/api/v1/members/{member.member_no}/").json()["clv"]
    failed = clv.clv_fit(program=program, as_of=dt.date(2026, 1, 10))  # only member 0 had bought
    assert failed.r is None and failed.message
    assert api.get("/api/v1/analytics/clv/").json()["bgnbd"]["r"] == good.r
    one = api.get(f"/api/v1/members/{member.member_no}/clv/").json()
    assert one["as_of"] == "2026-10-31" and one["p_alive"] == before["p_alive"]
    assert api.get(f"/api/v1/members/{member.member_no}/").json()["clv"] == before

    spring = clv.clv_fit(program=program, as_of=dt.date(2026, 4, 30))
    assert spring.r is not None and spring.r != good.r
    body = api.get("/api/v1/analytics/clv/").json()
    assert (body["as_of"], body["bgnbd"]["r"]) == ("2026-04-30", spring.r)
    one = api.get(f"/api/v1/members/{member.member_no}/clv/").json()
    # 2 Mar to 30 Apr: 59 days; back on 16 Mar, 30 Mar and 13 Apr (t_x = 6 weeks).
    expected = clv.member_clv(spring, x=3, t_x=6.0, T=59 / 7, m=130.0, horizon_weeks=52)
    assert (one["as_of"], one["x"], one["T"]) == ("2026-04-30", 3, round(59 / 7, 4))
    assert one["p_alive"] == f"{expected['p_alive']:.4f}" and one["clv"] == f"{expected['clv']:.2f}"
    assert api.get(f"/api/v1/members/{member.member_no}/").json()["clv"]["p_alive"] == one["p_alive"]
    # The member who first bought in June had not bought by then: no CLV, in either answer, until the next fit.
    response = api.get(f"/api/v1/members/{late.member_no}/clv/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404 and "had no order in this programme" in response.json()["error"]["message"]
    assert api.get(f"/api/v1/members/{late.member_no}/").json()["clv"] is None


def test_member_clv_of_a_member_without_orders_says_so(api, program, history, member):
    clv.clv_fit(program=program, as_of=AS_OF)
    response = api.get(f"/api/v1/members/{member.member_no}/clv/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 404
    assert "had no order in this programme" in response.json()["error"]["message"]
    chinese = api.get(f"/api/v1/members/{member.member_no}/clv/", HTTP_ACCEPT_LANGUAGE="zh-hans").json()
    assert "在本计划中还没有订单" in chinese["error"]["message"]
    assert api.get("/api/v1/members/99999999/clv/").json()["error"]["code"] == "not_found"


def test_another_programmes_channel_sees_only_its_own_figures(make_client, api, program, history, other_brand):
    rfm.rfm_scores_compute(program=program, as_of=AS_OF)
    clv.clv_fit(program=program, as_of=AS_OF)
    outsider = make_client(other_brand)
    kpis = outsider.get("/api/v1/analytics/kpis/", {"from": "2026-01-01", "to": "2026-12-31"}).json()
    assert (kpis["orders"], kpis["revenue"], kpis["members_total"]) == (0, "0.00", 0)
    assert kpis["tier_distribution"] == {"basic": 0}
    assert outsider.get("/api/v1/analytics/cohorts/", {"from": "2026-01-01"}).json()["cohorts"] == []
    assert outsider.get("/api/v1/analytics/rfm/").json()["segments"] == {}
    assert outsider.get("/api/v1/analytics/clv/").status_code == 404
    member = history[3]
    assert outsider.get(f"/api/v1/members/{member.member_no}/clv/").status_code == 404
    # The brand's own channel sees it all.
    assert api.get("/api/v1/analytics/kpis/", {"from": "2026-01-01", "to": "2026-12-31"}).json()["orders"] == 23
