"""The partner API v1: each app contributes its routes."""

from django.urls import include, path

urlpatterns = [
    path("", include("members.api.urls")),
    path("", include("loyalty.api.urls")),
    path("", include("analytics.api.urls")),
    path("", include("campaigns.api.urls")),
]
