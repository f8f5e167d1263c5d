"""Badges and their awards in the admin."""

from django.contrib import admin
from django.db.models import Count
from django.utils.translation import gettext_lazy

from members.admin import ReadOnlyAdmin

from ..models import (
    Badge,
    BadgeAward,
)


@admin.register(Badge)
class BadgeAdmin(admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "program",
        "rule",
        "threshold",
        "window_days",
        "points_bonus",
        "is_active",
        "awarded",
    ]
    list_filter = ["program", "rule", "is_active"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(awarded=Count("awards"))

    @admin.display(description=gettext_lazy("awarded"), ordering="awarded")
    def awarded(self, obj):
        return obj.awarded


@admin.register(BadgeAward)
class BadgeAwardAdmin(ReadOnlyAdmin):
    list_display = ["awarded_at", "badge", "account"]
    list_filter = ["badge"]
    list_select_related = ["badge", "account__member", "account__program"]
