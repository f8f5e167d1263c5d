"""The set-based order history import (`import_orders` and the admin's jobs): the rules of the row-by-row import,
for a whole file at once."""

import datetime as dt
import io
import json
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import translation

from loyalty.models import Account, PointsTransaction, TierChange
from members import services
from members.importing.orders import orders_import
from members.models import Member, Order
from tests.factories import ChannelFactory, MemberFactory

pytestmark = pytest.mark.django_db

HEADERS = "channel,order_id,member,amount,occurred_at,store\n"


@pytest.fixture
def zhang():
    return MemberFactory(name="张伟", phone="+8613800138000", email="zhang.wei@example.com")


def run(tmp_path, text, *args, encoding="utf-8"):
    """The command's JSON line, its stderr lines and its exit code."""
    path = tmp_path / "history.csv"
    path.write_bytes(text.encode(encoding))
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("import_orders", str(path), "--language", "en", *args, stdout=out, stderr=err)
    except SystemExit as exit_info:
        code = exit_info.code
    return json.loads(out.getvalue().splitlines()[-1]), err.getvalue().splitlines(), code


def snapshot():
    return sorted(Order.objects.values_list("order_id", "member_id", "amount")), TierChange.objects.count()


def test_members_are_found_in_every_spelling_and_channels_by_code_or_name(tmp_path, channel, zhang):
    text = HEADERS + (
        f"{channel.code},A-1,{zhang.member_no},10,2024-01-02 10:00:00,\n"
        f"{channel.name},A-2,+86 138-0013-8000,20.5,2024/01/03,SH-01\n"
        f"{channel.code},A-3,８６ １３８ ００１３ ８０００,30,2024年01月04日,\n"
        f"{channel.code},A-4,Zhang.Wei@Example.COM,40,2024-01-05T10:00:00+00:00,\n"
    )
    assert run(tmp_path, text)[0] == {"new": 4, "unchanged": 0, "errors": 0}
    orders = {order.order_id: order for order in Order.objects.all()}
    assert {order.member_id for order in orders.values()} == {zhang.pk}
    assert {order.channel_id for order in orders.values()} == {channel.pk}
    assert orders["A-2"].amount == Decimal("20.50") and orders["A-2"].store == "SH-01"
    assert orders["A-2"].occurred_at == dt.datetime(2024, 1, 2, 16, 0, tzinfo=dt.UTC)  # midnight in Shanghai
    assert orders["A-4"].occurred_at == dt.datetime(2024, 1, 5, 10, 0, tzinfo=dt.UTC)
    assert orders["A-1"].currency == "CNY" and orders["A-1"].status == "placed"


def test_an_order_of_a_merged_away_member_goes_to_the_member_kept(tmp_path, channel, zhang):
    dropped = MemberFactory(phone="+8613900139000")
    services.members_merge(keep=zhang, drop=dropped)
    assert run(tmp_path, HEADERS + f"{channel.code},M-1,{dropped.member_no},10,2024-01-02,\n")[0]["new"] == 1
    assert Order.objects.get(order_id="M-1").member_id == zhang.pk


def test_orders_of_amount_0_are_imported(tmp_path, channel, zhang):
    """A fully discounted order (a free gift) is an order, in the history as in the API."""
    counts, _errors, code = run(tmp_path, HEADERS + f"{channel.code},Z-1,{zhang.member_no},0,2024-01-02,\n")
    assert (counts, code) == ({"new": 1, "unchanged": 0, "errors": 0}, 0)
    assert Order.objects.get(order_id="Z-1").amount == Decimal("0.00")


def test_a_second_load_is_unchanged_and_a_conflicting_row_is_refused_with_nothing_written(tmp_path, channel, zhang):
    text = HEADERS + (
        f"{channel.code},U-1,{zhang.member_no},10,2024-01-02 10:00:00,\n"
        f"{channel.code},U-1,{zhang.member_no},10.00,2024-01-02 10:00,\n"  # the same order again in the file
    )
    assert run(tmp_path, text)[0] == {"new": 1, "unchanged": 1, "errors": 0}
    assert run(tmp_path, text)[0] == {"new": 0, "unchanged": 2, "errors": 0}
    before = snapshot()
    counts, errors, code = run(
        tmp_path,
        HEADERS
        + f"{channel.code},U-2,{zhang.member_no},5,2024-01-02,\n"
        + f"{channel.code},U-1,{zhang.member_no},11,2024-01-02 10:00:00,SH\n",
    )
    assert (counts, code) == ({"new": 1, "unchanged": 0, "errors": 1}, 1)
    assert errors == [
        "row 3: order_id: Order U-1 is recorded already with another amount, store; an import does not change orders."
    ]
    assert snapshot() == before  # not even the good row


def test_two_rows_of_one_order_that_disagree_are_refused(tmp_path, channel, zhang):
    text = HEADERS + (
        f"{channel.code},D-1,{zhang.member_no},10,2024-01-02,\n{channel.code},D-1,{zhang.member_no},12,2024-01-02,\n"
    )
    counts, errors, code = run(tmp_path, text)
    assert (counts, code) == ({"new": 1, "unchanged": 0, "errors": 1}, 1)
    assert errors == [
        "row 3: order_id: Order D-1 is recorded already with another amount; an import does not change orders."
    ]
    assert not Order.objects.exists()


def test_errors_give_the_row_and_the_column_as_the_file_names_it(tmp_path, channel, zhang):
    frozen = MemberFactory(phone="+8613900139000", status=Member.Status.FROZEN)
    text = "渠道,订单号,会员编号,金额,下单时间,门店\n" + (
        f"火星店,E-1,{zhang.member_no},10,2024-01-02,\n"
        f"{channel.code},E-2,13700000000,10,2024-01-02,\n"
        f"{channel.code},E-3,{zhang.member_no},十块,2024-01-02,\n"
        f"{channel.code},E-4,{zhang.member_no},-5,2024-01-02,\n"
        f"{channel.code},E-5,{zhang.member_no},1000000000000,2024-01-02,\n"  # over the column's 14 digits
        f"{channel.code},E-6,{zhang.member_no},10,2024-02-30,\n"
        f"{channel.code},,{zhang.member_no},10,,\n"
        f"{channel.code},E-8,{frozen.member_no},10,2024-01-02,\n"
        f"{channel.code},E-9,{zhang.member_no},10,2024-01-02,\n"  # a good row
    )
    counts, errors, code = run(tmp_path, text, encoding="gb18030")
    assert (counts, code) == ({"new": 1, "unchanged": 0, "errors": 8}, 1)
    assert errors == [
        "row 2: 渠道: Unknown channel 火星店; create it under Channels first.",
        "row 3: 会员编号: No member with the number, phone or e-mail 13700000000.",
        "row 4: 金额: Not a number; write an amount such as 1234.50.",
        "row 5: 金额: An amount cannot be negative.",
        "row 6: 金额: This amount is too large.",
        "row 7: 下单时间: This date does not exist.",
        "row 8: 订单号: An order id is required.; 下单时间: An order time is required, such as 2024-05-07 10:15:00.",
        f"row 9: 会员编号: Member {frozen.member_no} is Frozen and can neither earn nor redeem.",
    ]
    assert not Order.objects.exists()


def test_a_row_with_several_faults_lists_each_in_column_order(tmp_path, channel, zhang):
    """Every fault of a row is reported, not only the first; a good row beside it is not."""
    order_limit = Order._meta.get_field("order_id").max_length
    store_limit = Order._meta.get_field("store").max_length
    text = "channel,order_id,member,amount,occurred_at,store,currency\n" + (
        f"{channel.code},{'X' * (order_limit + 1)},{zhang.member_no},x,2024-01-02,{'S' * (store_limit + 1)},RMB1\n"
        f" {channel.code} , K-1 , {zhang.member_no} , 10 , 2024-01-02 10:00:00 , SH-01 , usd \n"
    )
    counts, errors, code = run(tmp_path, text)
    assert (counts, code) == ({"new": 1, "unchanged": 0, "errors": 1}, 1)
    assert errors == [
        f"row 2: order_id: An order id has at most {order_limit} characters.; amount: Not a number; write an amount "
        f"such as 1234.50.; currency: A currency is three letters, such as CNY.; store: A store has at most "
        f"{store_limit} characters."
    ]


def test_an_amount_beyond_any_till_is_refused_not_a_crash(tmp_path, channel, zhang):
    """1e30 or thirty nines cannot be held to the cent by Decimal's default context: the row is refused as too large,
    like 1,000,000,000,000, instead of the import failing as a whole."""
    text = HEADERS + "".join(
        f"{channel.code},H-{n},{zhang.member_no},{amount},2024-01-02,\n" for n, amount in enumerate(["1e30", "9" * 30])
    )
    counts, errors, code = run(tmp_path, text)
    assert (counts, code) == ({"new": 0, "unchanged": 0, "errors": 2}, 1)
    assert errors == [f"row {n}: amount: This amount is too large." for n in (2, 3)]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
def test_a_time_outside_the_plausible_years_is_refused_in_every_spelling(tmp_path, channel, zhang, zone, settings):
    """The plain spelling (read without the normaliser) keeps the normaliser's rule: a year before 1900 or after 2999
    is a typing error, refused with its message, not stored (nor a crash where UTC would leave the calendar: year 1 in
    Shanghai, 9999 in New York); the first and last seconds of the years it allows are orders."""
    settings.TIME_ZONE = zone
    times = [
        "1899-12-31 23:59:59",
        "1900-01-01 00:00:00",
        "2999-12-31 23:59:59",
        "3000-01-01 00:00:00",
        "0001-01-01 00:00:00",
        "9999-12-31 23:00:00",
        "1850/01/01",
    ]
    text = HEADERS + "".join(f"{channel.code},Y-{n},{zhang.member_no},10,{at},\n" for n, at in enumerate(times))
    counts, errors, code = run(tmp_path, text)
    assert (counts, code) == ({"new": 2, "unchanged": 0, "errors": 5}, 1)
    message = "occurred_at: A time must be between the years 1900 and 2999."
    assert errors == [f"row {n}: {message}" for n in (2, 5, 6, 7, 8)]
    assert not Order.objects.exists()
    good = HEADERS + "".join(f"{channel.code},Y-{n},{zhang.member_no},10,{times[n]},\n" for n in (1, 2))
    assert run(tmp_path, good)[0] == {"new": 2, "unchanged": 0, "errors": 0}
    stored = Order.objects.order_by("occurred_at").values_list("occurred_at", flat=True)
    local = ZoneInfo(zone)
    assert list(stored) == [
        dt.datetime(1900, 1, 1, tzinfo=local),
        dt.datetime(2999, 12, 31, 23, 59, 59, tzinfo=local),
    ]


def test_rejected_rows_can_be_written_to_a_file(tmp_path, channel, zhang):
    target = tmp_path / "rejected.csv"
    run(tmp_path, HEADERS + f"{channel.code},R-1,nobody@example.com,10,2024-01-02,\n", "--errors-out", str(target))
    assert target.read_text(encoding="utf-8-sig").splitlines() == [
        "channel,order_id,member,amount,occurred_at,store,row,reason",
        f'{channel.code},R-1,nobody@example.com,10,2024-01-02,,2,"member: '
        'No member with the number, phone or e-mail nobody@example.com."',
    ]


def test_a_file_without_the_needed_columns_is_refused(tmp_path, channel):
    path = tmp_path / "history.csv"
    path.write_text("channel,order_id\nweb,H-1\n")
    with pytest.raises(Exception, match="member/会员编号, amount/金额, occurred_at/下单时间"):
        call_command("import_orders", str(path), "--language", "en", stdout=io.StringIO())
    assert not Order.objects.exists()


def test_dry_run_checks_everything_and_writes_nothing(tmp_path, channel, program, zhang):
    counts, _errors, code = run(
        tmp_path, HEADERS + f"{channel.code},Y-1,{zhang.member_no},10,2024-01-02,\n", "--dry-run"
    )
    assert (counts, code) == ({"new": 1, "unchanged": 0, "errors": 0}, 0)
    assert not Order.objects.exists() and not Account.objects.exists()


def test_history_earns_no_points_and_counts_for_tiers_as_order_by_order_loading_does(tmp_path, channel, program):
    """The same history through the service (award=False, order by order) and through the import: the same tier,
    accounts for every member with orders, no points. Demo tiers: silver from 1,000 over 365 days, gold 5,000."""
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    history = {  # member -> [(days before `now`, amount)]
        "gold": [(400, "4000"), (300, "3000"), (200, "2500")],  # 9,500 within a year of the last order
        "silver": [(800, "6000"), (10, "1200")],  # gold two years ago, then out of the window: silver
        "basic": [(50, "999.99")],
        "free": [(5, "0")],
    }
    by_service = {name: MemberFactory() for name in history}
    by_import = {name: MemberFactory() for name in history}
    lines = []
    for name, orders in history.items():
        for index, (days, amount) in enumerate(orders):
            at = now - dt.timedelta(days=days)
            services.order_record(
                channel=channel,
                order_id=f"S-{name}-{index}",
                member=by_service[name],
                amount=Decimal(amount),
                occurred_at=at,
                award=False,
            )
            lines.append(f"{channel.code},I-{name}-{index},{by_import[name].member_no},{amount},{at.isoformat()},\n")
    assert run(tmp_path, HEADERS + "".join(lines))[0] == {"new": 7, "unchanged": 0, "errors": 0}

    def tiers(members):
        return {name: Account.objects.get(member=member).tier.code for name, member in members.items()}

    # "silver" stepped up to gold on its 2024 order and stays there (upgrades are immediate; downgrades wait for
    # the daily review), in both.
    assert (
        tiers(by_import)
        == tiers(by_service)
        == {
            "gold": "gold",
            "silver": "gold",
            "basic": "basic",
            "free": "basic",
        }
    )
    assert not PointsTransaction.objects.exists()
    imported_accounts = Account.objects.filter(member__in=by_import.values())
    assert all(account.balance == 0 for account in imported_accounts)
    joined = TierChange.objects.filter(account__in=imported_accounts, reason="joined").count()
    assert joined == 4
    gold = TierChange.objects.get(account__member=by_import["gold"], reason="upgrade")
    assert (gold.from_tier.code, gold.to_tier.code, gold.metric_value) == ("basic", "gold", Decimal("9500.00"))


def test_tiers_count_the_windows_ending_at_imported_orders_with_orders_at_the_same_time(tmp_path, channel, program):
    """Orders recorded before (no tier counted for them yet) count inside the windows that end at imported orders,
    including one at the very same time as an imported order; a window ending at a recorded order is no imported
    order's window. Demo tiers: silver from 1,000 over 365 days, gold 5,000."""
    member = MemberFactory()
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    first, between, last = (now - dt.timedelta(days=days) for days in (500, 200, 100))
    for order_id, at, amount in (("E-1", between, "3000"), ("E-2", last, "2000")):
        Order.objects.create(channel=channel, order_id=order_id, member=member, amount=Decimal(amount), occurred_at=at)
    text = HEADERS + "".join(
        f"{channel.code},{order_id},{member.member_no},{amount},{at.isoformat()},\n"
        for order_id, at, amount in (("I-1", first, "3000"), ("I-3", last, "10"))
    )
    assert run(tmp_path, text)[0] == {"new": 2, "unchanged": 0, "errors": 0}
    # At I-1: 3,000. At I-3: E-1 + E-2 (same time) + I-3 = 5,010, gold. The window at E-1 (6,000) is not counted.
    change = TierChange.objects.get(account__member=member, reason="upgrade")
    assert (change.to_tier.code, change.metric_value) == ("gold", Decimal("5010.00"))
    assert Account.objects.get(member=member).tier.code == "gold"


def test_an_account_already_in_a_higher_tier_is_not_moved(tmp_path, channel, program, zhang):
    account = Account.objects.create(
        member=zhang,
        program=program,
        tier=program.tiers.get(code="diamond"),
        tier_since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    run(tmp_path, HEADERS + f"{channel.code},T-1,{zhang.member_no},6000,2026-01-02,\n")
    account.refresh_from_db()
    assert account.tier.code == "diamond"
    assert not TierChange.objects.exists()


def test_an_order_of_a_channel_outside_any_programme_makes_no_account(tmp_path, program, zhang):
    outside = ChannelFactory(code="outlet")
    assert run(tmp_path, HEADERS + f"{outside.code},O-1,{zhang.member_no},6000,2026-01-02,\n")[0]["new"] == 1
    assert not Account.objects.exists()


def test_an_imported_order_replayed_through_the_api_is_the_same_order(tmp_path, api, channel, zhang):
    """The import records the API's fingerprint of the order: the partner sending it again is a replay."""
    run(tmp_path, HEADERS + f"{channel.code},F-1,{zhang.member_no},88.5,2026-01-02 10:00:00,SH-01\n")
    body = {
        "order_id": "F-1",
        "member_no": zhang.member_no,
        "amount": "88.50",
        "occurred_at": "2026-01-02T10:00:00+08:00",
        "store": "SH-01",
    }
    assert api.post("/api/v1/orders/", body, format="json").status_code == 200
    assert api.post("/api/v1/orders/", {**body, "amount": "89.00"}, format="json").status_code == 409
    assert Order.objects.count() == 1 and not PointsTransaction.objects.exists()


def test_the_engine_reports_progress_in_order(channel, zhang):
    seen = []
    data = (HEADERS + f"{channel.code},P-1,{zhang.member_no},10,2024-01-02,\n").encode()
    result = orders_import(data=data, progress=seen.append)
    assert result.committed and result.counts == {"new": 1, "unchanged": 0, "errors": 0}
    assert seen == sorted(seen) and seen[0] == 20 and seen[-1] == 95


@pytest.mark.parametrize(
    ("order_id", "amount", "store"),
    [("A-1", "10", ""), ('引号"\\反斜杠', "1234.5", "上海南京西路店\t2"), ("x", "0", "é\u2028")],
)
def test_the_order_fingerprint_is_the_api_payload_fingerprint(order_id, amount, store):
    """The import writes an order's fingerprint without the generic payload walk: it must be the same value."""
    at = dt.datetime(2024, 3, 8, 14, 20, 5, 120, tzinfo=ZoneInfo("Asia/Shanghai"))
    payload = {
        "order_id": order_id,
        "member": 42,
        "amount": Decimal(amount),
        "currency": "CNY",
        "occurred_at": at,
        "store": store,
        "lines": [],
    }
    fast = services.order_fingerprint(
        order_id=order_id, member_id=42, amount=Decimal(amount), currency="CNY", occurred_at=at, store=store
    )
    assert fast == services.payload_fingerprint(payload)


@pytest.mark.parametrize(
    ("zone", "days", "fast"),
    [
        ("Asia/Shanghai", ["2024-03-08", "2025-12-31", "2026-01-01"], True),
        ("America/New_York", ["2024-03-10", "2024-11-03", "2024-07-01"], True),  # the DST days, hour by hour
        ("Europe/London", ["2024-03-31", "2024-10-27"], True),
        ("Australia/Lord_Howe", ["2024-04-07", "2024-10-06"], True),  # +10:30 in winter; the change is half an hour
        ("Asia/Kathmandu", ["2024-05-07"], False),  # +05:45
    ],
)
def test_the_utc_text_of_a_plain_time_is_the_times_own(zone, days, fast, settings):
    """The order's UTC text, made from a table of each day's hours instead of formatted per row, is what the time
    itself gives, through daylight-saving changes; an hour whose minutes do not carry over is left to the formatting."""
    from members.importing.orders import _cleaners

    settings.TIME_ZONE = zone
    _money, when, when_utc = _cleaners()
    made = 0
    for day in days:
        for hour in range(24):
            for minute_second in ("00:00", "29:59", "30:00", "59:59"):
                text = f"{day} {hour:02d}:{minute_second}"
                at, utc = when_utc(text)
                assert at == when(text) and at.tzinfo == ZoneInfo(zone)
                if utc is not None:
                    assert utc == at.astimezone(dt.UTC).isoformat()
                    made += 1
    assert (made > 0) is fast
    assert when_utc("2024/05/07 10:15") == (when("2024/05/07 10:15"), None)  # other spellings: the normaliser


def test_calendar_year_tiers_count_the_orders_of_the_year_of_each_order(tmp_path, channel, program):
    """Tiers on the calendar year (in the programme's time zone): 2023's 900 and 2024's 600 never add up."""
    program.tiers.exclude(rank=0).update(window="calendar_year")
    services_path, import_path = MemberFactory(), MemberFactory()
    history = [("2023-12-31 23:30:00", "900"), ("2024-01-01 00:30:00", "600"), ("2024-06-01 10:00:00", "500")]
    from members.normalize import parse_datetime

    for index, (when, amount) in enumerate(history):
        services.order_record(
            channel=channel,
            order_id=f"S-{index}",
            member=services_path,
            amount=Decimal(amount),
            occurred_at=parse_datetime(when),
            award=False,
        )
    text = HEADERS + "".join(
        f"{channel.code},I-{index},{import_path.member_no},{amount},{when},\n"
        for index, (when, amount) in enumerate(history)
    )
    run(tmp_path, text)
    tiers = {member: Account.objects.get(member=member).tier.code for member in (services_path, import_path)}
    assert tiers == {services_path: "silver", import_path: "silver"}  # 600 + 500 in 2024
    change = TierChange.objects.get(account__member=import_path, reason="upgrade")
    assert change.metric_value == Decimal("1100.00")


def test_a_calendar_year_window_takes_in_23_59_of_its_last_day_and_not_00_00_of_the_next(tmp_path, channel, program):
    """Calendar-year tiers in Shanghai (silver from 1,000): an order at 23:59 on 31 Dec counts in 2024's window, one
    at 00:00 on 1 Jan does not, whether it comes in the file or was recorded through the API before with its offset
    (+08:00). On SQLite both are stored as UTC text, the text the windows compare with."""
    program.tiers.exclude(rank=0).update(window="calendar_year")
    shanghai = ZoneInfo("Asia/Shanghai")
    in_file, next_day_in_file, by_api, next_day_by_api = (MemberFactory() for _ in range(4))
    for member, order_id, at in (
        (by_api, "A-1", dt.datetime(2024, 12, 31, 23, 59, tzinfo=shanghai)),
        (next_day_by_api, "B-1", dt.datetime(2025, 1, 1, 0, 0, tzinfo=shanghai)),
    ):
        services.order_record(
            channel=channel, order_id=order_id, member=member, amount=Decimal("400"), occurred_at=at, award=False
        )
    rows = [
        (in_file, "F-1", "2024-06-01 10:00:00", "600"),
        (in_file, "F-2", "2024-12-31 23:59:00", "400"),
        (next_day_in_file, "G-1", "2024-06-01 10:00:00", "600"),
        (next_day_in_file, "G-2", "2025-01-01 00:00:00", "400"),
        # The API's orders sit inside the 2024 windows that end at these imported ones (23:59:59), or just after.
        (by_api, "A-2", "2024-06-01 10:00:00", "600"),
        (by_api, "A-3", "2024-12-31 23:59:59", "0"),
        (next_day_by_api, "B-2", "2024-06-01 10:00:00", "600"),
        (next_day_by_api, "B-3", "2024-12-31 23:59:59", "0"),
    ]
    text = HEADERS + "".join(
        f"{channel.code},{order_id},{m.member_no},{amount},{when},\n" for m, order_id, when, amount in rows
    )
    assert run(tmp_path, text)[0] == {"new": 8, "unchanged": 0, "errors": 0}
    tiers = {
        member: Account.objects.get(member=member).tier.code
        for member in (in_file, next_day_in_file, by_api, next_day_by_api)
    }
    assert tiers == {in_file: "silver", next_day_in_file: "basic", by_api: "silver", next_day_by_api: "basic"}
    upgrades = TierChange.objects.filter(reason="upgrade").order_by("account__member_id")
    assert [(change.account.member, change.metric_value) for change in upgrades] == [
        (in_file, Decimal("1000.00")),
        (by_api, Decimal("1000.00")),
    ]


def test_text_is_stored_as_written(tmp_path, channel, zhang):
    run(tmp_path, HEADERS + f'{channel.code},"Q\\1 ""x""",{zhang.member_no},10,2024-01-02,"店\\2, 二楼"\n')
    order = Order.objects.get()
    assert (order.order_id, order.store) == ('Q\\1 "x"', "店\\2, 二楼")


def test_an_order_recorded_meanwhile_by_someone_else_stops_the_import_with_nothing_written(channel, zhang):
    """Between the check and the write another writer records one of the file's orders: the unique constraint
    refuses the import as a whole, with a message to try again (which then finds the order unchanged or refused)."""
    from members.errors import ImportFailed

    def record_meanwhile(percent):
        if percent == 40:  # the file is checked and matched; nothing is written yet
            Order.objects.create(
                channel=channel, order_id="C-2", member=zhang, amount=Decimal("5"), occurred_at=dt.datetime.now(dt.UTC)
            )

    data = (HEADERS + "".join(f"{channel.code},C-{n},{zhang.member_no},10,2024-01-02,\n" for n in range(4))).encode()
    with translation.override("en"), pytest.raises(ImportFailed, match="Another change to these orders happened"):
        orders_import(data=data, progress=record_meanwhile)
    assert list(Order.objects.values_list("order_id", flat=True)) == ["C-2"]
