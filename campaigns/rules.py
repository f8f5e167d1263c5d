"""Segment rules: JSON as API.md § Segments defines it, checked and compiled to one SQL query through the ORM.

A rule is a group `{"all": [...]}` or `{"any": [...]}` whose items are groups or conditions
`{"field", "op", "value", "days"?}`. Each field is a small strategy class in `FIELDS` (the registry that journeys'
conditions reuse): it checks its value and turns a condition into a `Q` over the programme's accounts (one account
per member and programme, so a member is counted once). Only active members ever match.

Conditions on orders are `IN`/`NOT IN` a grouped subquery over the programme's orders within the window, so that a
member without orders is handled the way API.md says (`orders_count lte 2` matches them, `gte 1` does not).
"""

import datetime as dt
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, F, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from analytics.models import MemberScore
from core.errors import ValidationFailed
from loyalty.models import Account, ChannelProgram, PointsLot, Tier
from members.models import Channel, Consent, Member, MemberTag, Order, OrderLine

OPERATORS = ("eq", "ne", "in", "not_in", "gte", "lte", "between")
EQUALITY = ("eq", "ne", "in", "not_in")
ORDERED = ("eq", "ne", "gte", "lte", "between")
MAX_DEPTH = 5
MAX_CONDITIONS = 50


class RuleError(Exception):
    """A rule that cannot be evaluated; the message names the place (`all[1].value`)."""


class Context:
    """What compiling needs besides the rule: the programme, the moment, and how to resolve `segment`."""

    def __init__(self, *, program, now=None, segment_resolver=None):
        self.program = program
        self.now = now or timezone.now()
        self.zone = ZoneInfo(program.time_zone)
        self.segment_resolver = segment_resolver
        self.resolving = set()

    def channel_ids(self):
        return ChannelProgram.objects.filter(program=self.program).values("channel_id")

    def day_start(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.min, tzinfo=self.zone)

    def since(self, days):
        return self.now - dt.timedelta(days=days)


# -- values -------------------------------------------------------------------------------------------------------


def _int(value, *, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(_("a whole number"))
    if (low is not None and value < low) or (high is not None and value > high):
        raise RuleError(_("a whole number from %(low)s to %(high)s") % {"low": low, "high": high})
    return value


def _decimal(value):
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RuleError(_("an amount such as 100.00"))
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise RuleError(_("an amount such as 100.00")) from None
    if not number.is_finite() or abs(number) >= Decimal("1e12"):
        raise RuleError(_("an amount such as 100.00"))
    return number


def _text(value):
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise RuleError(_("a text"))
    return value.strip()


def _date(value):
    if not isinstance(value, str):
        raise RuleError(_("a date such as 2026-01-31"))
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise RuleError(_("a date such as 2026-01-31")) from None


# -- fields -------------------------------------------------------------------------------------------------------


class Field:
    """One field of a condition. `operators` it accepts; `parse` checks one value; `q` compiles a condition."""

    name = ""
    label = ""
    operators = EQUALITY
    takes_days = False
    needs_days = False
    kind = "text"  # the editor's input: text, number, date

    def parse(self, value, context):
        return _text(value)

    def choices(self, context):
        """Values an editor can offer (None: free input)."""
        return None

    def q(self, op, value, days, context) -> Q:
        raise NotImplementedError


class EqualityField(Field):
    """A field compared for equality through `q_is(values)`: a Q for "is one of these"."""

    def q(self, op, value, days, context):
        values = value if op in ("in", "not_in") else [value]
        matched = self.q_is(values, context)
        return ~matched if op in ("ne", "not_in") else matched

    def q_is(self, values, context) -> Q:
        raise NotImplementedError


class OrderedField(Field):
    """A field compared with `eq ne gte lte between` against an expression, through `q_compare(lookup, value)`."""

    operators = ORDERED

    def q(self, op, value, days, context):
        if op == "between":
            return self.q_compare("gte", value[0], days, context) & self.q_compare("lte", value[1], days, context)
        if op == "ne":
            return ~self.q_compare("exact", value, days, context)
        return self.q_compare("exact" if op == "eq" else op, value, days, context)

    def q_compare(self, lookup, value, days, context) -> Q:
        raise NotImplementedError


class TierField(EqualityField):
    name, label = "tier", gettext_lazy("tier")

    def parse(self, value, context):
        code = _text(value)
        if not Tier.objects.filter(program=context.program, code=code).exists():
            raise RuleError(
                _("a tier code of this programme (%(codes)s)") % {"codes": ", ".join(self.choices(context))}
            )
        return code

    def choices(self, context):
        return list(Tier.objects.filter(program=context.program).order_by("rank").values_list("code", flat=True))

    def q_is(self, values, context):
        return Q(tier__code__in=values)


class TagField(EqualityField):
    name, label = "tag", gettext_lazy("tag")

    def q_is(self, values, context):
        return Q(Exists(MemberTag.objects.filter(member_id=OuterRef("member_id"), tag__name__in=values)))


class MemberAttributeField(EqualityField):
    attribute = ""

    def q_is(self, values, context):
        return Q(**{f"member__{self.attribute}__in": values})


class CityField(MemberAttributeField):
    name, label, attribute = "city", gettext_lazy("city"), "city"


class GenderField(MemberAttributeField):
    name, label, attribute = "gender", gettext_lazy("gender"), "gender"

    def parse(self, value, context):
        if value not in Member.Gender.values:
            raise RuleError(_("one of %(values)s") % {"values": ", ".join(Member.Gender.values)})
        return value

    def choices(self, context):
        return list(Member.Gender.values)


class JoinChannelField(MemberAttributeField):
    name, label, attribute = "join_channel", gettext_lazy("join channel"), "join_channel__code"

    def parse(self, value, context):
        code = _text(value)
        if not Channel.objects.filter(code=code).exists():
            raise RuleError(_("a channel code"))
        return code


class ConsentField(EqualityField):
    name, label = "consent", gettext_lazy("consent")

    def parse(self, value, context):
        if value not in Consent.Channel.values:
            raise RuleError(_("one of %(values)s") % {"values": ", ".join(Consent.Channel.values)})
        return value

    def choices(self, context):
        return list(Consent.Channel.values)

    def q_is(self, values, context):
        # Given and not withdrawn: the current consent row says granted (a withdrawal updates it to not granted).
        return Q(Exists(Consent.objects.filter(member_id=OuterRef("member_id"), channel__in=values, granted=True)))


class JoinedAtField(OrderedField):
    name, label = "joined_at", gettext_lazy("joined on")
    kind = "date"

    def parse(self, value, context):
        return _date(value)

    def q_compare(self, lookup, value, days, context):
        start, end = context.day_start(value), context.day_start(value + dt.timedelta(days=1))
        if lookup == "exact":
            return Q(member__joined_at__gte=start, member__joined_at__lt=end)
        return Q(member__joined_at__gte=start) if lookup == "gte" else Q(member__joined_at__lt=end)


class BirthdayMonthField(OrderedField):
    name, label = "birthday_month", gettext_lazy("birthday month")
    operators = OPERATORS
    kind = "number"

    def parse(self, value, context):
        return _int(value, low=1, high=12)

    def q(self, op, value, days, context):
        if op in ("in", "not_in"):
            matched = Q(member__birthday__month__in=value)
            return ~matched & Q(member__birthday__isnull=False) if op == "not_in" else matched
        compiled = super().q(op, value, days, context)
        # A member without a birthday has no month: it matches no comparison, `ne` included.
        return compiled & Q(member__birthday__isnull=False)

    def q_compare(self, lookup, value, days, context):
        return Q(**{f"member__birthday__month__{lookup}": value})


class PointsBalanceField(OrderedField):
    name, label = "points_balance", gettext_lazy("points balance")
    kind = "number"

    def parse(self, value, context):
        return _int(value)

    def q_compare(self, lookup, value, days, context):
        return Q(**{f"balance__{lookup}": value})


class GroupedMemberField(OrderedField):
    """A per-member aggregate (0 for a member without rows): compiled as IN / NOT IN a grouped subquery, so that
    members without rows count as 0 and no per-member correlated subquery runs."""

    def aggregate(self, days, context):
        """A queryset of rows with `member_id`, grouped to one `value` per member (members without rows absent)."""
        raise NotImplementedError

    def q_compare(self, lookup, value, days, context):
        rows = self.aggregate(days, context)
        q = Q(member_id__in=rows.filter(**{f"value__{lookup}": value}).values("member_id"))
        zero_matches = {"exact": value == 0, "gte": value <= 0, "lte": value >= 0}[lookup]
        if zero_matches:
            q |= ~Q(member_id__in=rows.values("member_id"))
        return q


class OrdersField(GroupedMemberField):
    takes_days = True

    def orders(self, days, context):
        orders = Order.objects.filter(channel_id__in=context.channel_ids())
        if days is not None:
            orders = orders.filter(occurred_at__gt=context.since(days), occurred_at__lte=context.now)
        return orders.order_by().values("member_id")


class OrdersCountField(OrdersField):
    name, label = "orders_count", gettext_lazy("number of orders")
    kind = "number"

    def parse(self, value, context):
        return _int(value)

    def aggregate(self, days, context):
        return (
            self.orders(days, context)
            .exclude(status=Order.Status.REFUNDED)
            .annotate(value=Count("id"))
            .values("member_id", "value")
        )


class SpendField(OrdersField):
    name, label = "spend", gettext_lazy("spend (net of refunds)")
    kind = "number"

    def parse(self, value, context):
        return _decimal(value)

    def aggregate(self, days, context):
        return (
            self.orders(days, context)
            .annotate(value=Sum(F("amount") - F("refunded_amount")))
            .values("member_id", "value")
        )


class PointsExpiringField(GroupedMemberField):
    name, label = "points_expiring", gettext_lazy("points expiring")
    takes_days = needs_days = True
    kind = "number"

    def parse(self, value, context):
        return _int(value)

    def aggregate(self, days, context):
        return (
            PointsLot.objects.filter(
                account__program=context.program,
                status=PointsLot.Status.AVAILABLE,
                remaining__gt=0,
                expires_at__gt=context.now,
                expires_at__lte=context.now + dt.timedelta(days=days),
            )
            .order_by()
            .values(member_id=F("account__member_id"))
            .annotate(value=Sum("remaining"))
            .values("member_id", "value")
        )


class LastOrderDaysAgoField(OrderedField):
    """Days since the member's latest order in the programme: `lte N` = an order within the last N days; a member
    with no order never matches `lte` (nor `eq`, `between`) and always matches `gte`."""

    name, label = "last_order_days_ago", gettext_lazy("days since the last order")
    kind = "number"

    def parse(self, value, context):
        return _int(value, low=0)

    def q_compare(self, lookup, value, days, context):
        orders = Order.objects.filter(channel_id__in=context.channel_ids(), occurred_at__lte=context.now).order_by()
        today = context.now.astimezone(context.zone).date()
        # "N days ago" counts calendar days in the programme's time zone: an order today is 0 days ago.
        after = context.day_start(today - dt.timedelta(days=value))  # the first moment of the day N days ago
        until = after + dt.timedelta(days=1)
        if lookup == "lte":
            return Q(member_id__in=orders.filter(occurred_at__gte=after).values("member_id"))
        if lookup == "gte":
            return ~Q(member_id__in=orders.filter(occurred_at__gte=until).values("member_id"))
        recent = orders.filter(occurred_at__gte=until).values("member_id")
        return Q(member_id__in=orders.filter(occurred_at__gte=after, occurred_at__lt=until).values("member_id")) & ~Q(
            member_id__in=recent
        )


class BoughtCategoryField(EqualityField):
    name, label = "bought_category", gettext_lazy("bought in category")
    takes_days = True

    def q(self, op, value, days, context):
        values = value if op in ("in", "not_in") else [value]
        lines = OrderLine.objects.filter(
            order__channel_id__in=context.channel_ids(), category__in=values, order__occurred_at__lte=context.now
        )
        if days is not None:
            lines = lines.filter(order__occurred_at__gt=context.since(days))
        matched = Q(member_id__in=lines.order_by().values("order__member_id"))
        return ~matched if op in ("ne", "not_in") else matched


class RfmField(EqualityField):
    """The member's RFM code in the programme, as the daily job last scored it (analytics); unscored members never
    match `eq`/`in`."""

    name, label = "rfm", gettext_lazy("RFM code")

    def parse(self, value, context):
        if not isinstance(value, str) or len(value) != 3 or any(digit not in "12345" for digit in value):
            raise RuleError(_("a code of three digits from 1 to 5, such as 555"))
        return value

    def q_is(self, values, context):
        return Q(member_id__in=MemberScore.objects.filter(program=context.program, rfm__in=values).values("member_id"))


class ScoreField(OrderedField):
    """A score of the latest CLV fit (analytics); members not scored yet match no comparison."""

    attribute = ""
    kind = "number"

    def q_compare(self, lookup, value, days, context):
        scores = MemberScore.objects.filter(program=context.program, **{f"{self.attribute}__{lookup}": value})
        return Q(member_id__in=scores.values("member_id"))

    def q(self, op, value, days, context):
        if op == "ne":  # scored, and not this value
            scored = MemberScore.objects.filter(program=context.program, **{f"{self.attribute}__isnull": False})
            return Q(member_id__in=scored.values("member_id")) & ~self.q_compare("exact", value, days, context)
        return super().q(op, value, days, context)


class PAliveField(ScoreField):
    name, label, attribute = "p_alive", gettext_lazy("probability still active (P(alive))"), "p_alive"

    def parse(self, value, context):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise RuleError(_("a probability from 0 to 1"))
        return float(value)


class ClvField(ScoreField):
    name, label, attribute = "clv", gettext_lazy("expected value (CLV)"), "clv"

    def parse(self, value, context):
        return _decimal(value)


class SegmentField(EqualityField):
    """Another segment of the programme: members matching its rule (or listed in it, for a static segment)."""

    name, label = "segment", gettext_lazy("segment")

    def parse(self, value, context):
        return _text(value)

    def q_is(self, values, context):
        if context.segment_resolver is None:
            raise RuleError(_("segments cannot be nested here"))
        q = Q(pk__in=[])
        for code in values:
            q |= context.segment_resolver(code, context)
        return q


FIELDS = {
    field.name: field
    for field in (
        TierField(),
        TagField(),
        CityField(),
        GenderField(),
        JoinChannelField(),
        JoinedAtField(),
        BirthdayMonthField(),
        PointsBalanceField(),
        PointsExpiringField(),
        OrdersCountField(),
        SpendField(),
        LastOrderDaysAgoField(),
        BoughtCategoryField(),
        ConsentField(),
        RfmField(),
        PAliveField(),
        ClvField(),
        SegmentField(),
    )
}


def register_field(field: Field) -> None:
    """Add a field (a higher app's score, say); its `name` is what rules use."""
    FIELDS[field.name] = field


# -- checking and compiling ---------------------------------------------------------------------------------------


def _parse_value(field, op, value, context):
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or len(value) > 500:
            raise RuleError(_("a list of values"))
        return [field.parse(item, context) for item in value]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(_("a list of two values [low, high]"))
        low, high = (field.parse(item, context) for item in value)
        if low > high:
            raise RuleError(_("[low, high] with low ≤ high"))
        return [low, high]
    return field.parse(value, context)


def _compile(node, context, path, depth, counter) -> Q:
    if not isinstance(node, dict):
        raise ValidationFailed(
            fields={"rule": [_("%(path)s: expected a group or a condition.") % {"path": path or "rule"}]}
        )
    if depth > MAX_DEPTH:
        raise ValidationFailed(fields={"rule": [_("Groups nest at most %(n)s deep.") % {"n": MAX_DEPTH}]})
    groups = [key for key in ("all", "any") if key in node]
    if not groups and not path:
        raise ValidationFailed(
            fields={"rule": [_('A rule is a group or a condition inside {"all": [...]} or {"any": [...]}.')]}
        )
    if groups:
        if len(node) != 1 or not isinstance(node[groups[0]], list) or not node[groups[0]]:
            raise ValidationFailed(
                fields={"rule": [_('%(path)s: a group is {"all": [...]} or {"any": [...]}.') % {"path": path}]}
            )
        key = groups[0]
        parts = [
            _compile(item, context, f"{path}.{key}[{index}]" if path else f"{key}[{index}]", depth + 1, counter)
            for index, item in enumerate(node[key])
        ]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part if key == "all" else combined | part
        return combined
    return _compile_condition(node, context, path or "rule", counter)


def _compile_condition(node, context, path, counter) -> Q:
    counter[0] += 1
    if counter[0] > MAX_CONDITIONS:
        raise ValidationFailed(fields={"rule": [_("A rule has at most %(n)s conditions.") % {"n": MAX_CONDITIONS}]})
    unknown = set(node) - {"field", "op", "value", "days"}
    if unknown:
        raise ValidationFailed(
            fields={
                "rule": [_("%(path)s: unknown keys %(keys)s.") % {"path": path, "keys": ", ".join(sorted(unknown))}]
            }
        )
    field = FIELDS.get(node.get("field"))
    if field is None:
        raise ValidationFailed(
            fields={
                "rule": [
                    _("%(path)s.field: unknown field %(field)r; one of %(fields)s.")
                    % {"path": path, "field": node.get("field"), "fields": ", ".join(FIELDS)}
                ]
            }
        )
    op = node.get("op")
    if op not in field.operators:
        raise ValidationFailed(
            fields={
                "rule": [
                    _("%(path)s.op: %(field)s takes %(ops)s.")
                    % {"path": path, "field": field.name, "ops": ", ".join(field.operators)}
                ]
            }
        )
    days = node.get("days")
    if days is not None or field.needs_days:
        if not field.takes_days:
            message = _("%(path)s.days: %(field)s takes no days.") % {"path": path, "field": field.name}
            raise ValidationFailed(fields={"rule": [message]})
        try:
            days = _int(days, low=1, high=36500)
        except RuleError as error:
            raise ValidationFailed(
                fields={"rule": [_("%(path)s.days: expected %(what)s.") % {"path": path, "what": error}]}
            ) from None
    if "value" not in node:
        raise ValidationFailed(fields={"rule": [_("%(path)s.value: required.") % {"path": path}]})
    try:
        value = _parse_value(field, op, node["value"], context)
    except RuleError as error:
        raise ValidationFailed(
            fields={"rule": [_("%(path)s.value: expected %(what)s.") % {"path": path, "what": error}]}
        ) from None
    return field.q(op, value, days, context)


def rule_compile(rule, context: Context) -> Q:
    """The rule as a `Q` over `Account`; raises `ValidationFailed` with `fields.rule` saying where and what."""
    return _compile(rule, context, "", 1, [0])


def rule_check(rule, *, program) -> None:
    rule_compile(rule, Context(program=program, segment_resolver=lambda code, context: Q()))


def matching_accounts(rule, context: Context):
    """The programme's active members' accounts that match, as one query."""
    return Account.objects.filter(
        rule_compile(rule, context), program=context.program, member__status=Member.Status.ACTIVE
    )


# -- for people ---------------------------------------------------------------------------------------------------

OPERATOR_WORDS = {
    "eq": gettext_lazy("is"),
    "ne": gettext_lazy("is not"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "gte": gettext_lazy("is at least"),
    "lte": gettext_lazy("is at most"),
    "between": gettext_lazy("is between"),
}


def _value_words(value) -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def rule_describe(rule) -> str:
    """The rule in the operator's words: "all of: tier is gold; number of orders in the last 30 days is at least 2"."""
    if not isinstance(rule, dict):
        return ""
    for key, words in (("all", _("all of")), ("any", _("any of"))):
        if key in rule and isinstance(rule[key], list):
            parts = [rule_describe(item) for item in rule[key]]
            return f"{words} ({'; '.join(parts)})"
    field = FIELDS.get(rule.get("field"))
    label = field.label if field else rule.get("field")
    op = rule.get("op")
    value = rule.get("value")
    if op == "between" and isinstance(value, list) and len(value) == 2:
        text = _("%(field)s is between %(low)s and %(high)s") % {"field": label, "low": value[0], "high": value[1]}
    else:
        text = f"{label} {OPERATOR_WORDS.get(op, op)} {_value_words(value)}"
    if rule.get("days"):
        text += " " + _("(in the last %(days)s days)") % {"days": rule["days"]}
    return text


def editor_fields(context) -> list[dict]:
    """What the admin's rule editor offers: each field with its operators, choices and whether it takes days."""
    return [
        {
            "name": field.name,
            "label": str(field.label),
            "operators": [{"code": op, "label": str(OPERATOR_WORDS[op])} for op in field.operators],
            "choices": field.choices(context),
            "takes_days": field.takes_days,
            "needs_days": field.needs_days,
            "kind": field.kind,
        }
        for field in FIELDS.values()
    ]
