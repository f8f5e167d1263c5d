"""Idempotent writes keyed by a partner's id (order_id, refund_id, event_id, adjustment_id, redemption_id).

A write stores the fingerprint of its payload beside the partner's id; a repeat of the id with the same payload is a
replay and answers with the original row, the same id with another payload is refused (`IdempotencyConflict`).
"""

import datetime as dt
import hashlib
import json
from decimal import Decimal

from .errors import IdempotencyConflict


def canonical(value):
    """A JSON-ready form in which equal payloads are equal: sorted keys, money to the cent, times in UTC."""
    if isinstance(value, Decimal):
        return format(value.quantize(Decimal("0.01")), "f")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value


def payload_fingerprint(payload: dict) -> str:
    """The same request, however its JSON was spelled (key order, 10 vs 10.00, time zone), has one fingerprint."""
    return hashlib.sha256(json.dumps(canonical(payload), ensure_ascii=False).encode()).hexdigest()


def replay(existing, fingerprint: str, message=None):
    """The answer to a repeated partner id: `(existing, False)` when the payload is the same, else a refusal with
    `message` (the caller names its id; a callable gets the existing row)."""
    if existing.fingerprint != fingerprint:
        raise IdempotencyConflict(message(existing) if callable(message) else message)
    return existing, False


def replay_of(queryset, fingerprint: str, message=None, **lookup):
    """`replay()` of the row `lookup` finds in `queryset`, or None when the id is new."""
    existing = queryset.filter(**lookup).first()
    return None if existing is None else replay(existing, fingerprint, message)
