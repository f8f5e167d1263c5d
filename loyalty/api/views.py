"""Orders, refunds, events, points and tiers of API.md. Thin: parse, call one service, render."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import NotFound, ValidationFailed
from members import selectors as member_selectors
from members import services as member_services
from members.models import Order
from members.normalize import normalize_phone

from .. import adjustments, badges, ledger, partner, program_config, rewards, selectors
from .. import rewards_selectors as reward_selectors
from ..models import Reward
from . import serializers as s


class ProgramMixin:
    @property
    def channel(self):
        return self.request.user.channel

    @property
    def program(self):
        if not hasattr(self, "_program"):
            self._program = program_config.program_for_channel(self.channel)
        return self._program

    def member(self, *, member_no=None, phone=None):
        if member_no:
            member = member_selectors.member_by_number(member_no=member_no, with_related=False, visible_to=self.channel)
            missing = _("No member with number %(member_no)s.") % {"member_no": member_no}
        else:
            try:
                phone = normalize_phone(phone)
            except ValueError as error:
                raise ValidationFailed(fields={"phone": [str(error)]}) from None
            member = member_selectors.member_by_contact(phone=phone, visible_to=self.channel)
            missing = _("No member with phone %(phone)s.") % {"phone": phone}
        if member is None:
            raise NotFound(missing)
        return member

    def standing(self, member):
        account = selectors.account_for(member=member, program=self.program)
        tier = account.tier if account else selectors.tiers_for(self.program).first()
        return {
            "points": {"balance": account.balance if account else 0, "pending": account.pending if account else 0},
            "tier": {"code": tier.code, "name": tier.name} if tier else None,
        }


class OrderCreateView(ProgramMixin, APIView):
    required_scopes = {"POST": "orders:write"}

    @extend_schema(
        request=s.OrderInputSerializer, responses={201: s.OrderOutputSerializer, 200: s.OrderOutputSerializer}
    )
    def post(self, request):
        data = s.OrderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        currency = values.get("currency", self.program.currency).upper()
        if currency != self.program.currency:
            raise ValidationFailed(
                fields={
                    "currency": [
                        _("This channel's programme counts in %(currency)s.") % {"currency": self.program.currency}
                    ]
                }
            )
        member = self.member(member_no=values.get("member_no"), phone=values.get("phone"))
        order, created = partner.partner_order_record(
            channel=self.channel,
            order_id=values["order_id"],
            member=member,
            amount=values["amount"],
            currency=currency,
            occurred_at=values["occurred_at"],
            store=values["store"],
            lines=values.get("lines", []),
        )
        body = {
            "order_id": order.order_id,
            "member_no": order.member.member_no,
            "amount": order.amount,
            **selectors.order_points(order=order, program=self.program),
            "member": self.standing(order.member),
        }
        return Response(s.OrderOutputSerializer(body).data, status=status.HTTP_201_CREATED if created else 200)


class RefundCreateView(ProgramMixin, APIView):
    required_scopes = {"POST": "orders:write"}

    @extend_schema(request=s.RefundInputSerializer, responses={201: s.RefundOutputSerializer})
    def post(self, request, order_id):
        order = Order.objects.select_related("member").filter(channel=self.channel, order_id=order_id).first()
        if order is None:
            raise NotFound(_("No order %(order_id)s from this channel.") % {"order_id": order_id})
        data = s.RefundInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        refund, created = partner.partner_refund_record(
            channel=self.channel,
            order=order,
            refund_id=values["refund_id"],
            amount=values["amount"],
            lines=values.get("lines", []),
        )
        body = {
            "refund_id": refund.refund_id,
            "points_reversed": selectors.refund_points(refund=refund),
            "member": self.standing(order.member),
        }
        return Response(s.RefundOutputSerializer(body).data, status=status.HTTP_201_CREATED if created else 200)


class EventCreateView(ProgramMixin, APIView):
    required_scopes = {"POST": "events:write"}

    @extend_schema(request=s.EventInputSerializer, responses={201: s.EventOutputSerializer})
    def post(self, request):
        data = s.EventInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        event, created = partner.partner_event_record(
            channel=self.channel,
            event_id=values["event_id"],
            member=self.member(member_no=values["member_no"]),
            type=values["type"],
            name=values["name"],
            occurred_at=values["occurred_at"],
            attributes=values["attributes"],
        )
        body = {"event_id": event.event_id, **selectors.event_points(event=event)}
        return Response(s.EventOutputSerializer(body).data, status=status.HTTP_201_CREATED if created else 200)


class PointsView(ProgramMixin, APIView):
    required_scopes = {"GET": "points:read"}

    @extend_schema(responses=s.PointsSerializer)
    def get(self, request, member_no):
        account = selectors.account_for(member=self.member(member_no=member_no), program=self.program)
        return Response(s.PointsSerializer(selectors.points_summary(account)).data)


class TransactionListView(ProgramMixin, GenericAPIView):
    required_scopes = {"GET": "points:read"}
    serializer_class = s.TransactionSerializer

    def get(self, request, member_no):
        account = selectors.account_for(member=self.member(member_no=member_no), program=self.program)
        rows = selectors.transactions_for(account) if account else []
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.TransactionSerializer(page, many=True).data)


class AdjustmentCreateView(ProgramMixin, APIView):
    required_scopes = {"POST": "points:write"}

    @extend_schema(request=s.AdjustmentInputSerializer, responses={201: s.TransactionSerializer})
    def post(self, request, member_no):
        data = s.AdjustmentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        member = self.member(member_no=member_no)
        member_services.require_active(member)
        account = ledger.account_get_or_create(member=member, program=self.program)
        row, created = adjustments.points_adjust(
            account=account,
            points=values["points"],
            reason=values["reason"],
            channel=self.channel,
            adjustment_id=values["adjustment_id"],
        )
        return Response(s.TransactionSerializer(row).data, status=status.HTTP_201_CREATED if created else 200)


class TierListView(ProgramMixin, APIView):
    required_scopes = {"GET": ("members:read", "points:read", "rewards:read")}

    @extend_schema(responses=s.TierOutputSerializer(many=True))
    def get(self, request):
        return Response(s.TierOutputSerializer(selectors.tiers_for(self.program), many=True).data)


class RewardListView(ProgramMixin, GenericAPIView):
    """The points mall; with `member_no`, whether each reward is available to that member and why not."""

    required_scopes = {"GET": "rewards:read"}
    serializer_class = s.RewardSerializer
    queryset = Reward.objects.none()  # for the schema; the catalogue comes from the selector

    @extend_schema(
        parameters=[OpenApiParameter("member_no", str, required=False)],
        responses=s.RewardForMemberSerializer(many=True),
    )
    def get(self, request):
        catalogue = reward_selectors.catalogue(program=self.program, channel=self.channel)
        page = self.paginate_queryset(catalogue)
        member_no = request.query_params.get("member_no")
        if not member_no:
            return self.get_paginated_response(s.RewardSerializer(page, many=True).data)
        member = self.member(member_no=member_no)
        reasons = reward_selectors.unavailable_reasons(rewards=page, member=member, program=self.program)
        data = s.RewardForMemberSerializer(page, many=True, context={"reasons": reasons}).data
        return self.get_paginated_response(data)


class RedemptionCreateView(ProgramMixin, APIView):
    required_scopes = {"POST": "rewards:redeem"}

    @extend_schema(request=s.RedemptionInputSerializer, responses={201: s.RedemptionOutputSerializer})
    def post(self, request):
        data = s.RedemptionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        member = self.member(member_no=values["member_no"])
        redemption, created = rewards.reward_redeem(
            channel=self.channel,
            member=member,
            reward_code=values["reward_code"],
            quantity=values["quantity"],
            redemption_id=values["redemption_id"],
            shipping=values.get("shipping"),
        )
        body = {
            "redemption_id": redemption.redemption_id,
            "points_spent": redemption.points_spent,
            "coupons": redemption.coupons.select_related("template").order_by("id"),
            "member": {"points": {"balance": selectors.account_for(member=member, program=self.program).balance}},
        }
        return Response(s.RedemptionOutputSerializer(body).data, status=status.HTTP_201_CREATED if created else 200)


class CouponDetailView(ProgramMixin, APIView):
    required_scopes = {"GET": ("coupons:write", "rewards:read")}

    @extend_schema(responses=s.CouponSerializer)
    def get(self, request, code):
        coupon = reward_selectors.coupon_by_code(code=code, program=self.program)
        if coupon is None:
            raise NotFound(_("No coupon %(code)s.") % {"code": code})
        return Response(s.CouponSerializer(coupon).data)


class CouponRedeemView(ProgramMixin, APIView):
    required_scopes = {"POST": "coupons:write"}

    @extend_schema(request=s.CouponRedeemInputSerializer, responses={200: s.CouponSerializer})
    def post(self, request, code):
        data = s.CouponRedeemInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        coupon = rewards.coupon_redeem(
            channel=self.channel,
            code=code,
            order_id=data.validated_data["order_id"],
            amount=data.validated_data.get("amount"),
        )
        return Response({"code": coupon.code, "status": coupon.status})


class MemberCouponListView(ProgramMixin, GenericAPIView):
    required_scopes = {"GET": ("members:read", "rewards:read")}
    serializer_class = s.CouponSerializer

    def get(self, request, member_no):
        member = self.member(member_no=member_no)
        page = self.paginate_queryset(reward_selectors.coupons_of(member=member, program=self.program))
        return self.get_paginated_response(s.CouponSerializer(page, many=True).data)


class MemberBadgeListView(ProgramMixin, GenericAPIView):
    required_scopes = {"GET": ("members:read", "rewards:read")}
    serializer_class = s.BadgeSerializer

    def get(self, request, member_no):
        member = self.member(member_no=member_no)
        page = self.paginate_queryset(badges.badges_of(member=member, program=self.program))
        return self.get_paginated_response(s.BadgeSerializer(page, many=True).data)
