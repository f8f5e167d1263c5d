"""Badges: awarded once, automatically, when the fact happens (an order, a review) or in the daily job (years of
membership), each with its optional points bonus as a ledger row."""

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.registry import StrategyRegistry
from members.models import Event, Member

from . import spend
from .ledger import accounts_lock, points_award
from .models import Account, Badge, BadgeAward

Rule = Badge.Rule


class BadgeRule:
    """One kind of badge: what it measures for an account, the level it needs, and which fact can earn it
    (`triggered_by`: "order", "review", "time"; None for a badge given by hand or by a campaign)."""

    key = ""
    triggered_by = None

    def needed(self, badge: Badge):
        return badge.threshold

    def value(self, badge: Badge, account: Account, now) -> float:
        return 0


badge_rules = StrategyRegistry("badge rule")


@badge_rules.register
class OrderCount(BadgeRule):
    key = Rule.ORDERS
    triggered_by = "order"

    def value(self, badge, account, now):
        return spend.member_orders(member_id=account.member_id, program_id=account.program_id, start=None, end=None)


@badge_rules.register
class FirstOrder(OrderCount):
    key = Rule.FIRST_ORDER

    def needed(self, badge):
        return 1


@badge_rules.register
class Spend(BadgeRule):
    """Net spend in the programme's channels, over the badge's window or ever."""

    key = Rule.SPEND
    triggered_by = "order"

    def value(self, badge, account, now):
        start = now - dt.timedelta(days=badge.window_days) if badge.window_days else None
        return spend.member_spend(member_id=account.member_id, program_id=account.program_id, start=start, end=None)


@badge_rules.register
class Reviews(BadgeRule):
    key = Rule.REVIEWS
    triggered_by = "review"

    def value(self, badge, account, now):
        return Event.objects.filter(member_id=account.member_id, type=Event.Type.REVIEW).count()


@badge_rules.register
class MemberYears(BadgeRule):
    key = Rule.MEMBER_YEARS
    triggered_by = "time"

    def value(self, badge, account, now):
        joined = Member.objects.values_list("joined_at", flat=True).get(pk=account.member_id)
        return (now - joined).days / 365.25


@badge_rules.register
class Campaign(BadgeRule):
    """Given by a campaign (the campaigns app), never earned by a measure."""

    key = Rule.CAMPAIGN

    def value(self, badge, account, now):
        return 0


@transaction.atomic(savepoint=False)
def badges_evaluate(*, account: Account, rules=None, now=None) -> list[BadgeAward]:
    """Award the badges of these rules that the account now deserves and does not have (inside the caller's
    transaction; the account is locked before a bonus is credited)."""
    now = now or timezone.now()
    badges = Badge.objects.filter(program_id=account.program_id, is_active=True).exclude(awards__account=account)
    if rules is not None:
        badges = badges.filter(rule__in=rules)
    awarded = []
    for badge in badges:
        strategy = badge_rules.get(badge.rule)
        if strategy.value(badge, account, now) < strategy.needed(badge):
            continue
        try:
            with transaction.atomic():
                award = BadgeAward.objects.create(badge=badge, account=account, awarded_at=now)
        except IntegrityError:
            continue  # awarded by a concurrent request: once is once
        if badge.points_bonus:
            locked = accounts_lock(account.pk)[account.pk]
            points_award(
                account=locked,
                points=badge.points_bonus,
                reference=f"badge:{badge.code}",
                reason=_("Badge: %(badge)s") % {"badge": badge.name},
                key=f"badge:{badge.pk}:{account.pk}",
            )
        awarded.append(award)
    return awarded


@transaction.atomic(savepoint=False)
def badges_daily(*, program, as_of) -> dict:
    """The badges that time alone earns (years of membership), for every account of the programme."""
    now = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time.min, tzinfo=timezone.get_default_timezone())
    count = 0
    for badge in Badge.objects.filter(program=program, is_active=True, rule=Rule.MEMBER_YEARS):
        joined_before = now - dt.timedelta(days=int(float(badge.threshold) * 365.25))
        due = (
            Account.objects.filter(program=program, member__joined_at__lte=joined_before)
            .exclude(badges__badge=badge)
            .values_list("pk", flat=True)
        )
        if badge.points_bonus:
            for account in Account.objects.filter(pk__in=list(due)):
                count += len(badges_evaluate(account=account, rules=[Rule.MEMBER_YEARS], now=now))
        else:
            awards = [BadgeAward(badge=badge, account_id=pk, awarded_at=now) for pk in due]
            BadgeAward.objects.bulk_create(awards, ignore_conflicts=True, batch_size=5000)
            count += len(awards)
    return {"awarded": count}


def badges_of(*, member, program):
    return (
        BadgeAward.objects.filter(account__member=member, account__program=program)
        .select_related("badge")
        .order_by("-awarded_at")
    )


@transaction.atomic(savepoint=False)
def badges_award_for_campaign(*, program, member_ids, now=None) -> int:
    """The "took part in a campaign" badges of the programme, for members a campaign has just messaged (called by
    the campaigns app for each batch sent). Awarded once; the bonus is credited once (an idempotency key)."""
    badges = list(Badge.objects.filter(program=program, rule=Rule.CAMPAIGN, is_active=True))
    if not badges or not member_ids:
        return 0
    now = now or timezone.now()
    accounts = dict(Account.objects.filter(program=program, member_id__in=member_ids).values_list("pk", "member_id"))
    awarded = 0
    for badge in badges:
        have = set(BadgeAward.objects.filter(badge=badge, account_id__in=accounts).values_list("account_id", flat=True))
        new = sorted(set(accounts) - have)
        BadgeAward.objects.bulk_create(
            [BadgeAward(badge=badge, account_id=account_id, awarded_at=now) for account_id in new],
            ignore_conflicts=True,
        )
        awarded += len(new)
        if badge.points_bonus and new:
            locked = accounts_lock(*new)
            for account_id in new:
                points_award(
                    account=locked[account_id],
                    points=badge.points_bonus,
                    reference=f"badge:{badge.code}",
                    reason=_("Badge: %(badge)s") % {"badge": badge.name},
                    key=f"badge:{badge.pk}:{account_id}",
                )
    return awarded
