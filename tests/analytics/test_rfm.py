"""RFM scores at the thresholds' edges (API.md: R by [d5, d4, d3, d2] days, F by [f2..f5] orders, M by [m2..m5]
amounts, F and M within window_days), stored per member by one statement, recomputed by the daily job."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from analytics import rfm, selectors
from analytics.models import MemberScore, RfmThresholds
from loyalty import jobs
from loyalty.models import JobRun
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")
AS_OF = dt.date(2026, 11, 30)


def days_ago(days, hour=12):
    day = AS_OF - dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=SH)


def buy(channel, member, order_id, amount, when):
    member_services.order_record(
        channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=when
    )


@pytest.fixture
def thresholds(program):
    return RfmThresholds.objects.create(
        program=program,
        recency_days=[30, 90, 180, 365],
        frequency_orders=[2, 3, 5, 8],
        monetary_amounts=[200, 500, 1000, 3000],
        window_days=365,
    )


def score(member, program):
    found = MemberScore.objects.get(member=member, program=program)
    return found.rfm, found.recency_days, found.frequency, found.monetary


def test_scores_at_the_edges(program, channel, thresholds):
    on_edge = MemberFactory()  # last order exactly 30 days ago, 2 orders, exactly 200.00: 5 2 2
    buy(channel, on_edge, "E-1", "150.00", days_ago(100))
    buy(channel, on_edge, "E-2", "50.00", days_ago(30, hour=23))
    past_edge = MemberFactory()  # 31 days, 1 order, 199.99: 4 1 1
    buy(channel, past_edge, "P-1", "199.99", days_ago(31, hour=0))
    old = MemberFactory()  # 366 days: R 1; its order is outside the 365-day window, so F 1 and M 1 on 0 orders
    buy(channel, old, "O-1", "5000.00", days_ago(366))
    top = MemberFactory()  # today, 8 orders of 375.00 = 3,000.00: 5 5 5
    for index in range(8):
        buy(channel, top, f"T-{index}", "375.00", days_ago(index * 10, hour=10))
    result = rfm.rfm_scores_compute(program=program, as_of=AS_OF)
    assert result == {"scored": 4, "cleared": 0}
    assert score(on_edge, program) == ("522", 30, 2, Decimal("200.00"))
    assert score(past_edge, program) == ("411", 31, 1, Decimal("199.99"))
    assert score(old, program) == ("111", 366, 0, Decimal("0.00"))
    assert score(top, program) == ("555", 0, 8, Decimal("3000.00"))
    counts = selectors.rfm_counts(program=program, as_of=AS_OF)
    assert counts["counts"] == {
        "r": {"1": 1, "2": 0, "3": 0, "4": 1, "5": 2},
        "f": {"1": 2, "2": 1, "3": 0, "4": 0, "5": 1},
        "m": {"1": 2, "2": 1, "3": 0, "4": 0, "5": 1},
    }
    assert counts["segments"] == {"555": 1, "522": 1, "411": 1, "111": 1}
    assert counts["thresholds"] == {
        "r": [30, 90, 180, 365],
        "f": [2, 3, 5, 8],
        "m": [200, 500, 1000, 3000],
        "window_days": 365,
    }


def test_without_a_window_frequency_and_money_count_every_order(program, channel, thresholds):
    thresholds.window_days = None
    thresholds.save()
    old = MemberFactory()
    buy(channel, old, "O-1", "5000.00", days_ago(400))
    buy(channel, old, "O-2", "10.00", days_ago(370))
    rfm.rfm_scores_compute(program=program, as_of=AS_OF)
    assert score(old, program) == ("125", 370, 2, Decimal("5010.00"))


def test_a_day_before_the_stored_one_is_scored_on_the_fly_and_nothing_changes(program, channel, thresholds):
    member = MemberFactory()
    buy(channel, member, "A-1", "100.00", days_ago(10))
    rfm.rfm_scores_compute(program=program, as_of=AS_OF)
    earlier = selectors.rfm_counts(program=program, as_of=AS_OF - dt.timedelta(days=20))
    assert earlier["segments"] == {}  # no order yet then
    assert score(member, program) == ("511", 10, 1, Decimal("100.00"))
    # Scoring as of that earlier day clears the member's score: no order by then.
    assert rfm.rfm_scores_compute(program=program, as_of=AS_OF - dt.timedelta(days=20)) == {"scored": 0, "cleared": 1}
    assert MemberScore.objects.get(member=member).rfm == ""


def test_the_daily_job_scores_once_a_day(program, channel, thresholds):
    member = MemberFactory()
    buy(channel, member, "A-1", "600.00", days_ago(40))
    runs = jobs.jobs_run(program=program, as_of=AS_OF)
    assert [run.job for run in runs][-3:] == ["analytics_rfm", "analytics_clv", "analytics_kpis"]
    assert MemberScore.objects.get(member=member).rfm == "413"
    buy(channel, member, "A-2", "600.00", days_ago(1))
    jobs.jobs_run(program=program, as_of=AS_OF)  # the same day again: recorded as done, nothing recomputed
    assert MemberScore.objects.get(member=member).rfm == "413"
    assert JobRun.objects.filter(job="analytics_rfm", as_of=AS_OF).count() == 1


@pytest.mark.parametrize(
    "field, value",
    [
        ("recency_days", [30, 90, 180]),
        ("recency_days", [90, 30, 180, 365]),
        ("frequency_orders", [2, 2, 5, 8]),
        ("monetary_amounts", [-1, 500, 1000, 3000]),
        ("monetary_amounts", "200,500"),
    ],
)
def test_thresholds_refuse_what_cannot_score(program, field, value):
    thresholds = RfmThresholds(program=program, **RfmThresholds.DEFAULTS)
    setattr(thresholds, field, value)
    with pytest.raises(ValidationError) as error:
        thresholds.full_clean()
    assert field in error.value.message_dict


def test_thresholds_changed_since_the_scores_are_counted_on_the_fly_until_the_scores_are_computed_again(
    program, channel, thresholds, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    """Staff change a threshold: GET /analytics/rfm/ answers with the new thresholds at once (not the old scores
    under the new thresholds' heading), and the job that saving starts computes the stored scores again, after
    which they answer."""
    member = MemberFactory()
    buy(channel, member, "A-1", "600.00", days_ago(40))
    rfm.rfm_scores_compute(program=program, as_of=AS_OF)
    assert selectors.rfm_counts(program=program)["segments"] == {"413": 1}
    thresholds.recency_days = [50, 90, 180, 365]  # 40 days since the last order now scores 5
    with django_capture_on_commit_callbacks() as callbacks:
        rfm.rfm_thresholds_save(thresholds)
    answer = selectors.rfm_counts(program=program)
    assert (answer["as_of"], answer["thresholds"]["r"], answer["segments"]) == (AS_OF, [50, 90, 180, 365], {"513": 1})
    assert score(member, program)[0] == "413"  # the job has not run yet
    for callback in callbacks:
        callback()
    assert score(member, program) == ("513", 40, 1, Decimal("600.00"))

    def not_on_the_fly(**kwargs):
        raise AssertionError("the stored scores answer once they are the thresholds' own")

    monkeypatch.setattr(rfm, "rfm_score_counts", not_on_the_fly)
    assert selectors.rfm_counts(program=program)["segments"] == {"513": 1}


def test_saving_thresholds_in_the_admin_scores_the_members_again(
    program, channel, thresholds, eager_tasks, django_capture_on_commit_callbacks, admin_client
):
    member = MemberFactory()
    buy(channel, member, "A-1", "600.00", days_ago(40))
    rfm.rfm_scores_compute(program=program, as_of=AS_OF)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/analytics/rfmthresholds/{thresholds.pk}/change/",
            {
                "program": program.pk,
                "recency_days": "[50, 90, 180, 365]",
                "frequency_orders": "[2, 3, 5, 8]",
                "monetary_amounts": "[200, 500, 1000, 3000]",
                "window_days": "365",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert score(member, program)[0] == "513"
    assert MemberScore.objects.get(member=member).rfm_as_of == AS_OF


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_re_score_waits_for_the_nightly_scoring_under_way_and_keeps_its_day(program, channel, thresholds):
    """Staff save thresholds while the nightly job scores a new day: the re-score waits for it, then scores that day
    (it had read the day before, still the stored one, and put every score back a day)."""
    import threading

    from django.db import connections, transaction

    member = MemberFactory()
    buy(channel, member, "A-1", "600.00", days_ago(40))
    rfm.rfm_scores_compute(program=program, as_of=AS_OF - dt.timedelta(days=1))
    scoring, finish = threading.Event(), threading.Event()
    done = {}

    def nightly():
        try:
            with transaction.atomic():
                rfm.rfm_scores_compute(program=program, as_of=AS_OF)
                scoring.set()
                finish.wait(10)
        finally:
            connections.close_all()

    def rescore():
        try:
            done["result"] = rfm.rfm_scores_recompute(program=program)
        finally:
            connections.close_all()

    night = threading.Thread(target=nightly)
    night.start()
    assert scoring.wait(10)
    again = threading.Thread(target=rescore)
    again.start()
    again.join(1)
    assert again.is_alive()  # waiting for the night's scoring
    finish.set()
    night.join(10)
    again.join(10)
    assert done["result"] == {"scored": 1, "cleared": 0}
    assert MemberScore.objects.get(member=member).rfm_as_of == AS_OF


def test_thresholds_keep_their_programme_and_cannot_be_deleted_in_the_admin(program, thresholds, admin_client):
    page = admin_client.get(f"/admin/analytics/rfmthresholds/{thresholds.pk}/change/").content.decode()
    assert 'name="program"' not in page and 'name="window_days"' in page
    assert admin_client.get(f"/admin/analytics/rfmthresholds/{thresholds.pk}/delete/").status_code == 403
