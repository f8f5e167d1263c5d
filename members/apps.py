from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self):
        from django.contrib import admin
        from django.db.models.signals import post_migrate

        from . import admin as members_admin
        from .api import authentication  # noqa: F401 - registers the API-key scheme with drf-spectacular
        from .roles import sync_after_migrate

        # The admin site (config.admin.CrmAdminSite) owns the presentation hooks; autodiscovery ran before this.
        admin.site.dashboard_cards.register(members_admin.member_cards)
        # The roles' permissions are set again after every migrate (README "Security" › "Roles").
        post_migrate.connect(sync_after_migrate, dispatch_uid="members-roles-sync")
