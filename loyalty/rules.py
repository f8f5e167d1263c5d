"""The earning rules' strategies: pure computation, no database writes (the preview tool and the services share it).
Each kind of rule is a small class in `earning_rule_types`, picked by the rule's `kind`.

Base earning: amount x points per unit x the tier's multiplier, rounded as the programme says, per order.
An order rule adds a bonus on the matching amount (all of it, or the lines of its categories or SKUs): fixed points,
and/or the base earning on that amount times (multiplier - 1), so that a 3x member day gives 3x in all.
Rules marked "stack" add up; of the rules marked "best", only the one giving most applies.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from core.registry import StrategyRegistry

_ROUNDING = {"down": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "up": ROUND_CEILING}


def round_points(value: Decimal, rounding: str) -> int:
    return int(value.to_integral_value(rounding=_ROUNDING[rounding]))


@dataclass
class Line:
    sku: str
    amount: Decimal
    category: str = ""


@dataclass
class Earning:
    base: int = 0
    bonuses: list = field(default_factory=list)  # [(rule, points)]

    @property
    def total(self) -> int:
        return self.base + sum(points for _rule, points in self.bonuses)


def local_date(program, moment: dt.datetime) -> dt.date:
    return moment.astimezone(ZoneInfo(program.time_zone)).date()


def in_scope(scope, value) -> bool:
    """Whether `value` is inside a rule's scope (a list of channel codes, stores, categories...), compared whole:
    an empty scope means everywhere. A scope stored as a bare string (older rows, hand-written JSON) is one item,
    never a substring test: "tmall" does not cover "mall"."""
    if not scope:
        return True
    if isinstance(scope, str):
        scope = [scope]
    return value in scope


def rule_in_force(rule, day: dt.date) -> bool:
    if not rule.is_active:
        return False
    if rule.valid_from and day < rule.valid_from:
        return False
    if rule.valid_until and day > rule.valid_until:
        return False
    return in_scope(rule.weekdays, day.isoweekday())


def _matching_amount(rule, amount: Decimal, lines) -> Decimal:
    if not (rule.categories or rule.skus):
        return amount
    categories = [rule.categories] if isinstance(rule.categories, str) else rule.categories
    skus = [rule.skus] if isinstance(rule.skus, str) else rule.skus
    return sum((line.amount for line in lines if line.category in categories or line.sku in skus), Decimal(0))


@dataclass
class OrderFacts:
    """What an order rule may look at."""

    program: object
    multiplier: Decimal
    amount: Decimal
    lines: tuple = ()
    channel_code: str = ""
    store: str = ""
    day: dt.date | None = None


@dataclass
class EventFacts:
    """What an event rule may look at."""

    type: str
    name: str
    channel_code: str
    day: dt.date


class EarningRuleType:
    """One kind of earning rule. Each answers the questions of the three earning paths; a kind that has nothing to
    say about an order, an event or a referral keeps the default (no bonus, no match)."""

    key = ""

    def order_bonus(self, rule, facts: OrderFacts) -> int:
        return 0

    def matches_event(self, rule, facts: EventFacts) -> bool:
        return False

    def rewards_referral(self, rule, day: dt.date) -> bool:
        return False


earning_rule_types = StrategyRegistry("earning rule")


@earning_rule_types.register
class OrderBonus(EarningRuleType):
    """Fixed points and/or the base earning times (multiplier - 1) on the matching amount of an order."""

    key = "order"

    def order_bonus(self, rule, facts: OrderFacts) -> int:
        if facts.day is not None and not rule_in_force(rule, facts.day):
            return 0
        if not (in_scope(rule.channel_codes, facts.channel_code) and in_scope(rule.stores, facts.store)):
            return 0
        if rule.min_order_amount is not None and facts.amount < rule.min_order_amount:
            return 0
        matched = _matching_amount(rule, facts.amount, facts.lines)
        if matched <= 0:
            return 0
        program = facts.program
        bonus = rule.points
        if rule.multiplier is not None:
            bonus += round_points(
                matched * program.points_per_unit * facts.multiplier * (rule.multiplier - 1), program.rounding
            )
        return bonus


@earning_rule_types.register
class EventPoints(EarningRuleType):
    """Fixed points for a behaviour event of the rule's type (and name, for a custom event) in its channels."""

    key = "event"

    def matches_event(self, rule, facts: EventFacts) -> bool:
        return (
            rule.event_type == facts.type
            and rule_in_force(rule, facts.day)
            and (facts.type != "custom" or rule.event_name == facts.name)
            and in_scope(rule.channel_codes, facts.channel_code)
        )


@earning_rule_types.register
class ReferralReward(EarningRuleType):
    """Points to the referrer (and a welcome bonus to the referred member) on the referred member's first order."""

    key = "referral"

    def rewards_referral(self, rule, day: dt.date) -> bool:
        return rule_in_force(rule, day) and rule.points > 0


def earning_compute(*, program, tier, rules, amount: Decimal, lines=(), channel_code="", store="", day=None):
    """What an order earns, rule by rule."""
    multiplier = tier.points_multiplier if tier is not None else Decimal(1)
    earning = Earning(base=round_points(amount * program.points_per_unit * multiplier, program.rounding))
    facts = OrderFacts(program, multiplier, amount, tuple(lines), channel_code, store, day)
    stacked, best = [], []
    for rule in rules:
        bonus = earning_rule_types.get(rule.kind).order_bonus(rule, facts)
        if bonus > 0:
            (best if rule.combine == "best" else stacked).append((rule, bonus))
    earning.bonuses = stacked + ([max(best, key=lambda pair: pair[1])] if best else [])
    return earning


def period_start(program, period: str, moment: dt.datetime) -> dt.datetime | None:
    """The start of the day, week, month or year that holds `moment`, in the programme's time zone."""
    if period == "ever":
        return None
    zone = ZoneInfo(program.time_zone)
    local = moment.astimezone(zone)
    day = local.date()
    if period == "week":
        day -= dt.timedelta(days=day.weekday())
    elif period == "month":
        day = day.replace(day=1)
    elif period == "year":
        day = day.replace(month=1, day=1)
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def expiry_for(program, available_at: dt.datetime) -> dt.datetime | None:
    if program.expiry_policy == "never":
        return None
    if program.expiry_policy == "end_of_next_year":
        zone = ZoneInfo(program.time_zone)
        year = available_at.astimezone(zone).year + 1
        return dt.datetime(year + 1, 1, 1, tzinfo=zone)
    return available_at + dt.timedelta(days=program.expiry_days)
