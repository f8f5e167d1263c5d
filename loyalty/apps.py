from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty")

    def ready(self):
        from members import hooks

        from . import integration

        hooks.order_recorded.register(integration.on_order_recorded)
        hooks.refund_recorded.register(integration.on_refund_recorded)
        hooks.event_recorded.register(integration.on_event_recorded)
        hooks.member_merged.register(integration.on_member_merged)
        hooks.member_loyalty_summary.register(integration.member_loyalty_summary)
        hooks.member_tier_filter.register(integration.member_tier_filter)
        hooks.demo_seeders.register(integration.seed_demo)
