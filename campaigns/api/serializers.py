"""Per-endpoint input and output of the campaigns API (API.md § Segments)."""

from decimal import Decimal

from django.utils.translation import gettext as _
from rest_framework import serializers

from loyalty.api.serializers import AwareDateTimeField


class RuleField(serializers.JSONField):
    """A segment rule; its meaning is checked by `campaigns.rules` (errors under `fields.rule`)."""


class SegmentInputSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    rule = RuleField()


class SegmentUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    rule = RuleField(required=False)


class SegmentSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    rule = serializers.JSONField(allow_null=True)
    count = serializers.IntegerField(allow_null=True)
    counted_at = serializers.DateTimeField(allow_null=True)


class SegmentMemberSerializer(serializers.Serializer):
    member_no = serializers.CharField()


class PreviewInputSerializer(serializers.Serializer):
    rule = RuleField()


class PreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    sample = serializers.ListField(child=serializers.CharField())


class MessageTextSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=200, required=False, allow_blank=True)
    body = serializers.CharField(max_length=2000)


class VariantInputSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=32)
    share = serializers.DecimalField(max_digits=4, decimal_places=3, min_value=Decimal("0.001"), max_value=1)
    message = MessageTextSerializer(required=False)


class OfferSerializer(serializers.Serializer):
    coupon_template = serializers.SlugField(max_length=32, required=False)
    points = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)


class CampaignInputSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    segment = serializers.SlugField(max_length=64)
    channel = serializers.ChoiceField(choices=["sms", "email", "wechat", "app"])
    message = MessageTextSerializer(required=False)
    variants = VariantInputSerializer(many=True, required=False, max_length=10)
    control_share = serializers.DecimalField(
        max_digits=4, decimal_places=3, min_value=0, max_value=Decimal("0.5"), required=False, default=Decimal(0)
    )
    conversion_days = serializers.IntegerField(min_value=1, max_value=365, required=False, default=14)
    offer = OfferSerializer(required=False)
    scheduled_at = AwareDateTimeField(required=False)

    def validate(self, data):
        if not data.get("message") and not data.get("variants"):
            raise serializers.ValidationError({"message": [_("Give the message, or variants with their messages.")]})
        return data


class GroupSerializer(serializers.Serializer):
    members = serializers.IntegerField()
    converted = serializers.IntegerField()
    conversion_rate = serializers.DecimalField(max_digits=6, decimal_places=4, allow_null=True)
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)


class UpliftSerializer(serializers.Serializer):
    absolute = serializers.DecimalField(max_digits=6, decimal_places=4)
    relative = serializers.DecimalField(max_digits=12, decimal_places=4, allow_null=True)
    p_value = serializers.DecimalField(max_digits=6, decimal_places=4, allow_null=True)
    ci95 = serializers.ListField(child=serializers.DecimalField(max_digits=6, decimal_places=4))


class VariantResultSerializer(GroupSerializer):
    code = serializers.CharField()
    sent = serializers.IntegerField()
    uplift = UpliftSerializer(allow_null=True)


class CampaignSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)
    audience = serializers.IntegerField()
    sent = serializers.IntegerField()
    skipped = serializers.DictField(child=serializers.IntegerField())
    failed = serializers.IntegerField()
    queued = serializers.IntegerField()
    control = GroupSerializer()
    variants = VariantResultSerializer(many=True)


class RecipientSerializer(serializers.Serializer):
    member_no = serializers.CharField(source="member.member_no")
    group = serializers.CharField()
    status = serializers.CharField(allow_null=True)
    reason = serializers.CharField(allow_null=True, required=False)


class MemberMessageSerializer(serializers.Serializer):
    campaign = serializers.CharField(source="campaign.code", allow_null=True, default=None)
    channel = serializers.CharField()
    variant = serializers.CharField()
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)


class WebhookInputSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=serializers.CharField(max_length=40), min_length=1, max_length=20)


class WebhookSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    events = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class WebhookCreatedSerializer(WebhookSerializer):
    secret = serializers.CharField(help_text="Shown once: keep it to check the X-CRM-Signature header.")
