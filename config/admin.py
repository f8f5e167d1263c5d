from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from members import hooks


class CrmAdminSite(admin.AdminSite):
    """The operators' UI: branded, bilingual, with a home page of KPI cards that each app contributes."""

    site_header = _("Membership CRM")
    site_title = _("Membership CRM")
    index_title = _("Home")
    index_template = "admin/crm_index.html"

    # Technical screens come after the business sections on the home page and in the sidebar.
    technical_apps = ("django_celery_beat", "auth")

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        return sorted(apps, key=lambda app: app["app_label"] in self.technical_apps)

    def index(self, request, extra_context=None):
        cards = []
        for result in hooks.dashboard_cards.send(request=request):
            cards.extend(result or [])
        return super().index(request, {"dashboard_cards": cards, **(extra_context or {})})
