from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self):
        from .api import authentication  # noqa: F401 - registers the API-key scheme with drf-spectacular
