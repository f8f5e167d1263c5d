from django.urls import path

from . import views

urlpatterns = [
    path("segments/", views.SegmentListView.as_view(), name="segment-list"),
    path("segments/preview/", views.SegmentPreviewView.as_view(), name="segment-preview"),
    path("segments/<slug:code>/", views.SegmentDetailView.as_view(), name="segment-detail"),
    path("segments/<slug:code>/members/", views.SegmentMembersView.as_view(), name="segment-members"),
]
