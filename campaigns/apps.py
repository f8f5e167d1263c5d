from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self):
        from django.contrib import admin

        from loyalty import jobs
        from members import events, extensions

        from . import demo, integration

        events.member_merged.connect(integration.on_member_merged)
        events.members_erased.connect(integration.members_erased)
        extensions.demo_seeders.register(demo.seed_demo)
        extensions.member_personal_data.register(integration.member_personal_data)
        admin.site.member_panels.register(integration.member_panels)
        jobs.daily_jobs.register(integration.daily_work)
