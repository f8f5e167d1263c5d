from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from members.api.serializers import PointsSummarySerializer, TierSerializer
from members.models import Event
from members.normalize import check_event_attributes, check_plausible_datetime


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with an offset (API.md); a time without one is ambiguous across time zones, so it is refused."""

    def to_internal_value(self, value):
        result = super().to_internal_value(value)
        if isinstance(value, str) and not any(mark in value[10:] for mark in ("+", "-", "Z", "z")):
            raise serializers.ValidationError(_("Give the time with its offset, such as 2026-05-01T10:00:00+08:00."))
        try:
            return check_plausible_datetime(result)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class MoneyField(serializers.DecimalField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 14)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("coerce_to_string", True)
        super().__init__(**kwargs)


# The programme's limits on what partners send (Program in the admin; 400 validation_error outside them).
ORDER_TIME_HELP = gettext_lazy(
    "At most 1095 days in the past and 5 minutes in the future unless the programme sets other limits; outside, 400."
)
EVENT_TIME_HELP = gettext_lazy(
    "At most 90 days in the past and 5 minutes in the future unless the programme sets other limits; outside, 400."
)
ORDER_AMOUNT_HELP = gettext_lazy(
    "At most the programme's maximum order amount (1,000,000.00 unless it sets another); above, 400."
)


class LineSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    category = serializers.CharField(max_length=100, required=False, allow_blank=True)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False, default=1)
    amount = MoneyField(min_value=0)


class OrderInputSerializer(serializers.Serializer):
    order_id = serializers.CharField(max_length=64)
    member_no = serializers.CharField(max_length=16, required=False)
    phone = serializers.CharField(max_length=40, required=False)
    amount = MoneyField(help_text=ORDER_AMOUNT_HELP)
    currency = serializers.CharField(max_length=3, min_length=3, required=False)
    occurred_at = AwareDateTimeField(help_text=ORDER_TIME_HELP)
    store = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    lines = LineSerializer(many=True, required=False, max_length=500)

    def validate_amount(self, value):
        if value < 0:  # 0 is an order too (fully discounted, a free gift): it earns nothing
            raise serializers.ValidationError(_("An order amount cannot be negative."))
        return value

    def validate(self, attrs):
        if not attrs.get("member_no") and not attrs.get("phone"):
            raise serializers.ValidationError(_("Give member_no or phone."))
        lines = attrs.get("lines")
        if lines and sum(line["amount"] for line in lines) != attrs["amount"]:
            raise serializers.ValidationError({"lines": [_("The line amounts must add up to the order amount.")]})
        return attrs


class MemberStandingSerializer(serializers.Serializer):
    points = PointsSummarySerializer()
    tier = TierSerializer(allow_null=True)


class OrderOutputSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    member_no = serializers.CharField()
    amount = MoneyField()
    points_earned = serializers.IntegerField()
    points_status = serializers.ChoiceField(choices=["available", "pending"])
    available_at = serializers.DateTimeField(allow_null=True)
    member = MemberStandingSerializer()


class RefundInputSerializer(serializers.Serializer):
    refund_id = serializers.CharField(max_length=64)
    amount = MoneyField(help_text=ORDER_AMOUNT_HELP)
    lines = LineSerializer(many=True, required=False, max_length=500)

    def validate_amount(self, value):
        if value <= 0:
            raise serializers.ValidationError(_("A refund amount must be more than 0."))
        return value


class RefundOutputSerializer(serializers.Serializer):
    refund_id = serializers.CharField()
    points_reversed = serializers.IntegerField()
    member = MemberStandingSerializer()


class EventInputSerializer(serializers.Serializer):
    event_id = serializers.CharField(max_length=64)
    member_no = serializers.CharField(max_length=16)
    type = serializers.ChoiceField(choices=Event.Type.values)
    name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    occurred_at = AwareDateTimeField(help_text=EVENT_TIME_HELP)
    attributes = serializers.JSONField(required=False, default=dict)

    def validate_attributes(self, value):
        try:
            return check_event_attributes(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None

    def validate(self, attrs):
        if attrs["type"] == Event.Type.CUSTOM and not attrs.get("name"):
            raise serializers.ValidationError({"name": [_("A custom event needs a name.")]})
        return attrs


class EventOutputSerializer(serializers.Serializer):
    event_id = serializers.CharField()
    points_earned = serializers.IntegerField()
    capped = serializers.BooleanField()


class ExpiringSerializer(serializers.Serializer):
    points = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class PointsSerializer(serializers.Serializer):
    balance = serializers.IntegerField()
    pending = serializers.IntegerField()
    lifetime_earned = serializers.IntegerField()
    expiring = ExpiringSerializer(many=True)


class TransactionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    points = serializers.IntegerField()
    balance_after = serializers.IntegerField()
    status = serializers.CharField()
    reference = serializers.CharField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class AdjustmentInputSerializer(serializers.Serializer):
    adjustment_id = serializers.CharField(max_length=64)
    points = serializers.IntegerField(min_value=-10_000_000, max_value=10_000_000)
    reason = serializers.CharField(max_length=200)

    def validate_points(self, value):
        if value == 0:
            raise serializers.ValidationError(_("An adjustment cannot be 0."))
        return value


class TierOutputSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    rank = serializers.IntegerField()
    qualification = serializers.SerializerMethodField()
    benefits = serializers.SerializerMethodField()

    def get_qualification(self, tier) -> dict:
        return {
            "metric": tier.metric,
            "window": tier.window,
            "window_days": tier.window_days,
            "upgrade_threshold": str(tier.upgrade_threshold),
            "retention_threshold": str(tier.retention_threshold),
        }

    def get_benefits(self, tier) -> dict:
        return {
            "points_multiplier": str(tier.points_multiplier),
            "discount_rate": str(tier.discount_rate),
            "free_shipping": tier.free_shipping,
            "birthday_points": tier.birthday_points,
            "named": tier.benefits,
        }


class RewardSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    points_cost = serializers.IntegerField()
    cash_price = MoneyField(allow_null=True)
    stock_left = serializers.IntegerField(source="stock", allow_null=True)
    per_member_limit = serializers.IntegerField(allow_null=True)
    valid_from = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    min_tier = serializers.SerializerMethodField()

    def get_min_tier(self, reward) -> str | None:
        return reward.min_tier.code if reward.min_tier_id else None


class RewardForMemberSerializer(RewardSerializer):
    available = serializers.SerializerMethodField()
    reason_unavailable = serializers.SerializerMethodField()

    def get_available(self, reward) -> bool:
        return self.context["reasons"].get(reward.pk) is None

    def get_reason_unavailable(self, reward) -> str | None:
        return self.context["reasons"].get(reward.pk)


class ShippingSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="The recipient's name.")
    phone = serializers.CharField(max_length=32, help_text="The recipient's phone.")
    address = serializers.CharField(max_length=300, help_text="The full postal address, in one line.")


class RedemptionInputSerializer(serializers.Serializer):
    redemption_id = serializers.CharField(max_length=64)
    member_no = serializers.CharField(max_length=16)
    reward_code = serializers.CharField(max_length=32)
    quantity = serializers.IntegerField(min_value=1, max_value=100, default=1)
    shipping = ShippingSerializer(
        required=False, help_text="Where the gift goes: required when the reward is a gift, ignored otherwise."
    )


class IssuedCouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    value = MoneyField(source="template.value")
    valid_until = serializers.DateTimeField(allow_null=True)


class RedemptionOutputSerializer(serializers.Serializer):
    redemption_id = serializers.CharField()
    points_spent = serializers.IntegerField()
    coupons = IssuedCouponSerializer(many=True)
    member = serializers.DictField()


class CouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    status = serializers.CharField()
    member_no = serializers.SerializerMethodField()
    kind = serializers.CharField(source="template.kind")
    value = MoneyField(source="template.value")
    min_spend = MoneyField(source="template.min_spend")
    valid_from = serializers.DateTimeField()
    valid_until = serializers.DateTimeField(allow_null=True)

    def get_member_no(self, coupon) -> str | None:
        return coupon.member.member_no if coupon.member_id else None


class CouponRedeemInputSerializer(serializers.Serializer):
    order_id = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    amount = MoneyField(required=False, min_value=0)


class BadgeSerializer(serializers.Serializer):
    code = serializers.CharField(source="badge.code")
    name = serializers.CharField(source="badge.name")
    description = serializers.CharField(source="badge.description")
    points_bonus = serializers.IntegerField(source="badge.points_bonus")
    awarded_at = serializers.DateTimeField()
