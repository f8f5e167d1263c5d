from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self):
        from django.contrib import admin

        from . import admin as members_admin
        from .api import authentication  # noqa: F401 - registers the API-key scheme with drf-spectacular

        # The admin site (config.admin.CrmAdminSite) owns the presentation hooks; autodiscovery ran before this.
        admin.site.dashboard_cards.register(members_admin.member_cards)
