"""Segments of API.md, for the calling channel's programme. Thin: parse, call one service or selector, render."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound, ValidationFailed
from loyalty.api.views import ProgramMixin
from loyalty.models import CouponTemplate

from .. import results, selectors, sending, services, webhooks
from ..models import Campaign, Message, Recipient, Segment, Webhook
from . import serializers as s


class ProgramScoped(ProgramMixin):
    """The calling channel's programme (and, through ProgramMixin, its members only)."""

    def campaign(self, code) -> Campaign:
        campaign = selectors.campaign_by_code(program=self.program, code=code)
        if campaign is None:
            raise NotFound(_("No campaign with code %(code)s.") % {"code": code})
        return campaign

    def segment(self, code) -> Segment:
        segment = selectors.segment_by_code(program=self.program, code=code)
        if segment is None:
            raise NotFound(_("No segment with code %(code)s.") % {"code": code})
        return segment


class SegmentListView(ProgramScoped, GenericAPIView):
    """List (with each segment's last count) and create."""

    required_scopes = {"GET": "campaigns:read", "POST": "campaigns:write"}
    serializer_class = s.SegmentSerializer
    queryset = Segment.objects.none()  # for the schema

    @extend_schema(responses=s.SegmentSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.segments_for(program=self.program))
        return self.get_paginated_response(s.SegmentSerializer(page, many=True).data)

    @extend_schema(request=s.SegmentInputSerializer, responses={201: s.SegmentSerializer})
    def post(self, request):
        data = s.SegmentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = services.segment_create(program=self.program, **data.validated_data)
        return Response(s.SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailView(ProgramScoped, APIView):
    """One segment, counted now."""

    required_scopes = {"GET": "campaigns:read", "PATCH": "campaigns:write", "DELETE": "campaigns:write"}

    @extend_schema(responses=s.SegmentSerializer)
    def get(self, request, code):
        segment = services.segment_recount(segment=self.segment(code))
        return Response(s.SegmentSerializer(segment).data)

    @extend_schema(request=s.SegmentUpdateSerializer, responses=s.SegmentSerializer)
    def patch(self, request, code):
        data = s.SegmentUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        segment = services.segment_update(segment=self.segment(code), **data.validated_data)
        return Response(s.SegmentSerializer(segment).data)

    @extend_schema(responses={204: None})
    def delete(self, request, code):
        services.segment_delete(segment=self.segment(code))
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentMembersView(ProgramScoped, GenericAPIView):
    required_scopes = {"GET": "campaigns:read"}
    serializer_class = s.SegmentMemberSerializer
    queryset = Segment.objects.none()

    @extend_schema(responses=s.SegmentMemberSerializer(many=True))
    def get(self, request, code):
        page = self.paginate_queryset(selectors.segment_member_numbers(segment=self.segment(code)))
        return self.get_paginated_response([{"member_no": member_no} for member_no in page])


class SegmentPreviewView(ProgramScoped, APIView):
    required_scopes = {"POST": "campaigns:write"}

    @extend_schema(request=s.PreviewInputSerializer, responses=s.PreviewSerializer)
    def post(self, request):
        data = s.PreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(selectors.rule_preview(program=self.program, rule=data.validated_data["rule"]))


class CampaignListView(ProgramScoped, GenericAPIView):
    required_scopes = {"GET": "campaigns:read", "POST": "campaigns:write"}
    serializer_class = s.CampaignSerializer
    queryset = Campaign.objects.none()

    @extend_schema(responses=s.CampaignSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.campaigns_for(program=self.program))
        return self.get_paginated_response(
            s.CampaignSerializer([results.campaign_results(campaign=c) for c in page], many=True).data
        )

    @extend_schema(request=s.CampaignInputSerializer, responses={201: s.CampaignSerializer})
    def post(self, request):
        data = s.CampaignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        segment = selectors.segment_by_code(program=self.program, code=values.pop("segment"))
        if segment is None:
            raise ValidationFailed(fields={"segment": [_("No segment with this code in this programme.")]})
        offer = values.pop("offer", {}) or {}
        template = None
        if offer.get("coupon_template"):
            template = CouponTemplate.objects.filter(program=self.program, code=offer["coupon_template"]).first()
            if template is None:
                raise ValidationFailed(fields={"offer.coupon_template": [_("No coupon template with this code.")]})
        campaign = services.campaign_create(
            program=self.program,
            segment=segment,
            coupon_template=template,
            points=offer.get("points"),
            **values,
        )
        return Response(s.CampaignSerializer(results.campaign_results(campaign=campaign)).data, status=201)


class CampaignDetailView(ProgramScoped, APIView):
    required_scopes = {"GET": "campaigns:read"}

    @extend_schema(responses=s.CampaignSerializer)
    def get(self, request, code):
        return Response(s.CampaignSerializer(results.campaign_results(campaign=self.campaign(code))).data)


class CampaignSendView(ProgramScoped, APIView):
    required_scopes = {"POST": "campaigns:write"}

    @extend_schema(request=None, responses={202: dict})
    def post(self, request, code):
        campaign = sending.campaign_send(campaign=self.campaign(code))
        return Response({"status": campaign.status}, status=status.HTTP_202_ACCEPTED)


class CampaignCancelView(ProgramScoped, APIView):
    required_scopes = {"POST": "campaigns:write"}

    @extend_schema(request=None, responses={200: dict})
    def post(self, request, code):
        campaign = sending.campaign_cancel(campaign=self.campaign(code))
        return Response({"status": campaign.status})


class CampaignAudienceView(ProgramScoped, GenericAPIView):
    required_scopes = {"GET": "campaigns:read"}
    serializer_class = s.RecipientSerializer
    queryset = Recipient.objects.none()

    @extend_schema(responses=s.RecipientSerializer(many=True))
    def get(self, request, code):
        page = self.paginate_queryset(selectors.campaign_audience(campaign=self.campaign(code)))
        return self.get_paginated_response(s.RecipientSerializer(page, many=True).data)


class MemberMessageListView(ProgramScoped, GenericAPIView):
    required_scopes = {"GET": ("campaigns:read", "members:read")}
    serializer_class = s.MemberMessageSerializer
    queryset = Message.objects.none()

    @extend_schema(responses=s.MemberMessageSerializer(many=True))
    def get(self, request, member_no):
        member = self.member(member_no=member_no)
        page = self.paginate_queryset(selectors.messages_of(member=member, program=self.program))
        return self.get_paginated_response(s.MemberMessageSerializer(page, many=True).data)


class WebhookListView(ProgramScoped, GenericAPIView):
    """A channel's subscriptions (it receives only its programme's events)."""

    required_scopes = {"GET": "webhooks:write", "POST": "webhooks:write"}
    serializer_class = s.WebhookSerializer
    queryset = Webhook.objects.none()

    @extend_schema(responses=s.WebhookSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(selectors.webhooks_of(channel=self.channel))
        return self.get_paginated_response(s.WebhookSerializer(page, many=True).data)

    @extend_schema(request=s.WebhookInputSerializer, responses={201: s.WebhookCreatedSerializer})
    def post(self, request):
        data = s.WebhookInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        webhook = webhooks.webhook_create(program=self.program, channel=self.channel, **data.validated_data)
        return Response(s.WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)


class WebhookDetailView(ProgramScoped, APIView):
    required_scopes = {"DELETE": "webhooks:write"}

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        webhook = selectors.webhooks_of(channel=self.channel).filter(pk=pk).first()
        if webhook is None:
            raise NotFound(_("No webhook with id %(id)s.") % {"id": pk})
        webhooks.webhook_delete(webhook=webhook)
        return Response(status=status.HTTP_204_NO_CONTENT)
