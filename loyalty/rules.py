"""The earning rules' strategies: pure computation, no database writes (the preview tool and the services share it).

Base earning: amount x points per unit x the tier's multiplier, rounded as the programme says, per order.
An order rule adds a bonus on the matching amount (all of it, or the lines of its categories or SKUs): fixed points,
and/or the base earning on that amount times (multiplier - 1), so that a 3x member day gives 3x in all.
Rules marked "stack" add up; of the rules marked "best", only the one giving most applies.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

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


def rule_in_force(rule, day: dt.date) -> bool:
    if not rule.is_active:
        return False
    if rule.valid_from and day < rule.valid_from:
        return False
    if rule.valid_until and day > rule.valid_until:
        return False
    return not rule.weekdays or day.isoweekday() in rule.weekdays


def _matching_amount(rule, amount: Decimal, lines) -> Decimal:
    if not (rule.categories or rule.skus):
        return amount
    return sum((line.amount for line in lines if line.category in rule.categories or line.sku in rule.skus), Decimal(0))


def earning_compute(*, program, tier, rules, amount: Decimal, lines=(), channel_code="", store="", day=None):
    """What an order earns, rule by rule."""
    multiplier = tier.points_multiplier if tier is not None else Decimal(1)

    def base_on(value: Decimal) -> int:
        return round_points(value * program.points_per_unit * multiplier, program.rounding)

    earning = Earning(base=base_on(amount))
    stacked, best = [], []
    for rule in rules:
        if rule.kind != "order" or (day is not None and not rule_in_force(rule, day)):
            continue
        if rule.channel_codes and channel_code not in rule.channel_codes:
            continue
        if rule.stores and store not in rule.stores:
            continue
        if rule.min_order_amount is not None and amount < rule.min_order_amount:
            continue
        matched = _matching_amount(rule, amount, lines)
        if matched <= 0:
            continue
        bonus = rule.points
        if rule.multiplier is not None:
            bonus += round_points(
                matched * program.points_per_unit * multiplier * (rule.multiplier - 1), program.rounding
            )
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


# --- the debt rule ---------------------------------------------------------------------------------------------------
# A reversal that finds its points already spent leaves the balance negative (a debt). Points that become available
# on an account in debt repay it first: what they repay does not remain in their lot. Stated once here, in Python
# for single writes and as SQL for the set-based ones (earning in one statement, the daily jobs).


def debt_repaid(*, balance: int, points: int) -> int:
    """Of `points` (>= 0) becoming available on an account whose balance is `balance`, how many repay its debt."""
    return min(points, max(0, -balance))


def debt_repaid_sql(*, balance: str, points: str, vendor: str) -> str:
    """`debt_repaid` as an SQL expression over the SQL expressions `balance` and `points`."""
    least, greatest = ("LEAST", "GREATEST") if vendor == "postgresql" else ("MIN", "MAX")
    return f"{least}({points}, {greatest}(0, -({balance})))"
