"""Retention cohorts on hand-made data (API.md § Analytics): by the month of the first order, and by the month of
joining with the members who never bought, months being the programme's (Asia/Shanghai) calendar months."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from analytics import selectors
from analytics.sql import Scope
from loyalty.models import Account
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SH = ZoneInfo("Asia/Shanghai")


def local(month, day, hour=12, minute=0):
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SH)


@pytest.fixture
def shoppers(program, channel):
    """A joins 5 Jan, buys 10 Jan, 3 Feb and 1 Apr. B joins 20 Jan, buys at 23:30 on 31 Jan and at 00:30 on 1 Feb
    (an hour apart and the same day in UTC, two months in Shanghai). C joins 1 Feb and first buys 15 Mar,
    again 20 Mar. D joins 10 Feb and never buys (an account in the programme all the same)."""
    program.time_zone = "Asia/Shanghai"
    program.save()
    a, b, c = (MemberFactory(joined_at=when) for when in (local(1, 5), local(1, 20), local(2, 1, 9)))
    d = MemberFactory(joined_at=local(2, 10))
    for number, (member, when) in enumerate(
        [
            (a, local(1, 10)),
            (a, local(2, 3)),
            (a, local(4, 1)),
            (b, local(1, 31, 23, 30)),
            (b, local(2, 1, 0, 30)),
            (c, local(3, 15)),
            (c, local(3, 20)),
        ]
    ):
        member_services.order_record(
            channel=channel, order_id=f"C-{number}", member=member, amount=Decimal("50.00"), occurred_at=when
        )
    Account.objects.create(
        member=d, program=program, tier=program.tiers.order_by("rank").first(), tier_since=local(2, 10)
    )
    return a, b, c, d


def test_monthly_cohorts_by_first_order(api, program, shoppers):
    response = api.get("/api/v1/analytics/cohorts/", {"period": "month", "from": "2026-01-01", "to": "2026-04-30"})
    assert response.status_code == 200, response.content
    # January: A and B; both back in February (B at 00:30 on 1 Feb), neither in March, A in April. March: C.
    assert response.json() == {
        "period": "month",
        "cohorts": [
            {"cohort": "2026-01", "members": 2, "active": ["1.0000", "1.0000", "0.0000", "0.5000"]},
            {"cohort": "2026-03", "members": 1, "active": ["1.0000", "0.0000"]},
        ],
    }
    # From February: January's first buyers are not a cohort of the window; B's 1 February order is not a first one.
    later = api.get("/api/v1/analytics/cohorts/", {"period": "month", "from": "2026-02-01", "to": "2026-04-30"})
    assert [cohort["cohort"] for cohort in later.json()["cohorts"]] == ["2026-03"]


def test_monthly_cohorts_by_join_month_count_members_who_never_bought(program, shoppers):
    scope = Scope(program=program, date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 4, 30))
    found = selectors.cohorts(scope, period="month", by="join")
    # January's joiners A and B: both buy in January and February, A in April. February's C and D: nobody buys in
    # February, C in March (1 of 2), nobody in April.
    assert found == {
        "period": "month",
        "cohorts": [
            {
                "cohort": "2026-01",
                "members": 2,
                "active": [Decimal("1.0000"), Decimal("1.0000"), Decimal("0.0000"), Decimal("0.5000")],
            },
            {"cohort": "2026-02", "members": 2, "active": [Decimal("0.0000"), Decimal("0.5000"), Decimal("0.0000")]},
        ],
    }
