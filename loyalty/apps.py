from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty")

    def ready(self):
        from django.contrib import admin

        from members import events, extensions

        from . import integration
        from .admin import member_pages

        # Domain events of members: in the sender's transaction, so points commit or roll back with the order.
        events.order_recorded.connect(integration.on_order_recorded)
        events.refund_recorded.connect(integration.on_refund_recorded)
        events.event_recorded.connect(integration.on_event_recorded)
        events.member_merged.connect(integration.on_member_merged)
        events.members_imported.connect(integration.on_members_imported)
        events.channel_created.connect(integration.on_channel_created)
        events.demo_members_created.connect(integration.on_demo_members_created)
        # What loyalty adds to members' answers.
        extensions.member_loyalty_summary.register(integration.member_loyalty_summary)
        extensions.member_tier_filter.register(integration.member_tier_filter)
        extensions.demo_seeders.register(integration.seed_demo)
        # The admin's presentation hooks (the site is config.admin.CrmAdminSite; autodiscovery ran before this).
        admin.site.member_panels.register(member_pages.member_panels)
        admin.site.dashboard_cards.register(member_pages.dashboard_cards)
        admin.site.member_actions.register(member_pages.issue_coupons)
        events.member_joined.connect(integration.on_member_joined)
        extensions.member_visibility.register(integration.member_visibility)
        extensions.member_personal_data.register(integration.member_personal_data)
        events.orders_importing.connect(integration.on_orders_importing)
        events.orders_imported.connect(integration.on_orders_imported)
        # Every member who joins gets an account (set-based); the merge page's comparison; the
        # import's check of points and tiers before anything is written.
        events.members_joined.connect(integration.on_members_joined)
        extensions.member_compare_rows.register(integration.member_compare_rows)
        extensions.members_import_checked.register(integration.on_members_import_checked)

        # Earning keeps a programme's rules and tiers per process until the programme's updated_at changes;
        # any save or delete of a rule or a tier touches it (cache invalidation, not domain flow).
        from django.db.models.signals import post_delete, post_save

        from .models import Badge, EarningRule, Tier

        for model in (EarningRule, Tier, Badge):
            post_save.connect(integration.program_changed, sender=model, dispatch_uid=f"touch-{model.__name__}")
            post_delete.connect(integration.program_changed, sender=model, dispatch_uid=f"untouch-{model.__name__}")
