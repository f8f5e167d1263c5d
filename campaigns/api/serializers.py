"""Per-endpoint input and output of the campaigns API (API.md § Segments)."""

from rest_framework import serializers


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
