"""The order import's behaviour again, on its pipelined path (PostgreSQL, a large file, outside any transaction of the
caller): the file goes in chunks, a second connection looks the next chunk up while one is cleaned and decided, the
COPY stores a chunk's new orders while the next is decided, and the second connection reads what the tiers need while
the COPY ends. "Large" is made two rows and a chunk two rows, so that the files of test_order_import take this path
in several chunks."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connections
from django.utils import translation

from loyalty.models import Account, TierChange
from members.importing import orders
from members.importing.orders import orders_import
from members.models import Order
from tests.factories import MemberFactory
from tests.members.test_order_import import *  # noqa: F403 (the same tests, on this path)
from tests.members.test_order_import import HEADERS, run, zhang  # noqa: F401 (zhang: their fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def two_rows_are_large(monkeypatch):
    monkeypatch.setattr(orders, "PIPELINE_ROWS", 2)
    monkeypatch.setattr(orders, "CHUNK_ROWS", 2)
    calls = []
    lookups = orders._lookups

    def counted(*args, **kwargs):  # the look-ups on the second connection
        calls.append(1)
        return lookups(*args, **kwargs)

    monkeypatch.setattr(orders, "_lookups", counted)
    return calls


def test_a_large_file_takes_the_pipelined_path(tmp_path, channel, zhang, two_rows_are_large):  # noqa: F811
    text = HEADERS + "".join(f"{channel.code},P-{n},{zhang.member_no},10,2024-01-0{n + 1},\n" for n in range(5))
    counts, _errors, code = run(tmp_path, text)
    assert (counts, code) == ({"new": 5, "unchanged": 0, "errors": 0}, 0) and two_rows_are_large
    assert Order.objects.filter(order_id__startswith="P-").count() == 5


def test_a_recorded_order_with_another_fingerprint_is_compared_by_its_values(tmp_path, channel, zhang):  # noqa: F811
    """An order recorded before fingerprints (or with lines) says the same as the row: unchanged; else refused, and
    the new rows of the file are not written."""
    text = HEADERS + f"{channel.code},F-1,{zhang.member_no},10,2024-01-02 10:00:00,\n"
    run(tmp_path, text)
    Order.objects.filter(order_id="F-1").update(fingerprint="")
    again = text + "".join(f"{channel.code},F-{n},{zhang.member_no},10,2024-01-0{n},\n" for n in range(2, 5))
    assert run(tmp_path, again)[0] == {"new": 3, "unchanged": 1, "errors": 0}
    changed = HEADERS + (
        f"{channel.code},F-9,{zhang.member_no},10,2024-01-02,\n{channel.code},F-8,{zhang.member_no},10,2024-01-02,\n"
        f"{channel.code},F-1,{zhang.member_no},11,2024-01-02 10:00:00,\n"
    )
    Order.objects.filter(order_id="F-1").update(fingerprint="")
    counts, errors, code = run(tmp_path, changed)
    assert (counts["errors"], code) == (1, 1) and errors[0].startswith("row 4: order_id: Order F-1 is recorded")
    assert not Order.objects.filter(order_id__in=["F-9", "F-8"]).exists()


def test_tier_sums_are_read_ahead_chunk_by_chunk_on_a_second_connection(tmp_path, channel, program, zhang, monkeypatch):  # noqa: F811
    """Each chunk's new orders are given to loyalty as they are stored, on the worker thread's own connection (which
    sees none of them); the sums are taken once, at the end, on that connection, in the same transaction as the parts
    (behind a pooler in transaction mode, the same server connection, which keeps the parts); nothing is summed again
    after the COPY, and the tier is the one the whole history qualifies for (a member's orders spread over several
    chunks)."""
    from django.db import connection

    from loyalty import history

    calls, transactions = [], set()

    def spied(name):
        function = getattr(history, name)

        def spy(*args, **kwargs):
            calls.append((name, threading.current_thread() is threading.main_thread(), kwargs.get("first")))
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid(), transaction_timestamp()")
                transactions.add(cursor.fetchone())
            return function(*args, **kwargs)

        monkeypatch.setattr(history, name, spy)

    for name in ("tiers_prepare_history_part", "tiers_prepared_sums", "_history_window_values_by_member"):
        spied(name)
    text = HEADERS + "".join(
        f"{channel.code},W-{n},{zhang.member_no},2000,2026-01-0{n + 1} 10:00:00,\n" for n in range(3)
    )
    assert run(tmp_path, text)[0] == {"new": 3, "unchanged": 0, "errors": 0}
    assert calls == [
        ("tiers_prepare_history_part", False, True),
        ("tiers_prepare_history_part", False, False),
        ("tiers_prepared_sums", False, None),
    ]
    assert len(transactions) == 1
    change = TierChange.objects.get(account__member=zhang, reason="upgrade")
    assert (change.to_tier.code, change.metric_value) == ("gold", Decimal("6000.00"))


def test_an_order_recorded_meanwhile_by_someone_else_stops_the_import_with_nothing_written(channel, zhang):  # noqa: F811
    """The pipelined version of the test it replaces: another writer (on its own connection) records an order of the
    first chunk after that chunk is checked and before the COPY stores it; the import stops, with nothing written."""
    from members.errors import ImportFailed

    def record_meanwhile(percent):
        if percent == 20:  # the first chunk (two of the four rows) is checked and matched
            writer = threading.Thread(target=_record_elsewhere, args=(channel, zhang, "C-1"))
            writer.start()
            writer.join()

    data = (HEADERS + "".join(f"{channel.code},C-{n},{zhang.member_no},10,2024-01-02,\n" for n in range(4))).encode()
    with translation.override("en"), pytest.raises(ImportFailed, match="Another change to these orders happened"):
        orders_import(data=data, progress=record_meanwhile)
    assert list(Order.objects.values_list("order_id", flat=True)) == ["C-1"]


def _record_elsewhere(channel, member, order_id):
    try:
        Order.objects.create(
            channel=channel,
            order_id=order_id,
            member=member,
            amount=Decimal("5"),
            occurred_at=dt.datetime.now(dt.UTC),
        )
    finally:
        connections.close_all()


def test_a_refused_row_in_a_later_chunk_rolls_back_the_chunks_stored_before_it(tmp_path, channel, zhang):  # noqa: F811
    """Chunks 1 and 2 are new and go to the COPY as soon as they are checked; row 6 (chunk 3) names no member. Nothing
    is written, and the rows after the refused one are still checked, so that the file's every error is reported."""
    good = "".join(f"{channel.code},L-{n},{zhang.member_no},10,2024-01-0{n + 1},\n" for n in range(4))
    text = (
        HEADERS
        + good
        + f"{channel.code},L-8,nobody,10,2024-01-02,\n{channel.code},L-9,{zhang.member_no},x,2024-01-02,\n"
    )
    counts, errors, code = run(tmp_path, text)
    assert (counts, code) == ({"new": 4, "unchanged": 0, "errors": 2}, 1)
    assert [error.split(":")[0] for error in errors[:2]] == ["row 6", "row 7"]
    assert not Order.objects.filter(order_id__startswith="L-").exists()
    assert not TierChange.objects.exists() and not Account.objects.filter(member=zhang).exists()


def test_a_row_repeating_a_new_order_of_an_earlier_chunk_is_compared_with_it(tmp_path, channel, zhang):  # noqa: F811
    """Row 5 repeats row 2 (two chunks before) word for word: unchanged. Row 6 says another amount: refused."""
    rows = "".join(f"{channel.code},D-{n},{zhang.member_no},10,2024-01-0{n + 1},\n" for n in range(3))
    same = f"{channel.code},D-0,{zhang.member_no},10,2024-01-01,\n"
    assert run(tmp_path, HEADERS + rows + same)[0] == {"new": 3, "unchanged": 1, "errors": 0}
    Order.objects.filter(order_id__startswith="D-").delete()
    other = f"{channel.code},D-1,{zhang.member_no},12,2024-01-02,\n"
    counts, errors, code = run(tmp_path, HEADERS + rows + same + other)
    assert (counts, code) == ({"new": 3, "unchanged": 1, "errors": 1}, 1)
    assert errors[0].startswith("row 6: order_id: Order D-1 is recorded already with another amount")
    assert not Order.objects.filter(order_id__startswith="D-").exists()


def test_progress_rises_chunk_by_chunk_to_95(channel, zhang):  # noqa: F811
    seen = []
    data = (HEADERS + "".join(f"{channel.code},G-{n},{zhang.member_no},10,2024-01-02,\n" for n in range(5))).encode()
    assert orders_import(data=data, progress=seen.append).committed
    assert seen == sorted(seen) and seen[-1] == 95 and len(set(seen)) > 5


def test_the_members_table_is_searched_twice_per_file_whatever_its_chunks(tmp_path, channel, zhang, monkeypatch):  # noqa: F811
    """The first chunk's members, and the rest of the file's at the same time on the other connection: a file of many
    chunks does not search the members table once per chunk (a full scan each, on a large table). Six chunks here."""
    wang = MemberFactory(phone="+8613900139001")
    searched = []
    lookup = orders.members_by_reference

    def spy(texts):
        searched.append(set(texts))
        return lookup(texts)

    monkeypatch.setattr(orders, "members_by_reference", spy)
    people = [zhang.member_no, "13900139001", *(f"nobody-{n}" for n in range(10))]
    text = HEADERS + "".join(f"{channel.code},S-{n},{who},10,2024-01-02,\n" for n, who in enumerate(people))
    counts, errors, _code = run(tmp_path, text)
    assert counts == {"new": 2, "unchanged": 0, "errors": 10} and errors[0].startswith("row 4: member: No member")
    searches = [frozenset(texts) for texts in searched if texts]
    assert len(searches) == 2 and set(searches) == {
        frozenset({zhang.member_no, "13900139001"}),
        frozenset(f"nobody-{n}" for n in range(10)),
    }
    assert wang.orders.count() == 0  # nothing written: the file has errors


def test_a_dry_run_takes_no_order_ids(tmp_path, channel, zhang):  # noqa: F811
    """A preview of a large file checks every row and writes nothing, not even a gap in the orders' ids."""
    text = HEADERS + "".join(f"{channel.code},N-{n},{zhang.member_no},10,2024-01-02,\n" for n in range(5))
    before = Order.objects.create(
        channel=channel, order_id="N-before", member=zhang, amount=Decimal("1"), occurred_at=dt.datetime.now(dt.UTC)
    )
    assert run(tmp_path, text, "--dry-run")[0] == {"new": 5, "unchanged": 0, "errors": 0}
    after = Order.objects.create(
        channel=channel, order_id="N-after", member=zhang, amount=Decimal("1"), occurred_at=dt.datetime.now(dt.UTC)
    )
    assert after.pk == before.pk + 1 and not Order.objects.filter(order_id__startswith="N-", amount=10).exists()


def test_a_failed_tier_read_stops_the_import_with_its_own_error(tmp_path, channel, zhang, monkeypatch):  # noqa: F811
    """The tier reads ahead are one transaction of the reading thread: once one fails, that thread's later reads (a
    recorded order to compare, in a later chunk) raise the same error, not "current transaction is aborted", and
    nothing is written."""
    from django.db import DataError, connection

    from loyalty import history

    run(tmp_path, HEADERS + f"{channel.code},F-1,{zhang.member_no},10,2024-01-02 10:00:00,\n")
    Order.objects.filter(order_id="F-1").update(fingerprint="")  # compared by its values, on the reading thread
    prepare = history.tiers_prepare_history_part

    def failing(*, orders, first=False):
        if first:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 / 0")
        return prepare(orders=orders, first=first)

    monkeypatch.setattr(history, "tiers_prepare_history_part", failing)
    text = HEADERS + (
        f"{channel.code},N-1,{zhang.member_no},10,2024-01-03,\n{channel.code},N-2,{zhang.member_no},10,2024-01-04,\n"
        f"{channel.code},F-1,{zhang.member_no},10,2024-01-02 10:00:00,\n"
        f"{channel.code},N-3,{zhang.member_no},10,2024-01-05,\n"
    )
    with pytest.raises(DataError, match="division by zero"):
        orders_import(data=text.encode())
    assert list(Order.objects.values_list("order_id", flat=True)) == ["F-1"]
