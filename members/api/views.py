from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from core.errors import NotFound, ValidationFailed

from .. import selectors, services
from ..filters import MemberFilter
from .serializers import MemberCreateSerializer, MemberSerializer, MemberUpdateSerializer


class ChannelScopedMixin:
    @property
    def channel(self):
        return self.request.user.channel


def render_members(view, members, many=False):
    items = list(members) if many else [members]
    summary = selectors.members_loyalty_summary(members=items, channel=view.channel)
    return MemberSerializer(members, many=many, context={"loyalty": summary, "request": view.request}).data


class MemberViewSet(ChannelScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    lookup_field = "member_no"
    filterset_class = MemberFilter
    serializer_class = MemberSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]
    required_scopes = {
        "list": "members:read",
        "retrieve": "members:read",
        "create": "members:write",
        "partial_update": "members:write",
    }

    def get_queryset(self):
        return selectors.member_list().order_by("-joined_at", "-id")

    def get_member(self):
        member = selectors.member_by_number(member_no=self.kwargs["member_no"])
        if member is None:
            raise NotFound(_("No member with number %(member_no)s.") % {"member_no": self.kwargs["member_no"]})
        return member

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(render_members(self, page, many=True))

    def retrieve(self, request, member_no=None):
        return Response(render_members(self, self.get_member()))

    @extend_schema(request=MemberCreateSerializer, responses={201: MemberSerializer})
    def create(self, request):
        serializer = MemberCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        referrer = None
        referrer_no = data.pop("referrer_member_no", "")
        if referrer_no:
            referrer = selectors.member_by_number(member_no=referrer_no)
            if referrer is None:
                raise ValidationFailed(fields={"referrer_member_no": [_("No member with this number.")]})
        member = services.member_create(
            channel=self.channel,
            referrer=referrer,
            external_id=data.pop("external_id", "") or None,
            consents=data.pop("consents", None),
            **data,
        )
        return Response(render_members(self, selectors.member_by_number(member_no=member.member_no)), status=201)

    @extend_schema(request=MemberUpdateSerializer, responses={200: MemberSerializer})
    def partial_update(self, request, member_no=None):
        member = self.get_member()
        serializer = MemberUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        consents = data.pop("consents", None)
        if data.get("city") is None and "city" in data:
            data["city"] = ""
        services.member_update(member=member, data=data, consents=consents, channel=self.channel)
        return Response(
            render_members(self, selectors.member_by_number(member_no=member.member_no)), status=status.HTTP_200_OK
        )
