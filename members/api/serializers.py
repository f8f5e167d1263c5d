"""Input and output serializers of the members endpoints; plain Serializers, one per direction."""

from rest_framework import serializers

from ..models import Member, validate_birthday, validate_contact
from ..normalize import normalize_email, normalize_phone


class ConsentsSerializer(serializers.Serializer):
    sms = serializers.BooleanField(required=False)
    email = serializers.BooleanField(required=False)
    wechat = serializers.BooleanField(required=False)


def _normalised(function, value):
    try:
        return function(value)
    except ValueError as error:
        raise serializers.ValidationError(str(error)) from None


class MemberWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True, allow_null=True)
    gender = serializers.ChoiceField(choices=Member.Gender.values, required=False)
    birthday = serializers.DateField(
        required=False, allow_null=True, input_formats=["iso-8601"], validators=[validate_birthday]
    )
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    consents = ConsentsSerializer(required=False)

    def validate_phone(self, value):
        return _normalised(normalize_phone, value) if value else None

    def validate_email(self, value):
        return _normalised(normalize_email, value) if value else None


class MemberCreateSerializer(MemberWriteSerializer):
    external_id = serializers.CharField(max_length=128, required=False, allow_blank=True)
    referrer_member_no = serializers.CharField(max_length=16, required=False, allow_blank=True)

    def validate(self, attrs):
        # DRF turns Django's ValidationError from here into a 400 with non_field_errors.
        validate_contact(phone=attrs.get("phone"), email=attrs.get("email"), external_id=attrs.get("external_id"))
        return attrs


class MemberUpdateSerializer(MemberWriteSerializer):
    name = serializers.CharField(max_length=100, required=False)


class TierSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class PointsSummarySerializer(serializers.Serializer):
    balance = serializers.IntegerField()
    pending = serializers.IntegerField()


class MemberClvSummarySerializer(serializers.Serializer):
    p_alive = serializers.DecimalField(max_digits=6, decimal_places=4)
    clv = serializers.DecimalField(max_digits=14, decimal_places=2)


class MemberSerializer(serializers.Serializer):
    """A member as API.md shows it. Tier and points come from the loyalty summary in the context."""

    member_no = serializers.CharField()
    name = serializers.CharField()
    phone = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    gender = serializers.CharField()
    birthday = serializers.DateField(allow_null=True)
    city = serializers.CharField()
    status = serializers.CharField()
    joined_at = serializers.DateTimeField()
    tier = serializers.SerializerMethodField()
    points = serializers.SerializerMethodField()
    consents = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    rfm = serializers.SerializerMethodField()
    clv = serializers.SerializerMethodField()

    def _summary(self, member):
        return self.context["loyalty"][member.pk]

    def get_tier(self, member) -> TierSerializer(allow_null=True):
        return self._summary(member)["tier"]

    def get_points(self, member) -> PointsSummarySerializer:
        return self._summary(member)["points"]

    def get_consents(self, member) -> ConsentsSerializer:
        current = {consent.channel: consent.granted for consent in member.consents.all()}
        return {channel: current.get(channel, False) for channel in ("sms", "email", "wechat")}

    def get_tags(self, member) -> list[str]:
        return [member_tag.tag.name for member_tag in member.member_tags.all()]

    def get_rfm(self, member) -> str | None:
        """The RFM code (such as "544") once the daily job has scored the member in this programme."""
        return self._summary(member).get("rfm")

    def get_clv(self, member) -> MemberClvSummarySerializer(allow_null=True):
        """{p_alive, clv} once a CLV fit has scored the member in this programme."""
        found = self._summary(member).get("clv")
        return MemberClvSummarySerializer(found).data if found else None
