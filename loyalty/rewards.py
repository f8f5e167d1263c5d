"""The points mall: redemption, coupons and their burn at the counter. Every write is one transaction; the
account is locked before the reward (one order everywhere), stock moves by F() under the reward's lock, and the
database refuses negative stock and a second coupon with the same code."""

import datetime as dt
import secrets

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.errors import IdempotencyConflict, NotFound, ValidationFailed
from core.idempotency import payload_fingerprint, replay_of
from members.services import require_active

from . import events, rules
from .errors import CouponNotValid, InsufficientPoints, LimitExceeded, RewardUnavailable
from .ledger import account_lock_or_create, accounts_lock, points_give_back, points_spend
from .models import Coupon, CouponBatch, Fulfilment, Redemption, Reward
from .program_config import program_for_channel

# No look-alikes (0/O, 1/I/L): codes are read out and typed at a till.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12


def coupon_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def coupon_code_normalize(code: str) -> str:
    """Codes are issued in upper case; what a till or a partner types is read the same way everywhere."""
    return (code or "").strip().upper()


def reward_unavailable_reason(reward: Reward, account, *, now=None, quantity: int = 1) -> str | None:
    """Why this member cannot redeem the reward now (None when they can), without its points and limit checks."""
    now = now or timezone.now()
    if not reward.is_active:
        return _("This reward is no longer offered.")
    if reward.valid_from and now < reward.valid_from:
        return _("This reward is not offered yet.")
    if reward.valid_until and now > reward.valid_until:
        return _("This reward is no longer offered.")
    if reward.stock is not None and reward.stock < quantity:
        return _("Out of stock.")
    if reward.min_tier_id and (account is None or account.tier.rank < reward.min_tier.rank):
        return _("Only for %(tier)s and above.") % {"tier": reward.min_tier.name}
    return None


def redeemed_in_period(reward: Reward, account, now) -> int:
    redemptions = Redemption.objects.filter(reward=reward, account=account, status=Redemption.Status.COMPLETED)
    start = rules.period_start(account.program, reward.limit_period, now) if reward.limit_period != "ever" else None
    if start is not None:
        redemptions = redemptions.filter(created_at__gte=start)
    return redemptions.aggregate(total=Sum("quantity"))["total"] or 0


REDEMPTION_CONFLICT = gettext_lazy("This redemption_id was already used with a different payload.")


SHIPPING_FIELDS = ("name", "phone", "address")


def _shipping_cleaned(shipping) -> dict:
    """The recipient of a gift: name, phone and address, each required (refused as bad input otherwise)."""
    shipping = {field: str((shipping or {}).get(field) or "").strip() for field in SHIPPING_FIELDS}
    missing = [field for field in SHIPPING_FIELDS if not shipping[field]]
    if missing:
        raise ValidationFailed(
            _("A gift is shipped: give the recipient's name, phone and address."),
            fields={f"shipping.{field}": [_("This field is required.")] for field in missing},
        )
    return shipping


@transaction.atomic
def reward_redeem(
    *, channel, member, reward_code: str, quantity: int, redemption_id: str, shipping: dict | None = None
):
    """Spend points on a reward: checks, points (soonest-expiring first), stock, coupons, all or nothing.
    A gift needs `shipping` {name, phone, address}, kept on its fulfilment. Idempotent by the channel's
    `redemption_id`. Returns (redemption, created)."""
    payload = {"member": member.pk, "reward": reward_code, "quantity": quantity, "redemption_id": redemption_id}
    if shipping:
        payload["shipping"] = {field: str(shipping.get(field) or "").strip() for field in SHIPPING_FIELDS}
    fingerprint = payload_fingerprint(payload)
    replayed = replay_of(
        Redemption.objects, fingerprint, REDEMPTION_CONFLICT, channel=channel, redemption_id=redemption_id
    )
    if replayed:
        return replayed
    require_active(member)
    program = program_for_channel(channel)
    reward = Reward.objects.filter(program=program, code=reward_code).select_related("min_tier").first()
    if reward is None:
        raise NotFound(_("No reward %(code)s in this programme.") % {"code": reward_code})
    if reward.kind == Reward.Kind.GIFT:
        shipping = _shipping_cleaned(shipping)
    account = account_lock_or_create(member=member, program=program)
    # A concurrent replay may have committed while this one waited for the account.
    replayed = replay_of(
        Redemption.objects, fingerprint, REDEMPTION_CONFLICT, channel=channel, redemption_id=redemption_id
    )
    if replayed:
        return replayed
    reward = (
        Reward.objects.select_for_update(of=("self",)).select_related("min_tier", "coupon_template").get(pk=reward.pk)
    )
    now = timezone.now()
    reason = reward_unavailable_reason(reward, account, now=now, quantity=quantity)
    if reason:
        raise RewardUnavailable(reason)
    if reward.per_member_limit is not None and (
        redeemed_in_period(reward, account, now) + quantity > reward.per_member_limit
    ):
        raise LimitExceeded(
            _("At most %(limit)d of this reward per member (%(period)s).")
            % {"limit": reward.per_member_limit, "period": reward.get_limit_period_display()}
        )
    points = reward.points_cost * quantity
    if account.balance < points:
        raise InsufficientPoints(
            _("%(points)d points are needed; the balance is %(balance)d.")
            % {"points": points, "balance": account.balance},
            balance=account.balance,
        )
    points_spend(
        account=account,
        points=points,
        reference=f"redemption:{redemption_id}",
        reason=_("Redeemed %(reward)s") % {"reward": reward.name},
        key=f"{channel.pk}:redemption:{redemption_id}",
        channel=channel,
    )
    Reward.objects.filter(pk=reward.pk).update(
        redeemed_count=F("redeemed_count") + quantity,
        **({"stock": F("stock") - quantity} if reward.stock is not None else {}),
    )
    try:
        with transaction.atomic():
            redemption = Redemption.objects.create(
                account=account,
                reward=reward,
                channel=channel,
                redemption_id=redemption_id,
                quantity=quantity,
                points_spent=points,
                fingerprint=fingerprint,
            )
    except IntegrityError:
        raise IdempotencyConflict(_("This redemption_id is being used by another request; retry.")) from None
    if reward.kind == Reward.Kind.COUPON:
        coupons_issue(template=reward.coupon_template, member=member, count=quantity, redemption=redemption)
    elif reward.kind == Reward.Kind.GIFT:
        Fulfilment.objects.create(
            redemption=redemption,
            recipient_name=shipping["name"],
            recipient_phone=shipping["phone"],
            address=shipping["address"],
        )
    events.redemption_created.send(redemption=redemption)
    return redemption, True


@transaction.atomic(savepoint=False)
def coupons_issue(*, template, member=None, count: int = 1, redemption=None, now=None) -> list[Coupon]:
    """Issue `count` coupons (unique unguessable codes; a rare clash is drawn again)."""
    now = now or timezone.now()
    valid_from = template.valid_from or now
    valid_until = now + dt.timedelta(days=template.valid_days) if template.valid_days else template.valid_until
    coupons = []
    while len(coupons) < count:
        batch = [
            Coupon(
                code=coupon_code(),
                template=template,
                member=member,
                redemption=redemption,
                issued_at=now,
                valid_from=valid_from,
                valid_until=valid_until,
            )
            for _ in range(count - len(coupons))
        ]
        taken = set(Coupon.objects.filter(code__in=[coupon.code for coupon in batch]).values_list("code", flat=True))
        fresh = [coupon for coupon in batch if coupon.code not in taken]
        coupons += Coupon.objects.bulk_create(fresh)
    if member is not None:
        events.coupons_issued.send(coupons=coupons, member=member)
    return coupons


@transaction.atomic
def coupons_issue_to_members(*, template, member_ids, count: int = 1) -> int:
    """`count` coupons of `template` to each of the members (a batch of ids): a few statements whatever the batch's
    size. Returns how many members got them."""
    member_ids = list(member_ids)
    now = timezone.now()
    valid_from = template.valid_from or now
    valid_until = now + dt.timedelta(days=template.valid_days) if template.valid_days else template.valid_until
    wanted = [member_id for member_id in member_ids for _ in range(count)]
    while wanted:
        batch = [
            Coupon(
                code=coupon_code(),
                template=template,
                member_id=member_id,
                issued_at=now,
                valid_from=valid_from,
                valid_until=valid_until,
            )
            for member_id in wanted
        ]
        taken = set(Coupon.objects.filter(code__in=[coupon.code for coupon in batch]).values_list("code", flat=True))
        Coupon.objects.bulk_create([coupon for coupon in batch if coupon.code not in taken], batch_size=2000)
        wanted = [coupon.member_id for coupon in batch if coupon.code in taken]
    return len(member_ids)


@transaction.atomic
def coupon_redeem(*, channel, code: str, order_id: str = "", amount=None) -> Coupon:
    """Burn a coupon at the counter of `channel`: once, even under concurrent attempts. The coupon must belong to
    the channel's programme (another programme's coupon is not found), be valid now, be usable in this channel
    (the template's channels) and meet its minimum spend, for which the order `amount` is then required."""
    program = program_for_channel(channel)
    code = coupon_code_normalize(code)
    coupon = (
        Coupon.objects.select_for_update(of=("self",))
        .select_related("template")
        .filter(code=code, template__program=program)
        .first()
    )
    if coupon is None:
        raise NotFound(_("No coupon %(code)s.") % {"code": code})
    now = timezone.now()
    if coupon.status != Coupon.Status.ISSUED:
        raise CouponNotValid(_("This coupon is %(status)s.") % {"status": coupon.get_status_display()})
    if coupon.valid_until and now > coupon.valid_until:
        raise CouponNotValid(_("This coupon expired on %(date)s.") % {"date": coupon.valid_until.date()})
    if now < coupon.valid_from:
        raise CouponNotValid(_("This coupon is not valid yet."))
    if not rules.in_scope(coupon.template.channel_codes, channel.code):
        raise CouponNotValid(_("This coupon cannot be used in this channel."))
    if amount is None and coupon.template.min_spend > 0:
        raise ValidationFailed(
            fields={
                "amount": [
                    _("This coupon needs a spend of at least %(min)s: give the order amount.")
                    % {"min": coupon.template.min_spend}
                ]
            }
        )
    if amount is not None and amount < coupon.template.min_spend:
        raise CouponNotValid(_("This coupon needs a spend of at least %(min)s.") % {"min": coupon.template.min_spend})
    coupon.status, coupon.used_at, coupon.order_reference = Coupon.Status.USED, now, order_id or ""
    coupon.save(update_fields=["status", "used_at", "order_reference"])
    return coupon


@transaction.atomic
def rewards_stock_add(*, reward_ids, quantity: int) -> int:
    """Add `quantity` to the stock of each reward, in one UPDATE with F() so that redemptions running meanwhile
    lose nothing. A reward with unlimited stock is refused (nothing changes). Returns how many changed."""
    if not isinstance(quantity, int) or quantity <= 0:
        raise ValidationFailed(fields={"quantity": [_("Add at least 1.")]})
    rewards = Reward.objects.filter(pk__in=list(reward_ids))
    unlimited = list(rewards.filter(stock__isnull=True).values_list("code", flat=True))
    if unlimited:
        raise ValidationFailed(
            _("These rewards have unlimited stock: %(codes)s.") % {"codes": ", ".join(sorted(unlimited))},
            fields={"stock": [_("Unlimited stock cannot be added to.")]},
        )
    return rewards.update(stock=F("stock") + quantity)


@transaction.atomic
def redemption_cancel(*, redemption: Redemption, reason: str, actor=None) -> Redemption:
    """Staff cancel a redemption (a gift out of stock, a complaint): the points come back as a new ledger row, the
    stock is restored, unused coupons are voided; who and why are recorded. A used coupon cannot be cancelled."""
    if not (reason or "").strip():
        raise ValidationFailed(fields={"reason": [_("Say why the redemption is cancelled.")]})
    account = accounts_lock(redemption.account_id)[redemption.account_id]
    redemption = Redemption.objects.select_for_update(of=("self",)).select_related("reward").get(pk=redemption.pk)
    if redemption.status == Redemption.Status.CANCELLED:
        raise RewardUnavailable(_("This redemption is cancelled already."))
    # Lock the redemption's coupons before looking at them: a burn at a till locks the coupon too, so a burn and a
    # cancellation take turns on the same rows and exactly one of them wins.
    coupons = list(Coupon.objects.select_for_update().filter(redemption=redemption).order_by("pk"))
    if any(coupon.status == Coupon.Status.USED for coupon in coupons):
        raise RewardUnavailable(_("A coupon of this redemption was used; it cannot be cancelled."))
    reward = Reward.objects.select_for_update(of=("self",)).get(pk=redemption.reward_id)
    points_give_back(
        account=account,
        points=redemption.points_spent,
        reference=f"redemption:{redemption.redemption_id}",
        reason=_("Redemption cancelled: %(reason)s") % {"reason": reason},
        actor=actor,
    )
    Reward.objects.filter(pk=reward.pk).update(
        redeemed_count=F("redeemed_count") - redemption.quantity,
        **({"stock": F("stock") + redemption.quantity} if reward.stock is not None else {}),
    )
    Coupon.objects.filter(pk__in=[coupon.pk for coupon in coupons], status=Coupon.Status.ISSUED).update(
        status=Coupon.Status.VOID
    )
    Fulfilment.objects.filter(redemption=redemption).update(status=Fulfilment.Status.CANCELLED, updated_by=actor)
    redemption.status, redemption.cancel_reason = Redemption.Status.CANCELLED, reason
    redemption.cancelled_by, redemption.cancelled_at = actor, timezone.now()
    redemption.save(update_fields=["status", "cancel_reason", "cancelled_by", "cancelled_at"])
    return redemption


@transaction.atomic
def fulfilment_update(*, fulfilment: Fulfilment, status: str, carrier: str = "", tracking_no: str = "", actor=None):
    if status not in Fulfilment.Status.values:
        raise ValidationFailed(fields={"status": [_("Unknown status.")]})
    if status == Fulfilment.Status.SHIPPED and not tracking_no.strip():
        raise ValidationFailed(fields={"tracking_no": [_("A shipped gift needs a tracking number.")]})
    fulfilment = Fulfilment.objects.select_for_update().get(pk=fulfilment.pk)
    if fulfilment.status == Fulfilment.Status.CANCELLED:
        raise RewardUnavailable(_("This gift's redemption was cancelled."))
    fulfilment.status, fulfilment.updated_by = status, actor
    if carrier:
        fulfilment.carrier = carrier
    if tracking_no:
        fulfilment.tracking_no = tracking_no
    fulfilment.save()
    return fulfilment


@transaction.atomic
def fulfilment_address_update(
    *, fulfilment: Fulfilment, recipient_name: str, recipient_phone: str, address: str, actor=None
):
    """Correct where a gift goes, as long as it has not left the warehouse."""
    shipping = _shipping_cleaned({"name": recipient_name, "phone": recipient_phone, "address": address})
    fulfilment = Fulfilment.objects.select_for_update().get(pk=fulfilment.pk)
    if fulfilment.status != Fulfilment.Status.TO_SHIP:
        raise RewardUnavailable(_("This gift has left the warehouse; its address can no longer change."))
    fulfilment.recipient_name, fulfilment.recipient_phone, fulfilment.address = (
        shipping["name"],
        shipping["phone"],
        shipping["address"],
    )
    fulfilment.updated_by = actor
    fulfilment.save(update_fields=["recipient_name", "recipient_phone", "address", "updated_by", "updated_at"])
    return fulfilment


@transaction.atomic
def coupons_issue_batch(*, template, count: int, note: str = "", actor=None) -> CouponBatch:
    """Issue `count` unassigned codes at once (100,000 in seconds): bulk inserts that skip the rare code clash,
    topped up until the batch is whole."""
    if not 1 <= count <= 1_000_000:
        raise ValidationFailed(fields={"count": [_("Between 1 and 1,000,000 codes.")]})
    batch = CouponBatch.objects.create(template=template, count=count, note=note, created_by=actor)
    now = timezone.now()
    valid_from = template.valid_from or now
    valid_until = now + dt.timedelta(days=template.valid_days) if template.valid_days else template.valid_until
    issued = 0
    while issued < count:
        size = min(20_000, count - issued)
        Coupon.objects.bulk_create(
            [
                Coupon(
                    code=coupon_code(),
                    template=template,
                    batch=batch,
                    issued_at=now,
                    valid_from=valid_from,
                    valid_until=valid_until,
                )
                for _ in range(size)
            ],
            ignore_conflicts=True,
            batch_size=5000,
        )
        issued = Coupon.objects.filter(batch=batch).count()
    return batch


@transaction.atomic(savepoint=False)
def coupons_move(*, from_member, to_member) -> int:
    """A merge hands the merged-away member's coupons (used or not, for the record) to the member kept."""
    return Coupon.objects.filter(member=from_member).update(member=to_member)
