"""Points taken back when an order is refunded (called through members' domain events)."""

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from members.models import Order

from .ledger import Kind, accounts_lock, debit, reverse_pending
from .models import (
    Account,
    PointsLot,
    PointsTransaction,
)
from .program_config import program_for_channel


@transaction.atomic(savepoint=False)
def points_reverse_for_refund(*, refund, order: Order) -> PointsTransaction | None:
    """Take back the order's points in proportion to what is refunded so far (rounded down, so that a full refund
    reverses exactly what was earned). Always recorded in full: the balance may go negative."""
    program = program_for_channel(order.channel, required=False)
    if program is None:
        return None
    account = Account.objects.filter(member_id=order.member_id, program=program).first()
    if account is None:
        return None
    account = accounts_lock(account.pk)[account.pk]
    earn_rows = list(PointsTransaction.objects.filter(order=order, kind=Kind.EARN).select_related("lot"))
    earned = sum(row.points for row in earn_rows)
    if earned <= 0:
        return None
    reversed_so_far = -(
        PointsTransaction.objects.filter(order=order, kind=Kind.REVERSE).aggregate(total=Sum("points"))["total"] or 0
    )
    target = earned * order.refunded_amount // order.amount  # Decimal floor division keeps it exact
    points = int(target) - reversed_so_far
    if points <= 0:
        return None
    lot = earn_rows[0].lot
    lot.refresh_from_db()
    reference = f"refund:{refund.refund_id}"
    reason = _("Refund %(refund)s of order %(order)s") % {"refund": refund.refund_id, "order": order.order_id}
    key = f"{refund.channel_id}:refund:{refund.refund_id}"
    if lot.status == PointsLot.Status.PENDING:
        # Still pending: the points never reached the balance, so the reversal takes them from the pending lot.
        return reverse_pending(
            account=account,
            lot=lot,
            points=points,
            reference=reference,
            reason=reason,
            idempotency_key=key,
            channel=refund.channel,
            order=order,
        )
    return debit(
        account,
        points,
        kind=Kind.REVERSE,
        allow_negative=True,
        reference=reference,
        reason=reason,
        key=key,
        channel=refund.channel,
        order=order,
        first_lot_id=lot.pk,
    )
