"""Segments of API.md, for the calling channel's programme. Thin: parse, call one service or selector, render."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from loyalty.services import program_for_channel
from members.errors import NotFound

from .. import selectors, services
from ..models import Segment
from . import serializers as s


class ProgramScoped:
    @property
    def program(self):
        if not hasattr(self, "_program"):
            self._program = program_for_channel(self.request.user.channel)
        return self._program

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
