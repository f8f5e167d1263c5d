from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty")

    def ready(self):
        from members import hooks

        from . import integration

        hooks.order_recorded.register(integration.on_order_recorded)
        hooks.orders_imported.register(integration.on_orders_imported)
        hooks.refund_recorded.register(integration.on_refund_recorded)
        hooks.event_recorded.register(integration.on_event_recorded)
        hooks.member_merged.register(integration.on_member_merged)
        hooks.member_loyalty_summary.register(integration.member_loyalty_summary)
        hooks.member_tier_filter.register(integration.member_tier_filter)
        hooks.member_visibility.register(integration.member_visibility)
        hooks.member_joined.register(integration.on_member_joined)
        hooks.member_personal_data.register(integration.member_personal_data)
        hooks.demo_seeders.register(integration.seed_demo)
        hooks.members_imported.register(integration.on_members_imported)
        hooks.channel_created.register(integration.on_channel_created)
        hooks.demo_members_created.register(integration.on_demo_members_created)

        # Earning keeps a programme's rules and tiers per process until the programme's updated_at changes;
        # any save or delete of a rule or a tier touches it (cache invalidation, not domain flow).
        from django.db.models.signals import post_delete, post_save

        from .models import Badge, EarningRule, Tier

        for model in (EarningRule, Tier, Badge):
            post_save.connect(integration.program_changed, sender=model, dispatch_uid=f"touch-{model.__name__}")
            post_delete.connect(integration.program_changed, sender=model, dispatch_uid=f"untouch-{model.__name__}")
