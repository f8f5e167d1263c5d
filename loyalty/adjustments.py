"""Corrections of a balance by staff or a partner, idempotent by the partner's adjustment_id."""

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import ValidationFailed
from core.idempotency import payload_fingerprint, replay, replay_of

from .ledger import Kind, accounts_lock, credit, debit
from .models import Account, PointsTransaction, Program

ADJUSTMENT_CONFLICT = gettext_lazy("This adjustment_id was already used with a different payload.")


@transaction.atomic
def points_adjust(
    *, account: Account, points: int, reason: str, channel=None, adjustment_id: str | None = None, actor=None
) -> tuple[PointsTransaction, bool]:
    """A correction by staff or a partner: + adds a lot, - takes from the soonest-expiring lots (never below 0).
    Idempotent by the partner's `adjustment_id`. Returns (transaction, created)."""
    if not points:
        raise ValidationFailed(fields={"points": [_("An adjustment cannot be 0.")]})
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": [_("Say why the points are adjusted.")]})
    if actor is not None and not actor.has_perm("loyalty.adjust_points_without_limit"):
        limit = Program.objects.values_list("staff_adjustment_limit", flat=True).get(pk=account.program_id)
        if abs(points) > limit:
            message = _("One adjustment may move at most %(limit)d points; ask a colleague who may go beyond it.") % {
                "limit": limit
            }
            raise ValidationFailed(message, fields={"points": [message]})
    fingerprint = payload_fingerprint({"account": account.pk, "points": points, "reason": reason})
    key = f"{channel.pk}:adjustment:{adjustment_id}" if channel is not None and adjustment_id else None
    if key:
        replayed = replay_of(PointsTransaction.objects, fingerprint, ADJUSTMENT_CONFLICT, idempotency_key=key)
        if replayed:
            return replayed
    account = accounts_lock(account.pk)[account.pk]
    reference = f"adjustment:{adjustment_id}" if adjustment_id else "adjustment"
    try:
        with transaction.atomic():
            if points > 0:
                row = credit(
                    account,
                    points,
                    kind=Kind.ADJUST,
                    reference=reference,
                    reason=reason,
                    key=key,
                    fingerprint=fingerprint,
                    channel=channel,
                    actor=actor,
                )
            else:
                row = debit(
                    account,
                    -points,
                    kind=Kind.ADJUST,
                    reference=reference,
                    reason=reason,
                    key=key,
                    fingerprint=fingerprint,
                    channel=channel,
                    actor=actor,
                )
    except IntegrityError:
        if key is None:
            raise
        return replay(PointsTransaction.objects.get(idempotency_key=key), fingerprint, ADJUSTMENT_CONFLICT)
    return row, True
