from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self):
        from django.db.models.signals import post_migrate

        from .api import schema  # noqa: F401 - registers the API-key scheme with drf-spectacular
        from .roles import sync_after_migrate

        # The roles' permissions are set again after every migrate (README "Security" › "Roles").
        post_migrate.connect(sync_after_migrate, dispatch_uid="members-roles-sync")
