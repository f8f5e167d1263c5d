from django.urls import path

from . import views

urlpatterns = [
    path("orders/", views.OrderCreateView.as_view(), name="order-create"),
    path("orders/<str:order_id>/refunds/", views.RefundCreateView.as_view(), name="refund-create"),
    path("events/", views.EventCreateView.as_view(), name="event-create"),
    path("members/<str:member_no>/points/", views.PointsView.as_view(), name="member-points"),
    path(
        "members/<str:member_no>/points/transactions/",
        views.TransactionListView.as_view(),
        name="member-points-transactions",
    ),
    path(
        "members/<str:member_no>/points/adjustments/",
        views.AdjustmentCreateView.as_view(),
        name="member-points-adjustments",
    ),
    path("tiers/", views.TierListView.as_view(), name="tier-list"),
    path("rewards/", views.RewardListView.as_view(), name="reward-list"),
    path("redemptions/", views.RedemptionCreateView.as_view(), name="redemption-create"),
    path("coupons/<str:code>/", views.CouponDetailView.as_view(), name="coupon-detail"),
    path("coupons/<str:code>/redeem/", views.CouponRedeemView.as_view(), name="coupon-redeem"),
    path("members/<str:member_no>/coupons/", views.MemberCouponListView.as_view(), name="member-coupons"),
    path("members/<str:member_no>/badges/", views.MemberBadgeListView.as_view(), name="member-badges"),
]
