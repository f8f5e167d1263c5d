from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self):
        from django.contrib import admin

        from loyalty import events as loyalty_events
        from loyalty import jobs
        from members import events, extensions

        from . import demo, integration

        events.member_merged.connect(integration.on_member_merged)
        events.members_erased.connect(integration.members_erased)
        extensions.demo_seeders.register(demo.seed_demo)
        extensions.member_personal_data.register(integration.member_personal_data)
        admin.site.member_panels.register(integration.member_panels)
        jobs.daily_jobs.register(integration.daily_work)
        # Partners' webhooks: written in the transaction of the change, delivered after it commits.
        events.member_joined.connect(integration.on_member_joined)
        events.member_updated.connect(integration.on_member_updated)
        loyalty_events.tier_changed.connect(integration.on_tier_changed)
        loyalty_events.coupons_issued.connect(integration.on_coupons_issued)
        loyalty_events.redemption_created.connect(integration.on_redemption_created)
