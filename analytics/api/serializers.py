"""Input and output serializers of the analytics endpoints (API.md § Analytics): plain Serializers."""

import datetime as dt

from django.utils.translation import gettext as _
from rest_framework import serializers

from members.normalize import validate_plausible_day

from ..sql import MAX_WINDOW_DAYS


def _money():
    return serializers.DecimalField(max_digits=16, decimal_places=2)


def _ratio():
    return serializers.DecimalField(max_digits=12, decimal_places=4)


def _day():
    return serializers.DateField(required=False, input_formats=["iso-8601"], validators=[validate_plausible_day])


class WindowInputSerializer(serializers.Serializer):
    """`from` and `to`; the window itself is checked by window() once the view has put in the defaults."""

    to = _day()


# `from` is a Python keyword: declared through the fields mapping.
WindowInputSerializer._declared_fields["from"] = _day()


def window(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The window (`from`, `to`), given or defaulted: refused when it runs backwards or spans more than ten years."""
    if start > end:
        raise serializers.ValidationError({"from": [_("`from` must be on or before `to`.")]})
    if (end - start).days >= MAX_WINDOW_DAYS:
        raise serializers.ValidationError({"from": [_("A window is at most ten years.")]})
    return start, end


class CohortInputSerializer(WindowInputSerializer):
    period = serializers.ChoiceField(choices=["month", "quarter"], required=False, default="month")


class RfmInputSerializer(serializers.Serializer):
    as_of = _day()


class MemberClvInputSerializer(serializers.Serializer):
    horizon_weeks = serializers.IntegerField(required=False, default=52, min_value=1, max_value=520)


class KpisSerializer(serializers.Serializer):
    members_total = serializers.IntegerField()
    members_new = serializers.IntegerField()
    purchasing_members = serializers.IntegerField()
    orders = serializers.IntegerField()
    revenue = _money()
    refunds = _money()
    aov = _money()
    purchase_frequency = _ratio()
    repeat_purchase_rate = _ratio()
    revenue_per_purchasing_member = _money()
    points_issued = serializers.IntegerField()
    points_redeemed = serializers.IntegerField()
    points_expired = serializers.IntegerField()
    points_liability = serializers.IntegerField()
    tier_distribution = serializers.DictField(child=serializers.IntegerField())
    taken_at = serializers.DateTimeField(
        allow_null=True, help_text="When the nightly snapshot these figures come from was taken; null: computed now."
    )


class CohortSerializer(serializers.Serializer):
    cohort = serializers.CharField()
    members = serializers.IntegerField()
    active = serializers.ListField(child=_ratio())


class CohortsSerializer(serializers.Serializer):
    period = serializers.CharField()
    cohorts = CohortSerializer(many=True)


class RfmThresholdsSerializer(serializers.Serializer):
    r = serializers.ListField(child=serializers.IntegerField())
    f = serializers.ListField(child=serializers.IntegerField())
    m = serializers.ListField(child=serializers.DecimalField(max_digits=14, decimal_places=2))
    window_days = serializers.IntegerField(allow_null=True)


class RfmSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    thresholds = RfmThresholdsSerializer()
    counts = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()))
    segments = serializers.DictField(child=serializers.IntegerField())


class BgNbdSerializer(serializers.Serializer):
    r = serializers.FloatField()
    alpha = serializers.FloatField()
    a = serializers.FloatField()
    b = serializers.FloatField()
    log_likelihood = serializers.FloatField()


class GammaGammaSerializer(serializers.Serializer):
    p = serializers.FloatField()
    q = serializers.FloatField()
    v = serializers.FloatField()
    log_likelihood = serializers.FloatField()


class ClvSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    time_unit = serializers.CharField()
    members = serializers.IntegerField()
    repeat_members = serializers.IntegerField()
    bgnbd = BgNbdSerializer()
    gamma_gamma = GammaGammaSerializer()


class MemberClvSerializer(serializers.Serializer):
    as_of = serializers.DateField()
    x = serializers.IntegerField()
    t_x = serializers.FloatField()
    T = serializers.FloatField()
    p_alive = _ratio()
    expected_purchases = _ratio()
    expected_average_spend = _money()
    clv = _money()
