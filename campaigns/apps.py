from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self):
        from members import hooks

        from . import demo, integration

        hooks.member_merged.register(integration.on_member_merged)
        hooks.member_panels.register(integration.member_panels)
        hooks.daily_jobs.register(integration.daily_work)
        hooks.demo_seeders.register(demo.seed_demo)
        hooks.member_personal_data.register(integration.member_personal_data)
        hooks.members_erased.register(integration.members_erased)
