"""CLV: the BG/NBD and Gamma-Gamma fits against the published CDNOW estimates, the per-member summaries computed
in SQL, and the stored fit and scores.

The CDNOW summary (2,357 customers, weeks) is `data/cdnow_summary.csv`, copied from the `lifetimes` package (MIT
licence, `data/LICENSE-lifetimes.txt`); it is test data only, lifetimes is not a dependency."""

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from django.core.management import call_command
from scipy import optimize

from analytics import clv, clv_models
from analytics.models import ClvFit, MemberScore
from members import services as member_services
from tests.factories import MemberFactory

SH = ZoneInfo("Asia/Shanghai")
CDNOW = Path(__file__).parent / "data" / "cdnow_summary.csv"


@pytest.fixture(scope="module")
def cdnow():
    with CDNOW.open() as handle:
        rows = list(csv.DictReader(handle))
    return {name: np.array([float(row[name]) for row in rows]) for name in ("x", "t_x", "T", "zbar")}


def test_bgnbd_recovers_the_published_cdnow_estimates(cdnow):
    """Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, log-likelihood -9582.4."""
    fit = clv_models.bgnbd_fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert fit.converged
    assert {name: round(value, 3) for name, value in fit.params.items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }
    assert round(fit.log_likelihood, 1) == -9582.4


def test_gamma_gamma_recovers_the_published_cdnow_estimates(cdnow):
    """Fader & Hardie (2013), on the 946 repeat customers: p = 6.25, q = 3.74, v = 15.44."""
    fit = clv_models.gamma_gamma_fit(cdnow["x"], cdnow["zbar"])
    assert fit.converged
    assert {name: round(value, 2) for name, value in fit.params.items()} == {"p": 6.25, "q": 3.74, "v": 15.44}


def test_the_fits_use_the_papers_likelihoods_and_their_exact_gradients(cdnow, monkeypatch):
    """The optimiser's objective (weighted, with its analytic gradient) is the papers' log-likelihood summed over the
    customers, and its gradient agrees with finite differences, at a point away from the optimum."""
    seen = {}

    def capture(objective, start, names):
        seen[names[0]] = objective
        return clv_models.Fit(params={}, log_likelihood=0.0, converged=True, message="")

    monkeypatch.setattr(clv_models, "_fit", capture)
    clv_models.bgnbd_fit(cdnow["x"], cdnow["t_x"], cdnow["T"])
    clv_models.gamma_gamma_fit(cdnow["x"], cdnow["zbar"])
    repeat = (cdnow["x"] > 0) & (cdnow["zbar"] > 0)
    checks = (
        ("r", np.log([0.5, 6.0, 1.2, 3.0]), lambda params: clv_models.bgnbd_log_likelihood(params, *columns_bgnbd)),
        ("p", np.log([4.0, 2.5, 20.0]), lambda params: clv_models.gamma_gamma_log_likelihood(params, *columns_gg)),
    )
    columns_bgnbd = (cdnow["x"], cdnow["t_x"], cdnow["T"])
    columns_gg = (cdnow["x"][repeat], cdnow["zbar"][repeat])
    for name, point, per_customer in checks:
        value, gradient = seen[name](point)
        assert value == pytest.approx(-np.sum(per_customer(np.exp(point))), rel=1e-10)
        numeric = optimize.approx_fprime(point, lambda at, objective=seen[name]: objective(at)[0], 1e-6)
        assert gradient == pytest.approx(numeric, rel=1e-4, abs=1e-3)


def test_conditional_expectation_and_p_alive_of_the_papers_example():
    """FHL 2005, section 5: a customer with x = 2, t_x = 30.43, T = 38.86 is expected to make 1.226 purchases in
    the next 39 weeks."""
    params = (0.243, 4.414, 0.793, 2.426)
    one = (np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert round(float(clv_models.expected_purchases(params, 39, *one)[0]), 3) == 1.226
    # Someone who never came back is alive for sure by the model; a long silence after many purchases is not.
    assert clv_models.p_alive(params, np.array([0.0]), np.array([0.0]), np.array([30.0]))[0] == 1.0
    assert clv_models.p_alive(params, np.array([10.0]), np.array([5.0]), np.array([70.0]))[0] < 0.01


def test_expected_average_spend_shrinks_towards_the_population_mean():
    p, q, v = 6.25, 3.74, 15.44
    population = p * v / (q - 1)
    spend = clv_models.expected_average_spend((p, q, v), np.array([0.0, 1.0, 20.0]), np.array([0.0, 100.0, 100.0]))
    assert spend[0] == pytest.approx(population)
    assert population < spend[1] < spend[2] < 100


def at(day, hour=12):
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=SH)


def buy(channel, member, order_id, amount, when):
    member_services.order_record(
        channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=when
    )


FIRST = dt.date(2026, 6, 1)
AS_OF = FIRST + dt.timedelta(days=70)


@pytest.mark.django_db
def test_member_summaries_count_order_days_in_the_programmes_time_zone(program, channel):
    member = MemberFactory()
    buy(channel, member, "A-1", "30.00", at(FIRST, 9))
    buy(channel, member, "A-2", "20.00", at(FIRST, 23))  # same day: one order day
    buy(channel, member, "A-3", "40.00", at(FIRST + dt.timedelta(days=14), 0))  # 00:00 Shanghai is that day
    buy(channel, member, "A-4", "60.00", at(FIRST + dt.timedelta(days=28)))
    buy(channel, member, "A-5", "30.00", at(FIRST + dt.timedelta(days=28), 20))
    buy(channel, member, "A-6", "999.00", at(AS_OF + dt.timedelta(days=1), 0))  # after the day: not counted
    once = MemberFactory()
    buy(channel, once, "B-1", "80.00", at(FIRST + dt.timedelta(days=7)))
    summary = clv.member_summaries(program=program, as_of=AS_OF)
    rows = {
        int(member_id): (x, t_x, big_t, m, spend)
        for member_id, x, t_x, big_t, m, spend in zip(
            summary["member_id"],
            summary["x"],
            summary["t_x"],
            summary["T"],
            summary["m"],
            summary["spend"],
            strict=True,
        )
    }
    assert rows[member.pk] == (2.0, 4.0, 10.0, 65.0, 180.0)  # repeat days 40.00 and 90.00
    assert rows[once.pk] == (0.0, 0.0, 9.0, 0.0, 80.0)


def _history(channel, count=40):
    """Members with regular, lapsed and one-off histories over about a year."""
    members = []
    for index in range(count):
        member = MemberFactory()
        members.append(member)
        start = FIRST - dt.timedelta(days=300 - index * 3)
        repeats = index % 6
        gap = 10 + index % 5 * 7
        for order in range(repeats + 1):
            buy(
                channel,
                member,
                f"H-{index}-{order}",
                f"{50 + index * 3 + order * 10}.00",
                at(start + dt.timedelta(days=order * gap)),
            )
    return members


@pytest.mark.django_db
def test_fit_clv_stores_the_fit_and_every_members_scores(program, channel):
    members = _history(channel)
    out = io.StringIO()
    call_command("fit_clv", "--as-of", AS_OF.isoformat(), "--program", "demo", stdout=out)
    fit = ClvFit.objects.get()
    assert "demo 2026-08-10: 40 members, 33 repeat" in out.getvalue()
    assert (fit.as_of, fit.members, fit.repeat_members) == (AS_OF, 40, 33)
    assert fit.r > 0 and fit.alpha > 0 and fit.a > 0 and fit.b > 0 and fit.p > 0 and fit.q > 0 and fit.v > 0
    assert fit.bgnbd_log_likelihood < 0 and fit.monthly_discount_rate == Decimal("0.0100")
    scores = {score.member_id: score for score in MemberScore.objects.filter(program=program)}
    assert len(scores) == 40
    summary = clv.member_summaries(program=program, as_of=AS_OF)
    expected = clv.member_predictions(
        fit, x=summary["x"], t_x=summary["t_x"], T=summary["T"], m=summary["m"], horizon_weeks=52
    )
    for index, member_id in enumerate(summary["member_id"]):
        score = scores[int(member_id)]
        assert score.clv_as_of == AS_OF
        assert score.p_alive == pytest.approx(expected["p_alive"][index], abs=1e-6)
        assert score.clv == Decimal(f"{expected['clv'][index]:.2f}")
        assert score.expected_average_spend == Decimal(f"{expected['expected_average_spend'][index]:.2f}")
    one_off = members[0]  # index 0: no repeat
    assert scores[one_off.pk].x == 0 and scores[one_off.pk].p_alive == 1.0


@pytest.mark.django_db
def test_discounting_lowers_clv_and_a_zero_rate_is_spend_times_purchases(program, channel):
    _history(channel, count=30)
    fit = clv.clv_fit(program=program, as_of=AS_OF)
    summary = clv.member_summaries(program=program, as_of=AS_OF)
    fit.monthly_discount_rate = Decimal("0")
    flat = clv.member_predictions(
        fit, x=summary["x"], t_x=summary["t_x"], T=summary["T"], m=summary["m"], horizon_weeks=52
    )
    assert flat["clv"] == pytest.approx(flat["expected_purchases"] * flat["expected_average_spend"])
    fit.monthly_discount_rate = Decimal("0.01")
    discounted = clv.member_predictions(
        fit, x=summary["x"], t_x=summary["t_x"], T=summary["T"], m=summary["m"], horizon_weeks=52
    )
    assert np.all(discounted["clv"] < flat["clv"])


@pytest.mark.django_db
def test_too_few_repeat_buyers_records_why_and_scores_nobody(program, channel):
    member = MemberFactory()
    buy(channel, member, "A-1", "10.00", at(FIRST))
    fit = clv.clv_fit(program=program, as_of=AS_OF)
    assert fit.r is None and fit.message == "Too few members with repeat orders to fit the models."
    assert not MemberScore.objects.exists()
