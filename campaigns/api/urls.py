from django.urls import path

from . import views

urlpatterns = [
    path("segments/", views.SegmentListView.as_view(), name="segment-list"),
    path("segments/preview/", views.SegmentPreviewView.as_view(), name="segment-preview"),
    path("segments/<slug:code>/", views.SegmentDetailView.as_view(), name="segment-detail"),
    path("segments/<slug:code>/members/", views.SegmentMembersView.as_view(), name="segment-members"),
    path("campaigns/", views.CampaignListView.as_view(), name="campaign-list"),
    path("campaigns/<slug:code>/", views.CampaignDetailView.as_view(), name="campaign-detail"),
    path("campaigns/<slug:code>/send/", views.CampaignSendView.as_view(), name="campaign-send"),
    path("campaigns/<slug:code>/cancel/", views.CampaignCancelView.as_view(), name="campaign-cancel"),
    path("campaigns/<slug:code>/audience/", views.CampaignAudienceView.as_view(), name="campaign-audience"),
    path("webhooks/", views.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/<int:pk>/", views.WebhookDetailView.as_view(), name="webhook-detail"),
    path("members/<str:member_no>/messages/", views.MemberMessageListView.as_view(), name="member-messages"),
]
