"""The order import's behaviour again, on its pipelined path (PostgreSQL, a large file, outside any transaction of the
caller): a second connection looks the file up while the rows are cleaned, and reads what the tiers need while the
COPY stores the orders. "Large" is made two rows, so that the files of test_order_import take this path."""

import pytest

from members.importing import orders
from tests.members.test_order_import import *  # noqa: F403 (the same tests, on this path)
from tests.members.test_order_import import zhang  # noqa: F401 (their fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def two_rows_are_large(monkeypatch):
    monkeypatch.setattr(orders, "PIPELINE_ROWS", 2)
    calls = []
    lookups = orders._lookups

    def counted(*args, **kwargs):  # the look-ups on the second connection
        calls.append(1)
        return lookups(*args, **kwargs)

    monkeypatch.setattr(orders, "_lookups", counted)
    return calls


def test_a_large_file_takes_the_pipelined_path(tmp_path, channel, zhang, two_rows_are_large):  # noqa: F811
    text = HEADERS + "".join(f"{channel.code},P-{n},{zhang.member_no},10,2024-01-0{n + 1},\n" for n in range(5))  # noqa: F405
    counts, _errors, code = run(tmp_path, text)  # noqa: F405
    assert (counts, code) == ({"new": 5, "unchanged": 0, "errors": 0}, 0) and two_rows_are_large
    assert Order.objects.filter(order_id__startswith="P-").count() == 5  # noqa: F405


def test_a_recorded_order_with_another_fingerprint_is_compared_by_its_values(tmp_path, channel, zhang):  # noqa: F811
    """An order recorded before fingerprints (or with lines) says the same as the row: unchanged; else refused, and
    the new rows of the file are not written."""
    text = HEADERS + f"{channel.code},F-1,{zhang.member_no},10,2024-01-02 10:00:00,\n"  # noqa: F405
    run(tmp_path, text)  # noqa: F405
    Order.objects.filter(order_id="F-1").update(fingerprint="")  # noqa: F405
    again = text + "".join(f"{channel.code},F-{n},{zhang.member_no},10,2024-01-0{n},\n" for n in range(2, 5))
    assert run(tmp_path, again)[0] == {"new": 3, "unchanged": 1, "errors": 0}  # noqa: F405
    changed = HEADERS + (  # noqa: F405
        f"{channel.code},F-9,{zhang.member_no},10,2024-01-02,\n{channel.code},F-8,{zhang.member_no},10,2024-01-02,\n"
        f"{channel.code},F-1,{zhang.member_no},11,2024-01-02 10:00:00,\n"
    )
    Order.objects.filter(order_id="F-1").update(fingerprint="")  # noqa: F405
    counts, errors, code = run(tmp_path, changed)  # noqa: F405
    assert (counts["errors"], code) == (1, 1) and errors[0].startswith("row 4: order_id: Order F-1 is recorded")
    assert not Order.objects.filter(order_id__in=["F-9", "F-8"]).exists()  # noqa: F405


def test_tier_sums_are_read_ahead_on_a_second_connection(tmp_path, channel, program, zhang, monkeypatch):  # noqa: F811
    """The windows are summed once, ahead, with the new orders as arrays (on the worker thread's own connection);
    nothing is summed again after the COPY, and the tier is the one the history qualifies for."""
    from loyalty import history

    calls = []
    summed = history._history_window_values_by_member

    def spy(program, tier, orders, *, unrecorded=False):
        calls.append(unrecorded)
        return summed(program, tier, orders, unrecorded=unrecorded)

    monkeypatch.setattr(history, "_history_window_values_by_member", spy)
    text = HEADERS + "".join(  # noqa: F405
        f"{channel.code},W-{n},{zhang.member_no},2000,2026-01-0{n + 1} 10:00:00,\n" for n in range(3)
    )
    assert run(tmp_path, text)[0] == {"new": 3, "unchanged": 0, "errors": 0}  # noqa: F405
    assert calls == [True]
    change = TierChange.objects.get(account__member=zhang, reason="upgrade")  # noqa: F405
    assert (change.to_tier.code, change.metric_value) == ("gold", Decimal("6000.00"))  # noqa: F405
