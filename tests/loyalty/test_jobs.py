"""The daily jobs across a year: activation, expiry, tier upgrade/retention/downgrade, birthdays; each idempotent
for its day, and the ledger adds up after each."""

import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db.models import Sum

from loyalty import jobs
from loyalty.models import Account, JobRun, PointsLot, PointsTransaction, Tier, TierChange
from members import services as member_services
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = dt.datetime(2026, 1, 10, 12, 0, tzinfo=SHANGHAI)


def order(channel, member, order_id, amount, at=START):
    """An order recorded at `at`: the time-travel tests move what the service stamps with "now" back to `at`."""
    account = Account.objects.filter(member=member, program__code="demo").first()
    changes_before = TierChange.objects.filter(account=account).count() if account else 0
    member_services.order_record(
        channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=at
    )
    account = Account.objects.get(member=member, program__code="demo")
    if TierChange.objects.filter(account=account).count() > changes_before:
        Account.objects.filter(pk=account.pk).update(tier_since=at)
    return account


def run(program, day, *which):
    return {run.job: run.counts for run in jobs.jobs_run(program=program, as_of=day, jobs=list(which) or None)}


def assert_adds_up(account):
    account.refresh_from_db()
    ledger = PointsTransaction.objects.filter(account=account, status="available").aggregate(s=Sum("points"))["s"]
    assert (ledger or 0) == account.balance
    lots = PointsLot.objects.filter(account=account, status="available").aggregate(s=Sum("remaining"))["s"] or 0
    if account.balance >= 0:
        assert lots == account.balance
    pending = PointsLot.objects.filter(account=account, status="pending").aggregate(s=Sum("remaining"))["s"] or 0
    assert pending == account.pending


def test_pending_points_become_available_on_their_day_once(channel, program):
    program.pending_days = 7
    program.save()
    member = MemberFactory()
    account = order(channel, member, "O-1", "100.00")
    lot = PointsLot.objects.get(account=account)
    lot_day = lot.available_at.astimezone(SHANGHAI).date()
    assert run(program, lot_day - dt.timedelta(days=1), "activate")["activate"] == {"lots": 0, "accounts": 0}
    assert run(program, lot_day, "activate")["activate"] == {"lots": 1, "accounts": 1}
    account.refresh_from_db()
    assert (account.balance, account.pending, account.lifetime_earned) == (100, 0, 100)
    assert run(program, lot_day, "activate")["activate"] == {"lots": 1, "accounts": 1}  # the recorded run
    assert PointsTransaction.objects.filter(account=account).count() == 2
    assert_adds_up(account)


def test_activation_repays_a_negative_balance_first(channel, program):
    from django.utils import timezone

    from members.models import Channel

    member = MemberFactory()
    account = order(channel, member, "O-1", "100.00")
    Account.objects.filter(pk=account.pk).update(balance=-30)  # as after a refund of points already spent
    PointsLot.objects.filter(account=account).update(remaining=0, status="spent")
    PointsTransaction.objects.create(account=account, kind="reverse", points=-130, balance_after=-30)
    program.pending_days = 3
    program.save()
    channel = Channel.objects.get(pk=channel.pk)  # a fresh instance sees the programme's new setting
    order(channel, member, "O-2", "50.00", at=timezone.now())
    day = PointsLot.objects.get(account=account, status="pending").available_at.astimezone(SHANGHAI).date()
    run(program, day, "activate")
    account.refresh_from_db()
    assert (account.balance, account.pending) == (20, 0)
    assert PointsLot.objects.get(account=account, status="available").remaining == 20
    assert_adds_up(account)


def test_expiry_takes_what_remains_of_each_lot_and_writes_a_row_per_lot(channel, program):
    member = MemberFactory()
    account = order(channel, member, "O-1", "100.00")
    order(channel, member, "O-2", "30.00")
    first, second = PointsLot.objects.filter(account=account).order_by("id")
    PointsLot.objects.filter(pk=first.pk).update(expires_at=dt.datetime(2026, 3, 1, tzinfo=SHANGHAI))
    PointsLot.objects.filter(pk=second.pk).update(expires_at=dt.datetime(2026, 6, 1, tzinfo=SHANGHAI))
    from django.db import transaction

    from loyalty import ledger

    with transaction.atomic():
        locked = ledger.accounts_lock(account.pk)[account.pk]
        ledger.points_spend(account=locked, points=40, reference="R-1")  # takes 40 from the first lot
    assert run(program, dt.date(2026, 2, 28), "expire")["expire"]["lots"] == 0
    assert run(program, dt.date(2026, 3, 1), "expire")["expire"] == {
        "lots": 1,
        "accounts": 1,
        "points": 60,
        "coupons": 0,
    }
    account.refresh_from_db()
    assert account.balance == 30
    row = PointsTransaction.objects.get(account=account, kind="expire")
    assert (row.points, row.balance_after) == (-60, 30)
    assert run(program, dt.date(2026, 6, 1), "expire")["expire"]["points"] == 30
    account.refresh_from_db()
    assert account.balance == 0
    assert_adds_up(account)


def test_two_lots_expiring_on_one_day_have_running_balances(channel, program):
    member = MemberFactory()
    account = order(channel, member, "O-1", "10.00")
    order(channel, member, "O-2", "20.00")
    PointsLot.objects.filter(account=account).update(expires_at=dt.datetime(2026, 4, 1, 9, 0, tzinfo=SHANGHAI))
    run(program, dt.date(2026, 4, 1), "expire")
    rows = list(PointsTransaction.objects.filter(kind="expire").order_by("id").values_list("points", "balance_after"))
    assert rows == [(-10, 20), (-20, 0)]


def set_tier(account, code, since):
    tier = Tier.objects.get(program=account.program, code=code)
    Account.objects.filter(pk=account.pk).update(tier=tier, tier_since=since)


def test_tier_kept_for_a_year_then_one_step_down_each_review(channel, program):
    member = MemberFactory()
    account = order(channel, member, "O-1", "6000.00", at=START)  # gold at once
    assert Account.objects.get(pk=account.pk).tier.code == "gold"
    # half a year later nothing moves even though nothing more was spent
    assert run(program, dt.date(2026, 7, 10), "tiers")["tiers"] == {"upgraded": 0, "retained": 0, "downgraded": 0}
    # at the anniversary the 6,000 has just left the 365-day window: down one tier, to silver
    review = dt.date(2027, 1, 11)
    assert run(program, review, "tiers")["tiers"]["downgraded"] == 1
    account.refresh_from_db()
    assert account.tier.code == "silver"
    change = TierChange.objects.filter(reason="downgrade").get()
    assert (change.from_tier.code, change.to_tier.code, change.metric_value) == ("gold", "silver", Decimal("0.00"))
    # the next review is a year after that: then basic
    run(program, dt.date(2027, 6, 1), "tiers")
    account.refresh_from_db()
    assert account.tier.code == "silver"
    run(program, dt.date(2028, 1, 12), "tiers")
    account.refresh_from_db()
    assert account.tier.code == "basic"


def test_retention_at_the_review_resets_the_tier_year(channel, program):
    member = MemberFactory()
    account = order(channel, member, "O-1", "6000.00", at=START)
    order(channel, member, "O-2", "5200.00", at=dt.datetime(2026, 12, 1, tzinfo=SHANGHAI))
    assert run(program, dt.date(2027, 1, 11), "tiers")["tiers"]["retained"] == 1
    account.refresh_from_db()
    assert account.tier.code == "gold"
    assert account.tier_since.astimezone(SHANGHAI).date() == dt.date(2027, 1, 12)


def test_straight_to_the_qualifying_tier_policy(channel, program):
    Tier.objects.filter(program=program).update(downgrade="to_qualifying")
    member = MemberFactory()
    account = order(channel, member, "O-1", "25000.00", at=START)
    order(channel, member, "O-2", "1500.00", at=dt.datetime(2026, 12, 1, tzinfo=SHANGHAI))
    run(program, dt.date(2027, 1, 11), "tiers")
    account.refresh_from_db()
    assert account.tier.code == "silver"


def test_a_held_tier_is_not_reviewed_until_its_date(channel, program, admin_user):
    from loyalty import tiers

    member = MemberFactory()
    account = order(channel, member, "O-1", "10.00", at=START)
    gold = Tier.objects.get(program=program, code="gold")
    tiers.tier_set(account=account, tier=gold, reason="补偿", hold_until=dt.date(2027, 6, 30), actor=admin_user)
    Account.objects.filter(pk=account.pk).update(tier_since=START)
    run(program, dt.date(2027, 3, 1), "tiers")
    account.refresh_from_db()
    assert account.tier.code == "gold"
    run(program, dt.date(2027, 7, 1), "tiers")
    account.refresh_from_db()
    assert account.tier.code == "silver"


def test_evaluation_upgrades_what_the_order_path_missed(channel, program):
    member = MemberFactory()
    account = order(channel, member, "O-1", "100.00")
    # an order loaded without awarding (history) pushes the window spend over silver
    member_services.order_record(
        channel=channel, order_id="H-1", member=member, amount=Decimal("1500.00"), occurred_at=START, award=False
    )
    Account.objects.filter(pk=account.pk).update(tier=Tier.objects.get(program=program, code="basic"))
    assert run(program, dt.date(2026, 1, 11), "tiers")["tiers"]["upgraded"] == 1
    account.refresh_from_db()
    assert account.tier.code == "silver"


def test_birthday_points_once_a_year(channel, program):
    Tier.objects.filter(program=program, code="silver").update(birthday_points=88)
    member = MemberFactory(birthday=dt.date(1990, 5, 17))
    account = order(channel, member, "O-1", "1200.00")
    other = MemberFactory(birthday=dt.date(1990, 6, 1))
    order(channel, other, "O-2", "1200.00")
    assert run(program, dt.date(2026, 5, 1), "birthday")["birthday"] == {"granted": 1}
    assert run(program, dt.date(2026, 5, 2), "birthday")["birthday"] == {"granted": 0}
    account.refresh_from_db()
    assert account.balance == 1200 + 88
    assert run(program, dt.date(2027, 5, 1), "birthday")["birthday"] == {"granted": 1}
    assert_adds_up(account)


def test_birthday_points_on_the_day(channel, program):
    program.birthday_on = "day"
    program.save()
    Tier.objects.filter(program=program, code="basic").update(birthday_points=10)
    member = MemberFactory(birthday=dt.date(1990, 5, 17))
    order(channel, member, "O-1", "1.00")
    assert run(program, dt.date(2026, 5, 16), "birthday")["birthday"] == {"granted": 0}
    assert run(program, dt.date(2026, 5, 17), "birthday")["birthday"] == {"granted": 1}


def test_the_command_runs_every_job_once_per_day(channel, program):
    member = MemberFactory()
    account = order(channel, member, "O-1", "100.00")
    PointsLot.objects.filter(account=account).update(expires_at=dt.datetime(2026, 2, 1, tzinfo=SHANGHAI))
    out = io.StringIO()
    call_command("run_loyalty_jobs", "--as-of", "2026-02-01", stdout=out)
    assert "expire" in out.getvalue()
    ledger = PointsTransaction.objects.count()
    call_command("run_loyalty_jobs", "--as-of", "2026-02-01", stdout=io.StringIO())
    assert PointsTransaction.objects.count() == ledger
    # Loyalty's five jobs, then one or more for each app above that registers daily work (analytics: RFM scores and
    # the CLV fit and the KPI snapshot; campaigns: journeys and scheduled campaigns), each once.
    assert set(JobRun.objects.filter(as_of=dt.date(2026, 2, 1)).values_list("job", flat=True)) == {
        "activate",
        "expire",
        "tiers",
        "birthday",
        "badges",
        "analytics_rfm",
        "analytics_clv",
        "analytics_kpis",
        "campaigns",
    }
    assert JobRun.objects.filter(as_of=dt.date(2026, 2, 1)).count() == 9
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("run_loyalty_jobs", "--as-of", "yesterday")


def test_the_daily_task_runs_the_same_jobs(channel, program):
    from loyalty.tasks import run_daily_jobs

    result = run_daily_jobs("2026-03-01")
    assert set(result["demo"]) == {
        "activate",
        "expire",
        "tiers",
        "birthday",
        "badges",
        "analytics_rfm",  # registered by analytics in loyalty's daily-job registry
        "analytics_clv",
        "analytics_kpis",
        "campaigns",  # and by campaigns
    }
