"""Reads of the points mall."""

from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from . import rules
from .models import Coupon, Redemption, Reward
from .rewards import coupon_code_normalize, reward_unavailable_reason
from .selectors import account_for


def catalogue(*, program, channel=None) -> list:
    """The active rewards shown in this channel (a catalogue is small: filtered in Python, where JSON lists are
    read the same way on every database)."""
    rewards = Reward.objects.filter(program=program, is_active=True).select_related("min_tier")
    rewards = rewards.order_by("sort_order", "points_cost", "id")
    return [reward for reward in rewards if channel is None or rules.in_scope(reward.channel_codes, channel.code)]


def _redeemed_counts(account, rewards, now) -> dict:
    """{reward id: quantity this account redeemed in the reward's limit period}: one query per kind of period."""
    counts = {}
    limited = [reward for reward in rewards if reward.per_member_limit is not None]
    for period in {reward.limit_period for reward in limited}:
        ids = [reward.pk for reward in limited if reward.limit_period == period]
        redemptions = Redemption.objects.filter(account=account, reward_id__in=ids, status="completed")
        start = rules.period_start(account.program, period, now) if period != "ever" else None
        if start is not None:
            redemptions = redemptions.filter(created_at__gte=start)
        counts.update(redemptions.values("reward_id").annotate(total=Sum("quantity")).values_list("reward_id", "total"))
    return counts


def unavailable_reasons(*, rewards, member, program) -> dict:
    """{reward id: why this member cannot redeem it now, or None}, points and limits included, in a fixed number
    of queries whatever the page size."""
    account = account_for(member=member, program=program)
    now = timezone.now()
    counts = _redeemed_counts(account, rewards, now) if account is not None else {}
    reasons = {}
    for reward in rewards:
        reason = reward_unavailable_reason(reward, account, now=now)
        if reason is None and member.status != "active":
            reason = _("This member is frozen or closed.")
        if reason is None and (account is None or account.balance < reward.points_cost):
            reason = _("Not enough points.")
        if (
            reason is None
            and reward.per_member_limit is not None
            and counts.get(reward.pk, 0) >= reward.per_member_limit
        ):
            reason = _("The member has reached the limit for this reward.")
        reasons[reward.pk] = reason
    return reasons


def coupon_by_code(*, code, program):
    """The programme's coupon with this code (case-insensitive), or None: another programme's coupon is unknown here."""
    return (
        Coupon.objects.select_related("template", "member")
        .filter(code=coupon_code_normalize(code), template__program=program)
        .first()
    )


def coupons_of(*, member, program):
    return (
        Coupon.objects.filter(member=member, template__program=program)
        .select_related("template", "member")
        .order_by("-issued_at", "-id")
    )


def reward_counts(*, program):
    return Reward.objects.filter(program=program).annotate(redemptions=Count("redemptions"))
