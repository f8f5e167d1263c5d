"""The nightly KPI snapshot: the usual windows answered from what the night computed, everything else live."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from analytics import selectors, snapshots
from analytics.models import KpiSnapshot
from analytics.sql import Scope
from loyalty import jobs
from members.importing.orders import orders_import
from tests.analytics.test_kpis import SH, at, buy
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

LAST_DAY = dt.date(2026, 10, 31)
OCTOBER = {"date_from": dt.date(2026, 10, 2), "date_to": LAST_DAY}  # the 30 days ending 31 Oct


@pytest.fixture
def october_orders(program, channel):
    a, b = MemberFactory(joined_at=at(2026, 9, 1, 12)), MemberFactory(joined_at=at(2026, 9, 2, 12))
    buy(channel, a, "A-1", "100.00", at(2026, 10, 3, 10))
    buy(channel, a, "A-2", "50.00", at(2026, 10, 20, 10))
    buy(channel, b, "B-1", "30.00", at(2026, 9, 20, 10))  # the previous 30 days
    return {"a": a, "b": b, "channel": channel}


def test_the_snapshot_windows_are_the_usual_lengths_and_the_periods_before():
    windows = snapshots.snapshot_windows(LAST_DAY)
    assert (dt.date(2026, 10, 2), LAST_DAY) in windows  # 30 days
    assert (dt.date(2026, 9, 2), dt.date(2026, 10, 1)) in windows  # the 30 before
    assert (dt.date(2025, 11, 1), LAST_DAY) in windows  # 365 days
    assert (dt.date(2026, 10, 25), LAST_DAY) in windows  # 7 days
    assert len(windows) == 8 and all((to - start).days + 1 in (7, 30, 90, 365) for start, to in windows)


def test_a_snapshot_answers_as_the_live_figures_did_and_says_when_it_was_taken(program, october_orders):
    live = selectors.kpis(Scope(program=program, **OCTOBER))
    assert snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)["windows"] == 12  # 8 KPIs, 4 charts
    answer = selectors.kpis_answer(Scope(program=program, **OCTOBER))
    assert answer["taken_at"] is not None
    assert {name: value for name, value in answer.items() if name != "taken_at"} == live
    assert answer["revenue"] == Decimal("150.00") and isinstance(answer["aov"], Decimal)


def test_a_snapshot_keeps_what_it_saw_until_the_next_night(program, channel, october_orders):
    snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)
    buy(channel, october_orders["b"], "B-2", "70.00", at(2026, 10, 25, 10))  # sent late, after the night
    scope = Scope(program=program, **OCTOBER)
    assert selectors.kpis_answer(scope)["orders"] == 2
    assert selectors.kpis(scope)["orders"] == 3  # live
    snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)  # the next night
    assert selectors.kpis_answer(scope)["orders"] == 3


def test_other_windows_and_filtered_views_are_computed_live(program, channel, october_orders):
    snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)
    assert (
        selectors.kpis_answer(Scope(program=program, date_from=dt.date(2026, 10, 1), date_to=LAST_DAY))["taken_at"]
        is None
    )
    filtered = selectors.kpis_answer(Scope(program=program, channel_ids=[channel.pk], **OCTOBER))
    assert filtered["taken_at"] is None and filtered["orders"] == 2
    assert selectors.kpis_answer(Scope(program=program, tier_code="basic", **OCTOBER))["taken_at"] is None


def test_a_snapshot_missing_a_figure_is_not_used(program, october_orders):
    snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)
    snapshot = KpiSnapshot.objects.get(program=program, kind="kpis", **OCTOBER)
    del snapshot.figures["breakage"]  # taken by an older version
    snapshot.save()
    answer = selectors.kpis_answer(Scope(program=program, **OCTOBER))
    assert answer["taken_at"] is None and answer["breakage"] == Decimal("0.0000")


def test_the_snapshot_names_every_figure(program):
    assert set(selectors.kpis(Scope(program=program, **OCTOBER))) == selectors.KPI_NAMES


def test_loading_order_history_drops_the_programmes_snapshots(program, channel, october_orders):
    snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)
    member_no = october_orders["b"].member_no
    data = f"渠道,订单号,会员编号,金额,下单时间\n{channel.code},H-9,{member_no},40,2026-10-10 12:00:00\n".encode()
    result = orders_import(data=data)
    assert result.committed
    assert not KpiSnapshot.objects.filter(program=program).exists()
    answer = selectors.kpis_answer(Scope(program=program, **OCTOBER))
    assert answer["taken_at"] is None and answer["orders"] == 3


def test_the_daily_job_takes_the_snapshot_of_the_days_before_once(program, october_orders):
    as_of = LAST_DAY + dt.timedelta(days=1)  # the night of 1 Nov snapshots the windows ending 31 Oct
    runs = jobs.jobs_run(program=program, as_of=as_of)
    kpi_run = next(run for run in runs if run.job == "analytics_kpis")
    assert kpi_run.counts["windows"] == 12
    assert KpiSnapshot.objects.filter(program=program, kind="kpis", date_to=LAST_DAY).count() == 4
    taken = KpiSnapshot.objects.get(program=program, kind="kpis", **OCTOBER).taken_at
    jobs.jobs_run(program=program, as_of=as_of)  # run again the same day: done already
    assert KpiSnapshot.objects.get(program=program, kind="kpis", **OCTOBER).taken_at == taken


def test_the_api_says_when_figures_come_from_the_snapshot(api, program, october_orders):
    snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)
    window = {"from": "2026-10-02", "to": "2026-10-31"}
    answer = api.get("/api/v1/analytics/kpis/", window).json()
    assert answer["orders"] == 2 and answer["revenue"] == "150.00" and answer["taken_at"] is not None
    live = api.get("/api/v1/analytics/kpis/", {"from": "2026-10-01", "to": "2026-10-31"}).json()
    assert live["taken_at"] is None


def test_the_dashboard_says_its_key_figures_come_from_the_snapshot(client, settings, program, october_orders):
    user = User.objects.create_user("analyst", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    yesterday = timezone.now().astimezone(SH).date() - dt.timedelta(days=1)
    url = reverse("admin:analytics_dashboard_changelist")
    assert "nightly snapshot" not in client.get(url).content.decode()
    snapshots.kpi_snapshots_take(program=program, last_day=yesterday)
    page = client.get(url).content.decode()  # the default: the last 30 whole days
    assert "come from the nightly snapshot taken at" in page
    assert "The monthly charts and the cohorts come from the same nightly snapshot." in page
    filtered = client.get(url, {"program": program.pk, "channel": october_orders["channel"].pk}).content.decode()
    assert "nightly snapshot" not in filtered and "computed when the page loads" in filtered


def test_the_monthly_series_and_cohorts_answer_from_the_snapshot_as_they_were_computed(
    program, channel, october_orders
):
    snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)
    months = Scope(program=program, date_from=dt.date(2025, 11, 1), date_to=LAST_DAY)
    for kind in ("monthly", "stock", "cohorts", "join_cohorts"):
        answer, taken_at = selectors.snapshot_answer(kind, months)
        assert taken_at is not None
        assert answer == selectors.SNAPSHOT_KINDS[kind][0](months), kind
    monthly, _taken = selectors.snapshot_answer("monthly", months)
    assert monthly[-1] == {**monthly[-1], "month": "2026-10", "orders": 2, "revenue": Decimal("150.00")}
    buy(channel, october_orders["b"], "B-3", "10.00", at(2026, 10, 28, 10))  # after the night: not in the snapshot
    assert selectors.snapshot_answer("monthly", months)[0][-1]["orders"] == 2
    assert selectors.monthly_series(months)[-1]["orders"] == 3


def test_loading_members_drops_the_snapshots_and_a_dry_run_does_not(program, october_orders):
    from members.demo import demo_channels
    from members.importing.services import members_import
    from tests.loyalty.test_every_member_has_an_account import customer_list

    demo_channels()
    snapshots.kpi_snapshots_take(program=program, last_day=LAST_DAY)
    members_import(data=customer_list(3), dry_run=True)
    assert KpiSnapshot.objects.filter(program=program).count() == 12
    members_import(data=customer_list(3))
    assert not KpiSnapshot.objects.filter(program=program).exists()
