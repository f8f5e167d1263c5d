from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = _("Analytics")

    def ready(self):
        from loyalty import jobs
        from members import events, extensions

        from . import demo, integration

        jobs.daily_jobs.register(integration.daily_jobs)
        extensions.member_loyalty_summary.register(integration.member_scores_summary)
        extensions.demo_history.register(demo.seed_demo_history)
        events.orders_imported.connect(integration.orders_imported)
        events.demo_members_created.connect(demo.demo_snapshot)
        events.members_import_finished.connect(integration.members_import_finished)
