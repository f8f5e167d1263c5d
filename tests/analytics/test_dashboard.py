"""The Analytics dashboard in the admin: permission-checked, filters validated on the form, tables as CSV with
formulas escaped, and the member page's scores."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from analytics import clv, rfm
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

URL = "/admin/analytics/dashboard/"
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def shop(program, channel):
    today = timezone.localdate()
    members = []
    for index in range(12):
        member = MemberFactory(name="=HYPERLINK(1)" if index == 3 else f"会员{index}")
        members.append(member)
        for repeat in range(index % 4 + 1):
            day = today - dt.timedelta(days=300 - index * 10 - repeat * 20)
            member_services.order_record(
                channel=channel,
                order_id=f"D-{index}-{repeat}",
                member=member,
                amount=Decimal(100 + index * 40),
                occurred_at=dt.datetime(day.year, day.month, day.day, 12, tzinfo=SH),
            )
    rfm.rfm_scores_compute(program=program, as_of=today)
    clv.clv_fit(program=program, as_of=today)
    return members


@pytest.fixture
def client(client, settings):
    # The admin speaks zh-hans unless the operator switches (the language cookie), whatever the browser asks.
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.fixture
def staff(client):
    user = User.objects.create_user("analyst", password="pw", is_staff=True)
    client.force_login(user)
    return user


def test_the_dashboard_needs_its_permission(client, staff, shop):
    assert client.get(URL).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    response = client.get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    for part in ("<svg", "Key figures", "Retention by month of first order", "RFM codes", "Members at risk"):
        assert part in page


def test_the_dashboard_in_chinese(client, staff, shop, settings):
    staff.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    del client.cookies[settings.LANGUAGE_COOKIE_NAME]  # the default: zh-hans
    page = client.get(URL).content.decode()
    assert "客单价" in page and "首单月份留存" in page and "流失风险" in page


def test_bad_filters_are_shown_on_the_form(client, staff, shop):
    staff.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    response = client.get(URL, {"date_from": "2026-05-01", "date_to": "2026-04-01", "tier": "platinum"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "The start must be on or before the end." in page
    assert "The chosen programme has no tier with this code." in page
    assert "Key figures" not in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"date_to": "9999-12-31"}, "A day must be between the years 1900 and 2999."),
        ({"date_from": "0001-01-01", "date_to": "2026-01-01"}, "A day must be between the years 1900 and 2999."),
        ({"date_from": "2999-01-01"}, "The start must be on or before the end."),  # after the default end
        ({"date_from": "1900-01-01"}, "Choose at most ten years."),
    ],
)
def test_days_no_window_can_hold_are_shown_on_the_form(client, staff, shop, query, message):
    staff.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    response = client.get(URL, query)
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page and "Key figures" not in page


def test_tables_export_as_csv_with_formulas_escaped(client, staff, shop):
    staff.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    assert client.get(URL + "export/monthly.csv").status_code == 403  # exporting is a permission of its own
    staff.user_permissions.add(Permission.objects.get(codename="export_dashboard"))
    response = client.get(URL + "export/monthly.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("Month,Members (at the end),New members,Orders,Revenue")
    assert len(text.splitlines()) == 13  # the header and twelve months
    assert client.get(URL + "export/nothing.csv").status_code == 404
    risky = client.get(URL + "export/at_risk.csv", {"at_risk_below": "1"}).content.decode("utf-8-sig")
    names = [line.split(",")[1] for line in risky.splitlines()[1:]]
    assert "'=HYPERLINK(1)" in names  # member 3 came back three times: on the list, its name escaped


def test_the_member_page_shows_the_scores(admin_client, shop, settings):
    member = shop[3]
    admin_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    page = admin_client.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    assert "RFM" in page and "P(alive)" in page
