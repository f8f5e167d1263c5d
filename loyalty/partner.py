"""A partner's writes (orders, refunds, events through the API) within the programme's limits: each is checked,
then recorded by members' service (which earns through the domain events). The order import, staff loading
history, is not limited. Each is atomic through members' service, its only write (the check before it only reads),
so an order costs no savepoint more than before the limits.
"""

import datetime as dt
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from members import services as member_services
from members.models import Member, Order

from .models import Program
from .program_config import program_for_channel


def program_limits_check(*, program: Program, kind: str, occurred_at=None, amount=None, now=None) -> None:
    """Refuse what a partner sends outside the programme's limits, before anything is recorded: an order's or an
    event's time (`kind` "order" or "event") too old or in the future beyond the clock skew, an order's or a
    refund's amount above the ceiling. The partner writes below call it; the order import (staff loading history)
    does not."""
    now = now or timezone.now()
    fields = {}
    if occurred_at is not None:
        days = program.order_max_age_days if kind == "order" else program.event_max_age_days
        if occurred_at < now - dt.timedelta(days=days):
            fields["occurred_at"] = [
                _("More than %(days)d days ago: this programme does not accept it.") % {"days": days}
            ]
        elif occurred_at > now + dt.timedelta(minutes=program.future_skew_minutes):
            fields["occurred_at"] = [
                _("In the future: at most %(minutes)d minutes ahead of the server's clock are accepted.")
                % {"minutes": program.future_skew_minutes}
            ]
    if amount is not None and amount > program.max_order_amount:
        fields["amount"] = [
            _("Above this programme's maximum of %(max)s per order.") % {"max": program.max_order_amount}
        ]
    if fields:
        raise ValidationFailed(fields=fields)


def partner_order_record(*, channel, member: Member, amount: Decimal, occurred_at: dt.datetime, **order):
    """A partner's order (POST /orders/): within the programme's limits, then recorded (and earned) once."""
    program_limits_check(program=program_for_channel(channel), kind="order", occurred_at=occurred_at, amount=amount)
    return member_services.order_record(channel=channel, member=member, amount=amount, occurred_at=occurred_at, **order)


def partner_refund_record(*, channel, order: Order, amount: Decimal, **refund):
    """A partner's refund (POST /orders/{id}/refunds/): within the programme's amount limit, then recorded."""
    program_limits_check(program=program_for_channel(channel), kind="refund", amount=amount)
    return member_services.refund_record(channel=channel, order=order, amount=amount, **refund)


def partner_event_record(*, channel, member: Member, occurred_at: dt.datetime, **event):
    """A partner's event (POST /events/): within the programme's limits, then recorded (and earned) once."""
    program_limits_check(program=program_for_channel(channel), kind="event", occurred_at=occurred_at)
    return member_services.event_record(channel=channel, member=member, occurred_at=occurred_at, **event)
