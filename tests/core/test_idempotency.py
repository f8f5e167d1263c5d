import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest

from core.errors import IdempotencyConflict
from core.idempotency import payload_fingerprint, replay


def test_one_request_spelled_two_ways_has_one_fingerprint():
    shanghai = dt.timezone(dt.timedelta(hours=8))
    first = {"amount": Decimal("10"), "at": dt.datetime(2026, 1, 1, 8, 0, tzinfo=shanghai), "lines": [{"b": 1, "a": 2}]}
    second = {
        "lines": [{"a": 2, "b": 1}],
        "at": dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC),
        "amount": Decimal("10.00"),
    }

    assert payload_fingerprint(first) == payload_fingerprint(second)
    assert payload_fingerprint(first) != payload_fingerprint({**first, "amount": Decimal("10.01")})


def test_a_replay_answers_the_original_and_another_payload_is_refused_with_the_callers_words():
    original = SimpleNamespace(fingerprint=payload_fingerprint({"amount": Decimal("5")}))

    assert replay(original, payload_fingerprint({"amount": Decimal("5.00")}), "unused") == (original, False)
    with pytest.raises(IdempotencyConflict) as refused:
        replay(original, payload_fingerprint({"amount": Decimal("6")}), lambda row: f"id {row.fingerprint[:4]} reused")
    assert refused.value.message == f"id {original.fingerprint[:4]} reused"
    assert refused.value.code == "idempotency_conflict"
