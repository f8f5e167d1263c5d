from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.registry import Registry


class CrmAdminSite(admin.AdminSite):
    """The operators' UI: branded, bilingual, with a home page of KPI cards that each app contributes."""

    site_header = _("Membership CRM")
    site_title = _("Membership CRM")
    index_title = _("Home")
    index_template = "admin/crm_index.html"

    def __init__(self, name="admin"):
        super().__init__(name)
        # Presentation hooks, registered by each app's AppConfig.ready() on `django.contrib.admin.site`:
        # the home page's cards (entries take request= and return [{"title", "value", "hint"?, "url"?}]) and
        # the member page's panels (entries take member=, request= and return [{"title", "rows": [(label, value)]}]).
        self.dashboard_cards = Registry("dashboard_cards")
        self.member_panels = Registry("member_panels")
        # Actions of the member list added by higher apps (admin action functions, each checking a permission).
        self.member_actions = Registry("member_actions")

    def index(self, request, extra_context=None):
        cards = self.dashboard_cards.collect(request=request)
        return super().index(request, {"dashboard_cards": cards, **(extra_context or {})})
