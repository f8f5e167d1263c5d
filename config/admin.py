from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from members import hooks


class CrmAdminSite(admin.AdminSite):
    """The operators' UI: branded, bilingual, with a home page of KPI cards that each app contributes."""

    site_header = _("Membership CRM")
    site_title = _("Membership CRM")
    index_title = _("Home")
    index_template = "admin/crm_index.html"

    def index(self, request, extra_context=None):
        cards = []
        for result in hooks.dashboard_cards.send(request=request):
            cards.extend(result or [])
        return super().index(request, {"dashboard_cards": cards, **(extra_context or {})})
