import contextlib

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from core.errors import NotFound, ValidationFailed

from .. import selectors, services
from ..errors import DuplicateMember
from ..filters import MemberFilter
from .serializers import MemberCreateSerializer, MemberSerializer, MemberUpdateSerializer


class ChannelScopedMixin:
    @property
    def channel(self):
        return self.request.user.channel


@contextlib.contextmanager
def member_numbers_of_this_programme_only(channel):
    """A `duplicate_member` names the member who holds the contact only when the calling channel may see them: a
    partner never learns the number of another programme's member (API.md: a channel sees its programme's members)."""
    try:
        yield
    except DuplicateMember as error:
        member_no = error.extra.get("member_no")
        if member_no and selectors.member_by_number(member_no=member_no, with_related=False, visible_to=channel):
            raise
        message = _("This phone, e-mail or identity belongs to another member.")
        raise DuplicateMember(message, fields={field: [message] for field in error.fields or {}}) from None


def render_members(view, members, many=False):
    items = list(members) if many else [members]
    summary = selectors.members_loyalty_summary(members=items, channel=view.channel)
    return MemberSerializer(members, many=many, context={"loyalty": summary, "request": view.request}).data


class MemberViewSet(ChannelScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    lookup_field = "member_no"
    filterset_class = MemberFilter
    serializer_class = MemberSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    required_scopes = {
        "list": "members:read",
        "retrieve": "members:read",
        "create": "members:write",
        "partial_update": "members:write",
        "destroy": "members:write",
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema, built without a request
            return selectors.member_list()
        return selectors.members_visible_to(channel=self.channel, queryset=selectors.member_list()).order_by(
            "-joined_at", "-id"
        )

    def get_member(self):
        member = selectors.member_by_number(member_no=self.kwargs["member_no"], visible_to=self.channel)
        if member is None:
            raise NotFound(_("No member with number %(member_no)s.") % {"member_no": self.kwargs["member_no"]})
        return member

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        if not page:
            # A look-up by the phone or e-mail of a member merged away finds the member kept (only on a miss, so a
            # look-up that finds someone stays one indexed query).
            kept = MemberFilter.former_contact_member(request.query_params)
            if kept is not None:
                page = self.paginate_queryset(self.get_queryset().filter(pk=kept.pk))
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
            referrer = selectors.member_by_number(member_no=referrer_no, visible_to=self.channel)
            if referrer is None:
                raise ValidationFailed(fields={"referrer_member_no": [_("No member with this number.")]})
        # A person who is a member of another programme only joins this one: 201 with their existing number.
        with member_numbers_of_this_programme_only(self.channel):
            member, _created = services.member_sign_up(
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
        with member_numbers_of_this_programme_only(self.channel):
            services.member_update(member=member, data=data, consents=consents, channel=self.channel)
        return Response(
            render_members(self, selectors.member_by_number(member_no=member.member_no)), status=status.HTTP_200_OK
        )

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, member_no=None):
        """Erase the member's personal data on their request (API.md: Members): the number, orders and ledger stay."""
        member = self.get_member()
        reason = request.data.get("reason") if isinstance(request.data, dict) else None
        services.member_erase(
            member=member,
            reason=str(reason or f"request through channel {self.channel.code}")[:500],
            channel=self.channel,
            source="api",
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
