from django.urls import path

from . import views

urlpatterns = [
    path("u/<str:token>/", views.unsubscribe_view, name="campaigns-unsubscribe"),
    path("replies/sms/<str:token>/", views.sms_replies_view, name="campaigns-sms-replies"),
]
