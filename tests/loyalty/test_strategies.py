"""Earning rules and badges are rows whose kind picks a strategy class: every kind staff can choose has one."""

from decimal import Decimal
from types import SimpleNamespace

import pytest

from loyalty.badges import badge_rules
from loyalty.models import Badge, EarningRule
from loyalty.rules import EarningRuleType, OrderFacts, earning_compute, earning_rule_types


def test_every_kind_of_earning_rule_and_badge_has_a_strategy():
    assert earning_rule_types.keys() == set(EarningRule.Kind.values)
    assert badge_rules.keys() == set(Badge.Rule.values)
    assert badge_rules.keys(triggered_by="order") == {"first_order", "orders", "spend"}


def test_an_unknown_kind_is_an_error_not_a_silent_zero():
    with pytest.raises(LookupError):
        earning_rule_types.get("lottery")


def test_a_new_kind_plugs_into_order_earning_without_touching_the_computation():
    class FlatTen(EarningRuleType):
        key = "order"

        def order_bonus(self, rule, facts: OrderFacts) -> int:
            return 10

    program = SimpleNamespace(points_per_unit=Decimal(1), rounding="down")
    rule = SimpleNamespace(kind="order", combine="stack")
    with earning_rule_types.replaced(FlatTen):
        earning = earning_compute(program=program, tier=None, rules=[rule], amount=Decimal("99.90"))
    assert (earning.base, earning.total) == (99, 109)
    assert earning_rule_types.get("order").__class__.__name__ == "OrderBonus"
