from django.urls import path

from . import views

urlpatterns = [
    path("analytics/kpis/", views.KpisView.as_view(), name="analytics-kpis"),
    path("analytics/cohorts/", views.CohortsView.as_view(), name="analytics-cohorts"),
    path("analytics/rfm/", views.RfmView.as_view(), name="analytics-rfm"),
    path("analytics/clv/", views.ClvView.as_view(), name="analytics-clv"),
    path("members/<str:member_no>/clv/", views.MemberClvView.as_view(), name="member-clv"),
]
